"""Pydantic (v2) models of a scenario file, its task, an inline model and a training recipe.

All models forbid unknown keys and are strict (a quoted ``"200"`` is not an integer; an
integer is accepted where a number is expected). :func:`validate` turns the first pydantic
error into a one-line :class:`ScenarioError` naming the key path, what was wrong and what is
allowed, with a did-you-mean for misspelt keys and names. The file format itself is
documented in :mod:`photonic_sim.scenarios` and ``docs/scenarios.md``.
"""

from __future__ import annotations

import math
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from photonic_sim.cores.spec import ACTIVATIONS
from photonic_sim.training.names import (ESTIMATORS, EVAL_LOSSES, KEEP, MAX_SEPARABLE_RANK, PDE_COORDINATES,
                                         SAMPLINGS, STARTS, symmetry_problem, warp_problem)

from .errors import ScenarioError, did_you_mean, preview

PDES = tuple(PDE_COORDINATES)
LOSSES = ("cross_entropy", "mse", "pinn")
READOUTS = ("intensity", "coherent")
COMPONENTS = ("devices", "accelerator", "training")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_NAME_TEXT = "letters, digits, '_', '.', '-', starting with a letter or digit"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


# ------------------------------------------------------------------ scenario file


class Overrides(_Strict):
    """Dotted-key overrides of the named components (``{"phase_shifter.bits": 6}``)."""

    devices: dict[str, Any] = {}
    accelerator: dict[str, Any] = {}
    training: dict[str, Any] = {}


class ChipSection(_Strict):
    """``chip:`` how the simulated chip is built. ``insertion_loss`` (default true): simulate
    the per-MZI insertion loss of the meshes' path-dependent columns, with the laser power set
    by the link budget paying the loss every path shares (docs/physics.md#insertion-loss-and-the-link-budget);
    false: a lossless chip (the seed paper's model: phase errors only). ``loss_balanced``
    (default false; only with ``insertion_loss: true``, else a load error): a loss-balanced
    mesh, a dummy element matched to one MZI's loss at every position a mesh column leaves
    unpaired, so every path crosses the critical count, the chip simulates no path-dependent
    loss and the laser pays the whole critical path (docs/physics.md#loss-balanced-meshes)."""

    insertion_loss: bool = True
    loss_balanced: bool = False


class ScenarioFile(_Strict):
    """The top level of a scenario file; ``model`` and ``task`` are checked by their own models."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    seed: int = Field(ge=0, le=2**32 - 1)
    devices: str = Field(min_length=1)
    accelerator: str = Field(min_length=1)
    training: str = Field(min_length=1)
    model: Any
    task: dict[str, Any]
    overrides: Overrides = Overrides()
    chip: ChipSection = ChipSection()
    variants: dict[str, dict[str, Any]] = {}


# ------------------------------------------------------------------ tasks


class DigitsTask(_Strict):
    """scikit-learn digits (8×8 images, 64 → 10)."""

    kind: Literal["digits"]
    test_fraction: float = Field(0.25, gt=0, lt=1)


class MnistTask(_Strict):
    """MNIST from IDX files in ``data_dir`` (relative paths resolve against the scenario file)."""

    kind: Literal["mnist"]
    data_dir: str = Field(min_length=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)


class FourierFeaturesOption(_Strict):
    """``task.fourier_features``: the modulators get [g ⊙ ẑ, sin(2π B ẑ), cos(2π B ẑ)] of the
    normalised coordinates ẑ ∈ [−1, 1]^d, B [count, d] with B_kj = scale_j · N(0, 1) drawn from
    ``seed`` (photonic_sim/training/pinn_remedies.py, FourierFeatures); the model's input width
    is d·include_input + 2·count."""

    count: int = Field(ge=1, le=4096)
    scale: float | list[float]  # cycles per unit of the normalised coordinate; one, or one per coordinate
    seed: int = Field(0, ge=0, le=2**32 - 1)
    include_input: bool = True

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, value):
        scales = value if isinstance(value, list) else [value]
        number = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scales)
        if not number or not scales or not all(math.isfinite(v) and v >= 0 for v in scales) or \
                not any(v > 0 for v in scales):
            raise ValueError("need one number > 0 or a list of numbers >= 0, one per input coordinate (not all 0)")
        return value


MAX_POINTS = 1_000_000  # collocation / test points / Monte-Carlo samples of a PDE task
MAX_LEVEL = 64  # Smolyak level of the sparse-grid Stein estimator (3 is the default; 21-d grids past 5 are huge)


class PdeTask(_Strict):
    """A BP-free PINN (docs/physics.md#bp-free-pinns)."""

    kind: Literal["pde"]
    pde: Literal[PDES]  # type: ignore[valid-type]
    # sizes at most MAX_POINTS / MAX_LEVEL, so an absurd one (a typo, 10**30) fails here rather than mid-run
    collocation: int = Field(100, ge=1, le=MAX_POINTS)
    estimator: Literal[ESTIMATORS] = "sparse_grid"  # type: ignore[valid-type]
    sigma: float | list[float] = 0.1  # Stein width (> 0): one, or one per input coordinate (PDE order, e.g. x, t)
    level: int = Field(3, ge=1, le=MAX_LEVEL)
    mc_samples: int = Field(1024, ge=1, le=MAX_POINTS)
    test_points: int = Field(10000, ge=1, le=MAX_POINTS)
    eval_level: int | None = Field(None, ge=1, le=MAX_LEVEL)  # cheaper sparse grid for the test prediction
    residual_points: int | None = Field(None, ge=1)  # None: min(1000, test_points); at most test_points
    exact_readout: bool = False  # phase errors stay; DAC/ADC/detector exact (the seed paper's model)
    fd_step: float | list[float] = 1e-2  # finite_difference step h in (0, 0.5]: one, or one per input coordinate
    # Remedies (photonic_sim/training/pinn_remedies.py), off by default:
    sigma_final: float | list[float] | None = None  # Stein width shrinks sigma -> sigma_final (<= sigma; one or per coordinate)
    sigma_decay_steps: int | None = Field(None, ge=1)  # ... geometrically over this many steps
    resample_pool: int = Field(0, ge=0, le=1_000_000)  # > 0: residual-based adaptive sampling pool
    resample_k: float = Field(1.0, ge=0, le=10)  # p ~ r2^k / mean(r2^k) + c
    resample_c: float = Field(1.0, ge=0, le=1e6)
    resample_refresh: int = Field(0, ge=0)  # redraw the pool every this many steps (0: never)
    causal_eps: float = Field(0.0, ge=0, le=1e6)  # > 0: causal weights over time slices (PDE with t)
    causal_bins: int = Field(10, ge=1, le=1000)
    input_gain: float | list[float] | None = None  # modulator input z = gain * (a x + b) (> 0; one or per coordinate)
    fourier_features: FourierFeaturesOption | None = None  # Fourier-feature modulator inputs (input width changes)
    eval_loss: Literal[EVAL_LOSSES] = "mean_square"  # type: ignore[valid-type]  # the score keep: lowest_eval_loss uses
    eval_grid: int = Field(64, ge=2, le=4096)  # dual norms: midpoints per coordinate (eval_grid^dim <= 2^20)
    sampling: Literal[SAMPLINGS] = "uniform"  # type: ignore[valid-type]  # each step's points: uniform, scrambled Sobol or a grid
    symmetry: dict[str, str] | None = None  # {coordinate: odd | even}: the network's symmetric projection
    # rank R: NN = sum_r prod_j F(coordinate j alone)_r, one network 2d -> R (pinn_remedies.Separable)
    separable: int | None = Field(None, ge=1, le=MAX_SEPARABLE_RANK)
    # {coordinate: w | {width: w, center: c}}: the coordinate stretched about c before encoding (pinn_remedies.InputWarp)
    input_warp: dict[str, Any] | None = None  # (checked whole by warp_problem: one message for any shape)

    @property
    def io(self) -> tuple[int, int]:
        """(in_features, out_features) the network needs: PDE_IO, the input width that of the
        Fourier-feature vector when ``fourier_features`` is set, (2d, rank) when ``separable``."""
        d, out = PDE_IO[self.pde]
        ff = self.fourier_features
        if self.separable is not None:
            return 2 * d, self.separable
        return (d, out) if ff is None else (d * ff.include_input + 2 * ff.count, out)

    @field_validator("separable", mode="after")
    @classmethod
    def _separable(cls, value, info):
        """A rank, not with Fourier features (the factor rows carry one coordinate each)."""
        if value is not None and info.data.get("fourier_features") is not None:
            raise ValueError("not with fourier_features (set one of the two)")
        return value

    @field_validator("fourier_features", mode="after")
    @classmethod
    def _feature_scales(cls, value, info):
        """A list of scales has one per input coordinate of the PDE."""
        dim = PDE_IO.get(info.data.get("pde"), (None,))[0]
        if value is not None and isinstance(value.scale, list) and dim and len(value.scale) != dim:
            raise ValueError(f"scale: a list needs {dim} numbers (one per input coordinate)")
        return value

    @field_validator("fd_step", mode="before")
    @classmethod
    def _fd_step(cls, value, info):
        """One finite-difference step in (0, 0.5], or one per input coordinate of the PDE."""
        return _one_or_per_coordinate(value, info, lambda h: 0 < h <= 0.5,
                                      "need one number in (0, 0.5] or a list of {dim} of them (one per input coordinate)")

    @field_validator("symmetry", mode="after")
    @classmethod
    def _symmetry(cls, value, info):
        """1 .. 8 input coordinates of the PDE (PDE_COORDINATES), each "odd" or "even"."""
        problem = None if value is None else symmetry_problem(PDE_COORDINATES.get(info.data.get("pde"), ()), value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("input_warp", mode="after")
    @classmethod
    def _input_warp(cls, value, info):
        """1 .. d input coordinates of the PDE, each a width > 0 or {width, center}."""
        problem = None if value is None else warp_problem(PDE_COORDINATES.get(info.data.get("pde"), ()), value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("sigma", "sigma_final", "input_gain", mode="before")
    @classmethod
    def _positive_per_coordinate(cls, value, info):
        """A Stein width or input gain: one finite number > 0, or one per input coordinate of the
        PDE (PDE_IO, in its order)."""
        if value is None:
            return value
        return _one_or_per_coordinate(value, info, lambda w: w > 0,
                                      "need one number > 0 or a list of {dim} numbers > 0 (one per input coordinate)")


def _one_or_per_coordinate(value, info, ok, message: str):
    """``value``: one finite number with ``ok(number)``, or a list of one per input coordinate of
    the task's PDE (PDE_IO, in its order); else ValueError(``message`` with {dim} filled in)."""
    numbers = value if isinstance(value, list) else [value]
    dim = PDE_IO.get(info.data.get("pde"), (None,))[0]
    number = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)
    if not number or len(numbers) not in (1, dim) or not all(math.isfinite(v) and ok(v) for v in numbers):
        raise ValueError(message.format(dim=dim or "d"))
    return value


class NoneTask(_Strict):
    """No training: counts, area, energy and latency only."""

    kind: Literal["none"]


TASKS: dict[str, type[_Strict]] = {"digits": DigitsTask, "mnist": MnistTask, "pde": PdeTask, "none": NoneTask}
class DatasetTask(_Strict):
    """Classification on a :class:`~photonic_sim.training.data.Dataset` given from Python
    (``Experiment(task=dataset)``); not a scenario-file kind (the data are not in the file).
    It records what the report needs: the dataset's name, sizes and a SHA-256 of its tensors."""

    kind: Literal["dataset"]
    name: str = Field(min_length=1)
    in_features: int = Field(ge=1)
    classes: int = Field(ge=2)
    train_size: int = Field(ge=1)
    test_size: int = Field(ge=1)
    sha256: str = Field(min_length=64, max_length=64)


TaskConfig = Union[DigitsTask, MnistTask, PdeTask, NoneTask, DatasetTask]

# (in_features, out_features) a network needs for each task (PDE inputs: x then t).
TASK_IO = {"digits": (64, 10), "mnist": (784, 10)}
PDE_IO = {name: (len(coordinates), 1) for name, coordinates in PDE_COORDINATES.items()}


# ------------------------------------------------------------------ inline model

Activation = Literal[ACTIVATIONS]  # type: ignore[valid-type]


Positive = Annotated[int, Field(ge=1)]  # a mode or a TT rank


class TTLayer(_Strict):
    kind: Literal["tt"]
    in_modes: list[Positive] = Field(min_length=1)
    out_modes: list[Positive] = Field(min_length=1)
    ranks: list[Positive] = Field(min_length=2)
    activation: Activation = "none"
    bias: bool = True


class DenseLayer(_Strict):
    kind: Literal["dense"]
    in_features: int = Field(ge=1)
    out_features: int = Field(ge=1)
    activation: Activation = "none"
    bias: bool = True


LAYERS: dict[str, type[_Strict]] = {"tt": TTLayer, "dense": DenseLayer}


class InlineModel(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    layers: list[dict[str, Any]] = Field(min_length=1)


# ------------------------------------------------------------------ training recipe


class EarlyStopping(_Strict):
    patience: int = Field(ge=1)
    min_delta: float = Field(0.0, ge=0)


class TrainingRecipe(_Strict):
    """A training recipe (``training/<name>.yaml``).

    ``steps``/``eval_every``/``checkpoint_every`` count optimizer steps; ``patience`` counts
    evaluations; ``checkpoint_every = 0`` writes only the final checkpoint. ``readout``
    (optional) overrides the card's detection scheme. ``strategy_options`` is passed to the
    strategy factory, which checks its keys. ``keep`` (``KEEP``): the phases the run ends on,
    the last step's (default) or, for a PDE task, those of the evaluation with the lowest mean
    squared residual (``TrainConfig.keep``). ``start`` (``STARTS``): "random" (default) trains
    from the initial phases as drawn; "calibrated" first calibrates the chip from block
    readings (``Experiment.calibrate``; its queries are the run's) and starts from the initial
    phases pre-compensated for the chip's static errors, so the realised network is the one
    the ideal model starts from (docs/scenarios.md#training-recipes-trainingnameyaml).
    """

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    strategy: str
    strategy_options: dict[str, Any] = {}
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    eval_every: int = Field(ge=1)
    eval_batch_size: int = Field(ge=1)
    early_stopping: EarlyStopping | None = None
    checkpoint_every: int = Field(0, ge=0)
    loss: Literal[LOSSES]  # type: ignore[valid-type]
    logit_scale: float = Field(1.0, gt=0)
    readout: Literal[READOUTS] | None = None  # type: ignore[valid-type]
    keep: Literal[KEEP] = "last"  # type: ignore[valid-type]
    start: Literal[STARTS] = "random"  # type: ignore[valid-type]


# ------------------------------------------------------------------ errors

_TYPE_NAMES = {
    str: "a string", int: "an integer", float: "a number", bool: "a boolean",
    dict: "a mapping", list: "a list", type(None): "null",
}


def type_name(value: Any) -> str:
    """How a YAML value's type reads in an error (``an integer``, ``a mapping`` …)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(annotation without ``| None``, whether None is allowed)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def describe(field: Any) -> str:
    """The allowed values or range of a pydantic FieldInfo, in words."""
    tp, nullable = _unwrap(field.annotation)
    if get_origin(tp) is Literal:
        text = ", ".join(str(a) for a in get_args(tp))
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        text = "a mapping with keys " + ", ".join(tp.model_fields)
    elif tp in (int, float):
        word = "integer" if tp is int else "number"
        lo = next((m for m in field.metadata if isinstance(m, (at.Ge, at.Gt))), None)
        hi = next((m for m in field.metadata if isinstance(m, (at.Le, at.Lt))), None)
        lo_v = getattr(lo, "ge", getattr(lo, "gt", None))
        hi_t = f" {'<=' if isinstance(hi, at.Le) else '<'} {getattr(hi, 'le', getattr(hi, 'lt', None))}" if hi else ""
        if lo and hi:
            text = f"{lo_v} {'<=' if isinstance(lo, at.Ge) else '<'} {word}{hi_t}"
        elif lo:
            text = f"{word} {'>=' if isinstance(lo, at.Ge) else '>'} {lo_v}"
        else:
            text = f"{word}{hi_t}" if hi else f"any {word}"
    elif tp is str:
        pattern = any(getattr(m, "pattern", None) for m in field.metadata)
        text = f"a name ({_NAME_TEXT})" if pattern else "a non-empty string"
    elif tp is bool:
        text = "true or false"
    elif get_origin(tp) is list:
        (item,) = get_args(tp)
        bound = ""
        if get_origin(item) is Annotated:  # e.g. list[Positive]: "a list of integers >= 1"
            item, *meta = get_args(item)
            lo = next((m for info in meta for m in getattr(info, "metadata", ()) if isinstance(m, at.Ge)), None)
            bound = f" >= {lo.ge}" if lo is not None else ""
        text = "a list of " + ("integers" + bound if item is int else "mappings")
    elif get_origin(tp) is dict or tp is dict:
        text = "a mapping"
    else:
        text = "see docs/scenarios.md"
    return f"{text} or null" if nullable else text


def _expected(kind: str) -> str:
    """``int_type`` → ``an integer`` (pydantic error type → the type it wanted)."""
    base = kind.split("_")[0]
    words = {"int": "an integer", "float": "a number", "string": "a string", "bool": "a boolean",
             "dict": "a mapping", "model": "a mapping", "list": "a list"}
    return words.get(base, base)


def _cut(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _walk(model: type[BaseModel], loc: tuple) -> tuple[type[BaseModel] | None, Any]:
    """(the model owning the last key of ``loc``, that key's FieldInfo or None)."""
    owner: Any = model
    info = None
    for part in loc:
        if isinstance(owner, type) and issubclass(owner, BaseModel):
            info = owner.model_fields.get(str(part))
            if info is None:
                return owner, None
            parent = owner
            owner, _ = _unwrap(info.annotation)
        else:  # inside a dict/list value: describe the container field
            return parent, info
    return parent if loc else model, info


def validate(model: type[BaseModel], data: Any, src: str, prefix: str = "") -> Any:
    """``model.model_validate(data)`` with errors converted to one-line ScenarioErrors."""
    if not isinstance(data, dict):
        keys = ", ".join(model.model_fields)
        raise ScenarioError(src, prefix or "<root>", f"expected a mapping, got {type_name(data)}", f"a mapping with keys {keys}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise convert(exc, model, src, prefix) from None


def convert(exc: ValidationError, model: type[BaseModel], src: str, prefix: str = "") -> ScenarioError:
    errors = exc.errors()
    # an unknown key first: a misspelt key is also a missing one, and its did-you-mean says more
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    value = err.get("input")
    kind = err["type"]
    if kind == "invalid_key" or (loc and loc[-1] == "[key]"):  # a key that is a number, boolean or null
        where = loc[:-1] if kind == "invalid_key" else loc[:-2]
        owner: Any = model  # the section whose keys these are, when it is a model
        for part in where:
            info = owner.model_fields.get(str(part)) if owner is not None else None
            inner = _unwrap(info.annotation)[0] if info is not None else None
            owner = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
        key = ".".join(str(p) for p in ((prefix,) if prefix else ()) + where)
        allowed = ", ".join(owner.model_fields) if owner is not None else "keys that are strings"
        return ScenarioError(src, key, f"key {preview(value)} is not a string", allowed)
    key = ".".join(str(p) for p in ((prefix,) if prefix else ()) + loc)
    if kind == "extra_forbidden":
        owner = model  # the model whose keys the unknown key sits among (a nested section's own)
        for part in loc[:-1]:
            info = owner.model_fields.get(str(part))
            inner = _unwrap(info.annotation)[0] if info is not None else None
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                break
            owner = inner
        fields = list(owner.model_fields)
        return ScenarioError(src, key, f"unknown key {preview(loc[-1])}{did_you_mean(loc[-1], fields)}", ", ".join(fields))
    owner, info = _walk(model, loc)
    allowed = describe(info) if info is not None else None
    if kind == "missing":
        what = "missing required key"
    elif kind == "literal_error":
        choices = get_args(_unwrap(info.annotation)[0]) if info is not None else ()
        what = f"{preview(value)} is not allowed{did_you_mean(value, choices)}"
    elif kind == "finite_number":
        what = f"{preview(value)} is not a finite number"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        what = f"expected {_expected(kind)}, got {type_name(value)} {preview(value)}"
    elif kind.startswith(("greater_than", "less_than")):
        what = f"{preview(value)} is out of range"
    elif kind == "string_pattern_mismatch":
        what = f"{preview(value)} is not a valid name"
    elif kind in ("too_short", "string_too_short"):
        what = f"{preview(value)} is empty"
    elif kind == "value_error":  # a field validator's own message, without pydantic's prefix
        what = f"{preview(value)}: {_cut(err['msg'].removeprefix('Value error, '))}"
    else:
        what = f"{preview(value)}: {_cut(err['msg'])}"
    return ScenarioError(src, key, what, allowed)
