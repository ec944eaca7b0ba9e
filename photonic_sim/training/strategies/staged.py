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
"""
from __future__ import annotations

import torch

from .base import Strategy, fill_schedule_length
from .options import Option, preview


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
        self.stage = 0
        self.inner = self._stage(0)

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
        opts = {k: v for k, v in spec.items() if k not in ("strategy", "steps")}
        opts.setdefault("lr", self.lr)
        fill_schedule_length(opts, steps)
        try:  # validate now, on a scratch copy, so a bad stage fails before any query
            STRATEGIES[name](self.params.detach().clone(), generator=self.generator, mask=self.mask,
                             periods=self.periods, **opts)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        return {"strategy": name, "steps": steps, "options": opts}

    def _stage(self, i: int) -> Strategy:
        from . import STRATEGIES

        spec = self.specs[i]
        return STRATEGIES[spec["strategy"]](self.params, generator=self.generator, mask=self.mask,
                                            periods=self.periods, **spec["options"])

    @property
    def queries_per_step(self) -> int:
        return self.inner.queries_per_step

    def current_lr(self) -> float:
        return self.inner.current_lr()

    def step(self, closure) -> float:
        loss = self.inner.step(closure)
        self.step_count += 1
        if self.stage + 1 < len(self.specs) and self.inner.step_count >= self.specs[self.stage]["steps"]:
            self.stage += 1
            self.inner = self._stage(self.stage)
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
        self.stage = int(state["stage"])
        self.inner = self._stage(self.stage)
        self.inner.load_state_dict(state["inner"])
