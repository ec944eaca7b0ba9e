"""Hybrid ZO strategy ``hybrid``: sign-RGE until the loss plateaus, then CGE with momentum.

After Zhao et al. 2023, "Tensor-compressed back-propagation-free training for
(physics-informed) neural networks": the cheap sign-RGE makes fast early progress, the
accurate coordinate estimate (d+1 queries) finishes the job once sign-RGE stalls.
"""
from __future__ import annotations

import torch

from .base import Strategy, advance, make_scheduler
from .cge import CGE
from .options import flag, integer, interval, nonnegative, positive
from .rge import SignRGE


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
    """Phase 1 ("rge"): :class:`SignRGE` (q, mu, dist, two_sided, nnz) with the common
    optimizer (default sgd: each coordinate moves ±lr). Phase 2 ("cge", one-way switch when
    the plateau detector fires): :class:`CGE` (cge_mu, default mu; cge_central) with
    ``torch.optim.SGD(momentum=cge_momentum)`` at ``cge_lr`` (default lr), under the same kind
    of schedule, stepped from step 0. Plateau options: patience, tol, smooth.
    """

    name = "hybrid"
    estimator_class = SignRGE
    extra_options = {
        "patience": integer(20, doc="steps without progress before the switch"),
        "tol": nonnegative(1e-3, doc="relative improvement counted as progress"),
        "smooth": interval(0.9, 0.0, 1.0, hi_open=True, doc="EMA factor of the plateau detector"),
        "cge_lr": positive(None, nullable=True, doc="phase-2 learning rate (null: lr)"),
        "cge_mu": positive(None, nullable=True, doc="phase-2 difference step, rad (null: mu)"),
        "cge_momentum": interval(0.9, 0.0, 1.0, hi_open=True, doc="phase-2 heavy-ball coefficient"),
        "cge_central": flag(False, doc="phase-2 central differences"),
    }

    def _build(self) -> None:
        super()._build()
        c = self.cfg
        self.cge_lr = float(c["cge_lr"] or self.lr)
        self.cge = CGE(generator=self.generator, mu=float(c["cge_mu"] or c["mu"]), central=c["cge_central"])
        self.cge_optimizer = torch.optim.SGD([self.params], lr=self.cge_lr, momentum=c["cge_momentum"])
        self.cge_scheduler = make_scheduler(self.cge_optimizer, c)
        self.plateau = Plateau(patience=c["patience"], tol=c["tol"], smooth=c["smooth"])
        self.phase = "rge"
        self.switched_at: int | None = None

    @property
    def queries_per_step(self) -> int:
        return (self.cge if self.phase == "cge" else self.estimator).queries(self.n_active)

    def current_lr(self) -> float:
        opt = self.cge_optimizer if self.phase == "cge" else self.optimizer
        return float(opt.param_groups[0]["lr"])

    def step(self, closure) -> float:
        if self.phase == "rge":
            loss = self.estimator.estimate_(closure, self.params, mask=self.mask, periods=self.periods)
            self._update(self.optimizer)
        else:
            loss = self.cge.estimate_(closure, self.params, mask=self.mask, periods=self.periods)
            self._update(self.cge_optimizer)
        advance(self.scheduler)
        advance(self.cge_scheduler)
        self.step_count += 1
        if self.phase == "rge" and self.plateau.update(loss):
            self.phase, self.switched_at = "cge", self.step_count
        return loss

    def _extra_state(self) -> dict:
        return {"phase": self.phase, "switched_at": self.switched_at, "plateau": self.plateau.state_dict(),
                "cge_optimizer": self.cge_optimizer.state_dict(),
                "cge_scheduler": None if self.cge_scheduler is None else self.cge_scheduler.state_dict()}

    def _load_extra_state(self, state: dict) -> None:
        self.phase, self.switched_at = state["phase"], state["switched_at"]
        self.plateau.load_state_dict(state["plateau"])
        self.cge_optimizer.load_state_dict(state["cge_optimizer"])
        if self.cge_scheduler is not None:
            self.cge_scheduler.load_state_dict(state["cge_scheduler"])
