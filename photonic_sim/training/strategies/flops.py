"""FLOPS-style strategy ``flops`` (after Gu et al., DAC 2020)."""
from __future__ import annotations

from .base import Strategy, check_fraction, check_positive
from .estimators import gaussian_forward


class Flops(Strategy):
    """Gaussian forward-difference ZO with many samples and a shrinking sampling radius.

    μ_t = max(mu_min, mu · mu_decay^t): a wide search early, a sharper estimate late.
    Options: q (samples, default 40), mu, mu_decay ∈ (0, 1], mu_min (rad); "momentum" update
    by default. The direction distribution is always Gaussian and one-sided (q+1 rows).
    """

    name = "flops"
    defaults = dict(optimizer="momentum", q=40, mu=0.05, mu_decay=0.998, mu_min=0.005)

    def __init__(self, params, *, lr, generator, mask=None, periods=None, **cfg):
        super().__init__(params, lr=lr, generator=generator, mask=mask, periods=periods, **cfg)
        check_positive("q", self.cfg["q"], integer=True)
        check_positive("mu", self.cfg["mu"])
        check_fraction("mu_decay", self.cfg["mu_decay"], closed_right=True)
        if self.cfg["mu_decay"] == 0:
            raise ValueError("mu_decay must be in (0, 1], got 0")
        check_positive("mu_min", self.cfg["mu_min"])

    @property
    def queries_per_step(self) -> int:
        return self.cfg["q"] + 1

    def _mu(self) -> float:
        c = self.cfg
        return max(c["mu_min"], c["mu"] * c["mu_decay"] ** self.step_count)

    def _estimate(self, closure):
        return gaussian_forward(closure, self.params.detach(), q=self.cfg["q"], mu=self._mu(),
                                generator=self.generator, mask=self.mask, periods=self.periods)
