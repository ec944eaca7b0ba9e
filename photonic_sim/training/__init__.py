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

from typing import TYPE_CHECKING

from photonic_sim._lazy import attach

if TYPE_CHECKING:  # the public names, read by attach(); each loads on first use
    from .compare import compare, summarize
    from .data import Dataset, load_digits, load_mnist
    from .diagnostics import StepGain, reference_gradient, sign_rge_step_gain
    from .pinn import PINNTask, make_pde
    from .strategies import STRATEGIES, fill_schedule_length, make_strategy
    from .tasks import ClassificationTask
    from .trainer import CHECKPOINT_FILE, TrainConfig, Trainer, TrainResult, task_closure

__all__ = [
    "CHECKPOINT_FILE", "ClassificationTask", "Dataset", "PINNTask", "STRATEGIES", "StepGain", "TrainConfig",
    "TrainResult", "Trainer", "compare", "fill_schedule_length", "load_digits", "load_mnist", "make_pde",
    "make_strategy", "reference_gradient", "sign_rge_step_gain", "summarize", "task_closure",
]

__getattr__, __dir__ = attach(__name__, __file__)
