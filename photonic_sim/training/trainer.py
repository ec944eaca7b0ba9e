"""The training loop: strategy ↔ chip closure, evaluation through the chip, early stopping,
divergence guard, checkpoints and bit-identical resume.

Checkpoints hold data only: tensors, numbers, strings, None, lists, tuples and dicts of
these (checked when saving), read back with ``torch.load(weights_only=True)``, so a crafted
file cannot run code; a file that is not such a checkpoint raises :class:`CheckpointError`
(one line naming the file). A checkpoint never holds non-finite values: a save whose state
is not finite is skipped, and a run that diverges writes no final checkpoint, so the last
good one stays.

Every training query lands in ``chip.ledger``. Evaluation queries are measured through the
same noisy chip but booked in a separate ``eval_ledger``, so the training cost (energy,
latency) counts only what training needed.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from photonic_sim.chip import Ledger
from photonic_sim.training.names import KEEP

Tensor = torch.Tensor
CHECKPOINT_FILE = "checkpoint.pt"
_CHECKPOINT_KEYS = {"step": int, "params": torch.Tensor, "strategy": dict, "chip": dict,
                    "data_gen": torch.Tensor, "history": list, "best": (int, float), "bad_evals": int,
                    "eval_ledger": dict, "wall_s": (int, float), "last_eval": dict, "seed": int}
_OPTIONAL_KEYS = {"kept": (dict, type(None)), "closure_kind": (str,)}  # absent in older checkpoints
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message is one line naming the file."""


def stop_status(stopped: str) -> str:
    """``completed``, ``early-stop`` or ``diverged`` from a :attr:`TrainResult.stopped` reason."""
    if stopped.startswith("diverged"):
        return "diverged"
    if stopped.startswith("early stop"):
        return "early-stop"
    return "completed"


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint's state (data only, ``weights_only=True``); :class:`CheckpointError` for a
    missing, truncated, tampered or foreign file."""
    path = Path(path)
    allowed = "(allowed: a checkpoint.pt written by photonic-sim)"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file {allowed}")
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the refusal below says enough
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage, or a pickle asking for code: never run it
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}) {allowed}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(state).__name__}, not a mapping) {allowed}")
    for key, kind in _CHECKPOINT_KEYS.items():
        if key not in state:
            raise CheckpointError(f"{path}: {key}: missing {allowed}")
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise CheckpointError(f"{path}: {key}: wrong type {type(state[key]).__name__} {allowed}")
    for key, kind in _OPTIONAL_KEYS.items():
        if key in state and not isinstance(state[key], kind):
            raise CheckpointError(f"{path}: {key}: wrong type {type(state[key]).__name__} {allowed}")
    return state


def _chip_device(chip_state) -> str | None:
    """The kind of device ("cpu", "cuda") a checkpoint's chip ran on; None when not recorded
    (or not one of those: a tampered value is never echoed)."""
    device = chip_state.get("device") if isinstance(chip_state, dict) else None
    return device if device in ("cpu", "cuda") else None


def _check_plain(obj, where: str = "checkpoint") -> None:
    """Raise TypeError unless ``obj`` is plain data that ``weights_only`` loading accepts."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__} (allowed: str or int keys)")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(obj, _PLAIN):
        raise TypeError(f"{where}: a {type(obj).__name__} (allowed: tensors, numbers, strings, lists, dicts)")


def _finite(obj) -> bool:
    """True when every float tensor and float in ``obj`` is finite."""
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_finite(v) for v in obj)
    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() and not obj.is_complex() or bool(torch.isfinite(obj).all())
    if isinstance(obj, float):
        return math.isfinite(obj)
    return True


def task_closure(task, chip, batch, strategy):
    """The black box ``strategy.step`` needs for ``batch``: ``task.closure(chip, batch,
    differentiable=not strategy.in_situ, kind=strategy.closure_kind)``. The hook for strategies
    that need another kind of closure than "batch" (``Strategy.closure_kind``): ``kind=`` is
    passed only for other kinds, and ValueError (one line) when the task's ``closure_kinds``
    (default ("batch",)) do not include it."""
    kind = getattr(strategy, "closure_kind", "batch")
    if kind == "batch":
        return task.closure(chip, batch, differentiable=not strategy.in_situ)
    check_closure_kind(task, strategy, kind)
    return task.closure(chip, batch, differentiable=not strategy.in_situ, kind=kind)


def check_closure_kind(task, strategy, kind: str) -> None:
    """ValueError (one line) unless ``task`` builds closures of ``kind`` ("batch": every task)."""
    offered = tuple(getattr(task, "closure_kinds", ("batch",)))
    if kind != "batch" and kind not in offered:
        raise ValueError(f"closure kind: strategy {strategy.name!r} needs {kind!r}; "
                         f"task {getattr(task, 'kind', '?')!r} offers {offered}")


def task_evaluate(task, chip, phases, strategy) -> dict:
    """``task.evaluate(chip, phases)``, or the task's evaluation rule the strategy names in
    ``evaluation`` (e.g. "forward-forward": ``tasks.EVALUATIONS``; ValueError, one line, when
    the task has no such rule)."""
    rule = getattr(strategy, "evaluation", None)
    if rule is None:
        return task.evaluate(chip, phases)
    from photonic_sim.training.tasks import EVALUATIONS, ClassificationTask
    if rule not in EVALUATIONS or not isinstance(task, ClassificationTask):
        raise ValueError(f"evaluation: strategy {strategy.name!r} needs rule {rule!r}; "
                         f"task {getattr(task, 'kind', '?')!r} has none")
    return EVALUATIONS[rule](task, chip, phases)


@dataclass
class TrainConfig:
    """How long and how a :class:`Trainer` runs: ``steps``, evaluation every ``eval_every``
    steps, early stopping after ``patience`` evaluations without a gain of ``min_delta``,
    a checkpoint every ``checkpoint_every`` steps, the data ``seed``, a progress bar.

    ``keep``: which phases the run returns. ``"last"``: those of the last step.
    ``"lowest_eval_loss"``: those of the training evaluation (every ``eval_every`` steps and the
    last step; not the start) with the lowest evaluation loss, and that evaluation as the
    result's ``final`` (with ``kept_step``); the strategy's own phases and optimizer state stay
    those of the last step, so a further ``run`` (more steps, a resume) continues the trajectory
    and selects over all its evaluations. Only for a task whose evaluation loss needs no
    labels or reference (``eval_loss_label_free``: a PINN scores the PDE residual), so the
    choice is one a run on real hardware can make; the evaluation queries stay booked in the
    evaluation ledger. Training itself is unchanged, bit for bit, except that a strategy stage
    on the evaluation loss (closure kind "evaluation") starts from the kept phases.
    """

    steps: int = 100
    eval_every: int = 20
    patience: int | None = None  # evaluations without improvement before stopping
    min_delta: float = 0.0
    checkpoint_every: int | None = None
    seed: int = 0
    progress: bool = False
    eval_at_start: bool = False  # evaluate the starting phases too (history row at step 0, query 0)
    keep: str = "last"  # one of KEEP

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps: {self.steps} is out of range (allowed: >= 1)")
        if self.eval_every < 1:
            raise ValueError(f"eval_every: {self.eval_every} is out of range (allowed: >= 1)")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience: {self.patience} is out of range (allowed: >= 1)")
        if self.keep not in KEEP:
            raise ValueError(f"keep: {self.keep!r} is not one of {KEEP}")


@dataclass
class TrainResult:
    """What :meth:`Trainer.run` returns: final control vector ``phases`` (rad), the metric
    ``history`` rows, the ``final`` evaluation, the ``best`` metric, why it ``stopped``, the
    training and evaluation ledger totals and the wall time (s). With ``keep="lowest_eval_loss"``
    ``phases`` and ``final`` are the kept evaluation's, and ``final["kept_step"]`` its step."""

    phases: Tensor
    history: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    best: float = math.nan
    stopped: str = "completed"
    ledger: dict = field(default_factory=dict)
    eval_ledger: dict = field(default_factory=dict)
    wall_s: float = 0.0


class Trainer:
    """Runs ``strategy`` (which owns the phase vector) against ``chip`` on ``task``.

    ``cost`` (optional) maps ledger totals and the current control vector to
    ``(energy_j, latency_s)`` (the heater energy follows the programmed phases) so every history row
    carries the training energy and latency spent so far.
    """

    def __init__(self, chip, task, strategy, config: TrainConfig, *, checkpoint_dir: str | Path | None = None,
                 cost: Callable[[dict, torch.Tensor], tuple[float, float]] | None = None) -> None:
        if config.keep != "last" and not getattr(task, "eval_loss_label_free", False):
            raise ValueError(f"keep: {config.keep!r} selects phases by the evaluation loss, which task "
                             f"{getattr(task, 'kind', '?')!r} computes from test labels (allowed: 'last'; "
                             "'lowest_eval_loss' for a PINN task)")
        for kind in getattr(strategy, "closure_kinds_needed", (getattr(strategy, "closure_kind", "batch"),)):
            check_closure_kind(task, strategy, kind)  # before the first query, not when a later stage starts
        self.chip, self.task, self.strategy, self.config = chip, task, strategy, config
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.cost = cost
        self.data_gen = torch.Generator().manual_seed(config.seed + 7919)
        self.eval_ledger = Ledger()
        self.history: list[dict] = []
        self.step = 0
        self.best = -math.inf if task.higher_is_better else math.inf
        self.bad_evals = 0
        self.wall_s = 0.0
        self.last_eval: dict = {}
        self.kept: dict | None = None  # keep="lowest_eval_loss": {"step", "params", "eval"} of the best so far
        self.closure_kind = "batch"  # the kind of the last step's closure (a stage on the evaluation loss starts from kept)
        self.closure_hook: Callable | None = None
        """``hook(closure, strategy) -> closure``: replaces each step's black box (None: as built;
        ``photonic_sim.scenarios.distributed`` shares a step's settings between replicas)."""

    # ------------------------------------------------------------------ public
    def run(self, resume: bool = False) -> TrainResult:
        if resume:
            self._load_checkpoint()
        cfg, strategy = self.config, self.strategy
        last_good = strategy.params.detach().clone()
        stopped = "completed"
        t0 = time.perf_counter() - self.wall_s
        bar = _Progress(cfg.steps, self.step, cfg.progress)
        if cfg.eval_at_start and self.step == 0 and not self.history:
            self._record(self._evaluate_start(), t0)
        try:
            while self.step < cfg.steps:
                self._enter_stage()
                batch = self.task.sample_batch(self.data_gen)
                closure = task_closure(self.task, self.chip, batch, strategy)
                if self.closure_hook is not None:
                    closure = self.closure_hook(closure, strategy)
                loss = float(strategy.step(closure))
                finite_params = bool(torch.isfinite(strategy.params).all())
                if not math.isfinite(loss) or not finite_params:
                    with torch.no_grad():
                        strategy.params.copy_(last_good)
                    why = f"loss {loss} is not finite" if not math.isfinite(loss) else "the phases are not finite"
                    stopped = f"diverged at step {self.step + 1}: {why}; kept the phases of the last good step"
                    break
                last_good = strategy.params.detach().clone()
                self.step += 1
                row = {"step": self.step, "queries": self.chip.ledger.queries, "loss": loss}
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    row.update(self._evaluate())
                    if self._plateaued():
                        stopped = f"early stop at step {self.step}: no improvement in {cfg.patience} evaluations"
                        self._record(row, t0)
                        break
                self._record(row, t0)
                bar.update(row)
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.wall_s = time.perf_counter() - t0
                    self._save_checkpoint()
        finally:
            bar.close()
        self.wall_s = time.perf_counter() - t0
        if not self.history or "metric" not in self.history[-1]:
            evaluated = self._evaluate()
            if self.history:
                self.history[-1].update(evaluated)
        if self.checkpoint_dir and stop_status(stopped) != "diverged":  # keep the last good checkpoint
            self._save_checkpoint()
        phases, final = strategy.params.detach().clone(), dict(self.last_eval)
        if self.kept is not None:  # the result only: the strategy keeps its trajectory (a later run goes on from it)
            phases, final = self.kept["params"].clone(), {**self.kept["eval"], "kept_step": self.kept["step"]}
        return TrainResult(
            phases=phases, history=self.history, final=final,
            best=self.best, stopped=stopped, ledger=self.chip.ledger.totals(),
            eval_ledger=self.eval_ledger.totals(), wall_s=self.wall_s,
        )

    # ------------------------------------------------------------------ internals
    def _record(self, row: dict, t0: float) -> None:
        if self.cost is not None:
            row["energy_j"], row["latency_s"] = self.cost(self.chip.ledger.totals(), self.strategy.params.detach())
        row["wall_s"] = time.perf_counter() - t0
        self.history.append(row)

    def _enter_stage(self) -> None:
        """A step whose strategy (stage) optimises the evaluation loss (closure kind
        "evaluation", ``staged``'s ``loss: evaluation``) after steps that did not starts from the
        kept phases (``keep: lowest_eval_loss``; the best-scored evaluation so far), not from the
        last step's: it descends the very score the run selects by."""
        kind = getattr(self.strategy, "closure_kind", "batch")
        if kind == "evaluation" and self.closure_kind != "evaluation" and self.kept is not None:
            with torch.no_grad():
                self.strategy.params.copy_(self.kept["params"])
        self.closure_kind = kind

    def _evaluate(self) -> dict:
        """Test metric through the (noisy) chip, booked in ``eval_ledger``: afterwards the chip's
        training ledger and programmed vector are what they were (the next training query
        pays its own phase setting); the noise generator moves on."""
        before = self.chip.state_dict()
        result = task_evaluate(self.task, self.chip, self.strategy.params.detach(), self.strategy)
        after = self.chip.state_dict()
        self.chip.load_state_dict({**after, "ledger": before["ledger"], "current": before["current"],
                                   "programmed": before["programmed"]})
        for key, value in before["ledger"].items():
            setattr(self.eval_ledger, key, getattr(self.eval_ledger, key) + after["ledger"][key] - value)
        self.last_eval = result
        if self.config.keep == "lowest_eval_loss" and math.isfinite(result["loss"]) and (
                self.kept is None or result["loss"] < self.kept["eval"]["loss"]):
            self.kept = {"step": self.step, "params": self.strategy.params.detach().clone(), "eval": dict(result)}
        metric = result["metric"]
        better = metric > self.best + self.config.min_delta if self.task.higher_is_better \
            else metric < self.best - self.config.min_delta
        if better:
            self.best, self.bad_evals = metric, 0
        else:
            self.bad_evals += 1
        return {"metric": metric, "eval_loss": result["loss"]}

    def _evaluate_start(self) -> dict:
        """The metric of the starting phases (history row at step 0, query 0), booked in
        ``eval_ledger``. The chip is put back exactly as it was, noise generator included, so
        training is bit for bit the run without this evaluation; it sets no best metric
        (early stopping counts improvements over training evaluations only)."""
        before = self.chip.state_dict()
        result = task_evaluate(self.task, self.chip, self.strategy.params.detach(), self.strategy)
        after = self.chip.state_dict()
        self.chip.load_state_dict(before)
        for key, value in before["ledger"].items():
            setattr(self.eval_ledger, key, getattr(self.eval_ledger, key) + after["ledger"][key] - value)
        self.last_eval = result  # the final result of a run that diverges at its first step
        return {"step": 0, "queries": 0, "loss": None, "metric": result["metric"], "eval_loss": result["loss"]}

    def _plateaued(self) -> bool:
        return self.config.patience is not None and self.bad_evals >= self.config.patience

    def _state(self) -> dict:
        return {
            "step": self.step, "params": self.strategy.params.detach().clone(),
            "strategy": self.strategy.state_dict(), "chip": self.chip.state_dict(),
            "data_gen": self.data_gen.get_state(), "history": self.history, "best": self.best,
            "bad_evals": self.bad_evals, "eval_ledger": self.eval_ledger.totals(),
            "wall_s": self.wall_s, "last_eval": self.last_eval, "seed": self.config.seed,
            "task": self.task.state_dict() if hasattr(self.task, "state_dict") else {},
            "kept": self.kept, "closure_kind": self.closure_kind,
        }

    def _save_checkpoint(self) -> bool:
        """Write the checkpoint atomically; skipped (False) when the state is not finite."""
        if self.checkpoint_dir is None:
            return False
        state = self._state()
        _check_plain(state)
        if not _finite({k: v for k, v in state.items() if k not in ("best", "history", "last_eval", "kept")}):
            return False  # never replace the last good checkpoint with a non-finite one
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_dir / (CHECKPOINT_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.checkpoint_dir / CHECKPOINT_FILE)
        return True

    def _load_checkpoint(self) -> None:
        path = None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_FILE
        if path is None:
            raise CheckpointError("resume: no checkpoint directory (allowed: a Trainer with checkpoint_dir)")
        state = read_checkpoint(path)
        if state["seed"] != self.config.seed:
            raise CheckpointError(f"{path}: seed: made with seed {state['seed']}, this run has seed "
                                  f"{self.config.seed} (allowed: resume with the checkpoint's scenario and seed)")
        made_on, here = _chip_device(state["chip"]), getattr(getattr(self.chip, "device", None), "type", None)
        if made_on is not None and here is not None and made_on != here:  # the noise generator's state fits one kind
            raise CheckpointError(f"{path}: device: made on {made_on}, this run is on {here} "
                                  f"(allowed: resume on the kind of device it was made on, --device {made_on})")
        try:
            with torch.no_grad():
                self.strategy.params.copy_(state["params"])
            self.strategy.load_state_dict(state["strategy"])
            self.chip.load_state_dict(state["chip"])
            self.data_gen.set_state(state["data_gen"])
            self.eval_ledger.load(state["eval_ledger"])
            if state.get("task") and hasattr(self.task, "load_state_dict"):  # e.g. a PINN's Stein width schedule
                self.task.load_state_dict(state["task"])
            kept = state.get("kept") if self.config.keep != "last" else None
            if kept is not None:
                kept = {"step": int(kept["step"]), "eval": dict(kept["eval"]),
                        "params": kept["params"].to(self.strategy.params).reshape(self.strategy.params.shape)}
                float(kept["eval"]["loss"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise CheckpointError(f"{path}: does not fit this run ({type(exc).__name__}) "
                                  "(allowed: resume with the checkpoint's scenario and seed)") from None
        self.step, self.history, self.best = state["step"], state["history"], state["best"]
        self.bad_evals, self.wall_s, self.last_eval = state["bad_evals"], state["wall_s"], state["last_eval"]
        self.kept = kept
        self.closure_kind = str(state.get("closure_kind", "batch"))


class _Progress:
    """A rich progress bar on stderr showing loss / metric / queries (no-op when disabled)."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self._bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TextColumn("{task.fields[info]}"), console=Console(file=sys.stderr))
        self._bar.start()
        self._task = self._bar.add_task("train", total=total, completed=done, info="")

    def update(self, row: dict) -> None:
        if self._bar is None:
            return
        info = f"loss {row['loss']:.4f}  queries {row['queries']}"
        if "metric" in row:
            info += f"  metric {row['metric']:.4f}"
        self._bar.update(self._task, completed=row["step"], info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
