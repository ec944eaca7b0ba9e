"""Simultaneous-perturbation stochastic approximation: estimator :class:`SPSA`, strategy ``spsa``."""
from __future__ import annotations

from .base import Estimator, Strategy
from .estimators import spsa
from .options import integer, positive


class SPSA(Estimator):
    """SPSA (Spall): ĝ averaged over q Rademacher perturbation pairs, 2q rows [θ±μΔ]
    (``estimators.spsa``), in loss units per rad. Options: q (pairs), mu (rad)."""

    options = {
        "q": integer(8, doc="perturbation pairs per estimate"),
        "mu": positive(0.02, doc="perturbation size (rad)"),
    }

    def queries(self, n: int) -> int:
        return 2 * self.q

    def estimate(self, closure, theta, *, mask=None, periods=None):
        return spsa(closure, theta, q=self.q, mu=self.mu, generator=self.generator, mask=mask,
                    periods=periods)


class ZoSPSA(Strategy):
    """SPSA + the common optimizer/schedule (default plain SGD)."""

    name = "spsa"
    estimator_class = SPSA
