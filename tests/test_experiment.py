"""photonic_sim.Experiment, the one assembly path: from a scenario and from Python objects alike,
its report written by the reports layer as it is, training from Python, and the CLI's `run`
giving the same numbers (short runs: a few steps each)."""
import json
import subprocess
import sys

import pytest
import torch

import photonic_sim
from photonic_sim import Experiment, ExperimentResult
from photonic_sim.accelerators.cards import load_accelerator_card
from photonic_sim.cores.spec import preset
from photonic_sim.devices import load_device_card
from photonic_sim.reports import read_history, validate_report
from photonic_sim.scenarios import ScenarioError, load_scenario, load_training_recipe
from photonic_sim.scenarios.execute import run_scenario

SHORT = ["training.steps=3", "training.eval_every=3", "training.checkpoint_every=0"]


def same_numbers(a: dict, b: dict) -> None:
    """Two reports agree on everything but wall-clock times and versions."""
    def strip(report):
        out = json.loads(json.dumps(report))
        out.pop("wall_s", None)
        out.pop("versions", None)
        out["training"].pop("wall_s", None)
        return out

    assert strip(a) == strip(b)


def test_from_scenario_and_from_python_objects_are_bit_identical():
    scenario = load_scenario("quickstart", SHORT)
    from_file = Experiment.from_scenario(scenario).run()
    python = Experiment(
        devices=load_device_card("silicon_thermo_optic"), accelerator=load_accelerator_card("tonn_space"),
        model=preset("digits"), task={"kind": "digits", "test_fraction": 0.25},
        training=load_training_recipe("zo_rge", overrides={"steps": 3, "eval_every": 3, "checkpoint_every": 0,
                                                           "batch_size": 32}),
        seed=0, name="quickstart").run()
    by_name = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model="digits", task="digits",
                         training=scenario.recipe, seed=0, name="quickstart").run()
    for other in (python, by_name):
        assert torch.equal(other.phases, from_file.phases)
        assert other.history == from_file.history
        same_numbers(other.report, from_file.report)
    assert from_file.report["training"]["queries"] == 3 * 2 * 16  # two-sided q 16
    other_seed = Experiment.from_file("quickstart", sets=[*SHORT, "seed=1"]).run()
    assert not torch.equal(other_seed.phases, from_file.phases)


def test_built_pieces_follow_the_cards_and_the_seed_rule():
    exp = Experiment.from_file("quickstart", sets=SHORT)
    assert exp.chip.num_phases == exp.network.num_phases == exp.params.numel()
    assert exp.readout == "intensity"  # neither recipe nor accelerator card names one: the device card's
    assert type(exp.network).__name__ == "TONN"
    assert torch.equal(exp.params, exp.chip.init_phases(torch.Generator().manual_seed(0)))
    assert exp.build() is exp and exp.trainer.strategy is exp.strategy and exp.trainer.chip is exp.chip
    dense = Experiment.from_file("quickstart", sets=[*SHORT, "accelerator=dense_onn"])
    assert type(dense.network).__name__ == "DenseONN" and dense.network.num_phases > exp.network.num_phases


def test_report_validates_and_writes_through_reports_as_it_is(tmp_path):
    result = Experiment.from_file("quickstart", sets=SHORT).run()
    assert isinstance(result, ExperimentResult)
    validate_report(result.report)
    assert set(result.report["versions"]) == {"photonic_sim", "torch", "numpy", "python"}
    out = result.write(tmp_path / "run")
    written = json.loads((out / "report.json").read_text())
    assert written == json.loads(json.dumps(result.report))
    assert [r["step"] for r in read_history(out / "metrics.csv")] == [0, 1, 2, 3]  # step 0: the starting phases at query 0
    assert (out / "report.md").is_file() and (out / "scenario.resolved.yaml").is_file()
    with pytest.raises(FileExistsError):
        result.write(out)


def test_cost_only_scenario_has_a_valid_report(tmp_path):
    result = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model="hjb20", task="none",
                        training="zo_rge").run()
    validate_report(result.report)
    assert result.report["training"]["queries"] == 0 and result.report["counts"]["mzi_blocked"] > 0
    result.write(tmp_path / "cost")


def test_training_from_python_beats_chance_on_digits():
    """150 steps of the quickstart recipe (two-sided Adam-RGE, q 16) from Python on the default
    (lossy) chip: accuracy on the 450 test digits, measured through the noisy chip, at least 10
    points above chance (10 %)."""
    result = Experiment.from_file("quickstart", sets=["training.steps=150", "training.eval_every=150",
                                                      "training.checkpoint_every=0"]).run()
    assert result.report["metrics"]["name"] == "accuracy"
    assert result.report["metrics"]["final"] >= 0.10 + 0.10
    assert result.in_situ and result.report["training"]["status"] == "completed"


def test_cli_run_and_the_builder_give_the_same_report(tmp_path):
    from photonic_sim.cli import main

    out = tmp_path / "cli"
    assert main(["run", "quickstart", "--out", str(out), "--no-progress", *sum((["--set", s] for s in SHORT), [])]) == 0
    cli = json.loads((out / "report.json").read_text())
    mine = Experiment.from_file("quickstart", sets=SHORT).run()
    assert cli["metrics"] == mine.report["metrics"]
    for key in ("queries", "energy_j", "latency_s", "breakdown", "strategy", "steps", "stopped", "ledger"):
        assert cli["training"][key] == mine.report["training"][key], key
    record = run_scenario(load_scenario("quickstart", SHORT))  # the thin wrapper the CLI and jobs call
    same_numbers(record.report, mine.report)
    assert record.history == mine.history


def test_weight_map_then_in_situ_from_the_mapped_phases():
    """Experiment.weight_map: offline first-order training on the ideal twin (not in situ, no
    chip training queries), then this experiment starts from the mapped phases."""
    exp = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model="digits", task="digits",
                     training={"strategy": "zo-sign-rge", "strategy_options": {"lr": 0.01, "q": 2}, "steps": 1,
                               "logit_scale": 10.0}, seed=0)
    phases, offline = exp.weight_map(lr=0.01, steps=2)
    assert not offline.in_situ and offline.report["training"]["strategy"] == "fo"
    assert torch.equal(exp.params, phases)
    result = exp.run()
    assert result.in_situ and result.report["training"]["queries"] == 3  # one-sided q + 1, nothing else booked
    with pytest.raises(RuntimeError, match="weight_map"):
        exp.weight_map()


@pytest.mark.parametrize("kwargs, key", [
    (dict(model="no_such_preset"), "model"),
    (dict(task={"kind": "images"}), "task.kind"),
    (dict(task={"kind": "digits", "test_fraction": 2}), "task.test_fraction"),
    (dict(training={"strategy": "zo-rge", "steps": 0}), "training.steps"),
    (dict(training={"strategy": "zo-rgee", "steps": 2}), "training.strategy"),
    (dict(training={"strategy": "zo-rge", "strategy_options": {"qq": 4}, "steps": 2}), "training.strategy_options.qq"),
    (dict(seed=-1), "seed"),
    (dict(model="hjb20"), "model"),  # 21 -> 1 features do not fit digits
])
def test_bad_python_pieces_give_one_line_naming_the_key(kwargs, key):
    base = dict(devices="silicon_thermo_optic", accelerator="tonn_space", model="digits", task="digits",
                training="zo_rge", seed=0)
    with pytest.raises(ScenarioError) as exc:
        Experiment(**{**base, **kwargs})
    assert exc.value.key == key and "\n" not in str(exc.value)


def test_import_photonic_sim_stays_light():
    """``photonic_sim.Experiment`` is exported lazily: importing the package does not import torch."""
    code = "import sys, photonic_sim; assert 'torch' not in sys.modules; print(sorted(photonic_sim.__all__))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(sorted(photonic_sim.__all__))
    assert all(getattr(photonic_sim, name).__doc__ for name in photonic_sim.__all__)
    import photonic_sim.training as training

    assert all(getattr(training, name).__doc__ for name in training.__all__ if not name.isupper())


def test_staged_polish_continues_the_first_stage_through_the_trainer():
    """What bench_pinn's polished rows rely on, through the builder (Black-Scholes, tiny): a
    ``staged`` run evaluated after its first stage equals, bit for bit, the run of that stage
    alone; the experiment's trainer then continues into the second stage, which moves the
    phases and books its own queries (one-sided q + 1 per step, then 2q per two-sided step)."""
    from dataclasses import replace

    from photonic_sim.cores.spec import NetworkSpec, dense, tt

    two_d = NetworkSpec("two_d", (tt((1, 2), (4, 2), (1, 2, 1), "sin"), dense(8, 1)))
    stage1 = {"strategy": "zo-rge", "lr": 0.01, "q": 4, "mu": 0.01}
    stage2 = {"strategy": "zo-rge", "lr": 0.003, "q": 3, "mu": 0.02, "dist": "rademacher", "two_sided": True}
    task = {"kind": "pde", "pde": "black_scholes", "collocation": 2, "test_points": 20, "residual_points": 2,
            "level": 2, "exact_readout": True}

    def experiment(strategy, options):
        return Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model=two_d,
                          task=task, training={"strategy": strategy, "strategy_options": options, "steps": 2}, seed=0)

    plain = experiment("zo-rge", {k: v for k, v in stage1.items() if k != "strategy"}).run()
    staged = experiment("staged", {"lr": 0.01, "stages": [dict(stage1, steps=2), dict(stage2, steps=1)]})
    first = staged.run()
    assert first.report["metrics"] == plain.report["metrics"] and torch.equal(first.phases, plain.phases)
    staged.trainer.config = replace(staged.trainer.config, steps=3, eval_every=3)
    polished = staged.trainer.run()
    assert not torch.equal(polished.phases, plain.phases)
    assert polished.ledger["queries"] == 2 * (4 + 1) + 2 * 3


def test_variant_of_a_scenario():
    exp = Experiment.from_file("quickstart", sets=[*SHORT, "variants={six_bit: {devices.phase_shifter.bits: 6}}"])
    six = exp.variant("six_bit")
    assert six.scenario.variant == "six_bit" and six.device_card.phase_shifter.bits == 6
    assert exp.device_card.phase_shifter.bits == 8
    with pytest.raises(ScenarioError, match="no variant"):
        exp.variant("nine_bit")


def test_run_prices_heater_energy_from_the_programmed_phases():
    """Issue 21 item 14: the heater energy of a run follows the phases it programmed (power law
    P = P_π·φ/π), not a mean phase of π: the phase-shifter energy is the mean-π price scaled by
    mean(φ)/π, with Σ phases folded into [0, π] and electronic biases left out."""
    import math

    from photonic_sim.accelerators import training_cost
    from photonic_sim.scenarios.experiment import programmed_phases

    exp = Experiment.from_file("quickstart", ["training.steps=2", "training.eval_every=2",
                                              "training.checkpoint_every=0"])
    result = exp.run()
    net = exp.network
    programmed = programmed_phases(net, result.phases)
    assert programmed.shape == (int(net.mask("phase").sum()),)
    sigma = net.mask("S")[net.mask("phase")].numpy()
    assert programmed.min() >= 0 and programmed.max() < 2 * math.pi
    assert programmed[sigma].max() <= math.pi
    at_pi = training_cost(exp.accelerator_card, exp.spec, exp.device_card, result.report["training"]["ledger"])
    heater = result.report["training"]["breakdown"]["energy_j"]["phase_shifters"]
    expected = at_pi["breakdown"]["energy_j"]["phase_shifters"] * programmed.mean() / math.pi
    assert heater == pytest.approx(expected, rel=1e-9)
    assert abs(programmed.mean() - math.pi) > 0.05  # the test can tell the two prices apart


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device here (none is lent to this project's CPU machines); runs where one is")
def test_cuda_path_runs_and_agrees_with_the_cpu_on_an_ideal_chip():
    """The torch path on a GPU: an ideal chip (no noise to draw) reads what the CPU reads to
    float32 rounding, and a short noisy run spends the same queries and ends finite."""
    cpu = Experiment.from_file("quickstart", SHORT, ideal=True)
    gpu = Experiment.from_file("quickstart", SHORT, ideal=True, torch_device="cuda")
    x = torch.rand(8, cpu.chip.in_features, generator=torch.Generator().manual_seed(0))
    want = cpu.chip.measure(x, cpu.params)
    got = gpu.chip.measure(x.to("cuda"), gpu.params.to("cuda")).cpu()
    assert torch.allclose(got.to(want.dtype), want, rtol=1e-4, atol=1e-5)
    run_cpu = Experiment.from_file("quickstart", SHORT).run()
    run_gpu = Experiment.from_file("quickstart", SHORT, torch_device="cuda").run()
    assert run_gpu.report["training"]["queries"] == run_cpu.report["training"]["queries"]
    assert 0.0 <= run_gpu.report["metrics"]["final"] <= 1.0


def _own_data(n_train=96, n_test=48):
    """A user's own classification data: 16 features in [0, 1], 4 classes that differ in which
    quarter of the features is bright (a problem the chip can learn in a few steps)."""
    from photonic_sim.training.data import Dataset

    gen = torch.Generator().manual_seed(3)

    def split(n):
        y = torch.randint(0, 4, (n,), generator=gen)
        x = 0.2 * torch.rand(n, 16, generator=gen, dtype=torch.float64)
        for c in range(4):
            x[y == c, 4 * c: 4 * c + 4] += 0.8
        return x, y

    (xa, ya), (xb, yb) = split(n_train), split(n_test)
    return Dataset("quarters", xa, ya, xb, yb, 4)


def test_own_dataset_from_python_trains_and_is_recorded_in_the_report(tmp_path):
    """``Experiment(task=Dataset(...))``: a classification task on the user's tensors; the report
    names it (task kind ``dataset``, sizes, SHA-256 of the tensors) and validates; 80 steps of
    sign-RGE on a 16 → 4 network end well above chance (25 %) on its 48 test points (measured:
    22.9 % at step 0, 100 % after 80 steps)."""
    from photonic_sim.cores.spec import NetworkSpec, dense

    data = _own_data()
    spec = NetworkSpec("own", (dense(16, 4),))
    exp = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model=spec, task=data,
                     training={"strategy": "zo-sign-rge", "strategy_options": {"lr": 0.02, "q": 16},
                               "steps": 80, "batch_size": 32, "eval_batch_size": 48}, seed=1)
    assert exp.task.data is data
    result = exp.run()
    validate_report(result.report)
    task = result.report["task"]
    assert task["kind"] == "dataset" and task["name"] == "quarters"
    assert (task["in_features"], task["classes"], task["train_size"], task["test_size"]) == (16, 4, 96, 48)
    changed = _own_data()
    changed.x_test[0, 0] += 0.01  # one value differs: another identity
    assert Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model=spec, task=changed,
                      training="zo_rge").scenario.task.sha256 != task["sha256"]
    assert result.report["metrics"]["final"] >= 0.25 + 0.25
    result.write(tmp_path / "own")


@pytest.mark.parametrize("change, words", [
    (dict(x_train=torch.full((8, 16), 2.0, dtype=torch.float64)), "[-1, 1]"),
    (dict(y_test=torch.full((48,), 7)), "labels 0 .. 3"),
    (dict(y_train=torch.zeros(5, dtype=torch.int64)), "shapes"),
    (dict(num_classes=1), "num_classes"),
    (dict(x_test=torch.zeros(48, 15, dtype=torch.float64)), "shapes"),
])
def test_bad_own_dataset_is_one_line_naming_task(change, words):
    import dataclasses

    data = dataclasses.replace(_own_data(), **change)
    if "x_train" in change:
        data = dataclasses.replace(data, y_train=torch.zeros(8, dtype=torch.int64))
    from photonic_sim.cores.spec import NetworkSpec, dense

    with pytest.raises(ScenarioError) as exc:
        Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model=NetworkSpec("own", (dense(16, 4),)),
                   task=data, training="zo_rge")
    assert exc.value.key == "task" and words in str(exc.value) and "\n" not in str(exc.value)


def test_own_dataset_must_fit_the_network():
    with pytest.raises(ScenarioError) as exc:
        Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model="digits", task=_own_data(),
                   training="zo_rge")
    assert exc.value.key == "model" and "16 -> 4" in str(exc.value)


def test_adjoint_on_the_lossy_chip_warns_and_on_the_lossless_chip_does_not():
    """The in-situ adjoint's interference pass assumes unitary meshes: building it on a chip that
    simulates path-dependent insertion loss (the scenario default) warns once, naming the key that
    turns the loss off; the lossless chip and the ZO strategies build silently."""
    import warnings

    with pytest.warns(UserWarning, match="chip.insertion_loss: false"):
        Experiment.from_file("quickstart", sets=["training=adjoint"]).strategy
    for sets in (["training=adjoint", "chip.insertion_loss=false"], ["training=zo_rge"]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Experiment.from_file("quickstart", sets=sets).strategy


def test_the_cli_prints_a_library_warning_as_one_line(tmp_path, capsys):
    from photonic_sim.cli import main

    out = tmp_path / "adj"
    sets = ["training=adjoint", "training.steps=1", "training.eval_every=1", "training.checkpoint_every=0"]
    assert main(["run", "quickstart", "--out", str(out), "--no-progress", *sum((["--set", s] for s in sets), [])]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and err[0].startswith("photonic-sim: warning: strategy 'adjoint'"), err
