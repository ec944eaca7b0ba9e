"""Trainer, tasks, data loaders, baselines and the strategy comparison (small, fast runs).

Query expectations are derived from each strategy's documented batch layout (strategies
package): one-sided RGE q+1 rows, CGE over k coordinates k+1, SPSA 2q, FLOPS q+1,
MixedTrain 2k+1 with k = round(coord_fraction · n_active), fo 1; hybrid q+1 until its plateau
detector switches, then n_active+1.
"""
import gzip
import math
import statistics
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from photonic_sim import Experiment
from photonic_sim.chip import Chip
from photonic_sim.cores.spec import NetworkSpec, tt
from photonic_sim.devices import load_device_card
from photonic_sim.training.compare import compare, summarize
from photonic_sim.training.data import Dataset, load_digits, load_mnist, read_idx
from photonic_sim.training.strategies import STRATEGIES
from photonic_sim.training.trainer import CHECKPOINT_FILE, TrainConfig, Trainer

CARD = load_device_card("silicon_thermo_optic")
TINY = NetworkSpec("tiny", (tt((8, 8), (2, 5), 1),))  # 64 → 10 on two 8×8 blocks
MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"


def tiny_data(n_train=120, n_test=60):
    d = load_digits(seed=0)
    return Dataset("digits-subset", d.x_train[:n_train], d.y_train[:n_train], d.x_test[:n_test],
                   d.y_test[:n_test], 10)


def setup(name, seed=0, chip_cls=Chip, **extra):
    """Trainer unit tests: chip, task and strategy from the builder (``Experiment`` on a small
    data subset, the strategy's options from :data:`OPTIONS`); ``chip_cls`` (a Chip subclass
    that injects faults) replaces the built chip's class. The tests build the Trainer itself."""
    exp = Experiment(devices=CARD, accelerator="tonn_space", model=TINY, task=tiny_data(), seed=seed,
                     training={"strategy": name, "strategy_options": {**OPTIONS[name], **extra}, "steps": 10,
                               "batch_size": 16, "eval_batch_size": 32, "logit_scale": 10.0})
    if chip_cls is not Chip:
        exp.chip.__class__ = chip_cls
    return exp.chip, exp.task, exp.strategy


OPTIONS = {
    "zo-rge": dict(lr=0.02, q=4, optimizer="adam"),
    "zo-sign-rge": dict(lr=0.01, q=4),
    "zo-cge": dict(lr=0.05, coords_per_step=6),
    "hybrid": dict(lr=0.01, q=4, patience=1, tol=10.0),  # switches to CGE after step 2
    "spsa": dict(lr=0.02, q=3),
    "flops": dict(lr=0.01, q=5),
    "mixedtrain": dict(lr=0.05, coord_fraction=0.02),
    "l2ight-sigma": dict(lr=0.02, q=4),
    "tt-subspace": dict(lr=0.02, q=4),
    "fo": dict(lr=0.02),
    "adjoint": dict(lr=0.02),
    "node-perturbation": dict(lr=0.02, q=2),  # TINY has no hidden layer: 3 queries per step
    "forward-forward": dict(lr=0.02, q=2),
    "quzo": dict(lr=0.02, q=3),  # two-sided: 2q rows
    "grzo": dict(lr=0.02, group=8),  # two-sided, one example per row: 2·group rows of one sample
    "zo-gn": dict(lr=1.0, q=4, nnz=8),  # q + 1 rows of residual vectors
    "staged": dict(lr=0.02, stages=[dict(strategy="zo-rge", steps=2, q=4),  # then 2q rows per step
                                    dict(strategy="zo-rge", steps=9, q=3, dist="rademacher", two_sided=True)]),
}


def expected_queries(name, strategy, steps):
    c, n = strategy.cfg, strategy.n_active
    if name == "hybrid":  # two sign-RGE steps, then CGE over every coordinate
        return 2 * (c["q"] + 1) + (steps - 2) * (n + 1)
    if name == "staged":  # two one-sided q 4 steps, then two-sided q 3
        return 2 * (4 + 1) + (steps - 2) * 2 * 3
    if name in ("zo-rge", "zo-sign-rge", "flops", "l2ight-sigma", "tt-subspace", "zo-gn"):
        per = c["q"] + 1
    elif name == "zo-cge":
        per = c["coords_per_step"] + 1
    elif name in ("spsa", "forward-forward", "quzo"):
        per = 2 * c["q"]
    elif name == "grzo":
        per = 2 * c["group"]
    elif name in ("adjoint", "node-perturbation"):  # forward, adjoint and interference passes
        per = 3
    elif name == "mixedtrain":
        per = 2 * max(1, round(c["coord_fraction"] * n)) + 1
    else:
        per = 1
    return steps * per


def test_strategy_options_cover_every_strategy():
    assert set(OPTIONS) == set(STRATEGIES)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_trainer_smoke_every_strategy(name):
    chip, task, strategy = setup(name)
    steps = 4
    res = Trainer(chip, task, strategy, TrainConfig(steps=steps, eval_every=2)).run()
    assert res.stopped == "completed"
    assert all(math.isfinite(h["loss"]) for h in res.history)
    assert res.ledger["queries"] == expected_queries(name, strategy, steps)
    ff = name == "forward-forward"  # a query reads the positive and the negative batch
    per_query = 1 if name == "grzo" else 16 * (2 if ff else 1)  # grzo: one example per setting
    assert res.ledger["samples"] == res.ledger["queries"] * per_query
    assert res.eval_ledger["queries"] == 2 * 2  # two evaluations × ⌈60/32⌉ batches
    assert 0 <= res.final["metric"] <= 1 and [h["step"] for h in res.history] == [1, 2, 3, 4]


@pytest.mark.parametrize("name", ["fo", "zo-sign-rge"])
def test_training_lowers_the_loss(name):
    """Mean training loss over the last 8 of 40 steps is below that of the first 8."""
    chip, task, strategy = setup(name, lr=0.05 if name == "fo" else 0.02, **({"q": 16} if name != "fo" else {}))
    res = Trainer(chip, task, strategy, TrainConfig(steps=40, eval_every=40)).run()
    losses = [h["loss"] for h in res.history]
    assert statistics.fmean(losses[-8:]) < statistics.fmean(losses[:8]) - 0.05


class NaNChip(Chip):
    """Readings turn NaN from the ``bad``-th training call on (training calls carry a batch of
    settings; evaluation measures one vector)."""

    bad = 3

    def measure(self, inputs, phases=None, *, differentiable=False):
        out = super().measure(inputs, phases, differentiable=differentiable)
        if phases is not None and phases.ndim == 2:
            self.training_calls = getattr(self, "training_calls", 0) + 1
            if self.training_calls >= self.bad:
                return out * math.nan
        return out


def test_divergence_guard_keeps_last_good_phases():
    chip, task, strategy = setup("zo-sign-rge", chip_cls=NaNChip)
    res = Trainer(chip, task, strategy, TrainConfig(steps=10, eval_every=5)).run()
    assert res.stopped.startswith("diverged at step 3") and "last good" in res.stopped
    ref_chip, ref_task, ref_strategy = setup("zo-sign-rge")
    ref = Trainer(ref_chip, ref_task, ref_strategy, TrainConfig(steps=2, eval_every=5)).run()
    assert torch.equal(res.phases, ref.phases)
    assert torch.isfinite(res.phases).all() and math.isfinite(res.final["metric"])
    assert len(res.history) == 2


class Interrupted(Exception):
    pass


class CrashChip(Chip):
    """Raises on the ``crash_at``-th training call (a killed run)."""

    crash_at = 5

    def measure(self, inputs, phases=None, *, differentiable=False):
        if phases is not None and phases.ndim == 2:
            self.training_calls = getattr(self, "training_calls", 0) + 1
            if self.training_calls == self.crash_at:
                raise Interrupted
        return super().measure(inputs, phases, differentiable=differentiable)


@pytest.mark.parametrize("name", ["hybrid", "zo-rge", "fo"])
def test_resume_is_bit_identical(name, tmp_path):
    """Checkpoint every 2 steps, crash during step 5, resume from step 4: same final phases,
    history and ledgers as the uninterrupted run (CPU)."""
    cfg = TrainConfig(steps=7, eval_every=3, checkpoint_every=2, seed=4)
    full = Trainer(*setup(name), cfg).run()

    class Crash(CrashChip):
        pass

    if name == "fo":  # fo measures one vector per step: count those calls instead
        Crash.measure = lambda self, x, phases=None, *, differentiable=False: (
            _crash_fo(self, x, phases, differentiable))
    chip, task, strategy = setup(name, chip_cls=Crash)
    with pytest.raises(Interrupted):
        Trainer(chip, task, strategy, cfg, checkpoint_dir=tmp_path).run()
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    resumed = Trainer(*setup(name), cfg, checkpoint_dir=tmp_path).run(resume=True)
    assert torch.equal(resumed.phases, full.phases)
    assert resumed.ledger == full.ledger and resumed.eval_ledger == full.eval_ledger
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    assert resumed.final == full.final


def _crash_fo(chip, x, phases, differentiable):
    if differentiable:
        chip.training_calls = getattr(chip, "training_calls", 0) + 1
        if chip.training_calls == 5:
            raise Interrupted
    return Chip.measure(chip, x, phases, differentiable=differentiable)


def test_resume_without_checkpoint_raises(tmp_path):
    with pytest.raises(ValueError, match="no (such )?checkpoint"):
        Trainer(*setup("zo-rge"), TrainConfig(steps=2), checkpoint_dir=tmp_path).run(resume=True)


def test_early_stopping_on_plateau():
    """min_delta 1.0: no accuracy can improve by more, so only the first evaluation counts as
    better; with patience 2 and eval_every 2 the run stops at step 6."""
    chip, task, strategy = setup("zo-sign-rge")
    res = Trainer(chip, task, strategy, TrainConfig(steps=50, eval_every=2, patience=2, min_delta=1.0)).run()
    assert res.stopped.startswith("early stop at step 6")
    assert len(res.history) == 6 and res.ledger["queries"] == 6 * 5


def test_evaluation_is_kept_out_of_the_training_ledger():
    """fo measures one vector per step, so evaluations (which program the same vector) could
    hide phase settings; the training ledger must not depend on how often we evaluate."""
    a = Trainer(*setup("fo"), TrainConfig(steps=6, eval_every=1)).run()
    b = Trainer(*setup("fo"), TrainConfig(steps=6, eval_every=100)).run()
    noise_free = lambda led: {k: v for k, v in led.items() if k != "clipped"}  # noqa: E731 (clipping is noise)
    assert noise_free(a.ledger) == noise_free(b.ledger)
    assert a.ledger["queries"] == 6 and a.ledger["phase_settings"] == 6
    assert a.eval_ledger["queries"] == 6 * 2 and b.eval_ledger["queries"] == 2


def test_same_seed_same_run():
    a = Trainer(*setup("spsa", seed=3), TrainConfig(steps=3, seed=3)).run()
    b = Trainer(*setup("spsa", seed=3), TrainConfig(steps=3, seed=3)).run()
    assert torch.equal(a.phases, b.phases) and a.final == b.final


# ------------------------------------------------------------------ data
def _write_idx(path, array, gz):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_loader(tmp_path, gz):
    n = 50
    labels = (np.arange(n) * 7 % 10).astype(np.uint8)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = labels * 20  # the label is readable from pixel 0
    images[:, 27, 27] = 255
    suffix = ".gz" if gz else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, gz)
    assert read_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}").tolist() == labels.tolist()
    ds = load_mnist(tmp_path, seed=1, test_fraction=0.2)
    assert (len(ds.x_train), len(ds.x_test)) == (40, 10) and ds.num_features == 784
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert torch.equal(torch.round(x[:, 0] * 255 / 20).long(), y)
        assert torch.all(x[:, -1] == 1.0) and x.min() >= 0
    again = load_mnist(tmp_path, seed=1, test_fraction=0.2)
    assert torch.equal(again.y_test, ds.y_test)
    other = load_mnist(tmp_path, seed=2, test_fraction=0.2)
    assert not torch.equal(other.y_test, ds.y_test)
    assert sorted(torch.cat([ds.y_train, ds.y_test]).tolist()) == sorted(labels.tolist())


def test_idx_errors(tmp_path):
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(ValueError, match="header declares"):
        read_idx(short)
    with pytest.raises(ValueError, match="no IDX pair"):
        load_mnist(tmp_path / "..")
    with pytest.raises(ValueError, match="does not exist"):
        load_mnist(tmp_path / "nope")


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"MNIST IDX files not present at {MNIST_DIR}")
def test_real_mnist_10k_split():
    ds = load_mnist(MNIST_DIR, seed=0)
    assert (len(ds.x_train), len(ds.x_test)) == (8000, 2000)
    assert ds.x_train.max() == 1.0 and ds.x_train.min() == 0.0
    counts = torch.bincount(torch.cat([ds.y_train, ds.y_test]), minlength=10)
    assert counts.sum() == 10000 and counts.min() > 800  # every digit is well represented


def test_digits_split_is_seeded():
    a, b = load_digits(seed=0), load_digits(seed=0)
    assert torch.equal(a.x_test, b.x_test) and len(a.x_train) + len(a.x_test) == 1797
    assert abs(len(a.x_test) - 0.25 * 1797) < 1


# ------------------------------------------------------------------ comparison and baselines
TINY_OPTIONS = {"zo-sign-rge": {"lr": 0.01, "q": 3}, "fo": {"lr": 0.01}}


def tiny_experiment(strategy, seed, **training):
    """The TINY network on digits through the builder (3 steps, batch 16)."""
    recipe = {"strategy": strategy, "strategy_options": TINY_OPTIONS.get(strategy, {}), "steps": 3, "batch_size": 16,
              "eval_every": 3, "eval_batch_size": 512, "logit_scale": 10.0, **training}
    return Experiment(devices=CARD, accelerator="tonn_space", model=TINY, task="digits", training=recipe, seed=seed)


def tiny_run(strategy, seed):
    """``compare``'s build_run: one TINY run → its comparison row (module level: it pickles)."""
    return tiny_experiment(strategy, seed).run().row()


def test_compare_rows_and_summary():
    rows = compare(tiny_run, ["zo-sign-rge", "no-such-strategy"], [0, 1])
    assert [(r["strategy"], r["seed"]) for r in rows] == [
        ("zo-sign-rge", 0), ("zo-sign-rge", 1), ("no-such-strategy", 0), ("no-such-strategy", 1)]
    good, bad = rows[:2], rows[2:]
    for r in good:
        assert r["metric"] == "accuracy" and r["queries"] == 3 * 4 and "error" not in r
        assert r["training_energy_j"] > 0 and r["training_latency_s"] > 0
        assert r["history"][-1] == [12, r["metric_final"], r["training_energy_j"]]  # J so far = the report's
    assert all("unknown strategy" in r["error"] and math.isnan(r["metric_final"]) for r in bad)
    assert good[0]["metric_final"] != good[1]["metric_final"] or good[0]["history"] != good[1]["history"]
    summary = {s["strategy"]: s for s in summarize(rows)}
    finals = [r["metric_final"] for r in good]
    assert summary["zo-sign-rge"]["metric_mean"] == pytest.approx(statistics.fmean(finals))
    assert summary["zo-sign-rge"]["metric_std"] == pytest.approx(statistics.stdev(finals))
    assert summary["no-such-strategy"]["failed"] == 2 and math.isnan(summary["no-such-strategy"]["metric_mean"])


def test_compare_process_pool_matches_serial():
    serial = compare(tiny_run, ["zo-sign-rge"], [0])
    pooled = compare(tiny_run, ["zo-sign-rge", "nope"], [0], workers=2)
    assert pooled[0]["metric_final"] == serial[0]["metric_final"]
    assert pooled[0]["history"] == serial[0]["history"]
    assert "error" in pooled[1]


def test_weight_map_exact_on_ideal_chip_and_degraded_by_bias():
    """Coherent readout: the mapped phases realise the offline weights exactly, so the ideal
    chip scores what the offline model scored; the biased chip (default card) scores lower."""
    exp = tiny_experiment("fo", 0, readout="coherent", batch_size=32)
    phases, offline = exp.weight_map(lr=0.05, steps=60)
    assert not offline.in_situ and offline.report["training"]["steps"] == 60
    ideal = Chip(exp.network, CARD, ideal=True, readout="coherent", dtype=torch.float64)
    assert exp.task.evaluate(ideal, phases)["metric"] == pytest.approx(offline.report["metrics"]["final"], abs=1e-12)
    assert offline.report["metrics"]["final"] > 0.3  # chance is 0.1 (the tiny rank-1 network, 60 SGD steps)
    assert exp.chip.readout == "coherent" and not exp.chip.ideal
    # measured: 0.365 offline / on the ideal chip, 0.167 on the biased chip
    assert exp.task.evaluate(exp.chip, phases)["metric"] < offline.report["metrics"]["final"] - 0.15


def test_zo_without_adam_tonn_and_dense_rows():
    """bench_classification --part digits-sgd's recipe (two-sided Gaussian, SGD, cosine) through
    the builder, 2 steps at q 8: 2q queries per step on both networks; the dense ONN holds 3.3x
    the controls of the TONN, so the same queries cost it more than twice the training energy;
    the same pieces and seed give the same row."""
    sgd = {"lr": 0.01, "q": 8, "two_sided": True, "mu": 0.05, "optimizer": "sgd", "schedule": "cosine"}
    rows = {}
    for acc in ("tonn_space", "dense_onn"):
        exp = Experiment(devices=CARD, accelerator=acc, model="digits", task="digits", seed=0,
                         training={"strategy": "zo-sign-rge", "strategy_options": sgd, "steps": 2, "batch_size": 64,
                                   "eval_every": 2, "logit_scale": 10.0})
        rows[acc] = exp.run().row()
        assert rows[acc]["queries"] == 2 * 2 * 8 and rows[acc]["in_situ"]
    assert rows["dense_onn"]["training_energy_j"] > 2 * rows["tonn_space"]["training_energy_j"]


def test_eval_at_start_records_query_zero_and_leaves_training_bit_identical():
    """Issue 21 item 13: the metric curve starts at query 0. The starting evaluation is booked in
    the evaluation ledger and restores the chip (noise generator included), so the trained
    phases, training ledger and later evaluations equal those of the run without it."""
    cfg = dict(steps=4, eval_every=2)
    with_start = Trainer(*setup("zo-rge"), TrainConfig(**cfg, eval_at_start=True)).run()
    plain = Trainer(*setup("zo-rge"), TrainConfig(**cfg)).run()
    first = with_start.history[0]
    assert first["step"] == 0 and first["queries"] == 0 and first["loss"] is None
    assert 0.0 <= first["metric"] <= 1.0
    assert torch.equal(with_start.phases, plain.phases)
    assert with_start.ledger == plain.ledger
    assert [r["metric"] for r in with_start.history[1:] if "metric" in r] == \
        [r["metric"] for r in plain.history if "metric" in r]
    assert with_start.eval_ledger["queries"] > plain.eval_ledger["queries"]


def test_experiment_report_carries_the_initial_metric():
    from photonic_sim import Experiment

    result = Experiment.from_file("quickstart", ["training.steps=2", "training.eval_every=2",
                                                 "training.checkpoint_every=0"]).run()
    assert result.history[0]["queries"] == 0
    assert result.report["metrics"]["initial"] == result.history[0]["metric"]


# ------------------------------------------------------------------ keep="lowest_eval_loss"
def pinn_setup():
    """A 6-step Darcy PINN (the shipped scenario, a few points): chip, task and strategy."""
    exp = Experiment.from_file("darcy_tonn", [
        "training.strategy_options.stages.0.steps=4", "training.strategy_options.stages.1.steps=2",
        "training.steps=6", "task.test_points=40", "task.residual_points=4", "task.collocation=2"])
    return exp.chip, exp.task, exp.strategy


SCRIPT = {1: math.nan, 2: 0.5, 3: 0.2, 4: 0.3, 5: 0.25, 6: 0.4}  # evaluation loss by step: step 3 is kept


def scripted_trainer(cfg, checkpoint_dir=None, crash_at=None):
    """A Trainer on :func:`pinn_setup` whose evaluation loss at step k is ``SCRIPT[k]`` (the
    rest of the evaluation is the task's own), recording the phases after every step in
    ``trainer.after`` and raising Interrupted at the start of step ``crash_at``."""
    chip, task, strategy = pinn_setup()
    trainer = Trainer(chip, task, strategy, cfg, checkpoint_dir=checkpoint_dir)
    own = task.evaluate
    task.evaluate = lambda chip, phases: {**own(chip, phases), "loss": SCRIPT[trainer.step]}
    trainer.after = {}

    def hook(closure, strategy):
        trainer.after[trainer.step] = strategy.params.detach().clone()
        if trainer.step + 1 == crash_at:
            raise Interrupted
        return closure

    trainer.closure_hook = hook
    return trainer


def test_keep_lowest_eval_loss_returns_the_phases_and_evaluation_of_the_lowest_loss():
    """Known answer: evaluation losses nan, 0.5, 0.2, 0.3, 0.25, 0.4 at steps 1..6 keep step 3
    (a non-finite loss is never kept): the result's phases are those after step 3, its final
    evaluation is step 3's (metric as in the history row), and the training trajectory (every
    loss, the ledger, the strategy's own phases) is the keep="last" run's, bit for bit."""
    cfg = dict(steps=6, eval_every=1, seed=1)
    kept = scripted_trainer(TrainConfig(**cfg, keep="lowest_eval_loss"))
    res = kept.run()
    last = scripted_trainer(TrainConfig(**cfg)).run()
    assert [h["loss"] for h in res.history] == [h["loss"] for h in last.history]
    assert res.ledger == last.ledger and res.history[-1]["metric"] == last.final["metric"]
    assert res.final["kept_step"] == 3 and res.final["loss"] == 0.2
    assert res.final["metric"] == res.history[2]["metric"] != last.final["metric"]
    assert torch.equal(res.phases, kept.after[3]) and not torch.equal(res.phases, last.phases)
    assert torch.equal(kept.strategy.params, last.phases) and "kept_step" not in last.final  # trajectory kept


def test_keep_survives_a_resume(tmp_path):
    """Checkpoint every 2 steps, crash at the start of step 5, resume: the kept phases (step 3,
    before the checkpoint at step 4) and final evaluation are the uninterrupted run's."""
    cfg = TrainConfig(steps=6, eval_every=1, checkpoint_every=2, seed=1, keep="lowest_eval_loss")
    full = scripted_trainer(cfg).run()
    with pytest.raises(Interrupted):
        scripted_trainer(cfg, tmp_path, crash_at=5).run()
    resumed = scripted_trainer(cfg, tmp_path).run(resume=True)
    assert resumed.final == full.final and resumed.final["kept_step"] == 3
    assert torch.equal(resumed.phases, full.phases)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


def test_keep_needs_a_label_free_evaluation_loss():
    """A classification task's evaluation loss uses the test labels: keep="lowest_eval_loss"
    is refused (one line naming keep and the allowed value); unknown keep values too."""
    with pytest.raises(ValueError, match=r"keep: 'lowest_eval_loss' .*test labels \(allowed: 'last'"):
        Trainer(*setup("zo-rge"), TrainConfig(steps=2, keep="lowest_eval_loss"))
    with pytest.raises(ValueError, match=r"keep: 'best' is not one of \('last', 'lowest_eval_loss'\)"):
        TrainConfig(keep="best")


def test_keep_reaches_the_report_from_the_recipe():
    """``training.keep`` in a scenario: the report's final metric is the kept evaluation's (the
    history row of ``kept_step``, an integer), and the summary names the kept step."""
    from photonic_sim.reports.summary import numbers

    exp = Experiment.from_file("darcy_tonn", [
        "training.strategy_options.stages.0.steps=6", "training.strategy_options.stages.1.steps=2",
        "training.steps=8", "training.eval_every=2", "task.test_points=40", "task.residual_points=4",
        "training.keep=lowest_eval_loss"])
    res = exp.run()
    m = res.report["metrics"]
    evals = {r["step"]: r for r in res.train.history if r["step"] and "metric" in r}
    assert sorted(evals) == [2, 4, 6, 8] and isinstance(m["kept_step"], int)
    assert m["kept_step"] == min(evals, key=lambda k: evals[k]["eval_loss"])
    assert m["final"] == evals[m["kept_step"]]["metric"]
    assert dict(numbers(res.report))["kept phases"] == f"step {m['kept_step']} of 8 (lowest evaluation loss)"
