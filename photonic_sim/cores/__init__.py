"""photonic_sim.cores: network records, TT-matrix math, networks mapped onto photonic SVD blocks."""

from photonic_sim.cores.photonic import DenseONN, HardwareMatrix, PhotonicNetwork, TONN
from photonic_sim.cores.spec import PRESETS, LayerSpec, NetworkSpec, blocks_for, dense, preset, tt
from photonic_sim.cores.tt import TTMatrix, contract

__all__ = [
    "PRESETS",
    "DenseONN",
    "HardwareMatrix",
    "LayerSpec",
    "NetworkSpec",
    "PhotonicNetwork",
    "TONN",
    "TTMatrix",
    "blocks_for",
    "contract",
    "dense",
    "preset",
    "tt",
]
