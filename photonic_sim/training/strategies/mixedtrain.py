"""MixedTrain-style sparse coordinate search (after Gu et al., AAAI 2021): estimator
:class:`CoordinateSearch` and strategy ``mixedtrain``."""
from __future__ import annotations

from .base import Estimator, Strategy
from .estimators import Estimate, sparse_coordinate_search
from .options import choice, interval, nonnegative, positive


class CoordinateSearch(Estimator):
    """Sparse accept/reject coordinate search (``estimators.sparse_coordinate_search``).

    Each estimate draws k = max(1, round(coord_fraction · n)) coordinates, tries ±step on each
    (rad) and keeps a trial move only where it lowers the loss by more than ``min_gain``.
    2k+1 rows. No gradient is formed: the "gradient" written is −move (entries in {−1, 0, +1}),
    so ``torch.optim.SGD`` at lr = ``step`` applies exactly the accepted moves.
    """

    options = {
        "coord_fraction": interval(0.1, 0.0, 1.0, lo_open=True, doc="share of coordinates tried per estimate"),
        "min_gain": nonnegative(0.0, doc="loss decrease a move must beat"),
        "step": positive(0.05, doc="trial step (rad); the strategy sets it to the scheduled lr"),
    }

    def coords(self, n: int) -> int:
        """Coordinates tried per estimate when ``n`` may be perturbed."""
        return max(1, min(n, int(round(self.coord_fraction * n))))

    def queries(self, n: int) -> int:
        return 2 * self.coords(n) + 1

    def estimate(self, closure, theta, *, mask=None, periods=None):
        n = theta.shape[-1] if mask is None else int(mask.sum())
        move, loss = sparse_coordinate_search(closure, theta, k=self.coords(n), step=self.step,
                                              generator=self.generator, mask=mask, periods=periods,
                                              min_gain=self.min_gain)
        return Estimate(-move, loss)


class MixedTrain(Strategy):
    """:class:`CoordinateSearch` with plain SGD: the trial step δ is the scheduled lr (rad), so
    the only optimizer is "sgd"; use a schedule to shrink δ (cosine needs lr_min > 0)."""

    name = "mixedtrain"
    estimator_class = CoordinateSearch
    hide = ("step",)
    overrides = {"optimizer": choice("sgd", ("sgd",), doc="only sgd: the step is the trial step")}

    def __init__(self, params, *, lr, generator, mask=None, periods=None, **cfg):
        super().__init__(params, lr=lr, generator=generator, mask=mask, periods=periods, **cfg)
        if self.cfg["schedule"] == "cosine" and not self.cfg["lr_min"] > 0:
            raise ValueError("lr_min must be > 0 for mixedtrain with schedule 'cosine' (the trial step, rad)")

    def _hidden(self) -> dict:
        return {"step": self.lr}

    def step(self, closure) -> float:
        self.estimator.step = self.current_lr()
        return super().step(closure)
