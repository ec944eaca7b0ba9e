"""photonic-sim: simulate, train and cost photonic neural-network chips.

    photonic-sim run SCENARIO [--out DIR] [--resume] [--overwrite] [--set key.path=value ...]
    photonic-sim compare SCENARIO --strategies a,b,... --seeds N [--out DIR] [--workers N] [--backend local|ray]
    photonic-sim sweep SCENARIO --grid key.path=v1,v2 [--grid ...] [--seeds N] [--out DIR] [--workers N] [--backend local|ray]
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
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """A user mistake: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage otherwise)
        raise UsageError(f"{self.prog}: {message}")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="photonic-sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)
    _add_compare(sub)
    _add_sweep(sub)
    p = sub.add_parser("report", help="re-render report.md/html and figures of a run directory")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("validate", help="check scenario files without running them")
    p.add_argument("scenarios", nargs="+")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("list", help="available cards, recipes, scenarios, strategies, presets")
    p.set_defaults(func=cmd_list)
    from photonic_sim import cli_cost as cost_cli

    cost_cli.add_parser(sub)
    try:
        args = parser.parse_args(argv)
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
    p.add_argument("--out", help="run directory (default runs/<scenario name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory when done")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared or small machine more threads can be far slower)")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from photonic_sim.reports import check_out_dir, collect_versions, write_run_dir
    from photonic_sim.scenarios import load_scenario
    from photonic_sim.scenarios.execute import run_scenario
    from photonic_sim.training.trainer import CHECKPOINT_FILE

    if args.threads < 1:
        raise UsageError(f"photonic-sim run: --threads: {args.threads} is out of range (allowed: >= 1)")
    scenario = load_scenario(args.scenario, args.sets)
    out = Path(args.out or Path("runs") / scenario.name)
    work = out.parent / f".{out.name}.work"
    finished_ckpt = out / "checkpoint" / CHECKPOINT_FILE
    if args.resume:
        if not (work / CHECKPOINT_FILE).is_file():
            if not finished_ckpt.is_file():
                raise UsageError(f"photonic-sim run: --resume: no checkpoint in {work} or {out / 'checkpoint'} "
                                 "(allowed: a run directory started with `photonic-sim run --out`)")
            work.mkdir(parents=True, exist_ok=True)
            shutil.copy2(finished_ckpt, work / CHECKPOINT_FILE)
    else:
        try:
            check_out_dir(out, args.overwrite)
        except FileExistsError as exc:
            raise UsageError(f"photonic-sim run: --out: {exc}; use --resume to continue it or --overwrite") from None
        shutil.rmtree(work, ignore_errors=True)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        record = run_scenario(scenario, checkpoint_dir=work, resume=args.resume, progress=not args.no_progress)
    except ValueError as exc:
        print(f"photonic-sim run: {scenario.path}: run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    record.report["versions"] = collect_versions()
    record.report.setdefault("wall_s", time.perf_counter() - t0)
    files = {CHECKPOINT_FILE: record.checkpoint} if record.checkpoint else None
    write_run_dir(out, record.report, record.history, scenario.resolved(), record.phases_by_mesh, files,
                  overwrite=args.resume or args.overwrite)
    shutil.rmtree(work, ignore_errors=True)
    _print_summary(record.report, out)
    return EXIT_OK


def _print_summary(report: dict, out: Path) -> None:
    from photonic_sim.reports.units import eng, number

    m, tr, inf = report["metrics"], report["training"], report["inference"]
    rows = [
        ("scenario", f"{report['scenario']} (seed {report['seed']})"),
        (f"{m['name']} final / best", f"{number(m['final'])} / {number(m['best'])}"),
        ("training queries", str(tr["queries"])),
        ("training energy / latency", f"{eng(tr['energy_j'], 'J')} / {eng(tr['latency_s'], 's')}"),
        ("inference energy / latency", f"{eng(inf['energy_j'], 'J')} / {eng(inf['latency_s'], 's')}"),
        ("MZIs (blocked / SVD)", f"{report['counts']['mzi_blocked']} / {report['counts']['mzi_svd']}"),
        ("area", f"{report['area_mm2']['total']:.3g} mm²"),
        ("wall time", f"{tr['wall_s']:.1f} s"),
        ("run directory", str(out)),
    ]
    _table("summary", ["quantity", "value"], rows)


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
        t.add_column(h)
    for r in rows:
        t.add_row(*map(str, r))
    Console().print(t)


# ---------------------------------------------------------------------------- compare / sweep
def _add_pool_options(p) -> None:
    p.add_argument("--out", help="output directory (default runs/<scenario name>-<command>)")
    p.add_argument("--workers", type=int, default=1, help="parallel local processes (default 1)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="several strategies x seeds on one scenario")
    p.add_argument("scenario")
    p.add_argument("--strategies", required=True, help="comma-separated strategy names")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0 .. N-1 added to the scenario seed)")
    _add_pool_options(p)
    p.set_defaults(func=cmd_compare)


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="a parameter grid over one scenario")
    p.add_argument("scenario")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...")
    p.add_argument("--seeds", type=int, default=1)
    _add_pool_options(p)
    p.set_defaults(func=cmd_sweep)


def _check_pool(args, command: str) -> None:
    if args.workers < 1:
        raise UsageError(f"photonic-sim {command}: --workers: {args.workers} is out of range (allowed: >= 1)")
    if args.seeds < 1:
        raise UsageError(f"photonic-sim {command}: --seeds: {args.seeds} is out of range (allowed: >= 1)")
    if args.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError(f"photonic-sim {command}: --backend ray: Ray is not installed "
                             "(allowed: local, or pip install 'photonic-sim[ray]')") from None


def cmd_compare(args) -> int:
    from photonic_sim.scenarios import load_scenario
    from photonic_sim.scenarios.jobs import Job, strategy_sets

    _check_pool(args, "compare")
    scenario = load_scenario(args.scenario, args.sets)
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not names:
        raise UsageError("photonic-sim compare: --strategies: empty (allowed: comma-separated strategy names)")
    jobs = []
    for name in names:
        sets = strategy_sets(args.scenario, name, args.sets)
        load_scenario(args.scenario, [*args.sets, *sets])  # validate before anything runs
        for i in range(args.seeds):
            seed = scenario.seed + i
            jobs.append(Job(str(scenario.path), tuple([*args.sets, *sets, f"seed={seed}"]),
                            {"strategy": name, "seed": seed}))
    out = Path(args.out or Path("runs") / f"{scenario.name}-compare")
    rows = _run_pool(jobs, out, args)
    from photonic_sim.reports.compare import write_comparison

    summary = write_comparison(out, rows, group_by=("strategy",))
    _table("comparison", list(summary[0].keys()) if summary else [], [list(r.values()) for r in summary])
    return EXIT_FAILED if any("error" in r for r in rows) else EXIT_OK


def cmd_sweep(args) -> int:
    from photonic_sim.scenarios import load_scenario
    from photonic_sim.scenarios.jobs import Job

    _check_pool(args, "sweep")
    scenario = load_scenario(args.scenario, args.sets)
    axes = []
    for g in args.grid:
        key, sep, values = g.partition("=")
        vals = [v for v in values.split(",") if v != ""]
        if not sep or not key or not vals:
            raise UsageError(f"photonic-sim sweep: --grid {g!r}: expected key.path=v1,v2,... (allowed: a scenario key path and values)")
        axes.append((key.strip(), vals))
    jobs = []
    for combo in itertools.product(*[vals for _, vals in axes]):
        point = [f"{k}={v}" for (k, _), v in zip(axes, combo)]
        load_scenario(args.scenario, [*args.sets, *point])  # every grid point must validate first
        for i in range(args.seeds):
            seed = scenario.seed + i
            label = {k: v for (k, _), v in zip(axes, combo)} | {"seed": seed}
            jobs.append(Job(str(scenario.path), tuple([*args.sets, *point, f"seed={seed}"]), label))
    out = Path(args.out or Path("runs") / f"{scenario.name}-sweep")
    rows = _run_pool(jobs, out, args)
    from photonic_sim.reports.compare import write_sweep

    summary = write_sweep(out, rows, keys=[k for k, _ in axes])
    _table("sweep", list(summary[0].keys()) if summary else [], [list(r.values()) for r in summary])
    return EXIT_FAILED if any("error" in r for r in rows) else EXIT_OK


def _run_pool(jobs, out: Path, args) -> list[dict]:
    from photonic_sim.scenarios.jobs import run_jobs

    def done(row: dict) -> None:
        state = "FAILED " + row["error"] if "error" in row else f"{row.get('metric')}={row.get('metric_final')}"
        label = ", ".join(f"{k}={v}" for k, v in row.items() if k not in _ROW_FIELDS)
        print(f"  job {label}: {state}", file=sys.stderr)

    return run_jobs(jobs, results_dir=out / "jobs", workers=args.workers, backend=args.backend,
                    ray_address=args.ray_address, on_done=done)


_ROW_FIELDS = {"job", "metric", "metric_final", "metric_best", "higher_is_better", "queries", "training_energy_j",
               "training_latency_s", "wall_s", "inference_energy_j", "inference_latency_s", "mzi_blocked",
               "area_mm2", "history", "error", "traceback", "cached"}


# ---------------------------------------------------------------------------- report / validate / list
def cmd_report(args) -> int:
    from photonic_sim.reports import render

    run_dir = Path(args.run_dir)
    if not (run_dir / "report.json").is_file():
        raise UsageError(f"photonic-sim report: {run_dir}: no report.json (allowed: a run directory)")
    print(render(run_dir) / "report.html")
    return EXIT_OK


def cmd_validate(args) -> int:
    from photonic_sim.scenarios import validate_files

    for path in args.scenarios:
        if not Path(path).exists() and "/" in path:
            raise UsageError(f"photonic-sim validate: {path}: no such file")
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
