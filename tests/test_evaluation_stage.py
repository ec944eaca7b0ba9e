"""A stage on the evaluation loss (``staged``'s ``loss: evaluation``, closure kind "evaluation"):
the PINN task's batched evaluation loss, the Trainer starting the stage from the kept phases,
the accept/reject descent never raising the score it is scored by, resume across and inside the
stage, and the refusals (docs/pinn.md, Darcy; scenarios/darcy_tonn.yaml's last stage)."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from photonic_sim import Experiment
from photonic_sim.chip import Chip
from photonic_sim.devices import load_device_card
from photonic_sim.cores.photonic import TONN
from photonic_sim.cores.spec import NetworkSpec, dense, tt
from photonic_sim.training.pinn import PINNTask
from photonic_sim.training.strategies import make_strategy
from photonic_sim.training.trainer import TrainConfig, Trainer

TWO_D = NetworkSpec("two_d", (tt((1, 2), (4, 4), (1, 2, 1), "sin"), dense(16, 1)))
LSB = 2 * math.pi / 256


def _chip(seed=0):
    chip = Chip(TONN(TWO_D), load_device_card("silicon_thermo_optic"), seed=seed, readout="coherent",
                exact_readout=True, dtype=torch.float64)
    return chip, chip.init_phases(torch.Generator().manual_seed(seed + 1))


@pytest.mark.parametrize("eval_loss", ["mean_square", "h_minus_2"])
def test_eval_losses_of_a_batch_of_settings_are_each_settings_evaluation_loss(eval_loss):
    """``eval_losses`` of P settings in one call equals ``evaluate``'s loss of each setting alone
    (the same chip rows, in other chunks: to 1e-12), the "evaluation" closure is that function in
    ONE chip call per call (the batch it is built with is not used) and books P queries."""
    chip, ph = _chip()
    task = PINNTask("darcy", estimator="finite_difference", collocation=4, test_points=50, residual_points=30,
                    eval_loss=eval_loss, eval_grid=8, eval_rows=700)
    settings = torch.stack([ph, ph + 0.05, ph - 0.1])
    batched = task.eval_losses(chip, settings)
    assert batched.shape == (3,) and batched.dtype == torch.float64
    alone = [task.evaluate(chip, s)["loss"] for s in settings]
    assert batched.tolist() == pytest.approx(alone, rel=1e-12, abs=0)
    assert len(set(alone)) == 3
    calls = []
    original = chip.measure
    chip.measure = lambda *a, **k: calls.append(1) or original(*a, **k)
    before = chip.ledger.queries
    closure = task.closure(chip, torch.full((4, 2), 0.5, dtype=torch.float64), kind="evaluation")
    assert torch.equal(closure(settings), batched)
    chunks = len(calls)  # one chip call per chunk of about eval_rows rows, every setting in each
    assert chunks == (1 if eval_loss == "mean_square" else 2)  # 30 points x 5 rows x 3; 64 x 5 x 3
    assert chip.ledger.queries - before == 3 * chunks
    with pytest.raises(ValueError, match="kind: 'adjoint' is not one of"):
        task.closure(chip, None, kind="adjoint")


def _experiment(extra=()):
    """Darcy on the shipped scenario's chip, shortened: 6 ZO + 4 polish + 12 descent steps, an
    8 x 8 evaluation grid, 1 coordinate per descent step (coord_fraction 1e-4: k = 1)."""
    return Experiment.from_file("darcy_tonn", [
        "training.strategy_options.stages.0.steps=6", "training.strategy_options.stages.1.steps=4",
        "training.strategy_options.stages.2.steps=12", "training.strategy_options.stages.2.coord_fraction=0.0001",
        "training.steps=22", "training.eval_every=2", "training.checkpoint_every=2",
        "task.test_points=60", "task.residual_points=10", "task.eval_grid=8", *extra])


def test_the_descent_starts_from_the_kept_phases_and_never_raises_their_score():
    """The third stage's first step measures the kept phases (its base row's loss is the kept
    evaluation's score, to 1e-12), not the polish's last step; with one coordinate per step its
    losses never rise (a move is kept only where it lowers the score), the run keeps the stage's
    last evaluation, and that score is below the one the stage started from."""
    exp = _experiment()
    result = exp.run().train
    hist = result.history
    kept_before = min((h for h in hist if "eval_loss" in h and 0 < h["step"] <= 10), key=lambda h: h["eval_loss"])
    descent = [h["loss"] for h in hist if h["step"] > 10]
    assert len(descent) == 12
    assert descent[0] == pytest.approx(kept_before["eval_loss"], rel=1e-12)
    assert all(b <= a for a, b in zip(descent, descent[1:]))
    assert result.final["kept_step"] == 22 and result.final["loss"] < kept_before["eval_loss"]
    assert result.final["loss"] <= descent[-1]
    assert hist[-1]["queries"] - hist[10]["queries"] == 12 * 3  # rows [θ, θ + δe_c, θ − δe_c] per step


@pytest.mark.parametrize("stop_at", [8, 14])  # before the switch into the descent, inside it
def test_resume_across_and_inside_the_descent_is_bit_identical(tmp_path, stop_at):
    straight = _experiment()
    whole = straight.run(checkpoint_dir=tmp_path / "a").train
    part = _experiment([f"training.steps={stop_at}"])
    part.run(checkpoint_dir=tmp_path / "b")
    resumed = _experiment().run(checkpoint_dir=tmp_path / "b", resume=True).train
    assert torch.equal(whole.phases, resumed.phases) and whole.final == resumed.final
    assert [h["loss"] for h in whole.history] == [h["loss"] for h in resumed.history]


def test_a_run_resumed_with_a_stage_more_goes_on_into_it(tmp_path):
    """A checkpoint written by the two-stage recipe (the polish's steps all run) resumes into a
    third stage added since, as the three-stage run does (its first step is the descent's)."""
    two = _experiment(["training.strategy_options.stages=[{strategy: zo-rge, steps: 6, lr: 0.01, q: 16, mu: 0.03, "
                       "optimizer: adam, schedule: cosine}, {strategy: zo-rge, steps: 4, lr: 0.003, q: 32, "
                       "mu: 0.02454369260617026, dist: rademacher, two_sided: true, optimizer: adam, "
                       "schedule: cosine}]", "training.steps=10"])
    two.run(checkpoint_dir=tmp_path / "two")
    three = _experiment()
    whole = three.run(checkpoint_dir=tmp_path / "three").train
    shutil.copytree(tmp_path / "two", tmp_path / "more")
    resumed = _experiment().run(checkpoint_dir=tmp_path / "more", resume=True).train
    assert torch.equal(whole.phases, resumed.phases) and whole.final == resumed.final


def test_stages_on_the_evaluation_loss_are_refused_where_they_cannot_run():
    """A task without the "evaluation" closure (here a stand-in with batch closures only) is
    refused when the Trainer is built, before any query, not when the stage starts; a strategy
    with its own kind of closure cannot take the evaluation loss; unknown losses are named."""
    chip, ph = _chip()
    stages = [dict(strategy="zo-rge", steps=2, q=2), dict(strategy="mixedtrain", steps=2, loss="evaluation", lr=LSB)]
    staged = make_strategy("staged", ph.clone(), lr=0.01, generator=torch.Generator().manual_seed(0), stages=stages)
    assert staged.closure_kind == "batch" and staged.closure_kinds_needed == ("batch", "evaluation")

    class BatchOnly:
        kind, closure_kinds, eval_loss_label_free = "toy", ("batch",), True

    with pytest.raises(ValueError, match="closure kind: strategy 'staged' needs 'evaluation'; task 'toy' offers"):
        Trainer(chip, BatchOnly(), staged, TrainConfig(steps=4))
    for bad, match in (([dict(strategy="grzo", steps=2, loss="evaluation")], r"stages\[0\]\.loss: 'evaluation' needs "
                        "a strategy with batch closures; 'grzo' measures 'per-example'"),
                       ([dict(strategy="zo-rge", steps=2, loss="eval")], r"stages\[0\]\.loss must be one of")):
        with pytest.raises(ValueError, match=match):
            make_strategy("staged", ph.clone(), lr=0.01, generator=torch.Generator().manual_seed(0), stages=bad)
