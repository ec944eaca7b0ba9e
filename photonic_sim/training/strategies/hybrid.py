"""Hybrid ZO strategy ``hybrid``: sign-RGE until the loss plateaus, then CGE with momentum.

After Zhao et al. 2023, "Tensor-compressed back-propagation-free training for
(physics-informed) neural networks": the cheap sign-RGE makes fast early progress, the
accurate coordinate estimate (d+1 queries) finishes the job once sign-RGE stalls.
"""
from __future__ import annotations

import torch

from .base import Strategy, Updater, check_choice, check_fraction, check_nnz, check_positive
from .estimators import DISTRIBUTIONS, cge, rge


class Plateau:
    """Plateau detector on an exponentially smoothed loss s_t = β·s_{t−1} + (1−β)·L_t (s_0 = L_0).

    A step counts as progress when (best − s_t) > tol·|best|; ``plateaued`` becomes True once
    ``patience`` consecutive steps made no progress.
    """

    def __init__(self, *, patience: int, tol: float, smooth: float):
        self.patience, self.tol, self.smooth = patience, tol, smooth
        self.ema: float | None = None
        self.best: float | None = None
        self.since = 0

    def update(self, loss: float) -> bool:
        self.ema = loss if self.ema is None else self.smooth * self.ema + (1 - self.smooth) * loss
        if self.best is None or self.best - self.ema > self.tol * abs(self.best):
            self.best, self.since = self.ema, 0
        else:
            self.since += 1
        return self.plateaued

    @property
    def plateaued(self) -> bool:
        return self.since >= self.patience

    def state_dict(self) -> dict:
        return {"ema": self.ema, "best": self.best, "since": self.since}

    def load_state_dict(self, state: dict) -> None:
        self.ema, self.best, self.since = state["ema"], state["best"], int(state["since"])


class Hybrid(Strategy):
    """Phase 1 ("rge"): sign-RGE (q, mu, dist, two_sided, nnz as in ``zo-rge``; step
    lr·update(sign ĝ) with the common ``optimizer``, default sgd). Phase 2 ("cge", one-way
    switch when the plateau detector fires): coordinate estimate (cge_mu, cge_central) with
    heavy-ball momentum ``cge_momentum`` at learning rate ``cge_lr`` (default lr). Plateau
    options: patience, tol, smooth.
    """

    name = "hybrid"
    defaults = dict(q=16, mu=0.02, dist="gaussian", two_sided=False, nnz=None, patience=20, tol=1e-3,
                    smooth=0.9, cge_lr=None, cge_mu=None, cge_momentum=0.9, cge_central=False)

    def __init__(self, params, *, lr, generator, mask=None, periods=None, **cfg):
        super().__init__(params, lr=lr, generator=generator, mask=mask, periods=periods, **cfg)
        c = self.cfg
        check_positive("q", c["q"], integer=True)
        check_positive("mu", c["mu"])
        check_choice("dist", c["dist"], DISTRIBUTIONS)
        check_nnz(c["nnz"], self.params, self.mask)
        check_positive("patience", c["patience"], integer=True)
        check_positive("tol", c["tol"], allow_zero=True)
        check_fraction("smooth", c["smooth"])
        for key in ("cge_lr", "cge_mu"):
            if c[key] is not None:
                check_positive(key, c[key])
        self.cge_lr = float(c["cge_lr"] or lr)
        self.cge_mu = float(c["cge_mu"] or c["mu"])
        self.cge_updater = Updater("momentum", params.detach(), momentum=c["cge_momentum"])
        self.plateau = Plateau(patience=c["patience"], tol=c["tol"], smooth=c["smooth"])
        self.phase = "rge"
        self.switched_at: int | None = None

    @property
    def queries_per_step(self) -> int:
        c = self.cfg
        if self.phase == "cge":
            return (2 * self.n_active if c["cge_central"] else self.n_active) + 1
        return 2 * c["q"] if c["two_sided"] else c["q"] + 1

    def step(self, closure) -> float:
        c, theta = self.cfg, self.params.detach()
        with torch.no_grad():
            if self.phase == "rge":
                grad, loss = rge(closure, theta, q=c["q"], mu=c["mu"], generator=self.generator,
                                 dist=c["dist"], two_sided=c["two_sided"], mask=self.mask,
                                 periods=self.periods, nnz=c["nnz"])
                self._apply(self.updater.delta(torch.sign(grad), self.current_lr()))
            else:
                grad, loss = cge(closure, theta, mu=self.cge_mu, central=c["cge_central"],
                                 mask=self.mask, periods=self.periods)
                self._apply(self.cge_updater.delta(grad, self.current_lr(self.cge_lr)))
        self.step_count += 1
        if self.phase == "rge" and self.plateau.update(float(loss)):
            self.phase, self.switched_at = "cge", self.step_count
        return float(loss)

    def _extra_state(self) -> dict:
        return {"phase": self.phase, "switched_at": self.switched_at,
                "plateau": self.plateau.state_dict(), "cge_updater": self.cge_updater.state_dict()}

    def _load_extra_state(self, state: dict) -> None:
        self.phase, self.switched_at = state["phase"], state["switched_at"]
        self.plateau.load_state_dict(state["plateau"])
        self.cge_updater.load_state_dict(state["cge_updater"])
