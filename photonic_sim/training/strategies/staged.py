"""``staged``: run in-situ strategies one after another on the same phases.

Options: ``stages``, a list of mappings, each ``{strategy: <name>, steps: <int>, ...}`` plus
that strategy's own options (``lr`` defaults to the staged strategy's ``lr``; a ``cosine``
schedule without ``total_steps`` anneals over the stage's ``steps``). Stage i+1 starts from
the phases stage i left, with a fresh optimizer state (momenta, Adam moments, lr schedule),
and draws its random numbers from the same generator (each stage builds its own
``torch.optim`` optimizer and scheduler). After the last stage's steps the last stage keeps
stepping.

The use it was built for (docs/pinn.md, eighth session): Gaussian-smoothed RGE to train, then a
short lattice polish, Rademacher directions of one phase LSB, whose two-sided differences are
central differences at the phase codes the chip realises. For example::

    stages:
      - {strategy: zo-rge, steps: 1000, lr: 0.03, q: 64, mu: 0.03, optimizer: adam, schedule: cosine}
      - {strategy: zo-rge, steps: 600, lr: 0.003, q: 128, mu: 0.0245436926, dist: rademacher,
         two_sided: true, optimizer: adam, schedule: cosine}

Every stage is in situ (``fo`` and ``staged`` are not allowed inside), so this is too.

A stage may set ``loss: evaluation`` (:data:`STAGE_LOSSES`; default ``batch``): its strategy
then sees the task's evaluation loss as its black box (closure kind "evaluation": for a PINN
task the label-free score of ``task.eval_loss``, the same points every call) instead of each
step's mini-batch loss, and the Trainer starts the stage from the best-scored phases so far
when the run keeps them (``keep: lowest_eval_loss``). Only strategies with batch closures may
do so. The use it was built for (docs/pinn.md, Darcy): a last stage of ``mixedtrain``'s
accept/reject coordinate search, one phase LSB per move, on the residual's H⁻² norm::

      - {strategy: mixedtrain, steps: 1000, loss: evaluation, lr: 0.0245436926, coord_fraction: 0.001}
"""
from __future__ import annotations

import torch

from .base import Strategy, fill_schedule_length
from .options import Option, OptionError, preview

STAGE_LOSSES = ("batch", "evaluation")
"""A stage's ``loss``: the step's mini-batch loss (default) or the task's evaluation loss."""


def stage_strategies() -> list[str]:
    """Names a stage may use: every in-situ strategy except ``staged`` itself."""
    from . import STRATEGIES

    return sorted(n for n, c in STRATEGIES.items() if c.in_situ and n != Staged.name)


class Staged(Strategy):
    """Stages of in-situ strategies in sequence (module docstring)."""

    name = "staged"
    extra_options = {"stages": Option(None, "list", doc="[{strategy: name, steps: N, ...options}]")}

    def _build(self) -> None:
        self.specs = [self._check_stage(i, spec) for i, spec in enumerate(self.cfg["stages"])]
        self._enter(0)

    def _check_stage(self, i: int, spec) -> dict:
        from . import STRATEGIES

        where = f"stages[{i}]"
        if not isinstance(spec, dict) or "strategy" not in spec or "steps" not in spec:
            raise ValueError(f"{where} must be a mapping with keys strategy and steps "
                             "(plus that strategy's options)")
        name, steps = spec["strategy"], spec["steps"]
        allowed = stage_strategies()
        if name not in allowed:
            raise ValueError(f"{where}.strategy must be one of {allowed} (in-situ strategies), got {preview(name)}")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"{where}.steps must be an integer >= 1, got {preview(steps)}")
        loss = spec.get("loss", "batch")
        if loss not in STAGE_LOSSES:
            raise ValueError(f"{where}.loss must be one of {list(STAGE_LOSSES)}, got {preview(loss)}")
        if loss != "batch" and STRATEGIES[name].closure_kind != "batch":
            raise ValueError(f"{where}.loss: {loss!r} needs a strategy with batch closures; {name!r} measures "
                             f"{STRATEGIES[name].closure_kind!r} closures (allowed: loss 'batch')")
        opts = {k: v for k, v in spec.items() if k not in ("strategy", "steps", "loss")}
        opts.setdefault("lr", self.lr)
        fill_schedule_length(opts, steps)
        try:  # validate now, on a scratch copy, so a bad stage fails before any query
            STRATEGIES[name](self.params.detach().clone(), generator=self.generator, mask=self.mask,
                             periods=self.periods, lattice=self.lattice, **opts)
        except OptionError as exc:
            raise OptionError(f"{where}: {exc}", f"stages.{i}.{exc.key}", exc.what, exc.allowed) from None
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        kind = STRATEGIES[name].closure_kind if loss == "batch" else loss  # the black box the stage measures
        return {"strategy": name, "steps": steps, "options": opts, "kind": kind}

    def _enter(self, i: int) -> None:
        """Make stage ``i`` the current one. ``closure_kind`` (an instance value; the class
        default stays "batch") follows the stage's, so the Trainer builds each step's closure
        of the kind the current stage measures."""
        self.stage, self.inner = i, self._stage(i)
        self.closure_kind = self.inner.closure_kind

    def _stage(self, i: int) -> Strategy:
        from . import STRATEGIES

        spec = self.specs[i]
        inner = STRATEGIES[spec["strategy"]](self.params, generator=self.generator, mask=self.mask,
                                             periods=self.periods, lattice=self.lattice, **spec["options"])
        inner.closure_kind = spec["kind"]
        return inner

    @property
    def closure_kinds_needed(self) -> tuple[str, ...]:
        """The closure kinds of all stages, in order, each once (the Trainer checks them up front)."""
        return tuple(dict.fromkeys(s["kind"] for s in self.specs))

    @property
    def queries_per_step(self) -> int:
        return self.inner.queries_per_step

    def current_lr(self) -> float:
        return self.inner.current_lr()

    def step(self, closure) -> float:
        loss = self.inner.step(closure)
        self.step_count += 1
        self._advance()
        return loss

    def state_dict(self) -> dict:
        return {"name": self.name, "params": self.params.detach().clone(), "step_count": self.step_count,
                "stage": self.stage, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state_dict is for strategy {state.get('name')!r}, not {self.name!r}")
        with torch.no_grad():
            self.params.copy_(state["params"])
        self.step_count = int(state["step_count"])
        self._enter(int(state["stage"]))
        self.inner.load_state_dict(state["inner"])
        self._advance()  # a run resumed with more stages than it was written with goes on into them

    def _advance(self) -> None:
        """Into the next stage once the current one has run its steps (after each step)."""
        if self.stage + 1 < len(self.specs) and self.inner.step_count >= self.specs[self.stage]["steps"]:
            self._enter(self.stage + 1)
