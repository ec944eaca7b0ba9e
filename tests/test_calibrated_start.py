"""``start: calibrated`` (training recipe key): calibrate the chip, then train in situ from the
initial phases pre-compensated for its static errors.

The tiny TT scenario of test_cli.py on the default chip without insertion loss: the drawn
phases, realised with the card's phase biases U(-1, 1) rad, give readings that hardly resemble
the ideal model's (correlation 0.00-0.42 over seeds 0-4), and the compensated ones give the
ideal model's network back (0.98-0.999). The checks: the start equals ``Calibration.compensate`` of the initial phases
(computed here independently), the calibration's queries are counted in the run, a resume is
bit-identical, ``weight_map`` keeps its own start, and Ray runs are refused.
"""

from __future__ import annotations

import json

import pytest
import torch

from photonic_sim import Experiment
from photonic_sim.cli import main
from test_cli import TINY  # the tiny TT scenario: 4 blocks, 4 steps of sign-RGE, q=4, batch 16

SHORT = ["training.steps=3", "training.eval_every=3", "training.checkpoint_every=0", "chip.insertion_loss=false"]
CALIBRATED = SHORT + ["training.start=calibrated"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("start") / "tiny.yaml"
    path.write_text(TINY)
    return path


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / (a.norm() * b.norm()))


@pytest.mark.parametrize("seed", [0, 2])
def test_the_calibrated_start_realises_the_ideal_models_network(tiny, seed):
    """Readings of 64 test images against the ideal chip's readings of the same initial phases:
    correlation above 0.95 from the calibrated start, below 0.5 from the drawn phases."""
    sets = [f"seed={seed}"]
    exp = Experiment.from_file(tiny, CALIBRATED + sets).build()
    drawn = Experiment.from_file(tiny, SHORT + sets)
    ideal = Experiment.from_file(tiny, SHORT + sets, ideal=True)
    x = drawn.task.data.x_test[:64]
    want = ideal.chip.measure(x, ideal.params)
    assert _correlation(exp.chip.measure(x, exp.params), want) > 0.95
    assert _correlation(drawn.chip.measure(x, drawn.params), want) < 0.5


def test_the_start_is_the_compensated_initial_phases_and_its_queries_are_the_runs(tiny):
    exp = Experiment.from_file(tiny, CALIBRATED).build()
    ref = Experiment.from_file(tiny, SHORT)
    cal = ref.calibrate()
    want = cal.compensate(ref.network, ref.params)
    assert torch.equal(exp.params, want)
    assert exp.start_calibration.ledger == cal.ledger
    result = exp.run()
    per_step = exp.strategy.queries_per_step
    assert result.report["training"]["queries"] == cal.ledger["queries"] + 3 * per_step
    assert result.report["training"]["start"] == "calibrated"
    assert "start" not in Experiment.from_file(tiny, SHORT).run().report["training"]


def test_weight_map_keeps_its_own_start(tiny):
    """A mapped start (here pre-compensated by its own calibration) is not compensated again."""
    exp = Experiment.from_file(tiny, CALIBRATED)
    cal = exp.calibrate()
    mapped, _ = exp.weight_map(steps=2, calibration=cal)
    mapped = mapped.clone()
    exp.build()
    assert exp.start_calibration is None and torch.equal(exp.params, mapped)


def test_a_run_resumed_after_a_calibrated_start_is_bit_identical(tiny, tmp_path, interrupt_at):
    sets = [a for kv in ["training.steps=4", "training.eval_every=2", "training.checkpoint_every=1",
                         "chip.insertion_loss=false", "training.start=calibrated"] for a in ("--set", kv)]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["run", str(tiny), "--out", str(straight), "--no-progress", *sets]) == 0
    interrupt_at(3)
    assert main(["run", str(tiny), "--out", str(resumed), "--no-progress", *sets]) == 1
    interrupt_at(None)
    assert main(["run", str(tiny), "--out", str(resumed), "--no-progress", "--resume", *sets]) == 0

    def final(run_dir):
        return torch.load(run_dir / "checkpoint" / "checkpoint.pt", weights_only=True)["params"]

    assert torch.equal(final(straight), final(resumed))
    a, b = (json.loads((d / "report.json").read_text()) for d in (straight, resumed))
    assert a["training"]["queries"] == b["training"]["queries"] and a["metrics"] == b["metrics"]
    assert a["training"]["ledger"] == b["training"]["ledger"]


def test_ray_runs_start_from_the_drawn_phases_only(tiny):
    exp = Experiment.from_file(tiny, CALIBRATED)
    with pytest.raises(ValueError, match="training.start: random"):
        exp.run(backend="ray", workers=2)
