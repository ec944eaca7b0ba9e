"""The `photonic-sim` command line: exit codes, one-line errors, run directories, resume,
compare/sweep summaries and the Ray backend (local mode)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from photonic_sim.cli import main

REPO = Path(__file__).resolve().parents[1]

TINY = """\
name: tiny
seed: 0
devices: silicon_thermo_optic
accelerator: tonn_space
training: sign_rge
model:
  name: tiny_tt
  layers:
    - {kind: tt, in_modes: [4, 4, 4], out_modes: [2, 5, 1], ranks: [1, 2, 2, 1], activation: none}
task: {kind: digits}
overrides:
  training: {steps: 4, eval_every: 2, checkpoint_every: 1, eval_batch_size: 512, batch_size: 16,
             strategy_options.q: 4, strategy_options.two_sided: false, early_stopping: null}
"""


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ------------------------------------------------------------------ bad input → exit 2
BAD = {
    "unknown_key": ("seeed: 1\n", "seeed"),
    "wrong_type": ("seed: zero\n", "seed"),
    "out_of_range": ("seed: -4\n", "seed"),
    "unknown_card": ("devices: silicon_thermo_optik\n", "devices"),
    "malformed": ("task: {kind: digits\n", ""),
    "unsafe_tag": ("description: !!python/object/apply:os.system ['echo hacked']\n", "description"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    text, key = BAD[case]
    base = TINY
    field = text.split(":")[0]
    if field in ("seed", "devices", "task", "description") and case != "unknown_key":
        base = "\n".join(line for line in TINY.splitlines() if not line.startswith(field + ":")) + "\n"
    path = tmp_path / f"{case}.yaml"
    path.write_text(base + text)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    line = _err_line(capsys)
    assert path.name in line and key in line
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_missing_file_and_bad_flags(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.yaml" in _err_line(capsys)
    assert main(["run", "quickstart", "--bogus"]) == 2
    assert "--bogus" in _err_line(capsys)
    assert main(["compare", "quickstart", "--strategies", "zo-rgee", "--seeds", "1", "--out", str(tmp_path / "c")]) == 2
    line = _err_line(capsys)
    assert "zo-rgee" in line and "zo-rge" in line
    assert not (tmp_path / "c").exists()
    assert main(["run", "quickstart", "--set", "training.stepz=3", "--out", str(tmp_path / "o")]) == 2
    assert "stepz" in _err_line(capsys)
    assert not (tmp_path / "o").exists()


def test_validate_every_shipped_scenario(capsys):
    files = sorted(str(p) for p in (REPO / "scenarios").glob("*.yaml"))
    if not (REPO.parent / "shared" / "datasets" / "mnist").is_dir():  # the mnist scenarios need the IDX files
        files = [f for f in files if not Path(f).name.startswith("mnist")]
    assert main(["validate", *files]) == 0
    assert f"{len(files)} scenario(s) valid" in capsys.readouterr().out


# ------------------------------------------------------------------ run, --set, resume
def test_run_writes_everything_and_set_overrides(tiny, tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(tiny), "--out", str(out), "--no-progress", "--set", "seed=3",
                 "--set", "training.steps=2"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"scenario.resolved.yaml", "report.json", "metrics.csv", "report.md", "report.html", "figures",
            "checkpoint"} <= names
    report = json.loads((out / "report.json").read_text())
    assert report["seed"] == 3 and report["training"]["steps"] == 2
    # 2 steps of one-sided sign-RGE with q=4: 5 queries per step, evaluation booked apart
    assert report["training"]["queries"] == 2 * 5
    assert 0.0 <= report["metrics"]["final"] <= 1.0
    assert {"training_curve.png", "energy_breakdown.png", "area_breakdown.png", "latency_breakdown.png"} <= \
        {p.name for p in (out / "figures").iterdir()}
    assert not (tmp_path / ".run.work").exists()
    # an existing run directory is not clobbered
    assert main(["run", str(tiny), "--out", str(out), "--no-progress"]) == 2


def _final_phases(run_dir: Path) -> torch.Tensor:
    return torch.load(run_dir / "checkpoint" / "checkpoint.pt", weights_only=True)["params"]


def test_resume_after_interruption_is_bit_identical(tiny, tmp_path, interrupt_at):
    straight = tmp_path / "straight"
    assert main(["run", str(tiny), "--out", str(straight), "--no-progress"]) == 0

    interrupt_at(3)
    resumed = tmp_path / "resumed"
    assert main(["run", str(tiny), "--out", str(resumed), "--no-progress"]) == 1
    assert not resumed.exists() and (tmp_path / ".resumed.work" / "checkpoint.pt").is_file()
    interrupt_at(None)
    assert main(["run", str(tiny), "--out", str(resumed), "--no-progress", "--resume"]) == 0
    assert torch.equal(_final_phases(straight), _final_phases(resumed))
    a = json.loads((straight / "report.json").read_text())
    b = json.loads((resumed / "report.json").read_text())
    assert a["metrics"]["final"] == b["metrics"]["final"]
    assert a["training"]["queries"] == b["training"]["queries"]


STAGED = ('training.strategy=staged',
          'training.strategy_options={"lr": 0.01, "stages": ['
          '{"strategy": "zo-sign-rge", "steps": 3, "q": 4}, '
          '{"strategy": "zo-rge", "steps": 2, "q": 2, "dist": "rademacher", "two_sided": true, '
          '"optimizer": "adam", "schedule": "cosine"}]}')


def test_staged_recipe_runs_its_stages_and_resumes_across_the_switch(tiny, tmp_path, interrupt_at):
    sets = [a for kv in STAGED for a in ("--set", kv)]
    straight = tmp_path / "straight"
    assert main(["run", str(tiny), "--out", str(straight), "--no-progress", *sets]) == 0
    report = json.loads((straight / "report.json").read_text())
    # the recipe's 4 steps: 3 one-sided q 4 steps (5 rows), then 1 two-sided q 2 step (4 rows)
    assert report["training"]["strategy"] == "staged" and report["training"]["queries"] == 3 * 5 + 1 * 4
    interrupt_at(2)  # last checkpoint inside stage 1, so the resumed run crosses into stage 2
    resumed = tmp_path / "resumed"
    assert main(["run", str(tiny), "--out", str(resumed), "--no-progress", *sets]) == 1
    interrupt_at(None)
    assert main(["run", str(tiny), "--out", str(resumed), "--no-progress", "--resume", *sets]) == 0
    assert torch.equal(_final_phases(straight), _final_phases(resumed))


@pytest.mark.parametrize("stages,key", [
    # named as the --set path that would fix it (a list index is a dotted part)
    ('[{"strategy": "fo", "steps": 2}]', "overrides.training.strategy_options.stages.0.strategy:"),
    ('[{"strategy": "zo-rge", "steps": 0}]', "overrides.training.strategy_options.stages.0.steps:"),
    ('[{"strategy": "zo-rge", "steps": 2, "muu": 0.1}]', "overrides.training.strategy_options.stages.0.muu:"),
    ('[]', "overrides.training.strategy_options.stages:"),
])
def test_bad_stage_exits_2_with_one_line_naming_the_key(tiny, tmp_path, capsys, stages, key):
    out = tmp_path / "run"
    assert main(["run", str(tiny), "--out", str(out), "--no-progress", "--set", "training.strategy=staged",
                 "--set", f'training.strategy_options={{"stages": {stages}}}']) == 2
    line = _err_line(capsys)
    assert key in line and "allowed" in line and not out.exists()


def test_report_rerenders(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(tiny), "--out", str(out), "--no-progress", "--set", "training.steps=1"]) == 0
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert "data:image/png;base64" in (out / "report.html").read_text()
    assert main(["report", str(tmp_path)]) == 2


# ------------------------------------------------------------------ sweep / compare / ray
def test_sweep_summary_and_restart_skips_finished_jobs(tiny, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", str(tiny), "--grid", "devices.phase_shifter.bits=4,8", "--out", str(out),
            "--set", "training.steps=1", "--workers", "2"]
    assert main(args) == 0
    rows = json.loads((out / "sweep.json").read_text())
    assert sorted(r["devices.phase_shifter.bits"] for r in rows) == [4, 8]  # numbers stay numbers
    assert all("error" not in r and r["queries"] == 5 for r in rows)
    assert (out / "figures" / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "sweep.md").read_text()
    assert "devices.phase_shifter.bits" in md
    assert main(args) == 0
    rows = json.loads((out / "sweep.json").read_text())
    assert all(r.get("cached") for r in rows)


def test_sweep_over_seed_runs_each_seed_of_the_grid(tiny, tmp_path):
    """``--grid seed=...`` is each job's seed (``--seeds`` more from each), not overwritten by the
    scenario's seed: two grid points are two different runs."""
    out = tmp_path / "sweep"
    assert main(["sweep", str(tiny), "--grid", "seed=3,5", "--out", str(out), "--set", "training.steps=1"]) == 0
    rows = json.loads((out / "sweep.json").read_text())
    assert sorted(r["seed"] for r in rows) == [3, 5]
    assert len({r["job"] for r in rows}) == 2


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. "
                                   "DefaultCPUAllocator: can't allocate memory: you tried to allocate 25600000000 bytes.\n"
                                   "frame #0: c10::Error::Error")])
def test_a_run_out_of_memory_fails_with_one_line_and_exit_1(tiny, tmp_path, monkeypatch, capsys, error):
    """Sizes this machine cannot hold (a task or batch too large for RAM) end the run with exit 1 and
    one line saying so, not a traceback; other RuntimeErrors (bugs) still raise."""
    from photonic_sim.scenarios.experiment import Experiment

    def oom(*args, **kwargs):
        raise error

    monkeypatch.setattr(Experiment, "run", oom)
    capsys.readouterr()
    assert main(["run", str(tiny), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    line = _err_line(capsys)
    assert "out of memory" in line and "tiny.yaml" in line and "frame #0" not in line
    monkeypatch.setattr(Experiment, "run", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        main(["run", str(tiny), "--out", str(tmp_path / "run2"), "--no-progress"])


def test_compare_rows_and_failed_jobs_are_reported(tiny, tmp_path, monkeypatch):
    out = tmp_path / "cmp"
    assert main(["compare", str(tiny), "--strategies", "zo-sign-rge,spsa", "--seeds", "2", "--out", str(out),
                 "--set", "training.steps=1"]) == 0
    rows = json.loads((out / "comparison.json").read_text())
    assert [(r["strategy"], r["seed"]) for r in rows] == [("zo-sign-rge", 0), ("zo-sign-rge", 1), ("spsa", 0), ("spsa", 1)]
    for r in rows:
        assert {"strategy", "seed", "metric", "metric_final", "queries", "training_energy_j",
                "training_latency_s", "wall_s"} <= set(r)
    assert (out / "figures" / "convergence.png").is_file() and "spsa" in (out / "comparison.md").read_text()

    from photonic_sim.scenarios import execute

    def boom(*a, **k):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(execute, "run_scenario", boom)
    out2 = tmp_path / "cmp2"
    assert main(["compare", str(tiny), "--strategies", "spsa", "--seeds", "1", "--out", str(out2)]) == 1
    rows = json.loads((out2 / "comparison.json").read_text())
    assert len(rows) == 1 and "simulated failure" in rows[0]["error"]
    assert "FAILED" in (out2 / "comparison.md").read_text()


def test_ray_backend_local_mode(tiny, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'photonic-sim[ray]')")
    out = tmp_path / "ray"
    assert main(["compare", str(tiny), "--strategies", "zo-sign-rge", "--seeds", "2", "--out", str(out),
                 "--backend", "ray", "--set", "training.steps=1"]) == 0
    rows = json.loads((out / "comparison.json").read_text())
    assert len(rows) == 2 and all("error" not in r and r["queries"] == 5 for r in rows)
    local = tmp_path / "local"
    assert main(["compare", str(tiny), "--strategies", "zo-sign-rge", "--seeds", "2", "--out", str(local),
                 "--set", "training.steps=1"]) == 0
    assert [r["metric_final"] for r in rows] == [r["metric_final"] for r in json.loads((local / "comparison.json").read_text())]


def test_cost_only_scenario(tmp_path):
    out = tmp_path / "cost"
    assert main(["run", str(REPO / "scenarios" / "energy_area_report.yaml"), "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["queries"] == 0 and report["counts"]["mzi_blocked"] > 0
    assert not (out / "checkpoint").exists()  # nothing was trained: no empty checkpoint folder


def test_cost_only_sweep_job_lines_say_what_was_priced(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", str(REPO / "scenarios" / "energy_area_report.yaml"), "--out", str(out),
                 "--grid", "devices.adc.bits=6,8"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip().startswith("job ")]
    assert len(lines) == 2
    for line in lines:
        assert "none=None" not in line and "inference" in line and "MZIs" in line


def test_list(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for word in ("quickstart", "silicon_thermo_optic", "tonn_time", "hybrid", "hjb20"):
        assert word in text




def test_pinn_scenario_runs_and_reports_pde_metrics(tmp_path):
    out = tmp_path / "bs"
    assert main(["run", str(REPO / "scenarios" / "black_scholes_tonn.yaml"), "--out", str(out), "--no-progress",
                 "--set", "training.steps=2", "--set", "training.eval_every=2", "--set", "task.collocation=2",
                 "--set", "task.test_points=200", "--set", "task.residual_points=20"]) == 0
    report = json.loads((out / "report.json").read_text())
    m = report["metrics"]
    assert m["name"] == "relative_l2" and m["higher_is_better"] is False
    assert 0 < m["final"] < 1 and m["mse"] >= 0 and m["residual_rms"] >= 0
    # 2 steps of zo-rge q=16 one-sided: 17 settings per step; the cost fields match a classification run
    assert report["training"]["queries"] == 2 * 17
    assert report["training"]["energy_j"] > 0 and report["training"]["latency_s"] > 0


def test_version_and_help_for_set_and_grid(capsys):
    import photonic_sim

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"photonic-sim {photonic_sim.__version__}"
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "dotted key path" in text and "every combination" in text


@pytest.mark.parametrize("argv", [["list"], ["--help"], ["--version"], ["run", "--help"], ["cost", "--help"]])
def test_fast_start_commands_do_not_import_torch(argv):
    """Issue 21 item 15: --help, --version and list start fast because they never import torch
    (a timing test would be noise on a shared machine; the import is what costs seconds)."""
    code = ("import sys\nfrom photonic_sim.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nassert 'matplotlib' not in sys.modules\n" % argv)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]


def test_run_uses_every_usable_core_unless_told(tmp_path, monkeypatch):
    """``--threads`` defaults to the cores this process may use (its affinity mask); results are
    the same bits for any thread count (tests/test_fused_read.py), so only the speed changes."""
    import os

    import torch

    from photonic_sim.cli import usable_cores

    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    quick = ["--no-progress", "--set", "training.steps=1", "--set", "training.eval_every=1"]
    assert main(["run", str(scenario), "--out", str(tmp_path / "a"), *quick]) == 0
    assert main(["run", str(scenario), "--out", str(tmp_path / "b"), "--threads", "1", *quick]) == 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert usable_cores() == cores and seen == [cores, 1]
    assert main(["run", str(scenario), "--out", str(tmp_path / "c"), "--threads", "0", *quick]) == 2


def test_resume_on_another_kind_of_device_is_refused(tiny, tmp_path, interrupt_at, capsys):
    """A checkpoint records the kind of device its chip ran on (the noise generator's state fits
    only that kind): resuming a run made on "cuda" here (cpu) is one line, exit 2, naming the
    device and the flag that fits, and leaves the checkpoint as it was."""
    interrupt_at(3)
    out = tmp_path / "run"
    assert main(["run", str(tiny), "--out", str(out), "--no-progress"]) == 1
    interrupt_at(None)
    ckpt = tmp_path / ".run.work" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    assert state["chip"]["device"] == "cpu"
    state["chip"]["device"] = "cuda"
    torch.save(state, ckpt)
    before = ckpt.read_bytes()
    capsys.readouterr()
    assert main(["run", str(tiny), "--out", str(out), "--no-progress", "--resume"]) == 2
    line = _err_line(capsys)
    assert "checkpoint.pt: device: made on cuda, this run is on cpu" in line and "--device cuda" in line
    assert ckpt.read_bytes() == before and not out.exists()
