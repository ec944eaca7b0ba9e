"""Run lifecycle and integrity (issue 21): data-only checkpoints, job identity by resolved
inputs, resume refusals, the --out lock and probe, diverged runs, orphan-free workers,
compare over variants, uncut piped tables."""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_cli import REPO, TINY, _err_line

from photonic_sim.cli import main
from photonic_sim.reports.outdir import OutDir, OutDirError
from photonic_sim.training import trainer as trainer_mod
from photonic_sim.training.trainer import CHECKPOINT_FILE, CheckpointError, read_checkpoint

QUICK = ["--no-progress", "--set", "training.steps=2", "--set", "training.eval_every=2"]


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _tree(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (hidden ones too), files with size and mtime: to see that nothing was written."""
    return {str(p.relative_to(root)): () if p.is_dir() else (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in root.rglob("*")}


def _interrupt_at(monkeypatch, step: int) -> None:
    original = trainer_mod.Trainer._record

    def interrupt(self, row, t0):
        original(self, row, t0)
        if self.step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer_mod.Trainer, "_record", interrupt)


# ------------------------------------------------------------------ 1. checkpoints are data only
class _Evil:
    """Unpickling this calls os.mkdir(marker): what a crafted checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _tamper(kind: str, path: Path, marker: Path) -> None:
    good = path.read_bytes()
    if kind == "code_in_torch_zip":
        torch.save({"step": 1, "params": _Evil(marker)}, path)
    elif kind == "code_in_raw_pickle":
        path.write_bytes(pickle.dumps(_Evil(marker)))
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "not_a_checkpoint":
        torch.save([1, 2, 3], path)
    elif kind == "missing_key":
        state = torch.load(path, weights_only=True)
        del state["data_gen"]
        torch.save(state, path)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(scenario, run directory) of one finished 2-step tiny run, shared by the module."""
    root = tmp_path_factory.mktemp("finished")
    (root / "tiny.yaml").write_text(TINY)
    assert main(["run", str(root / "tiny.yaml"), "--out", str(root / "run"), *QUICK]) == 0
    return root / "tiny.yaml", root / "run"


@pytest.mark.parametrize("kind", ["code_in_torch_zip", "code_in_raw_pickle", "truncated", "garbage",
                                  "not_a_checkpoint", "missing_key"])
def test_bad_checkpoint_is_refused_with_one_line_and_runs_no_code(kind, finished, tmp_path, capsys):
    tiny, run = finished
    out = tmp_path / "run"
    shutil.copytree(run, out)
    ckpt = out / "checkpoint" / CHECKPOINT_FILE
    marker = tmp_path / "marker-created-by-unpickling"
    _tamper(kind, ckpt, marker)
    capsys.readouterr()
    before = _tree(tmp_path)
    assert main(["run", str(tiny), "--out", str(out), "--resume", *QUICK]) == 2
    line = _err_line(capsys)
    assert str(ckpt) in line and "allowed" in line and "Traceback" not in line
    assert not marker.exists()  # the pickle's code never ran
    assert _tree(tmp_path) == before  # nothing written, no work directory left


def test_checkpoint_holds_plain_finite_data_and_loads_weights_only(finished, tmp_path):
    state = read_checkpoint(finished[1] / "checkpoint" / CHECKPOINT_FILE)
    assert state["step"] == 2 and state["seed"] == 0

    def leaves(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                yield from leaves(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                yield from leaves(v)
        else:
            yield obj

    kinds = {type(x) for x in leaves(state)}
    assert kinds <= {torch.Tensor, int, float, str, bool, type(None)}, kinds
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "nope.pt")


def test_saving_a_non_plain_strategy_state_is_refused(tiny, tmp_path, monkeypatch):
    """A strategy whose state_dict holds an object (not tensors/numbers/strings) cannot be
    checkpointed: weights_only loading would refuse it later, so saving fails at once."""
    from photonic_sim.scenarios import load_scenario
    from photonic_sim.scenarios.execute import run_scenario

    scenario = load_scenario(tiny, ["training.steps=1"])
    original = trainer_mod.Trainer._state

    def state_with_object(self):
        return {**original(self), "strategy": {"where": Path("/tmp")}}

    monkeypatch.setattr(trainer_mod.Trainer, "_state", state_with_object)
    with pytest.raises(TypeError, match="strategy.where: a PosixPath"):
        run_scenario(scenario, checkpoint_dir=tmp_path / "work")
    assert not (tmp_path / "work" / CHECKPOINT_FILE).exists()


# ------------------------------------------------------------------ 2. job identity = resolved inputs
def _compare(tiny, out, capsys, *extra) -> tuple[list[dict], str]:
    capsys.readouterr()
    assert main(["compare", str(tiny), "--strategies", "zo-sign-rge", "--seeds", "1", "--out", str(out),
                 "--set", "training.steps=1", *extra]) == 0
    err = capsys.readouterr().err
    return json.loads((out / "comparison.json").read_text()), err


def test_editing_the_scenario_or_its_card_reruns_the_job_and_reuse_is_said(tiny, tmp_path, capsys):
    card = tmp_path / "my_card.yaml"
    card.write_text((REPO / "devices" / "silicon_thermo_optic.yaml").read_text())
    tiny.write_text(TINY.replace("devices: silicon_thermo_optic", "devices: ./my_card.yaml"))
    out = tmp_path / "cmp"
    first, err = _compare(tiny, out, capsys)
    assert not first[0].get("cached") and "reused" not in err
    again, err = _compare(tiny, out, capsys)  # same inputs: reused, and said on the terminal
    assert again[0]["cached"] and again[0]["job"] == first[0]["job"]
    reused = [line for line in err.splitlines() if "reused" in line]
    assert len(reused) == 1 and first[0]["job"] in reused[0]
    # the scenario file changes (a bigger batch): a new job, run again
    tiny.write_text(tiny.read_text().replace("batch_size: 16", "batch_size: 32"))
    edited, err = _compare(tiny, out, capsys)
    assert not edited[0].get("cached") and "reused" not in err and edited[0]["job"] != first[0]["job"]
    # a card it uses changes (same path, same --set strings): run again
    text = card.read_text()
    assert text.count("bits: {value: 8, unit: bits") >= 1
    card.write_text(text.replace("bits: {value: 8, unit: bits", "bits: {value: 6, unit: bits", 1))
    carded, err = _compare(tiny, out, capsys)
    assert not carded[0].get("cached") and "reused" not in err
    assert carded[0]["job"] not in (first[0]["job"], edited[0]["job"])


# ------------------------------------------------------------------ 3. resume with other inputs
def test_resume_with_another_seed_or_scenario_is_refused(tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_at(monkeypatch, 2)
    assert main(["run", str(tiny), "--out", str(out), "--no-progress"]) == 1
    monkeypatch.undo()
    work = tmp_path / ".run.work"
    assert (work / CHECKPOINT_FILE).is_file()
    capsys.readouterr()
    before = _tree(tmp_path)
    assert main(["run", str(tiny), "--out", str(out), "--no-progress", "--resume", "--set", "seed=5"]) == 2
    line = _err_line(capsys)
    assert "seed" in line and "5" in line and "allowed" in line
    assert main(["run", str(tiny), "--out", str(out), "--no-progress", "--resume",
                 "--set", "training.batch_size=8"]) == 2
    line = _err_line(capsys)
    assert "differs" in line and str(tiny) in line
    assert _tree(tmp_path) == before  # refused: the interrupted run's checkpoint is still there
    assert main(["run", str(tiny), "--out", str(out), "--no-progress", "--resume"]) == 0
    assert not work.exists()  # the hidden work directory is removed after a resume too
    assert json.loads((out / "report.json").read_text())["seed"] == 0


# ------------------------------------------------------------------ 4. one command per --out
def test_second_run_into_a_locked_out_gets_one_line_at_once(tiny, tmp_path, monkeypatch, capsys):
    from photonic_sim.scenarios.experiment import Experiment

    calls = []
    monkeypatch.setattr(Experiment, "run", lambda *a, **k: calls.append(a))  # what `run` trains with
    out = tmp_path / "run"
    with OutDir(out):  # another holder of the same output directory
        t0 = time.perf_counter()
        assert main(["run", str(tiny), "--out", str(out), *QUICK]) == 2
        assert time.perf_counter() - t0 < 5
        line = _err_line(capsys)
        assert "in use" in line and str(out) in line and f"pid {os.getpid()}" in line
        with pytest.raises(OutDirError, match="in use"):
            OutDir(out).acquire()
        out.mkdir()
        (out / "report.json").write_text("{}")
        assert main(["report", str(out)]) == 2  # no re-render while another command holds it
        assert "in use" in _err_line(capsys)
        (out / "report.json").unlink()
        out.rmdir()
    assert not calls and not out.exists()
    assert not (tmp_path / ".run.work").exists()  # released: the lock file is gone too


def test_lock_held_by_another_process(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom photonic_sim.reports.outdir import OutDir\n"
         "o = OutDir(sys.argv[1]); o.acquire(); print('locked', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["compare", str(tiny), "--strategies", "spsa", "--seeds", "1", "--out", str(out)]) == 2
        line = _err_line(capsys)
        assert "in use" in line and f"pid {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    with OutDir(out):  # the kernel dropped the dead holder's lock
        pass


# ------------------------------------------------------------------ 5. output location found before training
def _bad_out(case: str, tmp_path: Path) -> Path:
    if case == "proc":
        return Path("/proc/photonic-sim-test/run")
    if case == "sys":
        return Path("/sys/photonic-sim-test/run")
    if case == "dangling_symlink":
        (tmp_path / "link").symlink_to(tmp_path / "missing-target")
        return tmp_path / "link"
    if case == "symlink_to_file":
        (tmp_path / "file").write_text("x")
        (tmp_path / "link").symlink_to(tmp_path / "file")
        return tmp_path / "link"
    if case == "name_too_long":
        return tmp_path / ("r" * 250)  # fits NAME_MAX (255), but the hidden work sibling does not
    if case == "component_too_long":
        return tmp_path / ("d" * 300) / "run"
    if case == "read_only_dir":
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o555)
        return tmp_path / "ro" / "run"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["proc", "sys", "dangling_symlink", "symlink_to_file", "name_too_long",
                                  "component_too_long", "read_only_dir"])
def test_bad_output_location_is_found_before_training(case, tiny, tmp_path, monkeypatch, capsys):
    if case == "read_only_dir" and os.geteuid() == 0:
        pytest.skip("root writes into read-only directories; test_read_only_directory_as_an_unprivileged_user runs it without privileges")
    from photonic_sim.scenarios.experiment import Experiment

    calls = []
    monkeypatch.setattr(Experiment, "run", lambda *a, **k: calls.append(a))  # what `run` trains with
    out = _bad_out(case, tmp_path)
    before = _tree(tmp_path)
    assert main(["run", str(tiny), "--out", str(out), *QUICK]) == 2
    line = _err_line(capsys)
    assert line.startswith("photonic-sim run: --out: ") and "allowed" in line and len(line) < 400
    assert not calls  # found before training
    assert _tree(tmp_path) == before  # nothing written, no hidden directory left


def _cli_subprocess(args: list[str], *, prefix: list[str] = ()):
    """The CLI in a fresh process (optionally under ``prefix``, e.g. ``unshare``); a long run
    (20 000 steps) would take minutes, so an answer within the timeout was found before training."""
    code = "import sys; from photonic_sim.cli import main; raise SystemExit(main(sys.argv[1:]))"
    return subprocess.run([*prefix, sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120)


LONG = ["--no-progress", "--set", "training.steps=20000"]


def _unshare_works() -> bool:
    try:
        probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("unshare") is None or not _unshare_works(),
                    reason="needs unshare(1) with user and mount namespaces to mount a read-only file system")
@pytest.mark.parametrize("where", ["inside", "mount_point"])
def test_read_only_file_system_is_found_before_training(where, tiny, tmp_path):
    """A real read-only mount (tmpfs mounted ro in a private mount namespace; read-only for
    root too): ``--out`` inside it, or the mount point itself (an existing empty directory)."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    out = mnt / "run" if where == "inside" else mnt
    script = 'mount -t tmpfs -o ro none "$1" && shift && exec "$@"'
    before = _tree(tmp_path)
    proc = _cli_subprocess(["run", str(tiny), "--out", str(out), *LONG],
                           prefix=["unshare", "-rm", "sh", "-c", script, "sh", str(mnt)])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-300:]
    assert len(lines) == 1 and lines[0].startswith("photonic-sim run: --out: ") and "allowed" in lines[0]
    assert "Traceback" not in proc.stderr
    assert _tree(tmp_path) == before  # no work directory or temporary sibling left beside the mount


@pytest.mark.skipif(os.geteuid() == 0 and not _unshare_works(),
                    reason="as root, needs unshare(1) with user namespaces to run without privileges")
def test_read_only_directory_as_an_unprivileged_user(tiny, tmp_path):
    """chmod 555 stops only processes without privileges (root writes anyway): as root, the CLI
    runs in a user namespace as uid 1000, which has no capabilities; otherwise as this user."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    prefix = ["unshare", "--map-user=1000", "--map-group=1000"] if os.geteuid() == 0 else []
    try:
        for out in (ro / "run", ro):
            before = _tree(tmp_path)
            proc = _cli_subprocess(["run", str(tiny), "--out", str(out), *LONG], prefix=prefix)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 2, proc.stderr[-300:]
            assert len(lines) == 1 and lines[0].startswith("photonic-sim run: --out: ") and "allowed" in lines[0]
            assert _tree(tmp_path) == before
    finally:
        ro.chmod(0o755)


def test_symlink_to_an_empty_directory_is_followed(tiny, tmp_path):
    target = tmp_path / "elsewhere" / "target"
    target.mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(target)
    assert main(["run", str(tiny), "--out", str(link), *QUICK]) == 0
    assert link.is_symlink() and (target / "report.json").is_file()
    hidden = [p.name for p in (tmp_path / "elsewhere").iterdir() if p.name.startswith(".")]
    assert hidden == [] and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_run_leaves_no_hidden_directory(tiny, tmp_path, monkeypatch, capsys):
    original = trainer_mod.Trainer._record

    def fail(self, row, t0):
        original(self, row, t0)
        if self.step == 2:  # after two checkpoints were written to the work directory
            raise ValueError("simulated failure")

    monkeypatch.setattr(trainer_mod.Trainer, "_record", fail)
    out = tmp_path / "run"
    assert main(["run", str(tiny), "--out", str(out), "--no-progress"]) == 1
    assert "simulated failure" in _err_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


# ------------------------------------------------------------------ 8. a diverged run is a failed run
def test_huge_learning_rate_diverges_exit_1_one_line_and_report_says_so(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(tiny), "--out", str(out), *QUICK, "--set", "training.strategy_options.lr=1.0e+300"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not finite" in err[0]
    step = int(re.search(r"diverged at step (\d+): ", err[0])[1])
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["status"] == "diverged"
    assert report["training"]["stopped"].startswith(f"diverged at step {step}: ")
    assert report["training"]["steps"] == step - 1
    ckpt = out / "checkpoint" / CHECKPOINT_FILE
    if ckpt.exists():  # only a good step's state, never the diverged one
        state = read_checkpoint(ckpt)
        assert state["step"] < step and bool(torch.isfinite(state["params"]).all())
    assert not (tmp_path / ".run.work").exists()


def test_divergence_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    """The losses turn NaN at step 3: the run directory keeps the step-2 checkpoint, all finite."""
    from photonic_sim.training.tasks import ClassificationTask

    original = ClassificationTask.closure
    calls = {"n": 0}

    def closure(self, chip, batch, differentiable=False):
        inner = original(self, chip, batch, differentiable=differentiable)
        calls["n"] += 1
        step = calls["n"]

        def poisoned(phases):
            losses = inner(phases)
            return losses * math.nan if step >= 3 else losses

        return poisoned

    monkeypatch.setattr(ClassificationTask, "closure", closure)
    out = tmp_path / "run"
    assert main(["run", str(tiny), "--out", str(out), "--no-progress"]) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["status"] == "diverged" and report["training"]["stopped"].startswith("diverged at step 3")
    state = read_checkpoint(out / "checkpoint" / CHECKPOINT_FILE)
    assert state["step"] == 2
    assert trainer_mod._finite({k: v for k, v in state.items() if k not in ("best", "history", "last_eval")})


def test_a_diverged_job_fails_the_compare(tiny, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(tiny), "--strategies", "zo-sign-rge", "--seeds", "1", "--out", str(out),
                 "--set", "training.steps=3", "--set", "training.strategy_options.lr=1.0e+300"]) == 1
    jobs = [line for line in capsys.readouterr().err.splitlines() if line.startswith("  job ")]
    assert len(jobs) == 1 and "DIVERGED (diverged at step" in jobs[0]
    row = json.loads((out / "comparison.json").read_text())[0]
    assert row["status"] == "diverged" and row["stopped"].startswith("diverged at step")


# ------------------------------------------------------------------ 9. no orphan workers
def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmd:
            kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _torch_loaded(pid: int) -> bool:
    try:
        return "libtorch_cpu" in (Path("/proc") / str(pid) / "maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_the_parent_is_killed(tiny, tmp_path):
    """A real process tree (a compare with two spawn workers, kill -9 of the parent): a few
    seconds of interpreter and torch start-up are the price of testing what users hit."""
    cmd = [sys.executable, "-m", "photonic_sim.cli", "compare", str(tiny), "--strategies", "zo-sign-rge",
           "--seeds", "2", "--workers", "2", "--out", str(tmp_path / "cmp"), "--set", "training.steps=100000"]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 90
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
            workers = _children(parent.pid)
        assert len(workers) == 2, "the compare did not start two workers"
        while not all(_torch_loaded(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)  # the workers are set up and importing torch: at work
        assert all(_alive(w) for w in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [w for w in workers if _alive(w)]
    for w in left:  # do not leave them running on a shared machine if the test fails
        os.kill(w, signal.SIGKILL)
    assert not left, "workers outlived the killed parent"


# ------------------------------------------------------------------ 10. variants, piped tables, rounding
def test_compare_without_strategies_runs_the_base_and_every_variant(tiny, tmp_path, capsys):
    tiny.write_text(TINY + "variants:\n  q2: {training.strategy_options.q: 2}\n  q3: {training.strategy_options.q: 3}\n")
    out = tmp_path / "cmp"
    assert main(["compare", str(tiny), "--seeds", "1", "--out", str(out), "--set", "training.steps=1"]) == 0
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["variant"] for r in rows] == ["base", "q2", "q3"]
    # one-sided sign-RGE: q + 1 queries per step, so each variant really ran its own recipe
    assert [r["queries"] for r in rows] == [5, 3, 4]
    err = capsys.readouterr().err
    numbers = re.findall(r"accuracy=(\S+)", err)
    assert len(numbers) == 3 and all(n == f"{float(n):.4g}" for n in numbers), numbers  # 4 significant digits
    plain = tmp_path / "plain.yaml"
    plain.write_text(TINY)
    assert main(["compare", str(plain), "--seeds", "1", "--out", str(tmp_path / "c2")]) == 2
    line = _err_line(capsys)
    assert "variants" in line and "--strategies" in line


def test_piped_summary_does_not_cut_names(tiny, tmp_path, capsys):
    name = "a_scenario_name_long_enough_that_an_80_column_table_would_have_to_cut_or_wrap_it_" + "x" * 40
    tiny.write_text(TINY.replace("name: tiny", f"name: {name}"))
    assert main(["run", str(tiny), "--out", str(tmp_path / "run"), *QUICK]) == 0
    out = capsys.readouterr().out
    assert any(name in line for line in out.splitlines())


MNIST = REPO.parent / "shared" / "datasets" / "mnist"


@pytest.mark.skipif(not MNIST.is_dir(), reason="needs the MNIST IDX files in ../shared/datasets/mnist")
def test_identity_follows_data_file_content_not_location(tmp_path):
    import gzip

    from photonic_sim.scenarios import load_scenario
    from photonic_sim.scenarios.identity import scenario_identity

    def identity(data: Path) -> str:
        return scenario_identity(load_scenario("mnist_small_zo", [f"task.data_dir={data}"]))

    here, moved = tmp_path / "here", tmp_path / "moved"
    shutil.copytree(MNIST, here)
    shutil.copytree(MNIST, moved)
    assert identity(here) == identity(moved)  # same content elsewhere: same job
    labels = moved / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10  # one test label changed, still a valid IDX file
    labels.write_bytes(gzip.compress(bytes(raw)))
    assert identity(here) != identity(moved)
