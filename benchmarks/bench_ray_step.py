"""Per-step wall time of one training run: one process (1 and N threads) against Ray workers.

    python benchmarks/bench_ray_step.py [--scenario burgers_tonn] [--steps 40] [--workers 2]
                                        [--set key=value ...]

Runs the scenario's training for ``--steps`` steps three ways, side by side in one process
tree, and prints the seconds per step (the trainer's wall time over the steps) and the ratio
to the one-thread run:

* ``local x1``: ``Experiment.run()`` with ``torch.set_num_threads(1)``;
* ``local xW``: the same with W threads (the readout kernel's POSIX threads split each call's
  settings);
* ``ray W x1``: ``run(backend="ray", workers=W)`` on a local Ray, one thread per replica
  (``photonic_sim.scenarios.distributed``: each replica measures its share of every
  multi-setting call; a PDE task's residual rows travel), with the exchange count, payload per
  exchange and median exchange time.

Evaluation is trimmed (``task.test_points=200``, ``task.residual_points=50``, one evaluation at
the end, no checkpoints) so the time is the steps'; ``--set`` adds scenario overrides (e.g.
``training.strategy_options.q=256``). The Ray run must end on the one-thread run's phases bit for
bit (exit 1 otherwise); the W-thread run may differ in the last bits (not promised: torch's
own threaded ops may round differently; the script says which). On a machine with fewer free cores than W the parallel
rows measure contention, not speed-up: read ``os.getloadavg()`` in the header.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from photonic_sim import Experiment
from photonic_sim.scenarios.distributed import ExchangeStats, ExperimentBuilder, run_distributed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="burgers_tonn")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], dest="sets")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.workers < 2:
        ap.error("--steps must be >= 1 and --workers >= 2")
    sets = [f"training.steps={args.steps}", f"training.eval_every={args.steps}", "training.checkpoint_every=0",
            "task.test_points=200", "task.residual_points=50", *args.sets]
    w = args.workers
    print(f"# torch {torch.__version__}, scenario {args.scenario}, steps {args.steps}, cores usable "
          f"{len(os.sched_getaffinity(0))}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    for threads in (1, w):
        torch.set_num_threads(threads)
        res = Experiment.from_file(args.scenario, sets).run()
        rows.append((f"local x{threads}", res, ""))
    torch.set_num_threads(1)
    stats = ExchangeStats()
    t0 = time.perf_counter()
    res = run_distributed(ExperimentBuilder(Experiment.from_file(args.scenario, sets).scenario), workers=w,
                          stats=stats, threads=1)
    total = time.perf_counter() - t0
    per = sorted(stats.per_call)
    extra = (f"{stats.calls} exchanges, {stats.bytes / max(stats.calls, 1) / 1e3:.0f} kB each, median "
             f"{1e3 * per[len(per) // 2]:.1f} ms (shard measured + round trip); {total:.1f} s with Ray's start"
             if per else "no exchange (nothing sharded)")
    rows.append((f"ray {w} x1", res, extra))
    base = rows[0][1].report["training"]["wall_s"] / args.steps
    print(f"{'run':<12} {'s / step':>9} {'x faster':>9}  queries  metric")
    for name, r, note in rows:
        s = r.report["training"]["wall_s"] / args.steps
        print(f"{name:<12} {s:9.4f} {base / s:9.2f}  {r.report['training']['queries']:7d}  "
              f"{r.report['metrics']['final']!r}  {note}")
    same = torch.equal(rows[2][1].phases, rows[0][1].phases)
    print(f"final phases, ray {w} x1 against local x1: " + ("the same bits" if same else "DIFFERENT (a bug)"))
    threaded = torch.equal(rows[1][1].phases, rows[0][1].phases)
    print(f"final phases, local x{w} against local x1: " + ("the same bits" if threaded else
          "not the same bits (not promised: torch's threaded ops may round differently)"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
