"""Coordinate gradient estimate: estimator :class:`CGE` and strategy ``zo-cge``."""
from __future__ import annotations

from .base import Estimator, Strategy
from .estimators import cge, random_coords, support
from .options import flag, integer, positive


class CGE(Estimator):
    """Finite differences along coordinates (``estimators.cge``), ĝ in loss units per rad.

    Options: mu (rad), central (2k+1 rows [θ, θ+μe_c, θ−μe_c] instead of k+1),
    coords_per_step (None: every coordinate of the mask each estimate; k: a fresh random
    subset of k coordinates, ĝ = 0 on the others).
    """

    options = {
        "mu": positive(0.02, doc="finite-difference step (rad)"),
        "central": flag(False, doc="central differences (2k+1 rows)"),
        "coords_per_step": integer(None, 1, "n_active", nullable=True,
                                   doc="coordinates per estimate (null: all)"),
    }

    def queries(self, n: int) -> int:
        k = self.coords_per_step or n
        return (2 * k if self.central else k) + 1

    def estimate(self, closure, theta, *, mask=None, periods=None):
        k = self.coords_per_step
        coords = None if k is None else random_coords(support(theta, mask), k, self.generator)
        return cge(closure, theta, mu=self.mu, central=self.central, coords=coords, mask=mask,
                   periods=periods)


class ZoCGE(Strategy):
    """ZO-CGE: :class:`CGE` + the common optimizer/schedule (default "momentum")."""

    name = "zo-cge"
    estimator_class = CGE
    overrides = {"optimizer": "momentum"}
