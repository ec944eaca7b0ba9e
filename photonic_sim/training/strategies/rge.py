"""Randomized-gradient-estimate strategies: ``zo-rge`` and ``zo-sign-rge``."""
from __future__ import annotations

import torch

from .base import Strategy, check_choice, check_nnz, check_positive
from .estimators import DISTRIBUTIONS, rge


class ZoRGE(Strategy):
    """ZO-RGE: θ ← θ − lr·update(ĝ), ĝ from q random directions (see ``estimators.rge``).

    Options: q (directions per step), mu (smoothing radius, rad), dist ∈ {gaussian,
    rademacher, sphere}, two_sided (2q rows instead of q+1), nnz (coordinates each direction
    perturbs; None = all). On a b-bit phase lattice, ``dist="rademacher"``, ``two_sided=True``
    and ``mu`` = 2π/2^b give central differences at the realised lattice point
    (``estimators`` module docstring).
    """

    name = "zo-rge"
    defaults = dict(q=16, mu=0.02, dist="gaussian", two_sided=False, nnz=None)

    def __init__(self, params, *, lr, generator, mask=None, periods=None, **cfg):
        super().__init__(params, lr=lr, generator=generator, mask=mask, periods=periods, **cfg)
        check_positive("q", self.cfg["q"], integer=True)
        check_positive("mu", self.cfg["mu"])
        check_choice("dist", self.cfg["dist"], DISTRIBUTIONS)
        if not isinstance(self.cfg["two_sided"], bool):
            raise ValueError(f"two_sided must be a bool, got {self.cfg['two_sided']!r}")
        check_nnz(self.cfg["nnz"], self.params, self.mask)

    @property
    def queries_per_step(self) -> int:
        q = self.cfg["q"]
        return 2 * q if self.cfg["two_sided"] else q + 1

    def _mu(self) -> float:
        return self.cfg["mu"]

    def _estimate(self, closure):
        c = self.cfg
        return rge(closure, self.params.detach(), q=c["q"], mu=self._mu(),
                   generator=self.generator, dist=c["dist"], two_sided=c["two_sided"],
                   mask=self.mask, periods=self.periods, nnz=c["nnz"])


class ZoSignRGE(ZoRGE):
    """ZO-signRGE: steps along sign(ĝ) (each coordinate moves by ±lr with "sgd"); the sign
    makes the step size independent of the loss scale and robust to heavy-tailed ĝ."""

    name = "zo-sign-rge"

    def _estimate(self, closure):
        grad, loss = super()._estimate(closure)
        return torch.sign(grad), loss
