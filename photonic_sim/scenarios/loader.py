"""Load a scenario: read (safe YAML) → apply ``--set`` → validate → resolve cards, recipe, model.

    sc = load_scenario("scenarios/quickstart.yaml", sets=["training.steps=50", "seed=3"])
    sc.device_card, sc.accelerator_card, sc.recipe, sc.network, sc.task, sc.seed
    sc.resolved()          # plain dict for scenario.resolved.yaml
    sc.variants["spsa"]    # a Scenario per entry of ``variants:`` (compare runs)

A bare name (``quickstart``) means ``<repo>/scenarios/<name>.yaml``. Card, recipe and data
paths written in a scenario resolve against the scenario file's directory. Every mistake
raises :class:`ScenarioError` with one line ``<file>: <key.path>: <what> (allowed: …)``; a
mistake inside a named card or recipe caused by an override is reported at the override's
key (``overrides.devices.phase_shifter.bits``).

Variants: ``variants: {<name>: {<dotted key>: value, …}}`` builds one scenario per entry from
the file with those keys set (same routing as ``--set``), then the command-line ``--set``
on top, so ``--set training.steps=20`` shortens every variant.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from photonic_sim import library
from photonic_sim.accelerators.cards import AcceleratorCard, load_accelerator_card
from photonic_sim.cores.spec import PRESETS, NetworkSpec, dense, tt
from photonic_sim.devices.cards import DeviceCard, load_device_card
from photonic_sim.training.names import (MAX_EVAL_GRID_POINTS, MAX_GRID_COLLOCATION, PDE_BOXES, PDE_COORDINATES,
                                         max_eval_grid)

from .errors import ScenarioError, did_you_mean, preview, short_path
from .overrides import apply_sets, parse_set
from .recipes import load_training_recipe, resolve_path
from .schema import (
    LAYERS, NAME_PATTERN, PDE_IO, TASK_IO, TASKS, ChipSection, InlineModel, ScenarioFile, TaskConfig,
    TrainingRecipe, type_name, validate,
)
from .yamlsafe import read_yaml

SCENARIOS_DIR = library.builtin_dir("scenarios")  # built-in scenarios; bare names use the search path
_CARD_MESSAGE = re.compile(r"^(?P<file>.+?): (?:override )?(?P<key>\S+): (?P<what>.*)$")
_MNIST_IMAGES = ("t10k-images-idx3-ubyte", "train-images-idx3-ubyte")


def list_scenarios() -> list[str]:
    """Names of the scenarios on the search path (:mod:`photonic_sim.library`)."""
    return library.names("scenarios")


@dataclass(frozen=True)
class Scenario:
    """A validated, resolved scenario. ``raw`` is the file merged with ``--set`` (and, for a
    variant, the variant's keys); ``task.data_dir`` (MNIST) is an absolute path."""

    path: Path
    raw: dict
    name: str
    description: str
    seed: int
    device_card: DeviceCard
    accelerator_card: AcceleratorCard
    recipe: TrainingRecipe
    network: NetworkSpec
    task: TaskConfig
    variant: str | None = None
    variants: dict[str, Scenario] = field(default_factory=dict)
    chip: ChipSection = ChipSection()

    def resolved(self) -> dict[str, Any]:
        """The scenario with every card and the recipe expanded (SI values, overrides applied),
        as plain YAML-safe types; written as ``scenario.resolved.yaml``."""
        return {
            "name": self.name,
            "variant": self.variant,
            "description": self.description,
            "source": str(self.path),
            "seed": self.seed,
            "devices": {"source": self.device_card.source, **self.device_card.model_dump(mode="json")},
            "accelerator": {"source": self.accelerator_card.source, **self.accelerator_card.model_dump(mode="json")},
            "training": self.recipe.model_dump(mode="json"),
            "model": _plain(asdict(self.network)),
            "task": _task_dump(self.task),
            "overrides": _plain(self.raw.get("overrides", {})),
            "chip": _chip_dump(self.chip),
            "variants": sorted(self.variants),
            "references": {"devices": self.device_card.refs(), "accelerator": self.accelerator_card.refs()},
        }


def load_scenario(path: str | Path, sets: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Load, override, validate and resolve a scenario (see module docstring)."""
    file = resolve_path(library.locate("scenarios", path), SCENARIOS_DIR, "scenario", list_scenarios())
    src = str(file)
    raw = read_yaml(file)
    if not isinstance(raw, dict):
        raise ScenarioError(src, "<root>", f"expected a mapping, got {type_name(raw)}", "a mapping with keys " + ", ".join(ScenarioFile.model_fields))
    pairs = [parse_set(s, src) for s in sets]
    merged = apply_sets(raw, pairs, src)
    base = _build(merged, file)
    variants = {}
    plain = {k: v for k, v in raw.items() if k != "variants"}
    for vname, vsets in ScenarioFile.model_validate(merged).variants.items():
        where = f"variants.{vname}"
        if not re.match(NAME_PATTERN, vname):
            raise ScenarioError(src, where, f"{preview(vname)} is not a valid variant name", "letters, digits, '_', '.', '-'")
        bad = [k for k in vsets if str(k).split(".")[0] == "variants"]
        if bad:
            raise ScenarioError(src, f"{where}.{bad[0]}", "a variant cannot define variants", "keys of the scenario or its components")
        vraw = apply_sets(apply_sets(plain, vsets, src, where=f"{where}."), pairs, src)
        try:
            variants[vname] = _build(vraw, file, variant=vname)
        except ScenarioError as exc:
            raise exc.under(where) from None
    return replace(base, variants=variants)


def validate_files(paths, sets=()) -> list[str]:
    """One error line per scenario file that does not load (empty when all are good)."""
    errors = []
    for p in paths:
        try:
            load_scenario(p, sets)
        except ScenarioError as exc:
            errors.append(str(exc))
    return errors


# ------------------------------------------------------------------ internals


def _build(raw: dict, file: Path, variant: str | None = None) -> Scenario:
    src = str(file)
    top = validate(ScenarioFile, raw, src)
    if top.chip.loss_balanced and not top.chip.insertion_loss:
        raise ScenarioError(src, "chip.loss_balanced", "true needs chip.insertion_loss: true (a lossless chip has no "
                            "loss to balance)", "false, or true with chip.insertion_loss: true")
    network = _network(top.model, src)
    task = resolve_task(top.task, src, file.parent)
    ov = top.overrides
    for comp in ("devices", "accelerator", "training"):
        bad = next((k for k in getattr(ov, comp) if any(not p.strip() for p in k.split("."))), None)
        if bad is not None:
            raise ScenarioError(src, f"overrides.{comp}.{bad}", f"{preview(bad)} is not a dotted key (an empty part)",
                                "a dotted key of the card or recipe, e.g. phase_shifter.bits or strategy_options.lr")
    device_card = _component("devices", load_device_card, top.devices, ov.devices, file)
    accelerator_card = _component("accelerator", load_accelerator_card, top.accelerator, ov.accelerator, file)
    recipe = _component("training", load_training_recipe, top.training, ov.training, file)
    _check_fit(network, task, recipe, ov.training, src)
    link = _check_derived(device_card, accelerator_card, network, ov.devices, src, top.chip.loss_balanced)
    _check_detectors(link, device_card, network, ov.devices, src)
    _check_layout(device_card, accelerator_card, "layout.block_pitch" in ov.accelerator, src)
    return Scenario(
        path=file, raw=raw, name=top.name, description=top.description, seed=top.seed,
        device_card=device_card, accelerator_card=accelerator_card, recipe=recipe, network=network,
        task=task, variant=variant, chip=top.chip,
    )


def _component(comp: str, loader, ref: str, overrides: dict, file: Path):
    """Load a card / recipe named in the scenario; re-key its errors onto the scenario."""
    src = str(file)
    target: str | Path = ref
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        target = library.expand(ref)
        target = target if target.is_absolute() else file.parent / target
    try:
        return loader(target, overrides=overrides)
    except ValueError as exc:
        if isinstance(exc, ScenarioError) or hasattr(exc, "key"):  # a ScenarioError, or a CardError with parts
            card_file, key, what, allowed = exc.file, exc.key, exc.what, exc.allowed
        else:
            m = _CARD_MESSAGE.match(str(exc))
            card_file, key, what, allowed = (m["file"], m["key"], m["what"], None) if m else ("", "<root>", str(exc), None)
        key = key.removeprefix("override ")
        dotted = re.sub(r"\[(\d+)\]", r".\1", key)  # a recipe's stages[1].q is the override stages.1.q
        # the override the error is about: the same key, else the nearest enclosing or enclosed one
        for ok in sorted(overrides, key=lambda o: (o != dotted, -len(o))):
            if dotted == ok or dotted.startswith(f"{ok}.") or ok.startswith(f"{dotted}."):
                inner = dotted if dotted.startswith(f"{ok}.") else ok  # the deeper of the two names
                raise ScenarioError(src, f"overrides.{comp}.{inner}", what, allowed) from None
        if key == "<root>" and what.startswith("no such"):
            raise ScenarioError(src, comp, f"{preview(ref)}: {what}", allowed) from None
        raise ScenarioError(src, comp, f"in {card_file}: {key}: {what}", allowed) from None


def _network(model: Any, src: str) -> NetworkSpec:
    presets = sorted(PRESETS)
    if isinstance(model, str):
        if model not in PRESETS:
            raise ScenarioError(src, "model", f"unknown preset {preview(model)}{did_you_mean(model, presets)}",
                                ", ".join(presets) + " or an inline {name, layers}")
        return PRESETS[model]
    if not isinstance(model, dict):
        raise ScenarioError(src, "model", f"expected a preset name or a mapping, got {type_name(model)}",
                            ", ".join(presets) + " or an inline {name, layers}")
    spec = validate(InlineModel, model, src, "model")
    layers = []
    for i, layer in enumerate(spec.layers):
        where = f"model.layers.{i}"
        kind = layer.get("kind") if isinstance(layer, dict) else None
        if not isinstance(kind, str) or kind not in LAYERS:  # (a list or mapping is no kind, nor hashable)
            what = f"{preview(kind)} is not a layer kind{did_you_mean(kind, LAYERS)}" if kind is not None else "missing or not a mapping"
            raise ScenarioError(src, f"{where}.kind", what, ", ".join(LAYERS))
        lm = validate(LAYERS[kind], layer, src, where)
        try:
            if kind == "tt":
                layers.append(tt(lm.in_modes, lm.out_modes, lm.ranks, lm.activation, lm.bias))
            else:
                layers.append(dense(lm.in_features, lm.out_features, lm.activation, lm.bias))
        except ValueError as exc:
            raise ScenarioError(src, where, str(exc),
                                "tt: modes >= 1 of equal length, ranks of length len(modes)+1 starting and ending with 1") from None
    try:
        return NetworkSpec(spec.name, tuple(layers))
    except ValueError as exc:
        raise ScenarioError(src, "model.layers", str(exc), "each layer's out_features equal to the next layer's in_features") from None


def resolve_task(task: dict, src: str, base: Path) -> TaskConfig:
    """The validated task of ``task`` (a mapping): MNIST data checked and its directory made
    absolute against ``base``, a PDE's ``residual_points`` filled and checked; one-line
    :class:`ScenarioError` naming ``src`` and the key otherwise."""
    kinds = list(TASKS)
    kind = task.get("kind")
    if not isinstance(kind, str) or kind not in TASKS:  # (a list or mapping is no kind, nor hashable)
        what = "missing required key" if kind is None else f"{preview(kind)} is not allowed{did_you_mean(kind, kinds)}"
        raise ScenarioError(src, "task.kind", what, ", ".join(kinds))
    cfg = validate(TASKS[kind], task, src, "task")
    if kind == "mnist":
        data_dir = library.expand(cfg.data_dir)
        need = "a directory holding MNIST IDX files (" + " / ".join(f"{n}[.gz]" for n in _MNIST_IMAGES) + ")"
        try:
            data_dir = (data_dir if data_dir.is_absolute() else base / data_dir).resolve()
        except (OSError, ValueError):  # a NUL character, a symlink loop
            raise ScenarioError(src, "task.data_dir", f"{preview(cfg.data_dir)} is not a usable path", need) from None
        if not library.is_dir(data_dir):  # a name too long for the file system is no directory either
            raise ScenarioError(src, "task.data_dir", f"no such directory: {short_path(data_dir)}", need)
        if not any(library.is_file(data_dir / n) or library.is_file(data_dir / f"{n}.gz") for n in _MNIST_IMAGES):
            raise ScenarioError(src, "task.data_dir", f"no MNIST image file in {short_path(data_dir)}", need)
        from photonic_sim.training.data import DataError, check_mnist  # numpy: only for an mnist task

        try:  # the files themselves, before anything trains (corrupt gzip, bad header, labels)
            examples = check_mnist(data_dir)
        except DataError as exc:
            raise ScenarioError(src, "task.data_dir", f"{exc.file}: {exc.what}", exc.allowed) from None
        _check_split(examples, cfg.test_fraction, f"{examples} MNIST examples in task.data_dir", src)
        cfg = cfg.model_copy(update={"data_dir": str(data_dir)})
    if kind == "digits":
        from photonic_sim.training.data import DIGITS_SIZE

        _check_split(DIGITS_SIZE, cfg.test_fraction, f"the {DIGITS_SIZE} digits", src)
    if kind == "pde":
        if cfg.residual_points is None:
            cfg = cfg.model_copy(update={"residual_points": min(1000, cfg.test_points)})
        elif cfg.residual_points > cfg.test_points:
            raise ScenarioError(src, "task.residual_points", f"{cfg.residual_points} is more than task.test_points",
                                f"1 .. task.test_points = {cfg.test_points}")
        _check_pde_options(cfg, src)
        if cfg.sampling != "uniform" and cfg.resample_pool:
            raise ScenarioError(src, "task.sampling", f"{cfg.sampling!r} with task.resample_pool > 0 (the adaptive "
                                "sampler draws the points)", "uniform, or resample_pool 0")
        dim, most = PDE_IO[cfg.pde][0], max_eval_grid(PDE_IO[cfg.pde][0])
        if cfg.sampling == "grid" and cfg.collocation ** dim > MAX_GRID_COLLOCATION:
            raise ScenarioError(src, "task.collocation", f"{cfg.collocation} values per coordinate with sampling grid "
                                f"make {cfg.collocation}^{dim} points for pde {cfg.pde}",
                                f"collocation^{dim} <= {MAX_GRID_COLLOCATION}")
        if cfg.eval_loss != "mean_square" and most < 2:
            raise ScenarioError(src, "task.eval_loss", f"{cfg.eval_loss!r} needs a grid of the {dim} coordinates of "
                                f"pde {cfg.pde}, too many points", "mean_square")
        if cfg.eval_loss != "mean_square" and cfg.eval_grid > most:
            raise ScenarioError(src, "task.eval_grid", f"{cfg.eval_grid}^{dim} grid points for pde {cfg.pde}",
                                f"2 .. {most} (eval_grid^{dim} <= {MAX_EVAL_GRID_POINTS})")
    return cfg


def _check_split(examples: int, test_fraction: float, what: str, src: str) -> None:
    """Both halves of the seeded train/test split hold at least one example."""
    from photonic_sim.training.data import split_sizes

    train, test = split_sizes(examples, test_fraction)
    if train < 1 or test < 1:
        lo, hi = 0.5 / examples, 1 - 0.5 / examples
        allowed = (f"a fraction leaving at least one example on each side: about {lo:.3g} < x < {hi:.3g}"
                   if examples >= 2 else "at least 2 examples in the data")
        raise ScenarioError(src, "task.test_fraction", f"{test_fraction:g} splits {what} into {train} for training and "
                            f"{test} for test", allowed)


_STEIN = ("sparse_grid", "monte_carlo")


def _check_pde_options(cfg, src: str) -> None:
    """The PDE task's options that only fit together (``training.pinn.PINNTask`` checks them
    again when it is built, mid-command): here they are load-time errors naming the key."""
    coords = PDE_COORDINATES[cfg.pde]
    if cfg.eval_level is not None and cfg.eval_level != cfg.level and cfg.estimator != "sparse_grid":
        raise ScenarioError(src, "task.eval_level", f"{cfg.eval_level} with estimator {cfg.estimator!r} (a sparse "
                            "grid's level)", "null, or estimator sparse_grid")
    if cfg.sigma_final is not None:
        if cfg.estimator not in _STEIN:
            raise ScenarioError(src, "task.sigma_final", f"set with estimator {cfg.estimator!r} (the Stein width "
                                "schedule)", "null, or estimator " + " / ".join(_STEIN))
        final, sigma = ([w] * len(coords) if not isinstance(w, list) else w for w in (cfg.sigma_final, cfg.sigma))
        if any(f > w for f, w in zip(final, sigma)):  # one width or one per coordinate, each
            raise ScenarioError(src, "task.sigma_final", f"{preview(cfg.sigma_final)} is wider than task.sigma "
                                f"{preview(cfg.sigma)}", "0 < sigma_final <= sigma (per coordinate)")
    for name, value in (cfg.input_warp or {}).items():
        j, (lo, hi) = coords.index(name), PDE_BOXES[cfg.pde]
        center = value.get("center") if isinstance(value, dict) else None
        if center is not None and not lo[j] <= center <= hi[j]:
            raise ScenarioError(src, f"task.input_warp.{name}.center", f"{center:g} is outside the box of pde {cfg.pde}",
                                f"{lo[j]:g} .. {hi[j]:g}")
    if cfg.causal_eps and "t" not in coords:
        raise ScenarioError(src, "task.causal_eps", f"{cfg.causal_eps:g}: pde {cfg.pde} has no time coordinate "
                            f"(its coordinates: {', '.join(coords)})", "0 for this PDE")


def _check_fit(network: NetworkSpec, task: TaskConfig, recipe: TrainingRecipe, overrides: dict, src: str) -> None:
    """The network's input/output widths and the recipe's loss must suit the task."""
    if task.kind == "none":
        return
    if task.kind == "dataset":
        need_io = (task.in_features, task.classes)
    else:
        need_io = task.io if task.kind == "pde" else TASK_IO[task.kind]  # PdeTask.io: with fourier_features
    have_io = (network.in_features, network.out_features)
    if have_io != need_io:
        label = f"pde {task.pde}" if task.kind == "pde" else task.kind
        raise ScenarioError(
            src, "model", f"network {preview(network.name)} maps {have_io[0]} -> {have_io[1]} features, task {label} needs {need_io[0]} -> {need_io[1]}",
            f"a model with in_features={need_io[0]} and out_features={need_io[1]}",
        )
    losses = ("pinn",) if task.kind == "pde" else ("cross_entropy", "mse")
    if recipe.loss not in losses:
        key = "overrides.training.loss" if "loss" in overrides else "training"
        raise ScenarioError(src, key, f"recipe {preview(recipe.name)} has loss {recipe.loss!r}, which does not suit task kind {task.kind!r}", ", ".join(losses))
    if task.kind == "pde" and recipe.readout not in (None, "coherent"):
        key = "overrides.training.readout" if "readout" in overrides else "training"
        raise ScenarioError(src, key, f"recipe {preview(recipe.name)} reads {recipe.readout!r}; a PINN needs signed "
                            "outputs", "coherent, or null (a pde task then reads coherently)")
    if task.kind == "pde" and task.estimator == "autograd" and _in_situ(recipe):
        raise ScenarioError(src, "task.estimator", f"'autograd' differentiates through the simulation, which recipe "
                            f"{preview(recipe.name)} (strategy {recipe.strategy!r}, in situ) does not",
                            "sparse_grid, monte_carlo, finite_difference; autograd only with strategy fo")
    if recipe.keep != "last" and task.kind != "pde":
        key = "overrides.training.keep" if "keep" in overrides else "training"
        raise ScenarioError(src, key, f"recipe {preview(recipe.name)} keeps {recipe.keep!r}, which selects by the test "
                            f"loss (test labels) for task kind {task.kind!r}; only a pde task's residual is label-free", "last")
    stages = recipe.strategy_options.get("stages") if recipe.strategy == "staged" else None
    for i, stage in enumerate(stages or ()):
        if stage.get("loss", "batch") == "evaluation" and task.kind != "pde":
            key = "overrides.training" if "strategy_options" in overrides else "training"
            raise ScenarioError(src, key, f"recipe {preview(recipe.name)}: stages[{i}].loss: 'evaluation' optimises the "
                                f"test loss (test labels) for task kind {task.kind!r}; only a pde task's residual is "
                                "label-free", "batch")


def _in_situ(recipe: TrainingRecipe) -> bool:
    """Whether the recipe's strategy trains through chip queries only (every stage of a staged one)."""
    from photonic_sim.training.strategies import STRATEGIES

    return getattr(STRATEGIES.get(recipe.strategy), "in_situ", True)


MAX_LASER_DBM = 60.0  # 1 kW of optical power: any link that needs more has a typo in its losses
# Device-card keys of the optical link budget (laser power = sensitivity + path loss + fan-out).
_LINK_KEYS = ("phase_shifter.insertion_loss", "coupler.insertion_loss", "modulator.insertion_loss", "waveguide.loss",
              "waveguide.mzi_pitch", "photodetector.sensitivity")


def _check_layout(device_card: DeviceCard, accelerator_card: AcceleratorCard, overridden: bool, src: str) -> None:
    """A floorplan (accelerator card ``layout``) must not overlap its blocks: the pitch is at
    least one block's extent (its heaters at the device card's ``waveguide.mzi_pitch``) plus
    one ``mzi_pitch``. Checked at load, so the chip build never fails on it mid-run."""
    layout = accelerator_card.layout
    if layout is None:
        return
    from photonic_sim.circuits.svd import SVDBlock

    k = accelerator_card.block_size
    local = SVDBlock(k, k).positions() * device_card.waveguide.mzi_pitch
    need = float((local.max(0).values - local.min(0).values).max()) + device_card.waveguide.mzi_pitch
    if layout.block_pitch < need:
        key = "overrides.accelerator.layout.block_pitch" if overridden else "accelerator"
        where = "" if overridden else f"in {accelerator_card.source}: layout.block_pitch "
        raise ScenarioError(src, key, f"{where}{layout.block_pitch:.4g} m makes the {k}x{k} blocks overlap",
                            f">= {need:.4g} m (the block's extent + waveguide.mzi_pitch)")


def _check_derived(device_card: DeviceCard, accelerator_card: AcceleratorCard, network: NetworkSpec,
                   overrides: dict, src: str, loss_balanced: bool = False) -> dict:
    """Quantities derived from the cards (the link budget's laser power, per-inference energy,
    latency, area) are computed once here: one that overflows or is not finite is a load-time
    error naming the card keys behind it, not a crash in the middle of a run. ``loss_balanced``:
    the link of a loss-balanced mesh (``chip.loss_balanced``), whose laser pays the whole path."""
    from photonic_sim.accelerators import estimate

    key = next((f"overrides.devices.{k}" for k in _LINK_KEYS if k in overrides), None)
    where = "" if key else f"in {device_card.source}: "
    key = key or "devices"
    allowed = "cards whose optical path loss (" + ", ".join(_LINK_KEYS) + ") and figures give finite costs"
    try:
        cost = estimate(accelerator_card, network, device_card, loss_balanced=loss_balanced).to_dict()
    except ArithmeticError as exc:
        raise ScenarioError(src, key, f"{where}the link budget / cost model overflows ({type(exc).__name__}) for "
                            f"network {preview(network.name)}", allowed) from None
    bad = _non_finite(cost)
    if bad:
        raise ScenarioError(src, key, f"{where}derived cost {bad} is not finite for network {preview(network.name)}", allowed)
    link = cost.get("link", {})
    if link.get("laser_dbm", -math.inf) > MAX_LASER_DBM:
        raise ScenarioError(
            src, key, f"{where}the link budget needs {link['laser_dbm']:.4g} dBm of laser power (path loss "
            f"{link.get('insertion_loss_db', math.nan):.4g} dB) for network {preview(network.name)}",
            f"at most {MAX_LASER_DBM:g} dBm (1 kW): lower " + ", ".join(_LINK_KEYS))
    return link


# Device-card keys that decide whether the detectors stay above their sensitivity (link_budget).
_DETECTOR_KEYS = ("laser.max_power", "photodetector.sensitivity", "phase_shifter.insertion_loss",
                  "coupler.insertion_loss", "modulator.insertion_loss", "adc.full_scale", "tia.gain",
                  "photodetector.responsivity", "waveguide.loss", "waveguide.mzi_pitch")


def _check_detectors(link: dict, device_card: DeviceCard, network: NetworkSpec, overrides: dict, src: str) -> None:
    """A full-scale channel on the critical path must reach the detectors at or above
    ``photodetector.sensitivity`` with the laser the card allows (``laser.max_power`` per
    channel; ``link``: the cost estimate's ``accelerators.cost.link_budget``, whose detector
    figures do not depend on the fan-out): otherwise a load-time error naming the card keys,
    before anything trains. Checked whether or not ``chip.insertion_loss`` simulates the loss:
    the link is the hardware's."""
    if link["detector_margin_db"] >= 0:
        return
    key = next((f"overrides.devices.{k}" for k in _DETECTOR_KEYS if k in overrides), "devices")
    where = "" if key.startswith("overrides.") else f"in {device_card.source}: "
    raise ScenarioError(
        src, key, f"{where}the link budget leaves the detectors on the critical path {link['detector_dbm']:.4g} dBm, below "
        f"photodetector.sensitivity {link['sensitivity_dbm']:.4g} dBm (laser.max_power per channel, path loss "
        f"{link['insertion_loss_db']:.4g} dB) for network {preview(network.name)}",
        "cards whose laser.max_power, detector (sensitivity, adc.full_scale, tia.gain, responsivity) and "
        "insertion losses keep the detectors at or above their sensitivity")


def _non_finite(obj: Any, path: str = "") -> str | None:
    """The dotted path of the first non-finite number in a nested dict/list, or None."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return path if isinstance(obj, float) and not math.isfinite(obj) else None
    for k, v in items:
        found = _non_finite(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def _task_dump(task: Any) -> dict[str, Any]:
    """The ``task:`` section as resolved; a PDE task's optional remedies (``fourier_features``,
    ``symmetry``, ``separable``, ``input_warp``) only
    when set, so the resolved scenarios (and the run identities hashed from them) without them
    stay as before."""
    dump = task.model_dump(mode="json")
    for key in ("fourier_features", "symmetry", "separable", "input_warp"):
        if key in dump and dump[key] is None:
            dump.pop(key)
    return dump


def _chip_dump(chip: ChipSection) -> dict[str, Any]:
    """The ``chip:`` section as resolved; ``loss_balanced`` only when true, so the resolved
    scenarios (and the run identities hashed from them) of unbalanced chips stay as before."""
    dump = chip.model_dump(mode="json")
    if not dump.get("loss_balanced"):
        dump.pop("loss_balanced", None)
    return dump


def _plain(obj: Any) -> Any:
    """Tuples → lists, recursively (YAML-safe)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
