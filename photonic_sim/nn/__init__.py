"""photonic_sim.nn: photonic layers for PyTorch users.

    import photonic_sim.nn as pnn
    layer = pnn.PhotonicLinear(64, 10, block_size=8)                 # phases are nn.Parameters
    tt_layer = pnn.TTPhotonicLinear((4, 4, 4), (4, 4, 4), ranks=4)
    chip_model = pnn.convert(model, mode="dense", devices="silicon_thermo_optic")

Layers: :mod:`photonic_sim.nn.layers` (state conventions, modes, gradients); conversion of a
model's ``nn.Linear`` layers: :mod:`photonic_sim.nn.convert`.
"""

from photonic_sim.nn.convert import MODES, convert
from photonic_sim.nn.layers import PhotonicLinear, TTPhotonicLinear

__all__ = ["MODES", "PhotonicLinear", "TTPhotonicLinear", "convert"]
