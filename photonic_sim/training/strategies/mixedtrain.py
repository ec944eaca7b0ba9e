"""MixedTrain-style sparse coordinate search, strategy ``mixedtrain`` (after Gu et al., AAAI 2021)."""
from __future__ import annotations

import torch

from .base import Strategy, check_fraction, check_positive
from .estimators import sparse_coordinate_search


class MixedTrain(Strategy):
    """Sparse accept/reject coordinate search.

    Each step draws k = max(1, round(coord_fraction · n_active)) coordinates, tries ±δ on each
    (δ = the scheduled lr, in rad) and keeps a trial move only where it lowers the loss by more
    than ``min_gain`` (see ``estimators.sparse_coordinate_search``); accepted moves are applied
    together. 2k+1 rows per step. No gradient estimate is formed, so the only optimizer is
    "sgd" (the step is the trial step itself); use a schedule to shrink δ.
    """

    name = "mixedtrain"
    optimizers = ("sgd",)
    defaults = dict(coord_fraction=0.1, min_gain=0.0)

    def __init__(self, params, *, lr, generator, mask=None, periods=None, **cfg):
        super().__init__(params, lr=lr, generator=generator, mask=mask, periods=periods, **cfg)
        frac = self.cfg["coord_fraction"]
        check_fraction("coord_fraction", frac, closed_right=True)
        if frac == 0:
            raise ValueError("coord_fraction must be in (0, 1], got 0")
        check_positive("min_gain", self.cfg["min_gain"], allow_zero=True)
        if self.cfg["schedule"] == "cosine" and not self.cfg["lr_min"] > 0:
            raise ValueError("mixedtrain with schedule 'cosine' needs lr_min > 0 (the trial step, rad)")
        self.k = max(1, min(self.n_active, int(round(frac * self.n_active))))

    @property
    def queries_per_step(self) -> int:
        return 2 * self.k + 1

    def step(self, closure) -> float:
        step = self.current_lr()
        with torch.no_grad():
            move, loss = sparse_coordinate_search(
                closure, self.params.detach(), k=self.k, step=step, generator=self.generator,
                mask=self.mask, periods=self.periods, min_gain=self.cfg["min_gain"])
            self._apply(-step * move)
        self.step_count += 1
        return float(loss)

