"""photonic-sim: simulate, train and cost photonic neural-network chips.

    photonic-sim run SCENARIO [--out DIR] [--resume] [--overwrite] [--set key.path=value ...] [--chip tcp://HOST:PORT]
                     [--backend local|ray] [--workers N] [--ray-address ADDR] [--device cpu|cuda|cuda:N]
    photonic-sim serve-chip SCENARIO [--host 127.0.0.1] [--port N] [--set key.path=value ...]
    photonic-sim compare SCENARIO [--strategies a,b,...] --seeds N [--out DIR] [--workers N] [--backend local|ray]
                         [--chip tcp://HOST:PORT]
    photonic-sim sweep SCENARIO --grid key.path=v1,v2 [--grid ...] [--seeds N] [--out DIR] [--workers N] [--backend local|ray]
                       [--chip tcp://HOST:PORT]
    photonic-sim report RUN_DIR
    photonic-sim validate SCENARIO [SCENARIO ...]
    photonic-sim list
    photonic-sim cost --accelerator NAME --model PRESET [--devices NAME] [--json]

Exit codes: 0 ok, 2 bad input (one line on stderr, nothing written), 1 a failed run.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import time
import warnings
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SET_HELP = ("set one scenario value, KEY=VALUE with a dotted key path and a YAML value; repeatable, applied "
            "after the file (e.g. --set training.steps=50 --set seed=3 --set devices.phase_shifter.bits=6)")


class UsageError(ValueError):
    """A user mistake: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage otherwise)
        raise UsageError(f"{self.prog}: {message}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning from the library, as one line on stderr (no source location or code line)."""
    print(f"photonic-sim: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    import photonic_sim

    parser = _Parser(prog="photonic-sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"photonic-sim {photonic_sim.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)
    _add_serve_chip(sub)
    _add_compare(sub)
    _add_sweep(sub)
    p = sub.add_parser("report", help="re-render report.md/html and figures of a run directory")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("validate", help="check scenario files without running them")
    p.add_argument("scenarios", nargs="+")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("list", help="available cards, recipes, scenarios, strategies, presets")
    p.set_defaults(func=cmd_list)
    from photonic_sim import cli_cost as cost_cli

    cost_cli.add_parser(sub)
    try:
        args = parser.parse_args(argv)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # ScenarioError, CardError, ...: a user mistake, one line
        print(f"photonic-sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("photonic-sim: interrupted", file=sys.stderr)
        return EXIT_FAILED


# ---------------------------------------------------------------------------- run
def _add_run(sub) -> None:
    p = sub.add_parser("run", help="train/evaluate one scenario and write its run directory")
    p.add_argument("scenario")
    p.add_argument("--out", help="run directory (default runs/<scenario name>); a symbolic link to a directory is "
                                 "followed, one command at a time may use it (locked), and it is checked before training")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory when done")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for the chip simulation (default: the cores this process may use; results are the "
                        "same bits for any count; on a busy shared machine --threads 1 can be faster)")
    p.add_argument("--chip", metavar="tcp://HOST:PORT",
                   help="train through the chip served there (photonic-sim serve-chip, or a lab's server) instead of "
                        "simulating it here; checked before training")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="ray: spread each ZO step's settings over --workers Ray replicas of the chip (same bits as "
                        "local; docs/howto/ray-training.md)")
    p.add_argument("--workers", type=int, default=None, help="Ray replicas (--backend ray; default 2)")
    p.add_argument("--ray-address", help="Ray cluster address (--backend ray; default $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda|cuda:N",
                   help="where the simulated chip and the task's tensors live (default cpu; cuda: the torch path on a "
                        "GPU, checked before training; docs/howto/gpu.md)")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from photonic_sim.reports import check_out_dir
    from photonic_sim.reports.outdir import OutDir, OutDirError
    from photonic_sim.scenarios import load_scenario

    args.threads = _threads(args.threads, "run")
    args.device = _torch_device(args.device, "run")
    _out_arg(args.out, "run")  # an empty --out: a usage error here, before anything loads
    scenario = load_scenario(args.scenario, args.sets)
    _check_run_backend(args, scenario)
    experiment = _chip_experiment(args, scenario, "run")
    import torch

    torch.set_num_threads(args.threads)
    preflight = _preflight(args, scenario)
    if experiment is None and (args.device != "cpu" or preflight):
        from photonic_sim.scenarios.experiment import Experiment

        experiment = Experiment.from_scenario(scenario, torch_device=None if args.device == "cpu" else args.device)
    if preflight:
        _ = experiment.strategy  # the chip, its phases and the strategy: an option beyond what the chip
        # allows (nnz above its phases) is a ScenarioError here, before anything is written
    try:
        claim = OutDir(args.out or Path("runs") / scenario.name)
        if not args.resume:
            check_out_dir(claim.path, args.overwrite)
        claim.acquire()  # probe the location and lock it before any training
    except OutDirError as exc:
        raise UsageError(f"photonic-sim run: {exc}") from None
    except FileExistsError as exc:
        raise UsageError(f"photonic-sim run: --out: {exc}; use --resume to continue it or --overwrite") from None
    failed = True  # bad input found after the claim: remove the parent folders it created too
    try:
        code = _run_claimed(args, scenario, claim, experiment)
        failed = False
        return code
    except KeyboardInterrupt:
        claim.keep_work()  # the checkpoint there is what --resume continues from
        raise
    finally:
        claim.release(failed=failed)


def _preflight(args, scenario) -> bool:
    """Whether ``run`` builds the strategy before it claims --out: a fresh local training run
    (a resumed run rebuilds from its checkpoint; a Ray run builds on its workers)."""
    return not args.resume and getattr(args, "backend", "local") == "local" and scenario.task.kind != "none"


def _run_claimed(args, scenario, claim, experiment=None) -> int:
    """The run itself, with ``claim`` (reports.outdir.OutDir) held: resume checks, training,
    the run directory; the claim's work directory holds the checkpoint meanwhile. ``experiment``:
    the run's builder, its strategy already built (:func:`_preflight`), or on the chip given by
    --chip; None for a resumed run (``run_scenario`` builds it)."""
    from photonic_sim.reports import write_run_dir
    from photonic_sim.scenarios.errors import ScenarioError
    from photonic_sim.scenarios.execute import run_scenario
    from photonic_sim.scenarios.identity import IDENTITY_FILE, write_identity
    from photonic_sim.training.trainer import CHECKPOINT_FILE, CheckpointError

    work, out = claim.work, claim.path
    if args.resume:
        _prepare_resume(claim, scenario)
    else:
        claim.clear_work()
    identity = write_identity(work, scenario)
    files = {}
    t0 = time.perf_counter()
    try:
        kw = {"checkpoint_dir": work, "resume": args.resume, "progress": not args.no_progress}
        if getattr(args, "backend", "local") == "ray":
            from photonic_sim.scenarios.experiment import Experiment

            kw.update(backend="ray", workers=args.workers, ray_address=args.ray_address, progress=False)
            experiment = Experiment.from_scenario(scenario)
        record = run_scenario(scenario, **kw) if experiment is None else experiment.run(**kw)
    except CheckpointError as exc:
        claim.keep_work()
        raise UsageError(f"photonic-sim run: --resume: {exc}") from None
    except ScenarioError:  # bad input the builder finds (a strategy option beyond the chip's size): exit 2
        raise
    except ValueError as exc:
        print(f"photonic-sim run: {scenario.path}: run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (MemoryError, RuntimeError) as exc:  # sizes beyond this machine's memory: a failed run, one line
        if not _out_of_memory(exc):
            raise
        print(f"photonic-sim run: {scenario.path}: run failed: out of memory ({_one_line(exc)}); lower the "
              "sizes (task points, batch_size, strategy q, model) or use a larger machine", file=sys.stderr)
        return EXIT_FAILED
    report = record.report  # the builder's report: versions and training status already in it
    report.setdefault("wall_s", time.perf_counter() - t0)
    training = report["training"]
    if record.checkpoint:  # what --resume needs (a cost-only run has neither)
        files = {IDENTITY_FILE: identity, CHECKPOINT_FILE: record.checkpoint}
    write_run_dir(out, report, record.history, scenario.resolved(), record.phases_by_mesh, files,
                  overwrite=args.resume or args.overwrite)
    _print_summary(report, scenario.resolved(), Path(args.out) if args.out else out)
    if training.get("status") == "diverged":
        print(f"photonic-sim run: {scenario.path}: {training['stopped']} (report in {out})", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _out_of_memory(exc: BaseException) -> bool:
    """A MemoryError, or torch's allocator refusing (CPU "can't allocate memory", CUDA "out of memory")."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)[:2000].lower()
    return "can't allocate memory" in text or "out of memory" in text


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, at most ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    line = " ".join(lines[0].split()) if lines else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _out_arg(out: str | None, command: str) -> str | None:
    """``--out`` as given (None: the command's default); an empty one is a usage error, not the
    current directory or the default."""
    if out is not None and not out.strip():
        raise UsageError(f"photonic-sim {command}: --out: empty (allowed: a directory path, or leave --out out for "
                         "the default under runs/)")
    return out


def _check_run_backend(args, scenario) -> None:
    """``run``'s --backend/--workers/--ray-address/--device against each other and the scenario
    (UsageError: one line, exit 2, before training); with Ray and an address, connects to the
    cluster now."""
    if args.device != "cpu" and (args.chip is not None or args.backend == "ray"):
        raise UsageError("photonic-sim run: --device: only with a simulated chip run here "
                         "(allowed: cpu with --chip or --backend ray)")
    if args.backend == "ray" and scenario.recipe.start != "random":
        raise UsageError(f"photonic-sim run: --backend ray: not with training.start: {scenario.recipe.start} "
                         "(allowed: start: random; each replica would calibrate on its own)")
    if args.backend == "local":
        if args.workers is not None or args.ray_address is not None:
            raise UsageError("photonic-sim run: --workers/--ray-address: only with --backend ray")
        return
    args.workers = 2 if args.workers is None else args.workers
    if args.workers < 1:
        raise UsageError(f"photonic-sim run: --workers: {args.workers} is out of range (allowed: >= 1)")
    if args.chip is not None or args.resume:
        raise UsageError("photonic-sim run: --backend ray: not with --chip or --resume (allowed: a fresh simulated run)")
    import os

    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("photonic-sim run: --backend ray: Ray is not installed "
                         "(allowed: local, or pip install 'photonic-sim[ray]')") from None
    address = args.ray_address or os.environ.get("RAY_ADDRESS")
    if address and address not in ("auto", "local"):
        import socket  # Ray itself retries an unreachable address for minutes: probe it first

        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError):
            raise UsageError("photonic-sim run: --ray-address: cannot reach it "
                             "(allowed: HOST:PORT or ray://HOST:PORT of a running Ray cluster)") from None


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


MAX_THREADS = 4096  # torch takes a C int; more threads than this is a typo


def _threads(value: int | None, command: str) -> int:
    """``--threads``: None → every usable core; outside 1 .. MAX_THREADS is a usage error."""
    if value is None:
        return usable_cores()
    if not 1 <= value <= MAX_THREADS:
        shown = value if abs(value) < 10**12 else f"a {len(str(abs(value)))}-digit number"
        raise UsageError(f"photonic-sim {command}: --threads: {shown} is out of range (allowed: 1 .. {MAX_THREADS})")
    return value


def _torch_device(value: str, command: str) -> str:
    """``--device``: "cpu", "cuda" or "cuda:N" of a GPU torch sees here, as its canonical name
    (UsageError: one line, exit 2, before anything is built or written)."""
    import torch

    allowed = "allowed: cpu, cuda, cuda:N"
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise UsageError(f"photonic-sim {command}: --device: not a device name ({allowed})") from None
    if device.type == "cpu":
        return "cpu"
    if device.type != "cuda":
        raise UsageError(f"photonic-sim {command}: --device: {device.type!r} is not supported ({allowed})")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise UsageError(f"photonic-sim {command}: --device: no CUDA device is visible to torch here "
                         f"(torch {torch.__version__}; allowed: cpu)")
    index = 0 if device.index is None else device.index
    if index >= count:
        raise UsageError(f"photonic-sim {command}: --device: cuda:{index} does not exist "
                         f"(allowed: cpu, cuda:0 .. cuda:{count - 1})")
    return f"cuda:{index}"


def _chip_experiment(args, scenario, command: str, *, reset: bool = True):
    """None without --chip; else the run's builder on that chip, connected and checked against
    the scenario's network now (UsageError: one line, exit 2, before anything is written).
    ``reset=False``: a look at the chip only (its state is left as it is)."""
    if args.chip is None:
        return None
    from photonic_sim.backend import RemoteChip
    from photonic_sim.scenarios.experiment import Experiment

    try:
        experiment = Experiment.from_scenario(scenario, chip=args.chip if reset else RemoteChip(args.chip, reset=False))
        _ = experiment.chip  # connects (photonic_sim.backend.RemoteChip) and checks the fit
    except (ValueError, ConnectionError) as exc:
        raise UsageError(f"photonic-sim {command}: --chip: {str(exc).removeprefix('chip: ')}") from None
    return experiment


# ---------------------------------------------------------------------------- serve-chip
def _add_serve_chip(sub) -> None:
    p = sub.add_parser("serve-chip", help="serve a scenario's simulated chip over TCP (runs until stopped)")
    p.add_argument("scenario")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=0, help="TCP port (default 0: a free port, printed)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    p.add_argument("--threads", type=int, default=None, help="threads (default: the cores this process may use, as run)")
    p.set_defaults(func=cmd_serve_chip)


def cmd_serve_chip(args) -> int:
    """Build the scenario's chip as ``run`` does, print the address, serve until killed."""
    from photonic_sim.scenarios import load_scenario
    from photonic_sim.scenarios.serve import chip_server

    if not 0 <= args.port <= 65535:
        raise UsageError(f"photonic-sim serve-chip: --port: {args.port} is out of range (allowed: 0-65535)")
    args.threads = _threads(args.threads, "serve-chip")
    scenario = load_scenario(args.scenario, args.sets)
    import torch

    torch.set_num_threads(args.threads)
    try:
        server = chip_server(scenario, host=args.host, port=args.port)
    except OSError as exc:
        raise UsageError(f"photonic-sim serve-chip: --host/--port: cannot listen on {args.host[:60]}:{args.port} "
                         f"({exc.strerror or type(exc).__name__})") from None
    print(f"photonic-sim serve-chip: {server.address} serves {server.identity}; run with --chip {server.address} "
          "(Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("photonic-sim serve-chip: stopped", file=sys.stderr)
    finally:
        server.close()
    return EXIT_OK


def _prepare_resume(claim, scenario) -> None:
    """Check the checkpoint to resume from (data only, same resolved scenario and seed) and
    put it in the work directory; UsageError (work directory kept) when it does not fit."""
    from photonic_sim.scenarios.identity import check_resume
    from photonic_sim.training.trainer import CHECKPOINT_FILE

    work, finished = claim.work, claim.path / "checkpoint"
    source = work if (work / CHECKPOINT_FILE).is_file() else finished
    if not (source / CHECKPOINT_FILE).is_file():
        raise UsageError(f"photonic-sim run: --resume: no checkpoint in {work} or {finished} "
                         "(allowed: a run directory started with `photonic-sim run --out`)")
    claim.keep_work()  # a refused resume leaves an interrupted run's checkpoint where it was
    try:
        check_resume(source, CHECKPOINT_FILE, scenario)
    except ValueError as exc:  # CheckpointError, ResumeError
        raise UsageError(f"photonic-sim run: --resume: {exc}") from None
    if source == finished:
        shutil.copy2(finished / CHECKPOINT_FILE, work / CHECKPOINT_FILE)
    claim.keep_work(False)  # accepted: the work directory is the run's again (removed when done)


def _print_summary(report: dict, resolved: dict, out: Path) -> None:
    from photonic_sim.reports import summary_rows

    _table("summary", ["quantity", "value"], [*summary_rows(report, resolved), ("run directory", str(out))])


def _table(title: str, header: list[str], rows: list) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency
        print(title)
        for r in rows:
            print("  " + " | ".join(map(str, r)))
        return
    t = Table(title=title)
    for h in header:
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(*map(str, r))
    # piped or redirected: no terminal width to fit, so never cut names to 80 columns
    Console(width=None if sys.stdout.isatty() else 10_000).print(t)


# ---------------------------------------------------------------------------- compare / sweep
def _add_pool_options(p) -> None:
    p.add_argument("--out", help="output directory (default runs/<scenario name>-<command>)")
    p.add_argument("--workers", type=int, default=1, help="parallel local processes (default 1)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    p.add_argument("--chip", metavar="tcp://HOST:PORT",
                   help="run every job through the chip served there, one after another, each from the chip's reset "
                        "state (one seed; strategies, variants or grid keys that leave the chip as it is; no job "
                        "files are kept for reuse); checked before anything runs")


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="several strategies (or the scenario's variants) x seeds on one scenario")
    p.add_argument("scenario")
    p.add_argument("--strategies", help="comma-separated strategy names (default: the base scenario and every "
                                        "entry of its variants:)")
    p.add_argument("--seeds", type=int, default=None,
                   help="number of seeds (0 .. N-1 added to the scenario seed; default 3, with --chip 1)")
    _add_pool_options(p)
    p.set_defaults(func=cmd_compare)


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="a parameter grid over one scenario")
    p.add_argument("scenario")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...",
                   help="one grid axis: a dotted key path and comma-separated values (YAML each); repeatable, the "
                        "sweep runs every combination (e.g. --grid devices.phase_shifter.bits=4,6,8)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 1)")
    _add_pool_options(p)
    p.set_defaults(func=cmd_sweep)


def _check_pool(args, command: str, seeds: int = 1) -> None:
    if args.seeds is None:
        args.seeds = 1 if args.chip is not None else seeds
    if args.chip is not None:  # one served chip: its static errors are fixed, runs take turns
        if args.seeds != 1:
            raise UsageError(f"photonic-sim {command}: --seeds: {args.seeds} with --chip (allowed: 1; a served chip "
                             "has one set of static errors, which the seed draws)")
        if args.workers != 1 or args.backend != "local":
            raise UsageError(f"photonic-sim {command}: --workers/--backend: with --chip the jobs run one after another "
                             "on the one chip (allowed: --workers 1 --backend local)")
    if args.workers < 1:
        raise UsageError(f"photonic-sim {command}: --workers: {args.workers} is out of range (allowed: >= 1)")
    if not 1 <= args.seeds <= SEED_COUNT:
        shown = args.seeds if abs(args.seeds) < 10**12 else f"a {len(str(abs(args.seeds)))}-digit number"
        raise UsageError(f"photonic-sim {command}: --seeds: {shown} is out of range (allowed: 1 .. {SEED_COUNT})")
    _out_arg(args.out, command)
    if args.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError(f"photonic-sim {command}: --backend ray: Ray is not installed "
                             "(allowed: local, or pip install 'photonic-sim[ray]')") from None


BASE_VARIANT = "base"
SEED_COUNT = 2**32  # seeds are 0 .. 2**32 - 1 (scenario schema)


def _check_seed_range(args, base_seed: int, command: str, what: str = "the scenario's seed") -> None:
    """--seeds N runs seeds base .. base + N - 1: each must be a valid seed (checked before any
    job is built, so a huge N fails at once instead of after building millions of jobs)."""
    if base_seed + args.seeds - 1 >= SEED_COUNT:
        raise UsageError(f"photonic-sim {command}: --seeds: {args.seeds} seeds from {what} {base_seed} pass "
                         f"{SEED_COUNT - 1} (allowed: 1 .. {SEED_COUNT - base_seed})")


def cmd_compare(args) -> int:
    from photonic_sim.scenarios import load_scenario
    from photonic_sim.scenarios.jobs import job, strategy_sets

    _check_pool(args, "compare", seeds=3)
    scenario = load_scenario(args.scenario, args.sets)
    for sc in [scenario, *scenario.variants.values()]:
        _check_seed_range(args, sc.seed, "compare", "the seed" if sc is scenario else f"variant {sc.variant}'s seed")
    jobs = []
    if args.strategies is None:  # the base scenario and every variant of the file
        if not scenario.variants:
            raise UsageError(f"photonic-sim compare: {scenario.path}: variants: none, and no --strategies given "
                             "(allowed: --strategies a,b,... or a scenario with variants:)")
        group_by = ("variant",)
        for name, sc in [(BASE_VARIANT, scenario), *sorted(scenario.variants.items())]:
            for i in range(args.seeds):
                seed = sc.seed + i
                jobs.append(job(args.scenario, [*args.sets, f"seed={seed}"], {"variant": name, "seed": seed},
                                variant=None if sc is scenario else name))
    else:
        names = [s.strip() for s in args.strategies.split(",") if s.strip()]
        if not names:
            raise UsageError("photonic-sim compare: --strategies: empty (allowed: comma-separated strategy names)")
        group_by = ("strategy",)
        for name in names:
            sets = strategy_sets(args.scenario, name, args.sets)
            for i in range(args.seeds):
                seed = scenario.seed + i
                jobs.append(job(args.scenario, [*args.sets, *sets, f"seed={seed}"], {"strategy": name, "seed": seed}))
    if args.chip is not None:
        flag = "--strategies" if args.strategies is not None else "--chip: variants"
        _check_chip_jobs(args, scenario, [(j, flag) for j in jobs], "compare")
    rows = _run_pool(jobs, args.out or Path("runs") / f"{scenario.name}-compare", args, "compare",
                     lambda out, rows: _write_comparison(out, rows, group_by))
    return _pool_exit(rows)


def _write_comparison(out, rows, group_by):
    from photonic_sim.reports.compare import write_comparison

    summary = write_comparison(out, rows, group_by=group_by)
    _table("comparison", list(summary[0].keys()) if summary else [], [list(r.values()) for r in summary])


def cmd_sweep(args) -> int:
    from photonic_sim.scenarios import load_scenario
    from photonic_sim.scenarios.jobs import job

    _check_pool(args, "sweep")
    scenario = load_scenario(args.scenario, args.sets)
    axes = []
    for g in args.grid:
        key, sep, values = g.partition("=")
        vals = [v for v in values.split(",") if v != ""]
        if not sep or not key or not vals:
            raise UsageError(f"photonic-sim sweep: --grid {g!r}: expected key.path=v1,v2,... (allowed: a scenario key path and values)")
        axes.append((key.strip(), vals))
    _check_seed_range(args, scenario.seed, "sweep")
    jobs = []
    for combo in itertools.product(*[vals for _, vals in axes]):
        point = [f"{k}={v}" for (k, _), v in zip(axes, combo)]
        base = scenario.seed
        if "seed" in (k for k, _ in axes):  # a grid over seed: each point's own seed, then --seeds from it
            base = load_scenario(args.scenario, [*args.sets, *point]).seed
            _check_seed_range(args, base, "sweep", "--grid seed")
        for i in range(args.seeds):  # every grid point validates (job() loads it) before anything runs
            seed = base + i
            label = {k: v for (k, _), v in zip(axes, combo)} | {"seed": seed}
            jobs.append(job(args.scenario, [*args.sets, *point, f"seed={seed}"], label))
    if args.chip is not None:  # name the first grid key that changes the chip, else the grid as a whole
        singles = [(job(args.scenario, [*args.sets, f"{k}={v}"], {}), f"--grid {k}") for k, vals in axes for v in vals]
        _check_chip_jobs(args, scenario, singles + [(j, "--grid") for j in jobs], "sweep")

    def write(out, rows):
        from photonic_sim.reports.compare import write_sweep

        summary = write_sweep(out, rows, keys=[k for k, _ in axes])
        _table("sweep", list(summary[0].keys()) if summary else [], [list(r.values()) for r in summary])

    return _pool_exit(_run_pool(jobs, args.out or Path("runs") / f"{scenario.name}-sweep", args,
                                "sweep", write))


def _pool_exit(rows: list[dict]) -> int:
    """1 when a job failed or diverged (a diverged run is a failed run), else 0."""
    bad = any("error" in r or r.get("status") == "diverged" for r in rows)
    return EXIT_FAILED if bad else EXIT_OK


def _chip_key(scenario) -> str:
    """What builds ``scenario``'s chip: serve.chip_identity without the scenario's name, and the
    scenario's ``chip`` section (insertion loss)."""
    from photonic_sim.scenarios.experiment import Experiment
    from photonic_sim.scenarios.serve import chip_identity

    identity = chip_identity(Experiment.from_scenario(scenario)).removeprefix(scenario.name)
    return f"{identity} {scenario.resolved().get('chip')}"


def _job_scenario(job):
    from photonic_sim.scenarios import load_scenario

    scenario = load_scenario(job.scenario, list(job.sets))
    return scenario if job.variant is None else scenario.variants[job.variant]


def _check_chip_jobs(args, scenario, jobs: list, command: str) -> None:
    """--chip: UsageError (one line, exit 2, before anything runs or is written) unless the served
    chip fits ``scenario`` and every job ``(job, flag)`` runs on the chip the scenario builds
    (same devices, accelerator, model, seed, readout and ``chip`` section) with an in-situ strategy."""
    from photonic_sim.training.strategies import STRATEGIES

    _chip_experiment(args, scenario, command, reset=False).chip.close()  # connects, checks sizes and readout
    base = _chip_key(scenario)
    for job_, flag in jobs:
        sc = _job_scenario(job_)
        if not getattr(STRATEGIES[sc.recipe.strategy], "in_situ", True):
            raise UsageError(f"photonic-sim {command}: {flag}: {sc.recipe.strategy} needs the simulated chip's "
                             "gradients (allowed with --chip: in-situ strategies)")
        if _chip_key(sc) != base:
            raise UsageError(f"photonic-sim {command}: {flag}: changes the chip (devices, accelerator, model, seed, "
                             "readout or chip), which a served chip cannot change (allowed with --chip: training keys)")


def _run_on_chip(jobs, address: str, done) -> list[dict]:
    """--chip: the jobs one after another through the served chip, each from its reset state
    (``Experiment(chip=address)`` resets it), as rows like ``jobs.run_job``'s; never reused."""
    from photonic_sim.scenarios.experiment import Experiment
    from photonic_sim.training.trainer import stop_status

    rows = []
    for job_ in jobs:
        row = {**job_.label, "job": job_.id}
        try:
            experiment = Experiment.from_scenario(_job_scenario(job_), chip=address)
            try:
                result = experiment.run()
            finally:
                experiment.chip.close()
        except Exception as exc:  # a failed job is a row (exit 1), as in the pool
            row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        else:
            rep, cost = result.report, result.report["inference"]
            row |= {k: v for k, v in result.row().items() if k in _ROW_FIELDS}
            row |= {"metric_final": rep["metrics"]["final"], "metric_best": rep["metrics"]["best"],
                    "higher_is_better": rep["metrics"].get("higher_is_better", True),
                    "inference_energy_j": cost["energy_j"], "inference_latency_s": cost["latency_s"],
                    "mzi_blocked": rep["counts"]["mzi_blocked"], "area_mm2": rep["area_mm2"]["total"],
                    "stopped": row.get("stopped") or "completed", "status": stop_status(row.get("stopped") or "")}
        done(row)
        rows.append(row)
    return rows


def _run_pool(jobs, out_arg, args, command: str, write) -> list[dict]:
    """Run the jobs with the output directory claimed (probed and locked), then ``write(out, rows)``."""
    from photonic_sim.reports.outdir import OutDir, OutDirError
    from photonic_sim.scenarios.jobs import run_jobs

    try:
        claim = OutDir(out_arg)
        claim.acquire()
    except OutDirError as exc:
        raise UsageError(f"photonic-sim {command}: {exc}") from None
    results = claim.path / "jobs"

    def done(row: dict) -> None:
        print(f"  job {_job_line(row, results)}", file=sys.stderr)

    try:
        if getattr(args, "chip", None) is not None:
            rows = _run_on_chip(jobs, args.chip, done)
        else:
            rows = run_jobs(jobs, results_dir=results, workers=args.workers, backend=args.backend,
                            ray_address=args.ray_address, on_done=done)
        write(claim.path, rows)
    finally:
        claim.release()
    return rows


def _job_line(row: dict, results: Path) -> str:
    """``strategy=spsa, seed=0: accuracy=0.8125 (...)``: numbers to 4 significant digits."""
    label = ", ".join(f"{k}={v}" for k, v in row.items() if k not in _ROW_FIELDS)
    if "error" in row:
        return f"{label}: FAILED {row['error']}"
    value = row.get("metric_final")
    if row.get("metric") == "none":  # cost only: what the job priced
        state = (f"inference {_g(row.get('inference_energy_j'))} J, {_g(row.get('inference_latency_s'))} s, "
                 f"{_g(row.get('area_mm2'))} mm², {row.get('mzi_blocked')} MZIs")
    else:
        state = f"{row.get('metric')}={_g(value)}"
    if row.get("status") == "diverged":
        state += f" DIVERGED ({row.get('stopped')})"
    if row.get("cached"):
        state += f" (reused: same resolved inputs as {results / (row['job'] + '.json')})"
    return f"{label}: {state}"


def _g(value) -> str:
    """A number to 4 significant digits (anything else as it is)."""
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


_ROW_FIELDS = {"job", "metric", "metric_final", "metric_best", "higher_is_better", "queries", "training_energy_j",
               "training_latency_s", "wall_s", "inference_energy_j", "inference_latency_s", "mzi_blocked",
               "area_mm2", "history", "error", "traceback", "cached", "status", "stopped"}


# ---------------------------------------------------------------------------- report / validate / list
def cmd_report(args) -> int:
    from photonic_sim.library import is_file
    from photonic_sim.reports import render
    from photonic_sim.reports.outdir import OutDir, OutDirError
    from photonic_sim.scenarios.errors import short_path

    run_dir = Path(args.run_dir)
    if not is_file(run_dir / "report.json"):  # (a name too long for the file system holds none either)
        raise UsageError(f"photonic-sim report: {short_path(run_dir)}: no report.json (allowed: a run directory)")
    try:
        claim = OutDir(run_dir, flag="RUN_DIR")
        claim.acquire()  # not while a run (--resume, --overwrite) writes the same directory
    except OutDirError as exc:
        raise UsageError(f"photonic-sim report: {exc}") from None
    try:
        print(render(claim.path) / "report.html")
    finally:
        claim.release()
    return EXIT_OK


def cmd_validate(args) -> int:
    from photonic_sim.library import is_dir, is_file
    from photonic_sim.scenarios import validate_files
    from photonic_sim.scenarios.errors import short_path

    for path in args.scenarios:
        if "/" in path and not (is_file(path) or is_dir(path)):  # (a name too long for the file system is none)
            raise UsageError(f"photonic-sim validate: {short_path(path)}: no such file")
    errors = validate_files(args.scenarios, args.sets)
    for line in errors:
        print(line, file=sys.stderr)
    if not errors:
        print(f"{len(args.scenarios)} scenario(s) valid")
    return EXIT_USAGE if errors else EXIT_OK


def cmd_list(args) -> int:
    from photonic_sim.scenarios import available

    for kind, names in available().items():
        print(f"{kind}: {', '.join(names)}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
