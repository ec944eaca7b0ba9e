"""photonic_sim.cores: network records, TT-matrix math, networks mapped onto photonic SVD blocks."""

from typing import TYPE_CHECKING

from photonic_sim._lazy import attach

if TYPE_CHECKING:  # the public names, read by attach(); each loads on first use
    from photonic_sim.cores._fused_read import readout_normals
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
    "readout_normals",
    "tt",
]

__getattr__, __dir__ = attach(__name__, __file__)
