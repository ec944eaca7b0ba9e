"""Scenario loading: shipped files validate; every class of mistake is ONE line naming file and key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from photonic_sim.cores.spec import PRESETS
from photonic_sim.devices.cards import load_device_card
from photonic_sim.scenarios import (
    ScenarioError, available, list_training_recipes, load_scenario, load_training_recipe, validate_files,
)
from photonic_sim.scenarios.loader import SCENARIOS_DIR
from photonic_sim.scenarios.recipes import TRAINING_DIR

BASE = """\
name: t
seed: 0
devices: silicon_thermo_optic
accelerator: tonn_space
training: hybrid_zo
model: digits
task: {kind: digits}
"""
MNIST_DIR = (SCENARIOS_DIR / "../../shared/datasets/mnist").resolve()
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"MNIST IDX files not found at {MNIST_DIR}")
SHIPPED_SCENARIOS = ["quickstart", "mnist_tonn", "mnist_small_zo", "hjb20_tonn", "hjb20_small_tonn", "black_scholes_tonn", "darcy_tonn", "burgers_tonn",
                     "compare_strategies",
                     "energy_area_report", "dense_vs_tonn", "strategies_digits", "strategies_black_scholes"]
SHIPPED_RECIPES = ["hybrid_zo", "sign_rge", "zo_rge", "spsa", "first_order", "pinn_zo", "pinn_zo_hjb", "pinn_zo_polish", "quzo", "grzo",
                   "adjoint", "node_perturbation", "forward_forward", "flops", "mixedtrain", "zo_cge", "l2ight_sigma",
                   "tt_subspace", "staged", "pinn_gn"]


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path, sets=()) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, sets)
    msg = str(info.value)
    assert "\n" not in msg
    assert isinstance(info.value, ValueError)
    return msg


# ------------------------------------------------------------------ shipped files


def test_every_shipped_scenario_validates_against_the_real_cards():
    files = sorted(SCENARIOS_DIR.glob("*.yaml"))
    assert sorted(p.stem for p in files) == sorted(SHIPPED_SCENARIOS)
    runnable = [p for p in files if not p.stem.startswith("mnist") or MNIST_DIR.is_dir()]  # mnist needs the IDX files
    assert validate_files(runnable) == []
    for path in files:
        text = path.read_text()
        assert text.startswith("#"), f"{path.name}: needs a comment header"
        assert "min" in text.split("\nname:")[0] or "seconds" in text.split("\nname:")[0], path.name


def test_every_shipped_recipe_loads_with_a_known_strategy():
    assert sorted(list_training_recipes()) == sorted(SHIPPED_RECIPES)
    for name in SHIPPED_RECIPES:
        raw = yaml.safe_load((TRAINING_DIR / f"{name}.yaml").read_text())
        recipe = load_training_recipe(name)
        assert recipe.name == name
        assert recipe.strategy in available()["strategies"]
        assert recipe.steps == raw["steps"] and recipe.strategy_options == raw["strategy_options"]


def test_quickstart_resolves_cards_recipe_model_and_task():
    sc = load_scenario("quickstart")  # a bare name means scenarios/<name>.yaml
    assert sc.path == SCENARIOS_DIR / "quickstart.yaml"
    assert sc.network is PRESETS["digits"]
    assert sc.device_card == load_device_card("silicon_thermo_optic")
    assert sc.accelerator_card.architecture == "tonn_space"
    steps = yaml.safe_load((SCENARIOS_DIR / "quickstart.yaml").read_text())["overrides"]["training"]["steps"]
    assert sc.recipe.strategy == "zo-rge" and sc.recipe.steps == steps and sc.task.kind == "digits"
    res = sc.resolved()
    # the resolved dict is plain YAML and carries the SI card values
    assert yaml.safe_load(yaml.safe_dump(res)) == res
    assert math.isclose(res["devices"]["phase_shifter"]["p_pi"], 0.030)
    assert res["training"]["steps"] == sc.recipe.steps
    assert res["model"]["layers"][0]["in_modes"] == [4, 4, 4]


@needs_mnist
def test_mnist_data_dir_resolves_against_the_scenario_file():
    sc = load_scenario(SCENARIOS_DIR / "mnist_tonn.yaml")
    assert Path(sc.task.data_dir) == (SCENARIOS_DIR / "../../shared/datasets/mnist").resolve()


def test_variants_build_one_scenario_each_and_cli_sets_apply_to_all():
    sc = load_scenario("compare_strategies", ["training.steps=7"])
    assert set(sc.variants) == {"sign_rge", "zo_rge", "spsa", "first_order"}
    assert {v.recipe.strategy for v in sc.variants.values()} == {"zo-sign-rge", "zo-rge", "spsa", "fo"}
    assert all(v.recipe.steps == 7 for v in [sc, *sc.variants.values()])
    dense = load_scenario("dense_vs_tonn").variants["dense"]
    assert dense.accelerator_card.architecture == "dense_onn"
    assert [layer.kind for layer in dense.network.layers] == ["dense", "dense"]


def test_available_lists_everything():
    got = available()
    assert set(got) == {"devices", "accelerators", "training", "scenarios", "strategies", "presets", "pdes"}
    assert {"silicon_thermo_optic", "mems_phase_shifter"} <= set(got["devices"])
    assert {"dense_onn", "tonn_space", "tonn_time"} <= set(got["accelerators"])
    assert got["scenarios"] == sorted(SHIPPED_SCENARIOS)
    assert got["pdes"] == ["hjb20", "black_scholes", "burgers", "darcy"]
    assert "hybrid" in got["strategies"] and got["presets"] == sorted(PRESETS)


# ------------------------------------------------------------------ --set overrides


def test_set_overrides_reach_scenario_and_components(tmp_path):
    path = write(tmp_path, BASE + "overrides:\n  training: {steps: 99}\n")
    sc = load_scenario(path, [
        "seed=3", "devices.phase_shifter.bits=6", "devices.crosstalk.factor=0.0", "training.strategy_options.lr=0.02",
        "overrides.training.batch_size=8", "accelerator.block_size=4", "task.test_fraction=0.5",
    ])
    assert sc.seed == 3 and sc.task.test_fraction == 0.5
    assert sc.device_card.phase_shifter.bits == 6 and sc.device_card.crosstalk.factor == 0.0
    assert sc.recipe.strategy_options["lr"] == 0.02 and sc.recipe.strategy_options["q"] == 16  # merged, not replaced
    assert sc.recipe.steps == 99 and sc.recipe.batch_size == 8
    assert sc.accelerator_card.block_size == 4
    assert sc.raw["overrides"]["devices"] == {"phase_shifter.bits": 6, "crosstalk.factor": 0.0}
    # the file is unchanged; without --set the defaults come back
    plain = load_scenario(path)
    assert plain.seed == 0 and plain.device_card.phase_shifter.bits == 8


@needs_mnist
def test_set_can_switch_task_and_component_names(tmp_path):
    data = (SCENARIOS_DIR / "../../shared/datasets/mnist").resolve()
    sc = load_scenario(write(tmp_path, BASE), [
        "task.kind=mnist", f"task.data_dir={data}", "model=mnist", "devices=mems_phase_shifter",
    ])
    assert sc.task.kind == "mnist" and sc.network.in_features == 784
    assert sc.device_card.phase_shifter.kind == "mems"


# ------------------------------------------------------------------ mistakes → one line


@pytest.mark.parametrize("edit, key, words", [
    # unknown key, with did-you-mean
    (lambda t: t + "sed: 3\n", "sed", ["unknown key", "did you mean 'seed'"]),
    (lambda t: t.replace("{kind: digits}", "{kind: digits, test_fractoin: 0.2}"), "task.test_fractoin", ["did you mean 'test_fraction'"]),
    # wrong type
    (lambda t: t.replace("seed: 0", "seed: '3'"), "seed", ["expected an integer", "got a string"]),
    (lambda t: t.replace("seed: 0", "seed: true"), "seed", ["expected an integer", "got a boolean"]),
    # out of range
    (lambda t: t.replace("seed: 0", "seed: -1"), "seed", ["-1 is out of range", "allowed: 0 <= integer"]),
    (lambda t: t.replace("{kind: digits}", "{kind: digits, test_fraction: 1.5}"), "task.test_fraction", ["allowed: 0 < number < 1"]),
    # unknown names, with did-you-mean
    (lambda t: t.replace("silicon_thermo_optic", "silicon_thermo"), "devices", ["no such device card", "did you mean 'silicon_thermo_optic'"]),
    (lambda t: t.replace("tonn_space", "tonn_spaec"), "accelerator", ["did you mean 'tonn_space'"]),
    (lambda t: t.replace("hybrid_zo", "hybrid_z0"), "training", ["no such training recipe", "did you mean 'hybrid_zo'"]),
    (lambda t: t.replace("model: digits", "model: digts"), "model", ["unknown preset", "did you mean 'digits'"]),
    (lambda t: t.replace("{kind: digits}", "{kind: pde, pde: hjb2}"), "task.pde", ["did you mean 'hjb20'", "black_scholes"]),
    (lambda t: t.replace("{kind: digits}", "{kind: mnst}"), "task.kind", ["did you mean 'mnist'", "allowed: digits, mnist, pde, none"]),
    # missing file
    (lambda t: t.replace("{kind: digits}", "{kind: mnist, data_dir: nowhere}"), "task.data_dir", ["no such directory"]),
    (lambda t: t.replace("silicon_thermo_optic", "./cards/missing.yaml"), "devices", ["no such device card"]),
    # bad override values / keys are caught with their key path
    (lambda t: t + "overrides: {devices: {phase_shifter.bits: 0}}\n", "overrides.devices.phase_shifter.bits", ["allowed: 1 <= integer <= 32"]),
    (lambda t: t + "overrides: {devices: {phase_shifter.bitz: 6}}\n", "overrides.devices.phase_shifter.bitz", ["did you mean 'bits'"]),
    (lambda t: t + "overrides: {training: {stepz: 6}}\n", "overrides.training.stepz", ["did you mean 'steps'"]),
    (lambda t: t + "overrides: {training: {strategy_options.lrr: 0.1}}\n", "overrides.training.strategy_options.lrr", ["did you mean 'lr'"]),
    (lambda t: t + "overrides: {accelerator: {block_size: 0}}\n", "overrides.accelerator.block_size", ["allowed: integer >= 2"]),
    # model / task / recipe that do not fit together
    (lambda t: t.replace("model: digits", "model: mnist"), "model", ["784 -> 10", "needs 64 -> 10"]),
    (lambda t: t.replace("hybrid_zo", "pinn_zo"), "training", ["loss 'pinn'", "allowed: cross_entropy, mse"]),
    (lambda t: t.replace("model: digits", "model: {name: m, layers: [{kind: dense, in_features: 64, out_features: 32}, "
                         "{kind: dense, in_features: 64, out_features: 10}]}"), "model.layers", ["do not chain"]),
    (lambda t: t.replace("model: digits", "model: {name: m, layers: [{kind: tt, in_modes: [4,4,4], out_modes: [4,4,4], "
                         "ranks: [1,4,4], activation: rlu}]}"), "model.layers.0.activation", ["did you mean 'relu'"]),
    # variants are validated too, under their own key path
    (lambda t: t + "variants: {a: {training.stepz: 3}}\n", "variants.a.overrides.training.stepz", ["did you mean 'steps'"]),
    # malformed YAML (with the line number), duplicate keys, a tag that constructs an object
    (lambda t: t + "foo: [1, 2\n", "line 9", ["malformed YAML"]),
    (lambda t: t + "seed: 4\n", "seed", ["duplicate key (lines 2 and 8)"]),
    (lambda t: t.replace("seed: 0", "seed: !!python/object/apply:os.system ['echo pwned > pwned.txt']"), "seed",
     ["unsafe or unsupported YAML tag '!!python/object/apply:os.system'", "line 2"]),
    (lambda t: "- 1\n- 2\n", "<root>", ["expected a mapping, got a list"]),
])
def test_each_mistake_is_one_line_naming_file_and_key(tmp_path, monkeypatch, edit, key, words):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, edit(BASE))
    msg = error_of(path)
    assert msg.startswith(f"{path}: {key}"), msg
    for w in words:
        assert w in msg, msg
    assert not (tmp_path / "pwned.txt").exists()


@pytest.mark.parametrize("sets, key, words", [
    (["sed=3"], "sed", ["did you mean 'seed'"]),
    (["seed"], "--set 'seed'", ["expected key.path=value"]),
    (["training.steps=0"], "overrides.training.steps", ["0 is out of range", "integer >= 1"]),
    (["devices.phase_shifter.bits=x"], "overrides.devices.phase_shifter.bits", ["not a number"]),
    (["seed=[1"], "--set seed (line 1", ["malformed YAML"]),
    (["seed=!!python/object/apply:os.system [ls]"], "--set seed", ["unsafe or unsupported YAML tag"]),
])
def test_bad_set_arguments_are_one_line(tmp_path, sets, key, words):
    path = write(tmp_path, BASE)
    msg = error_of(path, sets)
    assert msg.startswith(f"{path}: {key}"), msg
    for w in words:
        assert w in msg, msg


def test_a_staged_recipe_override_indexes_its_stages(tmp_path):
    """``training.strategy_options.stages.<i>.<key>`` sets one option of one stage of a staged
    recipe (the other stage and the recipe file are untouched); an index that names no stage,
    or a key under a scalar, is one line naming the override and what it could be."""
    sets = ["training.strategy_options.stages.1.steps=7", "training.strategy_options.stages.0.q=8",
            "training.steps=2007"]
    sc = load_scenario("hjb20_tonn", sets)
    first, second = sc.recipe.strategy_options["stages"]
    shipped = load_training_recipe("pinn_zo_hjb").strategy_options["stages"]
    assert (first["q"], second["steps"], sc.recipe.steps) == (8, 7, 2007)
    assert {k: v for k, v in first.items() if k != "q"} == {k: v for k, v in shipped[0].items() if k != "q"}
    assert {k: v for k, v in second.items() if k != "steps"} == {k: v for k, v in shipped[1].items() if k != "steps"}
    assert shipped[0]["q"] == 64 and shipped[1]["steps"] == 600
    for bad, words in ((["training.strategy_options.stages.2.steps=3"], ["stages.2 names no item", "0 .. 1"]),
                       (["training.strategy_options.stages.-1.steps=3"], ["stages.-1 names no item"]),
                       (["training.strategy_options.stages.one.steps=3"], ["stages.one names no item"]),
                       (["training.strategy_options.stages.0.q.x=3"], ["stages.0.q holds a value", "stages.0.q=value"]),
                       # a bad value in a stage is checked by the recipe and named as the override
                       (["training.strategy_options.stages.1.dist=gauss"], ["'gauss' is not allowed", "rademacher"]),
                       (["training.strategy_options.stages.0.steps=-1"], ["got -1", "integer >= 1"]),
                       (["training.strategy_options.stages.0=5"], ["must be a mapping"]),
                       (["training.strategy_options.stages=[]"], ["non-empty list"])):
        with pytest.raises(ScenarioError) as err:
            load_scenario("hjb20_tonn", bad)
        msg = str(err.value)
        assert "\n" not in msg and f": overrides.{bad[0].split('=')[0]}: " in msg, msg
        for w in words:
            assert w in msg, msg


def test_validate_files_returns_one_line_per_bad_file(tmp_path):
    good = write(tmp_path, BASE, "good.yaml")
    bad = write(tmp_path, BASE + "sed: 1\n", "bad.yaml")
    missing = tmp_path / "missing.yaml"
    errors = validate_files([good, bad, missing])
    assert len(errors) == 2
    assert errors[0].startswith(f"{bad}: sed: unknown key")
    assert errors[1].startswith(f"{missing}: <root>: no such scenario")


def test_recipe_errors_name_the_recipe_file(tmp_path):
    raw = yaml.safe_load((TRAINING_DIR / "spsa.yaml").read_text())
    raw["strategy"] = "spsaa"
    path = write(tmp_path, yaml.safe_dump(raw), "r.yaml")
    with pytest.raises(ScenarioError, match=r"r\.yaml: strategy: unknown strategy 'spsaa'; did you mean 'spsa'\?"):
        load_training_recipe(path)
    # a scenario naming that recipe by path reports the recipe file and key
    scen = write(tmp_path, BASE.replace("hybrid_zo", "r.yaml"))
    msg = error_of(scen)
    assert msg.startswith(f"{scen}: training: in {path}: strategy: unknown strategy"), msg


def test_exponent_floats_are_numbers_in_files_and_set(tmp_path):
    """YAML 1.1 reads 1e-9 as a string; cards, scenarios and --set read it as a number (YAML 1.2)."""
    card_text = (SCENARIOS_DIR.parent / "devices" / "silicon_thermo_optic.yaml").read_text()
    card = write(tmp_path, card_text.replace("wavelength: {value: 1550, unit: nm", "wavelength: {value: 1.55e+3, unit: nm"),
                 "dev.yaml")
    assert load_device_card(card).wavelength == pytest.approx(1.55e-6, rel=1e-12)
    sc = load_scenario(write(tmp_path, BASE), ["devices.wavelength=1.31e-6", "task.test_fraction=2.5e-1"])
    assert sc.device_card.wavelength == pytest.approx(1.31e-6, rel=1e-12)
    assert sc.task.test_fraction == 0.25


def test_preview_is_short_and_cheap_whatever_the_value():
    from photonic_sim.scenarios.errors import preview

    nested: list = [1]
    for _ in range(200):  # 2**200 leaves if expanded: repr() would never finish
        nested = [nested, nested]
    huge = {"k" * 10**6: list(range(10**6)), "b": 2**20000}
    for value in (nested, huge, "x" * 10**7, list(range(10**6)), 2**20000, b"\0" * 10**6, object()):
        text = preview(value)
        assert len(text) <= 40, text
    assert preview("abc") == "'abc'" and preview([1, 2]) == "[1, 2]" and preview(3.5) == "3.5"
    assert preview("y" * 100) == "'" + "y" * 38 + "…"


def test_pde_residual_points_follow_test_points_and_are_checked_at_load(tmp_path):
    """Issue 21 item 16: the hjb20 header's smoke command (test_points 100) failed at run time
    (exit 1: residual_points 1000 > test_points). The default is now min(1000, test_points) and
    an explicit value above test_points is one line at load (exit 2), before anything trains."""
    from photonic_sim.cli import main

    sc = load_scenario("hjb20_tonn", ["task.test_points=100"])
    assert sc.task.residual_points == 100
    assert load_scenario("hjb20_tonn").task.residual_points == 1000
    with pytest.raises(ScenarioError, match="task.residual_points"):
        load_scenario("hjb20_tonn", ["task.test_points=100", "task.residual_points=500"])
    assert main(["run", "hjb20_tonn", "--out", str(tmp_path / "o"), "--set", "task.test_points=100",
                 "--set", "task.residual_points=500"]) == 2
    assert not (tmp_path / "o").exists()
