"""Training recipes: ``<repo>/training/<name>.yaml`` → :class:`TrainingRecipe`.

    recipe = load_training_recipe("hybrid_zo", overrides={"strategy_options.lr": 0.02, "steps": 200})

Overrides are dotted keys applied to the YAML mapping before validation (keys inside
``strategy_options`` are created as needed). ``strategy`` must name one of
:data:`photonic_sim.training.strategies.STRATEGIES`, and each ``strategy_options`` key must be
an option of that strategy (``lr``, the common optimizer/schedule options, or the strategy's
own ``defaults``); option *values* are checked by the strategy factory at run time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from photonic_sim import library
from photonic_sim.training.strategies import STRATEGIES
from photonic_sim.training.strategies.base import COMMON
from photonic_sim.training.strategies.staged import STAGE_LOSSES, stage_strategies

from .errors import ScenarioError, did_you_mean, preview
from .overrides import set_dotted
from .schema import TrainingRecipe, validate
from .yamlsafe import read_yaml

TRAINING_DIR = library.builtin_dir("training")  # built-in recipes; bare names use the search path


def list_training_recipes() -> list[str]:
    """Names of the recipes on the search path (:mod:`photonic_sim.library`)."""
    return library.names("training")


def strategy_names() -> list[str]:
    return sorted(STRATEGIES)


def strategy_options(strategy: str) -> list[str]:
    """Option keys ``strategy_options`` may hold for ``strategy``."""
    return sorted({"lr", *COMMON, *STRATEGIES[strategy].defaults})


def resolve_path(name_or_path: str | Path, directory: Path, what: str, names: list[str], base: Path | None = None) -> Path:
    """A bare name → ``directory/<name>.yaml``; anything with '/' or a .yaml suffix is a path
    (relative to ``base`` when given). Raises ScenarioError naming the missing file."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        path = library.expand(text)
        if base is not None and not path.is_absolute():
            path = base / path
    else:
        path = directory / f"{text}.yaml"
    if not library.is_file(path):  # a name too long for the file system is no file either
        raise ScenarioError(
            str(path), "<root>", f"no such {what}{did_you_mean(path.stem, names)}",
            f"{', '.join(names)} or a path to a .yaml file",
        )
    return path


def load_training_recipe(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> TrainingRecipe:
    """Load and validate a recipe; every mistake is a one-line :class:`ScenarioError`."""
    path = resolve_path(library.locate("training", name_or_path), TRAINING_DIR, "training recipe", list_training_recipes())
    src = str(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        return validate(TrainingRecipe, raw, src)  # raises "expected a mapping"
    for key, value in (overrides or {}).items():
        try:
            set_dotted(raw, str(key), value)
        except KeyError as exc:
            where, what, allowed = exc.args[0]
            raise ScenarioError(src, f"override {key}", f"{where} {what}", allowed) from None
    recipe = validate(TrainingRecipe, raw, src)
    if recipe.strategy not in STRATEGIES:
        raise ScenarioError(
            src, "strategy", f"unknown strategy {preview(recipe.strategy)}{did_you_mean(recipe.strategy, STRATEGIES)}",
            ", ".join(strategy_names()),
        )
    _check_options(src, "strategy_options", recipe.strategy, recipe.strategy_options)
    if recipe.strategy == "staged":
        _check_stages(src, recipe.strategy_options.get("stages"))
    return recipe


def _check_options(src: str, where: str, strategy: str, given: dict) -> None:
    """Every key an option of ``strategy`` and every value allowed by its option table (the
    strategy's own declaration; bounds that depend on the chip, e.g. ``n_active``, are checked
    when the strategy is built)."""
    from photonic_sim.training.strategies.options import allowed, describe, positive

    options = strategy_options(strategy)
    table = {"lr": positive(None), **STRATEGIES[strategy].table}
    for key, value in given.items():
        if key not in options:
            raise ScenarioError(src, f"{where}.{key}",
                                f"unknown option for strategy {strategy!r}{did_you_mean(key, options)}",
                                ", ".join(options))
        spec = table.get(key)
        if spec is not None and key != "stages" and not (allowed(spec, value) and _machine_number(spec, value)):
            raise ScenarioError(src, f"{where}.{key}", f"{preview(value)} is not allowed",
                                describe(spec) + _machine_bound(spec, value))


INT64_MAX = 2**63 - 1  # torch sizes and integer scalars are 64-bit


def _machine_number(spec, value: Any) -> bool:
    """Whether a number the option table allows also fits the machine types the strategy hands
    it to: an integer (or an integer option written as a float) within 64 bits, so a ``q`` of
    1e308 or an ``eps`` of 10**30 is refused here rather than crashing torch mid-run."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        return True  # (not a number, or not finite: the option table's own check words it)
    if isinstance(value, int) or spec.kind == "int":
        return abs(value) <= INT64_MAX
    return True


def _machine_bound(spec, value: Any) -> str:
    """What :func:`_machine_number` adds to the allowed values when ``value`` fails it."""
    if _machine_number(spec, value):
        return ""
    return f", at most {INT64_MAX}" if spec.kind == "int" else f"; an integer of at most {INT64_MAX} (write a float, e.g. 1.0e+30)"


def _check_stages(src: str, stages: Any) -> None:
    """``staged``: a list of {strategy: <in-situ name>, steps: N, <that strategy's options>}."""
    where = "strategy_options.stages"
    if not isinstance(stages, list) or not stages:
        raise ScenarioError(src, where, "must be a non-empty list of stages",
                            "a list of mappings {strategy: name, steps: N, ...options}")
    in_situ = stage_strategies()
    for i, stage in enumerate(stages):
        here = f"{where}[{i}]"
        if not isinstance(stage, dict):
            raise ScenarioError(src, here, "must be a mapping", "{strategy: name, steps: N, ...options}")
        name = stage.get("strategy")
        if name not in in_situ:
            raise ScenarioError(src, f"{here}.strategy", f"{preview(name)} is not an in-situ strategy"
                                f"{did_you_mean(name, in_situ)}", ", ".join(in_situ))
        steps = stage.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ScenarioError(src, f"{here}.steps", f"got {preview(steps)}", "an integer >= 1")
        loss = stage.get("loss", "batch")
        if loss not in STAGE_LOSSES:
            raise ScenarioError(src, f"{here}.loss", f"got {preview(loss)}", ", ".join(STAGE_LOSSES))
        if loss != "batch" and STRATEGIES[name].closure_kind != "batch":
            raise ScenarioError(src, f"{here}.loss", f"{loss!r} needs a strategy with batch closures; {name!r} "
                                f"measures {STRATEGIES[name].closure_kind!r} closures", "batch")
        _check_options(src, here, name, {k: v for k, v in stage.items() if k not in ("strategy", "steps", "loss")})
