"""Simultaneous-perturbation stochastic approximation, strategy ``spsa``."""
from __future__ import annotations

from .base import Strategy, check_positive
from .estimators import spsa


class SPSA(Strategy):
    """SPSA: ĝ averaged over q Rademacher perturbation pairs (2q rows per step).

    Options: q (pairs per step), mu (perturbation size, rad).
    """

    name = "spsa"
    defaults = dict(q=8, mu=0.02)

    def __init__(self, params, *, lr, generator, mask=None, periods=None, **cfg):
        super().__init__(params, lr=lr, generator=generator, mask=mask, periods=periods, **cfg)
        check_positive("q", self.cfg["q"], integer=True)
        check_positive("mu", self.cfg["mu"])

    @property
    def queries_per_step(self) -> int:
        return 2 * self.cfg["q"]

    def _estimate(self, closure):
        return spsa(closure, self.params.detach(), q=self.cfg["q"], mu=self.cfg["mu"],
                    generator=self.generator, mask=self.mask, periods=self.periods)
