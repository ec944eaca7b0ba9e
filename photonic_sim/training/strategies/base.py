"""Gradient estimators on torch.optim, and the strategy object that combines them.

Two layers:

* :class:`Estimator` — a zeroth-order *gradient estimator*. It sees only the black-box loss
  closure ``closure(rows: Tensor[P, d]) -> Tensor[P]`` (one row = one chip query, one phase
  setting, rad), spends all its queries in ONE batched call, and writes its estimate of
  dL/dθ (units: loss per rad) into ``phases.grad``::

      est = RGE(q=16, mu=0.05, two_sided=True, generator=torch.Generator().manual_seed(1))
      opt = torch.optim.Adam([phases], lr=0.01)
      sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
      for _ in range(steps):
          loss = est.estimate_(closure, phases, periods=periods)  # writes phases.grad
          opt.step()
          sched.step()
          constrain_(phases, periods)                             # wrap phases into [0, p)

  Any ``torch.optim`` optimizer and ``lr_scheduler`` does the update.
* :class:`Strategy` — estimator + optimizer + scheduler on one phase vector, built by name
  from recipe options (``make_strategy``), with ``step(closure) -> loss`` and a
  ``state_dict`` for bit-identical resume. Common options (every strategy):

  optimizer  "sgd" (``torch.optim.SGD``), "momentum" (``SGD(momentum=momentum)``: b = m·b + ĝ,
             θ −= lr·b) or "adam" (``torch.optim.Adam(betas, eps)``)
  schedule   "constant" (no scheduler); "cosine" (``CosineAnnealingLR(T_max=total_steps,
             eta_min=min(lr_min, lr))``, held at its end after ``total_steps``); "step"
             (``StepLR(step_size, gamma)``)

``mask`` (bool [d]) restricts perturbations and updates to a coordinate subset: entries
outside it are never changed, whatever the optimizer does (e.g. weight decay). ``periods``
([d], rad) wraps updated phases into [0, p) (period 0/NaN: not wrapped). ``lattice`` ([d],
rad; ``Chip.controls()["lattice"]``) is the DAC code step of each control (0/NaN: none), kept
as ``Strategy.lattice`` for the strategies that round onto it (``quzo``); the others ignore it.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from .estimators import Closure, Estimate, wrap
from .options import (Option, check_options, choice, did_you_mean, integer, interval, nonnegative,
                      positive)

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step")

COMMON_OPTIONS: dict[str, Option] = {
    "optimizer": choice("sgd", OPTIMIZERS, doc="update rule (a torch.optim class)"),
    "momentum": interval(0.9, 0.0, 1.0, hi_open=True, doc="heavy-ball coefficient of 'momentum'"),
    "betas": Option((0.9, 0.999), "pair", doc="Adam's (beta1, beta2)"),
    "eps": positive(1e-8, doc="Adam's eps"),
    "schedule": choice("constant", SCHEDULES, doc="lr schedule (a torch.optim.lr_scheduler)"),
    "total_steps": integer(None, nullable=True, doc="cosine length in steps (null: the run's steps)"),
    "step_size": integer(100, doc="StepLR period in steps"),
    "gamma": interval(0.5, 0.0, 1.0, doc="StepLR factor"),
    "lr_min": nonnegative(0.0, doc="cosine floor (same unit as lr)"),
}
COMMON = {key: spec.default for key, spec in COMMON_OPTIONS.items()}
BUILD_ARGS = ("generator", "lr", "mask", "periods", "lattice")

__all__ = ["Estimator", "Strategy", "make_optimizer", "make_scheduler", "advance", "constrain_",
           "fill_schedule_length", "did_you_mean", "COMMON", "COMMON_OPTIONS", "OPTIMIZERS",
           "SCHEDULES"]


def fill_schedule_length(options: dict, steps: int) -> dict:
    """A cosine schedule with no ``total_steps`` anneals over the run: fill it with ``steps``.

    Changes ``options`` in place (and returns it); an explicit ``total_steps`` is kept."""
    if options.get("schedule") == "cosine" and options.get("total_steps") is None:
        options["total_steps"] = steps
    return options


def make_optimizer(kind: str, params: list[Tensor], lr: float, cfg: dict) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimizer a recipe's ``optimizer`` names (options from ``cfg``)."""
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(cfg["betas"]), eps=cfg["eps"])
    if kind == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=cfg["momentum"])
    return torch.optim.SGD(params, lr=lr)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: dict):
    """The ``torch.optim.lr_scheduler`` a recipe's ``schedule`` names, or None ("constant")."""
    kind = cfg["schedule"]
    if kind == "cosine":
        lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["total_steps"],
                                                          eta_min=min(cfg["lr_min"], lr))
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["step_size"], gamma=cfg["gamma"])
    return None


def advance(scheduler) -> None:
    """``scheduler.step()``, except that a cosine schedule stays at ``eta_min`` after ``T_max``
    steps (torch's cosine would climb back up). A no-op for None."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and scheduler.last_epoch >= scheduler.T_max:
        return
    with warnings.catch_warnings():  # a scheduler whose optimizer sat out this step (hybrid)
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
        scheduler.step()


@torch.no_grad()
def constrain_(params: Tensor, periods: Tensor | None = None, mask: Tensor | None = None,
               before: Tensor | None = None) -> Tensor:
    """After an optimizer step: put back the entries outside ``mask`` (from ``before``, the
    phases before the step) and wrap periodic entries into [0, p). In place; returns params."""
    if mask is not None and before is not None:
        params.copy_(torch.where(mask, params, before))
    if periods is not None:
        params.copy_(wrap(params, periods))
    return params


def _detached_copy(obj: Any) -> Any:
    """A deep copy whose tensors are fresh clones (a state_dict must not alias live state)."""
    return copy.deepcopy(obj)


class Estimator:
    """Base class of the gradient estimators (module docstring for the contract).

    A subclass declares its options ONCE in ``options`` (``{name: Option}``, checked by
    :func:`check_options`; each becomes an attribute) and implements :meth:`queries` and
    :meth:`estimate`. Every random number comes from ``generator`` (default: a fresh
    ``torch.Generator`` seeded 0).
    """

    options: dict[str, Option] = {}
    in_situ = True

    def __init__(self, *, generator: torch.Generator | None = None, **options):
        config = check_options(type(self).__name__, self.options, options, extra_names=("generator",))
        for key, value in config.items():
            setattr(self, key, value)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    @property
    def config(self) -> dict:
        """The current option values."""
        return {key: getattr(self, key) for key in self.options}

    def queries(self, n: int) -> int:
        """Closure rows per estimate when ``n`` coordinates may be perturbed."""
        raise NotImplementedError

    def estimate(self, closure: Closure, theta: Tensor, *, mask: Tensor | None = None,
                 periods: Tensor | None = None) -> Estimate:
        """(ĝ [d], 0 outside ``mask``; loss 0-d) at ``theta`` from ONE closure call; rows are
        wrapped by ``periods`` before the closure sees them."""
        raise NotImplementedError

    def estimate_(self, closure: Closure, params: Tensor, *, mask: Tensor | None = None,
                  periods: Tensor | None = None) -> float:
        """Estimate the gradient at ``params`` and write it into ``params.grad`` (for any
        ``torch.optim`` optimizer holding ``params``); returns the loss the batch reports."""
        with torch.no_grad():
            grad, loss = self.estimate(closure, params.detach(), mask=mask, periods=periods)
            grad = grad.to(dtype=params.dtype, device=params.device)
            if params.grad is None or params.grad.shape != params.shape:
                params.grad = grad.clone()
            else:
                params.grad.copy_(grad)
        return float(loss)

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        """Generator state and counters (tensors and numbers only)."""
        return {"generator": self.generator.get_state(), **self._extra_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._load_extra_state(state)


class Strategy:
    """An :class:`Estimator` + a ``torch.optim`` optimizer (+ lr scheduler) on ``params``.

    ``params`` (1-D phase vector, rad) is updated in place; ``step(closure) -> float`` returns
    the loss at the pre-update phases as the step's batch reports it (``Estimate.loss``).
    A subclass names its ``estimator_class``; its option table is the common options, the
    estimator's (except ``hide``, which the strategy sets itself), its ``extra_options``,
    with ``overrides`` (a value: a new default; an :class:`Option`: a new spec). ``defaults``
    maps every option to its default.
    """

    name = ""
    in_situ = True
    closure_kind = "batch"
    """The black box ``step(closure)`` needs: the Trainer calls ``task.closure(chip, batch,
    differentiable=not in_situ, kind=closure_kind)`` (``training.trainer.task_closure``;
    ``kind`` is passed only when it is not "batch", so tasks without kinds keep working; a
    task lists what it offers in ``closure_kinds``). Kinds: "batch" (phases [P, N] → losses
    [P]: each setting measured over the whole mini-batch, the default); "per-example"
    (``ClassificationTask``: setting p measured on one example only, losses per setting)."""
    estimator_class: type[Estimator] | None = None
    hide: tuple = ()
    extra_options: dict[str, Option] = {}
    overrides: dict[str, Any] = {}
    table: dict[str, Option] = {}
    defaults: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = {} if cls.estimator_class is None else {k: v for k, v in cls.estimator_class.options.items() if k not in cls.hide}
        table = {**COMMON_OPTIONS, **own, **cls.extra_options}
        for key, value in cls.overrides.items():
            table[key] = value if isinstance(value, Option) else _with_default(table[key], value)
        cls.table = table
        cls.defaults = {key: spec.default for key, spec in table.items()}

    def __init__(self, params: Tensor, *, lr: float, generator: torch.Generator | None,
                 mask: Tensor | None = None, periods: Tensor | None = None, lattice: Tensor | None = None,
                 **cfg):
        if not isinstance(params, Tensor) or params.dim() != 1 or not params.is_floating_point():
            raise ValueError("params must be a 1-D floating-point Tensor (the phase vector, rad)")
        check_options("lr", {"lr": positive(None)}, {"lr": lr})
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
        if lattice is not None:
            if not isinstance(lattice, Tensor) or tuple(lattice.shape) != (d,) or bool((lattice < 0).any()):
                raise ValueError(f"lattice must be a Tensor of shape ({d},) with steps >= 0 (rad; 0 or NaN = none)")
            lattice = lattice.to(dtype=params.dtype, device=params.device)
        self.params, self.lr, self.generator = params, float(lr), generator
        self.lattice = lattice
        self.mask = None if mask is None else mask.to(params.device)
        self.periods = periods
        self.cfg = check_options(self.name, self.table, cfg, context={"n_active": self.n_active},
                                 extra_names=BUILD_ARGS)
        if self.cfg["schedule"] == "cosine" and self.cfg["total_steps"] is None:
            raise ValueError("total_steps must be an integer >= 1 with schedule 'cosine', got None")
        self.step_count = 0
        self._build()

    def _build(self) -> None:
        """Estimator, optimizer and scheduler from ``cfg``."""
        self.estimator = self.estimator_class(
            generator=self.generator, **{k: self.cfg[k] for k in self.estimator_class.options if k not in self.hide},
            **self._hidden())
        self.optimizer = make_optimizer(self.cfg["optimizer"], [self.params], self.lr, self.cfg)
        self.scheduler = make_scheduler(self.optimizer, self.cfg)

    def _hidden(self) -> dict:
        """Values of the ``hide`` options (set by the strategy, not the recipe)."""
        return {}

    # --- the loop ------------------------------------------------------------------------
    @property
    def n_active(self) -> int:
        """Number of coordinates a strategy may perturb (mask size, or d)."""
        return int(self.mask.sum()) if self.mask is not None else self.params.shape[0]

    @property
    def queries_per_step(self) -> int:
        """Closure rows per step (all in one call)."""
        return self.estimator.queries(self.n_active)

    def current_lr(self) -> float:
        """The learning rate the next update uses (the optimizer's, as scheduled)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def _update(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()`` on the written ``.grad``, then mask and wrap (:func:`constrain_`)."""
        before = None if self.mask is None else self.params.detach().clone()
        optimizer.step()
        constrain_(self.params, self.periods, self.mask, before)

    def step(self, closure: Closure) -> float:
        loss = self.estimator.estimate_(closure, self.params, mask=self.mask, periods=self.periods)
        self._update(self.optimizer)
        advance(self.scheduler)
        self.step_count += 1
        return loss

    # --- resume ----------------------------------------------------------------------------
    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        """Everything needed for a bit-identical resume: phases, optimizer and scheduler
        state, estimator state (generator, counters). Tensors, numbers, strings, lists and
        dicts only (loads with ``torch.load(weights_only=True)``)."""
        return _detached_copy({
            "name": self.name, "params": self.params.detach(), "step_count": self.step_count,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "estimator": self.estimator.state_dict(), **self._extra_state()})

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state_dict is for strategy {state.get('name')!r}, not {self.name!r}")
        state = _detached_copy(state)
        with torch.no_grad():
            self.params.copy_(state["params"])
        self.step_count = int(state["step_count"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.estimator.load_state_dict(state["estimator"])
        self._load_extra_state(state)


def _with_default(spec: Option, default) -> Option:
    return replace(spec, default=default)
