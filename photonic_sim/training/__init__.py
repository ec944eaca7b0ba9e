"""Training on the chip: tasks, data sets, strategies, the trainer, comparisons, diagnostics.

    from photonic_sim.training import Trainer, TrainConfig, ClassificationTask, load_digits, make_strategy

Most users assemble a run with :class:`photonic_sim.Experiment` (one call builds chip, task,
strategy and trainer from cards and a recipe); the names here are the pieces it uses, for
writing a loop of your own or a new strategy:

* :class:`Trainer`, :class:`TrainConfig`, :class:`TrainResult`: the training loop (strategy ↔
  chip closure, evaluation through the chip, early stopping, checkpoints, resume);
* tasks: :class:`ClassificationTask` (class scores from detector readings),
  :class:`PINNTask` (BP-free physics-informed network on a PDE from :func:`make_pde`);
* data sets: :class:`Dataset`, :func:`load_digits` (embedded 8×8 digits), :func:`load_mnist`
  (IDX files);
* strategies: :func:`make_strategy` and :data:`STRATEGIES` (zeroth-order estimators and the
  first-order baseline ``fo``), :func:`fill_schedule_length`;
* comparison: :func:`compare` (strategies × seeds, optionally in a process pool) and
  :func:`summarize` (mean ± std per group);
* diagnostics: :func:`sign_rge_step_gain`, :func:`reference_gradient`, :class:`StepGain`.

Names are imported on first use, so ``import photonic_sim.training`` stays cheap.
"""

from importlib import import_module

_WHERE = {
    "Trainer": "trainer", "TrainConfig": "trainer", "TrainResult": "trainer", "CHECKPOINT_FILE": "trainer",
    "ClassificationTask": "tasks", "PINNTask": "pinn", "make_pde": "pinn",
    "Dataset": "data", "load_digits": "data", "load_mnist": "data",
    "make_strategy": "strategies", "STRATEGIES": "strategies", "fill_schedule_length": "strategies",
    "compare": "compare", "summarize": "compare",
    "sign_rge_step_gain": "diagnostics", "reference_gradient": "diagnostics", "StepGain": "diagnostics",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
