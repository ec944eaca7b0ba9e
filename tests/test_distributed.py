"""One ZO run spread over Ray replicas (photonic_sim.scenarios.distributed) and the chip's
sharded measurement it rests on (Chip.shard): the same bits as one process."""

from __future__ import annotations

import pytest
import torch

from photonic_sim import Experiment
from photonic_sim.scenarios.distributed import COUNTS, ExchangeStats, ExperimentBuilder, run_distributed, shard_bounds

TINY = """\
name: tiny
seed: 0
devices: silicon_thermo_optic
accelerator: tonn_space
training: zo_rge
model:
  name: tiny_tt
  layers:
    - {kind: tt, in_modes: [4, 4, 4], out_modes: [2, 5, 1], ranks: [1, 2, 2, 1], activation: none}
task: {kind: digits}
overrides:
  training: {steps: 5, eval_every: 3, eval_batch_size: 512, batch_size: 16, strategy_options.q: 3,
             early_stopping: null}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("dist") / "tiny.yaml"
    path.write_text(TINY)
    return path


def _chip_and_batch(tiny):
    exp = Experiment.from_file(tiny)
    _ = exp.params  # init_phases sets the network's block gains: build as a run does
    x = exp.task.data.x_train[:8]
    gen = torch.Generator().manual_seed(3)
    ph = exp.params + 0.1 * torch.randn(7, exp.params.shape[0], generator=gen, dtype=torch.float64)
    return exp.chip, x, ph


# ------------------------------------------------------------------ Chip.shard (no Ray)
@pytest.mark.parametrize("fused", [True, False])
def test_shards_concatenate_to_the_full_call(tiny, fused, monkeypatch):
    if not fused:  # the torch path: every shard measures the whole call and keeps its rows
        monkeypatch.setattr("photonic_sim.chip._fused_read.usable", lambda *t: False)
    full_chip, x, ph = _chip_and_batch(tiny)
    full = full_chip.measure(x, ph)
    after = full_chip.state_dict()
    parts, counts = [], {}
    chips = []
    for a, b in [(0, 3), (3, 3), (3, 7)]:  # each shard on its own replica, as the workers do
        chip, _, _ = _chip_and_batch(tiny)
        with chip.shard(a, b) as mine:
            parts.append(chip.measure(x, ph))
        for key, value in mine.items():
            counts[key] = counts.get(key, 0) + value
        chips.append(chip)
    assert torch.equal(torch.cat(parts), full)
    for chip in chips:  # every replica's state is the full call's
        state = chip.state_dict()
        assert torch.equal(state["generator"], after["generator"])
        assert torch.equal(state["programmed"], after["programmed"])
        for key in ("calls", "queries", "phase_settings", "samples"):
            assert state["ledger"][key] == after["ledger"][key]
    for key in ("dac_conversions", "adc_conversions", "clipped"):
        assert counts[key] == after["ledger"][key] > 0 or key == "clipped" and counts[key] == after["ledger"][key]
    # the next call reads the same on a replica as on the full chip
    assert torch.equal(chips[1].measure(x, ph[:2]), full_chip.measure(x, ph[:2]))


def test_shard_bad_use_is_one_line(tiny):
    chip, x, ph = _chip_and_batch(tiny)
    with pytest.raises(ValueError, match="shard: need 0 <= start <= stop"):
        with chip.shard(3, 2):
            pass
    with chip.shard(0, 9):
        with pytest.raises(ValueError, match=r"shard: rows 0\.\.9"):
            chip.measure(x, ph)  # 7 settings only
    with chip.shard(0, 1):
        with pytest.raises(ValueError, match="shard"):
            chip.measure(x, ph[0])  # a single setting


def test_shard_bounds_partition():
    for p in (0, 1, 5, 7, 64):
        for w in (1, 2, 3, 5):
            rows = [r for k in range(w) for r in range(*shard_bounds(p, w, k))]
            assert rows == list(range(p))


# ------------------------------------------------------------------ Ray replicas
@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'photonic-sim[ray]')")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(tiny):
    return Experiment.from_file(tiny).run()


def _same_run(a, b) -> None:
    def strip(history):
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in history]

    assert torch.equal(a.phases, b.phases)
    assert strip(a.history) == strip(b.history)
    assert a.train.ledger == b.train.ledger and a.train.eval_ledger == b.train.eval_ledger
    assert a.report["metrics"] == b.report["metrics"]


def test_two_ray_workers_give_the_single_process_bits(tiny, ray_local, reference):
    result = Experiment.from_file(tiny).run(backend="ray", workers=2)
    _same_run(result, reference)


@pytest.mark.slow  # ~30 s: a second Ray run, and a replica rebuilt and replayed
def test_a_worker_killed_mid_run_is_replaced_and_the_run_is_identical(tiny, ray_local, reference):
    stats = ExchangeStats()
    killed = []

    def kill(done: int, actors) -> None:
        if done == 2 and not killed:  # after the 2nd exchange: step 3 is interrupted
            ray_local.kill(actors[1])
            killed.append(done)

    run = run_distributed(ExperimentBuilder(Experiment.from_file(tiny).scenario), workers=2, stats=stats,
                          after_exchange=kill)
    assert killed and stats.restarts == 1
    _same_run(run, reference)
    assert stats.calls == 5  # one exchange per step (q = 3 two-sided: P = 6 settings)
    assert stats.bytes == 5 * 8 * (6 + 3 * 2 + 2 * (6 + 3))


# ------------------------------------------------------------------ PDE tasks: residual rows shared out
PDE_RUNS = {
    # zo-gn's residual-vector closure on the scenario's grid (the separable finite differences);
    # the causal weights and the odd-symmetry images need every row
    "burgers_gn": ("burgers_tonn", ["training.steps=3", "training.eval_every=3", "training.checkpoint_every=0",
                                    "task.collocation=12", "task.test_points=64", "task.residual_points=8",
                                    "training.strategy_options.q=5"]),
    # ZO-RGE's loss closure through the sparse-grid Stein estimator, the adaptive sampler (which
    # records every row's residuals) and a noisy readout (noise streams numbered by setting)
    "black_scholes_rge": ("black_scholes_tonn", ["training.steps=3", "training.eval_every=3",
                                                 "training.checkpoint_every=0", "task.collocation=6",
                                                 "task.test_points=64", "task.residual_points=8",
                                                 "task.resample_pool=64", "task.exact_readout=false",
                                                 "training.strategy_options.q=3"]),
}


SHARD_CASES = {**PDE_RUNS,
               # Monte-Carlo Stein (its own generator, drawn once per call on every replica), 21 inputs
               "hjb_monte_carlo": ("hjb20_small_tonn", ["task.collocation=4", "task.test_points=16", "task.residual_points=8",
                                                        "task.estimator=monte_carlo", "task.mc_samples=8", "task.eval_level=null"]),
               "darcy": ("darcy_tonn", ["task.collocation=4", "task.test_points=16", "task.residual_points=8"]),
               # the separable model's finite differences on a grid of 5 x 5 points (factor rows only)
               "burgers_grid": ("burgers_tonn", ["task.sampling=grid", "task.collocation=5", "task.test_points=16",
                                                 "task.residual_points=8"])}


@pytest.mark.parametrize("name", sorted(SHARD_CASES))
def test_a_shard_of_pde_residuals_is_those_rows_of_the_whole_call(name):
    """No Ray: the residual rows a replica computes under its shard (empty ones included, as a
    replaying replica measures) are the whole call's rows bit for bit, and the chip's state
    follows the whole call."""
    scenario, sets = SHARD_CASES[name]

    def replica():
        exp = Experiment.from_file(scenario, sets)
        gen = torch.Generator().manual_seed(5)
        ph = exp.params + 0.02 * torch.randn(5, exp.params.shape[0], generator=gen, dtype=exp.params.dtype)
        return exp, exp.task.sample_batch(torch.Generator().manual_seed(1)), ph

    exp, x, ph = replica()
    full = exp.task.residuals(exp.chip, x, ph)
    assert full.shape == (5, x.shape[0])
    parts = []
    for a, b in [(0, 2), (2, 2), (2, 5), (5, 5)]:
        other, x2, ph2 = replica()
        with other.chip.shard(a, b):
            parts.append(other.task.residuals(other.chip, x2, ph2))
        assert torch.equal(other.chip.state_dict()["generator"], exp.chip.state_dict()["generator"])
    assert torch.equal(torch.cat(parts), full)


@pytest.mark.parametrize("name", sorted(PDE_RUNS))
def test_pde_runs_share_the_residual_rows_and_give_the_single_process_bits(name, ray_local):
    scenario, sets = PDE_RUNS[name]
    reference = Experiment.from_file(scenario, sets).run()
    stats = ExchangeStats()
    run = run_distributed(ExperimentBuilder(Experiment.from_file(scenario, sets).scenario), workers=2, stats=stats)
    _same_run(run, reference)
    steps, n = 3, int(next(s for s in sets if s.startswith("task.collocation=")).split("=")[1])
    task = Experiment.from_file(scenario, sets).scenario.task
    points = n ** 2 if task.sampling == "grid" else n  # (the Burgers scenario trains on an n x n grid)
    assert stats.calls == steps  # one exchange per step: the step's P settings, split between the two
    p = reference.report["training"]["queries"] // steps
    rows = p * points  # residual rows r [P, N] travel, not P losses: the shards in, the whole to each replica
    assert stats.bytes == steps * 8 * (rows + len(COUNTS) * 2 + 2 * (rows + len(COUNTS)))


# ------------------------------------------------------------------ the CLI
@pytest.mark.parametrize("argv, key", [
    (["--backend", "ray", "--workers", "0"], "--workers"),
    (["--workers", "2"], "--workers/--ray-address"),
    (["--backend", "ray", "--resume"], "--backend ray"),
    (["--backend", "ray", "--ray-address", "127.0.0.1:1"], "--ray-address"),  # nothing listens there
])
def test_run_backend_usage_errors_are_one_line(tiny, tmp_path, capsys, argv, key):
    pytest.importorskip("ray")
    from photonic_sim.cli import main

    assert main(["run", str(tiny), "--out", str(tmp_path / "run"), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # ~30 s: Ray workers started by the CLI
def test_cli_run_on_ray_writes_the_single_process_report(tiny, tmp_path, reference):
    import json

    pytest.importorskip("ray")
    from photonic_sim.cli import main

    assert main(["run", str(tiny), "--out", str(tmp_path / "run"), "--backend", "ray", "--workers", "2"]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["metrics"] == json.loads(json.dumps(reference.report["metrics"]))
    assert report["training"]["ledger"] == reference.train.ledger
