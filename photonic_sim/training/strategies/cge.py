"""Coordinate-gradient-estimate strategy ``zo-cge`` (momentum by default)."""
from __future__ import annotations

from .base import Strategy, check_positive
from .estimators import cge, random_coords, support


class ZoCGE(Strategy):
    """ZO-CGE: finite differences along coordinates, default optimizer "momentum".

    Options: mu (rad), central (2k+1 rows instead of k+1), coords_per_step (None: every masked
    coordinate each step; k: a fresh random subset of k coordinates per step).
    """

    name = "zo-cge"
    defaults = dict(optimizer="momentum", mu=0.02, central=False, coords_per_step=None)

    def __init__(self, params, *, lr, generator, mask=None, periods=None, **cfg):
        super().__init__(params, lr=lr, generator=generator, mask=mask, periods=periods, **cfg)
        check_positive("mu", self.cfg["mu"])
        k = self.cfg["coords_per_step"]
        if k is not None and not (isinstance(k, int) and 1 <= k <= self.n_active):
            raise ValueError(f"coords_per_step must be None or an integer in [1, {self.n_active}], got {k!r}")
        if not isinstance(self.cfg["central"], bool):
            raise ValueError(f"central must be a bool, got {self.cfg['central']!r}")

    @property
    def queries_per_step(self) -> int:
        k = self.cfg["coords_per_step"] or self.n_active
        return (2 * k if self.cfg["central"] else k) + 1

    def _estimate(self, closure):
        theta, k = self.params.detach(), self.cfg["coords_per_step"]
        coords = None if k is None else random_coords(support(theta, self.mask), k, self.generator)
        return cge(closure, theta, mu=self.cfg["mu"], central=self.cfg["central"],
                   coords=coords, mask=self.mask, periods=self.periods)
