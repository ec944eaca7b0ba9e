"""Strategy base class: torch.optim-like in-situ trainers that see only a batched loss closure.

A strategy owns ``params`` (1-D tensor of phases, rad, updated in place), draws every random
number from its ``generator`` and talks to the chip only through
``closure(params_batch: Tensor[P, d]) -> Tensor[P]`` — ONE call per ``step`` with
``queries_per_step`` rows. It never reads weights or gradients (``fo`` is the one exception and
is flagged ``in_situ = False``).

Common options (every strategy; each class adds its own in ``defaults``):
  optimizer  update rule applied to the estimate ĝ: "sgd" (θ −= lr·ĝ), "momentum"
             (b = momentum·b + ĝ; θ −= lr·b) or "adam" (bias-corrected moments, ``betas``, ``eps``)
  schedule   lr schedule over the step counter t: "constant"; "cosine" (lr_min + (lr−lr_min)·
             ½(1+cos(π·min(t,T)/T)), T = ``total_steps``); "step" (lr·gamma^⌊t/step_size⌋)
``mask`` restricts perturbations and updates to a coordinate subset (entries outside it are
never changed); ``periods`` wraps updated phases into [0, p) (period 0/NaN: not wrapped).
"""
from __future__ import annotations

import difflib
import math

import torch
from torch import Tensor

from .estimators import Closure, wrap

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step")

COMMON = dict(optimizer="sgd", momentum=0.9, betas=(0.9, 0.999), eps=1e-8,
              schedule="constant", total_steps=None, step_size=100, gamma=0.5, lr_min=0.0)


def fill_schedule_length(options: dict, steps: int) -> dict:
    """A cosine schedule with no ``total_steps`` anneals over the run: fill it with ``steps``.

    Changes ``options`` in place (and returns it); an explicit ``total_steps`` is kept."""
    if options.get("schedule") == "cosine" and options.get("total_steps") is None:
        options["total_steps"] = steps
    return options


def did_you_mean(word: str, allowed) -> str:
    """' Did you mean 'x'?' for the closest allowed name, or '' when none is close."""
    close = difflib.get_close_matches(str(word), list(allowed), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(field: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {tuple(allowed)}, got {value!r}.{did_you_mean(value, allowed)}")


def check_positive(field: str, value, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0) and (not integer or int(value) == value)
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{field} must be {kind} {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def check_nnz(value, params, mask) -> None:
    """``nnz`` (coordinates per RGE direction): None (all) or an integer in [1, m], m the
    perturbable coordinates (``mask``'s count, else all of ``params``)."""
    if value is None:
        return
    m = int(mask.sum()) if mask is not None else params.shape[-1]
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= m
    if not ok:
        raise ValueError(f"nnz must be null (all coordinates) or an integer in [1, {m}], got {value!r}")


def check_fraction(field: str, value, *, closed_right: bool = False) -> None:
    ok = isinstance(value, (int, float)) and (0 <= value <= 1 if closed_right else 0 <= value < 1)
    if not ok:
        raise ValueError(f"{field} must be in [0, 1{']' if closed_right else ')'}, got {value!r}")


class Updater:
    """Turns a gradient estimate into a parameter change (sgd / momentum / adam)."""

    def __init__(self, kind: str, like: Tensor, *, momentum: float = 0.9,
                 betas=(0.9, 0.999), eps: float = 1e-8):
        check_choice("optimizer", kind, OPTIMIZERS)
        check_fraction("momentum", momentum)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2) in [0, 1), got {betas!r}")
        for i, b in enumerate(betas):
            check_fraction(f"betas[{i}]", b)
        check_positive("eps", eps)
        self.kind, self.momentum, self.betas, self.eps = kind, momentum, tuple(betas), eps
        self.t = 0
        self.buf = torch.zeros_like(like)
        self.sq = torch.zeros_like(like) if kind == "adam" else None

    def delta(self, g: Tensor, lr: float) -> Tensor:
        """The change to subtract from θ for estimate ``g`` at learning rate ``lr``."""
        self.t += 1
        if self.kind == "sgd":
            return lr * g
        if self.kind == "momentum":
            self.buf.mul_(self.momentum).add_(g)
            return lr * self.buf
        b1, b2 = self.betas
        self.buf.mul_(b1).add_((1 - b1) * g)
        self.sq.mul_(b2).add_((1 - b2) * g * g)
        m_hat = self.buf / (1 - b1**self.t)
        v_hat = self.sq / (1 - b2**self.t)
        return lr * m_hat / (v_hat.sqrt() + self.eps)

    def state_dict(self) -> dict:
        return {"t": self.t, "buf": self.buf.clone(),
                "sq": None if self.sq is None else self.sq.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        self.buf.copy_(state["buf"])
        if self.sq is not None:
            self.sq.copy_(state["sq"])


class Strategy:
    """Base class. Subclasses set ``name``, ``defaults`` and implement ``_estimate``.

    ``step(closure) -> float`` returns the loss at the current (pre-update) parameters as the
    step's batch reports it (see ``Estimate.loss``), for logging.
    """

    name = ""
    in_situ = True
    defaults: dict = {}
    optimizers = OPTIMIZERS

    def __init__(self, params: Tensor, *, lr: float, generator: torch.Generator | None,
                 mask: Tensor | None = None, periods: Tensor | None = None, **cfg):
        if not isinstance(params, Tensor) or params.dim() != 1 or not params.is_floating_point():
            raise ValueError("params must be a 1-D floating-point Tensor (the phase vector, rad)")
        check_positive("lr", lr)
        if self.in_situ and not isinstance(generator, torch.Generator):
            raise ValueError("generator must be a torch.Generator (every random draw uses it)")
        d = params.shape[0]
        if mask is not None and (not isinstance(mask, Tensor) or mask.dtype != torch.bool
                                 or tuple(mask.shape) != (d,) or not bool(mask.any())):
            raise ValueError(f"mask must be a bool Tensor of shape ({d},) with at least one True")
        if periods is not None:
            if not isinstance(periods, Tensor) or tuple(periods.shape) != (d,):
                raise ValueError(f"periods must be a Tensor of shape ({d},) (rad; 0 or NaN = not periodic)")
            if bool((periods < 0).any()):
                raise ValueError("periods must be >= 0 (rad; 0 or NaN = not periodic)")
            periods = periods.to(dtype=params.dtype, device=params.device)
        if mask is not None:
            mask = mask.to(params.device)
        allowed = {**COMMON, **self.defaults}
        for key in cfg:
            if key not in allowed:
                raise ValueError(f"{self.name}: unknown option {key!r}; allowed: "
                                 f"{sorted(allowed) + ['generator', 'lr', 'mask', 'periods']}."
                                 f"{did_you_mean(key, allowed)}")
        self.cfg = {**allowed, **cfg}
        self.params, self.lr, self.generator = params, float(lr), generator
        self.mask, self.periods = mask, periods
        self.step_count = 0
        c = self.cfg
        check_choice("optimizer", c["optimizer"], self.optimizers)
        check_choice("schedule", c["schedule"], SCHEDULES)
        if c["schedule"] == "cosine":
            check_positive("total_steps", c["total_steps"], integer=True)
        check_positive("step_size", c["step_size"], integer=True)
        check_fraction("gamma", c["gamma"], closed_right=True)
        check_positive("lr_min", c["lr_min"], allow_zero=True)
        self.updater = Updater(c["optimizer"], params.detach(), momentum=c["momentum"],
                               betas=c["betas"], eps=c["eps"])

    # --- subclass interface -------------------------------------------------------------
    @property
    def queries_per_step(self) -> int:
        """Closure rows per step (all in one call)."""
        raise NotImplementedError

    def _estimate(self, closure: Closure):
        """Return (ĝ: Tensor[d], loss: 0-d Tensor) from ONE closure call."""
        raise NotImplementedError

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass

    # --- shared machinery ---------------------------------------------------------------
    @property
    def n_active(self) -> int:
        """Number of coordinates a strategy may perturb (mask size, or d)."""
        return int(self.mask.sum()) if self.mask is not None else self.params.shape[0]

    def current_lr(self, base: float | None = None) -> float:
        """Scheduled learning rate at the current step counter (``base`` defaults to ``lr``)."""
        lr, c, t = self.lr if base is None else base, self.cfg, self.step_count
        if c["schedule"] == "cosine":
            frac = min(t, c["total_steps"]) / c["total_steps"]
            lr_min = min(c["lr_min"], lr)
            return lr_min + (lr - lr_min) * 0.5 * (1 + math.cos(math.pi * frac))
        if c["schedule"] == "step":
            return lr * c["gamma"] ** (t // c["step_size"])
        return lr

    def _apply(self, delta: Tensor) -> None:
        """θ −= delta on the mask, then wrap periodic entries."""
        if self.mask is not None:
            delta = torch.where(self.mask, delta, torch.zeros_like(delta))
        self.params.sub_(delta.to(self.params.dtype))
        self.params.copy_(wrap(self.params, self.periods))

    def step(self, closure: Closure) -> float:
        with torch.no_grad():
            grad, loss = self._estimate(closure)
            self._apply(self.updater.delta(grad, self.current_lr()))
        self.step_count += 1
        return float(loss)

    def state_dict(self) -> dict:
        """Everything needed for a bit-identical resume (params, moments, counters, RNG)."""
        return {"name": self.name, "params": self.params.detach().clone(),
                "step_count": self.step_count, "updater": self.updater.state_dict(),
                "generator": None if self.generator is None else self.generator.get_state(),
                **self._extra_state()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state_dict is for strategy {state.get('name')!r}, not {self.name!r}")
        with torch.no_grad():
            self.params.copy_(state["params"])
        self.step_count = int(state["step_count"])
        self.updater.load_state_dict(state["updater"])
        if self.generator is not None and state["generator"] is not None:
            self.generator.set_state(state["generator"])
        self._load_extra_state(state)
