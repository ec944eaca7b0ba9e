"""PINN problems with built-in boundary/initial/terminal conditions (docs/physics.md#bp-free-pinns)."""

from .base import NN_NEED, PDE
from .black_scholes import BlackScholes
from .burgers import Burgers, cole_hopf
from .darcy import Darcy, darcy_reference
from .hjb import HJB

__all__ = [
    "NN_NEED",
    "PDE",
    "BlackScholes",
    "Burgers",
    "Darcy",
    "HJB",
    "cole_hopf",
    "darcy_reference",
]
