"""Randomized gradient estimates: estimators :class:`RGE`, :class:`SignRGE` and the strategies
``zo-rge`` and ``zo-sign-rge`` built on them."""
from __future__ import annotations

import torch

from .base import Estimator, Strategy
from .estimators import DISTRIBUTIONS, Estimate, rge
from .options import choice, flag, integer, positive


class RGE(Estimator):
    """Randomized gradient estimate along ``q`` random directions (``estimators.rge``).

    Options: q (directions), mu (smoothing radius, rad), dist ∈ {gaussian, rademacher,
    sphere}, two_sided (2q rows [θ±μu] instead of q+1 rows [θ, θ+μu]), nnz (coordinates each
    direction perturbs; None = all). ĝ is in loss units per rad. On a b-bit phase lattice,
    ``dist="rademacher"``, ``two_sided=True`` and ``mu`` = 2π/2^b give central differences at
    the realised lattice point (``estimators`` module docstring).
    """

    options = {
        "q": integer(16, doc="random directions per estimate"),
        "mu": positive(0.02, doc="smoothing radius (rad)"),
        "dist": choice("gaussian", DISTRIBUTIONS, doc="direction distribution"),
        "two_sided": flag(False, doc="antithetic pairs: 2q rows instead of q+1"),
        "nnz": integer(None, 1, "n_active", nullable=True, doc="coordinates per direction (null: all)"),
    }

    def queries(self, n: int) -> int:
        return 2 * self.q if self.two_sided else self.q + 1

    def estimate(self, closure, theta, *, mask=None, periods=None):
        return rge(closure, theta, q=self.q, mu=self.mu, generator=self.generator, dist=self.dist,
                   two_sided=self.two_sided, mask=mask, periods=periods, nnz=self.nnz)


class SignRGE(RGE):
    """sign(ĝ) of :class:`RGE` (entries in {−1, 0, +1}, dimensionless): with plain SGD every
    coordinate moves by ±lr; the step size no longer depends on the loss scale and is robust
    to heavy-tailed ĝ."""

    def estimate(self, closure, theta, *, mask=None, periods=None):
        grad, loss = super().estimate(closure, theta, mask=mask, periods=periods)
        return Estimate(torch.sign(grad), loss)


class ZoRGE(Strategy):
    """ZO-RGE: :class:`RGE` + the common optimizer/schedule (default plain SGD)."""

    name = "zo-rge"
    estimator_class = RGE


class ZoSignRGE(Strategy):
    """ZO-signRGE: :class:`SignRGE` + the common optimizer/schedule (default plain SGD)."""

    name = "zo-sign-rge"
    estimator_class = SignRGE
