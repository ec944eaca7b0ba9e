"""The seed paper's MNIST pair, ZO in situ: measured per-step cost, projected run time, and a
partial training run of the TT network (issue 24, item 5; docs/classification.md, "MNIST pair").

    python benchmarks/bench_mnist.py                     # both networks, then ~10 min of TT training
    python benchmarks/bench_mnist.py --train-budget 0    # the cost table only
    python benchmarks/bench_mnist.py --quick             # CPU-sized pair (mnist_small), < 30 s
    python benchmarks/bench_mnist.py --set chip.insertion_loss=false   # any scenario value, both networks
    python benchmarks/bench_mnist.py --device cuda       # the same on a GPU (wall clock, synchronized)

The pair, each a :class:`photonic_sim.Experiment` of ``scenarios/mnist_tonn.yaml`` (seed 0,
the default silicon chip, recipe hybrid_zo as that scenario sets it: batch 64, 2000 steps, an
evaluation on the 2000 test images every 100 steps):

* ``TT``: the ``mnist`` preset (784→1024→10, TT rank 6) on the ``tonn_space`` accelerator;
* ``dense``: the same widths on the ``dense_onn`` accelerator (every layer a blocked dense
  matrix; ``--set accelerator=dense_onn``).

``--quick`` uses the ``mnist_small`` preset (784→64→10) for both, one timing round and a 3 s
training budget: a smoke run of the script, not the paper's pair.

Cost table (one torch thread; medians of ``--rounds`` calls of the process's CPU time, which on
one thread is the call's time on an otherwise idle core; ``--clock wall`` for wall time on
whatever else the machine runs; the load average is printed). The recipe (hybrid) has two phases: sign-RGE with q
directions, one-sided (q + 1 settings per step), until the smoothed loss plateaus, then CGE
over every control (d + 1 settings per step). Per network:

* ``controls`` d (the control vector: every block's phases and the electronic biases),
  ``blocks`` (k×k SVD blocks), ``batch``;
* ``setting``: one closure call with ONE phase setting on a mini-batch (the per-phase-setting
  forward: phase realisation, block build, every hardware matrix with its noisy readout, loss);
* ``f``: one closure call with the P settings of a sign-RGE step; ``e``: the same call as an
  empty shard (``Chip.shard(0, 0)``: what every Ray replica pays for the settings it does not
  measure: their phase noise and readout keys); ``step``: one whole training step
  (mini-batch, closure, ``strategy.step``); ``rest`` = step − f (the strategy's replicated work);
* ``eval``: one evaluation of the test split (1 setting, 2000 images);
* projected wall time of the scenario's run (``steps`` steps, ``steps / eval_every``
  evaluations): on one thread, and on N Ray workers with
  T(N) = rest + shard(⌈P/N⌉) + exchange (docs/howto/ray-training.md), shard(n) the measured
  call with only n of the P settings (``Chip.shard(0, n)``), the exchange ``--exchange-ms``
  (default 9.4 ms: the round trip measured between two local Ray actors on the loaded 2-core
  machine; 1-5 ms is typical between machines on a LAN). Evaluations are not split
  (every replica evaluates): they add eval × evaluations at every N.
  The CGE row is projected, not measured: P = d + 1 settings at the sign-RGE call's cost per
  setting, (f − e) / P (plus e scaled to P settings).

Partial run (``--train-budget`` seconds of ``--clock``, the ``--train`` network, default TT): the scenario's run, bit for bit as
``photonic-sim run mnist_tonn`` (seed 0, the same ``--set`` values) up to the step where it stops: before each step, if
the elapsed time plus two steps of the current phase's cost would pass the budget, that
step is the last (the trainer's ``closure_hook`` sets ``config.steps``), so a run can
overshoot by one step; a CGE step (d + 1 settings) is long. Printed: the accuracy curve
(step, queries, test accuracy and loss, modelled training energy and latency of the chip from the
run's ledger), the report's totals, the step where the recipe switched to CGE, and the
full run's projection next to it. ``--json FILE`` writes both tables.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from photonic_sim import Experiment
from photonic_sim.training.trainer import task_closure

SCENARIO = "mnist_tonn"
NETWORKS = {"TT": "tonn_space", "dense": "dense_onn"}
WORKERS = (2, 8, 32)
EXCHANGE_MS = 9.4  # docs/howto/ray-training.md: Ray round trip, 2 local actors, loaded 2-core machine


def experiment(accelerator: str, quick: bool, extra: list[str] = (), seed: int = 0,
               device: str = "cpu") -> Experiment:
    """The scenario's run on ``accelerator`` (``--quick``: the mnist_small preset), no
    checkpoints, with ``extra`` scenario values (``--set``), its chip on ``device``."""
    sets = [f"accelerator={accelerator}", "training.checkpoint_every=0", f"seed={seed}"]
    if quick:
        sets.append("model=mnist_small")
    return Experiment.from_file(SCENARIO, sets + list(extra), torch_device=None if device == "cpu" else device)


def _cuda_wall() -> float:
    """Wall time after the GPU's queued work has finished (``--device cuda``)."""
    torch.cuda.synchronize()
    return time.perf_counter()


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def median_call(fn, rounds: int) -> float:
    """Median seconds (``clock``) of ``rounds`` calls of ``fn`` after one untimed call, GC off."""
    fn()
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            t = clock()
            fn()
            times.append(clock() - t)
    finally:
        gc.enable()
    return statistics.median(times)


def cost_row(name: str, accelerator: str, args) -> dict:
    """Measured costs of one network (module docstring, "Cost table")."""
    t0 = clock()
    exp = experiment(accelerator, args.quick, args.set, device=args.device).build()
    build_s = clock() - t0
    chip, task, strategy, recipe = exp.chip, exp.task, exp.strategy, exp.recipe
    d = exp.params.numel()
    p = strategy.queries_per_step
    cge = getattr(strategy, "cge", None)  # the hybrid's second phase
    p_cge = cge.queries(strategy.n_active) if cge is not None else None
    gen = torch.Generator().manual_seed(1)
    batch = task.sample_batch(gen)
    closure = task.closure(chip, batch)
    theta = exp.params.detach()

    def call(settings: int, shard: tuple[int, int] | None = None):
        th = theta.expand(settings, -1).clone()
        if shard is None:
            return lambda: closure(th)

        def sharded():
            with chip.shard(*shard):
                closure(th)
        return sharded

    setting = median_call(call(1), args.rounds)
    f = median_call(call(p), args.rounds)
    e = median_call(call(p, (0, 0)), args.rounds)
    shards = {n: median_call(call(p, (0, math.ceil(p / n))), args.rounds) for n in args.workers}

    def step():
        strategy.step(task_closure(task, chip, task.sample_batch(gen), strategy))
    step_s = median_call(step, args.rounds)
    t = clock()
    task.evaluate(chip, theta)
    eval_s = clock() - t
    steps, evals = recipe.steps, recipe.steps // recipe.eval_every + 1  # + the evaluation at step 0
    rest = max(step_s - f, 0.0)
    x = args.exchange_ms / 1e3
    per_setting = (f - e) / p
    row = {"network": name, "accelerator": accelerator, "model": exp.spec.name, "controls": d,
           "blocks": exp.network.num_blocks, "block_size": exp.network.block_size, "batch": recipe.batch_size,
           "q": int(recipe.strategy_options.get("q", 0)), "two_sided": bool(recipe.strategy_options.get("two_sided", False)),
           "queries_per_step": p, "queries_per_step_cge": p_cge, "build_s": build_s, "setting_s": setting, "f_s": f,
           "e_s": e, "step_s": step_s, "rest_s": rest, "eval_s": eval_s, "steps": steps, "evaluations": evals,
           "shard_s": {str(n): s for n, s in shards.items()}}
    row["projected_rge_s"] = {"1": steps * step_s + evals * eval_s,
                              **{str(n): steps * (rest + s + x) + evals * eval_s for n, s in shards.items()}}
    if p_cge is not None:
        e_cge = e * p_cge / p
        row["step_cge_s"] = rest + e_cge + p_cge * per_setting
        row["projected_cge_s"] = {"1": steps * row["step_cge_s"] + evals * eval_s,
                                  **{str(n): steps * (rest + e_cge + math.ceil(p_cge / n) * per_setting + x)
                                     + evals * eval_s for n in args.workers}}
    return row


def duration(s: float) -> str:
    """Seconds as s / min / h / d (3 significant figures)."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def print_costs(rows: list[dict], args) -> None:
    ns = " | ".join(f"N={n}" for n in args.workers)
    print(f"\n## Per-step cost and projected run time (scenario {SCENARIO}: {rows[0]['steps']} steps, "
          f"{rows[0]['evaluations']} evaluations; exchange {args.exchange_ms} ms)\n")
    print(f"| network | model | accelerator | controls | blocks | batch | phase | queries/step | setting (ms) | "
          f"step (s) | eval (s) | 1 thread | {ns} |")
    print("|" + "---|" * (12 + len(args.workers)))
    for r in rows:
        head = (f"| {r['network']} | {r['model']} | {r['accelerator']} | {r['controls']} | {r['blocks']} | "
                f"{r['batch']} |")
        proj = r["projected_rge_s"]
        print(f"{head} sign-RGE q {r['q']} | {r['queries_per_step']} | {r['setting_s'] * 1e3:.1f} | "
              f"{r['step_s']:.3g} | {r['eval_s']:.3g} | " + " | ".join(duration(proj[k]) for k in proj) + " |")
        if "projected_cge_s" in r:
            proj = r["projected_cge_s"]
            print(f"{head} CGE (projected) | {r['queries_per_step_cge']} | {r['setting_s'] * 1e3:.1f} | "
                  f"{r['step_cge_s']:.3g} | {r['eval_s']:.3g} | " + " | ".join(duration(proj[k]) for k in proj) + " |")
    print("\nSplit of a sign-RGE step (s): f = the P settings' call, e = empty shard, rest = step - f, "
          "shard(ceil(P/N)):")
    for r in rows:
        sh = ", ".join(f"N={n}: {s:.3g}" for n, s in r["shard_s"].items())
        print(f"  {r['network']}: f {r['f_s']:.3g}, e {r['e_s']:.3g}, rest {r['rest_s']:.3g}, {sh}; "
              f"build {r['build_s']:.3g}")


def partial_run(args, cost: dict) -> dict:
    """Train the ``--train`` network for about ``--train-budget`` seconds (module docstring)."""
    exp = experiment(NETWORKS[args.train], args.quick, args.set, device=args.device).build()
    trainer, strategy = exp.trainer, exp.strategy
    per_setting = (cost["f_s"] - cost["e_s"]) / cost["queries_per_step"]
    t0 = clock()

    def hook(closure, strat):
        predicted = cost["rest_s"] + strat.queries_per_step * per_setting + cost["e_s"]
        if clock() - t0 + 2 * predicted > args.train_budget:
            trainer.config.steps = trainer.step + 1  # this step is the last
        return closure

    trainer.closure_hook = hook
    result = exp.run()
    spent = clock() - t0
    rep, tr = result.report, result.report["training"]
    out = {"steps": tr["steps"], "steps_planned": cost["steps"], "queries": tr["queries"],
           "accuracy": rep["metrics"]["final"], "best": rep["metrics"]["best"], "energy_j": tr["energy_j"],
           "latency_s": tr["latency_s"], "wall_s": tr["wall_s"], "clock_s": spent, "switched_at": getattr(strategy, "switched_at", None),
           "curve": [{k: h.get(k) for k in ("step", "queries", "metric", "eval_loss", "energy_j", "latency_s", "wall_s")}
                     for h in result.train.history if h.get("metric") is not None]}
    print(f"\n## Partial run: {args.train} network, {SCENARIO} seed 0, budget {args.train_budget:g} s of {args.clock} time "
          f"(PARTIAL: {out['steps']} of {out['steps_planned']} steps)\n")
    print("| step | queries | test accuracy | test loss | training energy (J) | training latency (s) | wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for h in out["curve"]:
        print(f"| {h['step']} | {h['queries']} | {100 * h['metric']:.2f} % | {h.get('eval_loss') or math.nan:.4f} | "
              f"{h.get('energy_j') or 0:.3g} | "
              f"{h.get('latency_s') or 0:.3g} | {h.get('wall_s') or 0:.0f} |")
    switched = out["switched_at"]
    print(f"\nreached {100 * out['accuracy']:.2f} % (best {100 * out['best']:.2f} %) after {out['steps']} steps, "
          f"{out['queries']} queries; modelled training energy {out['energy_j']:.3g} J, latency "
          f"{out['latency_s']:.3g} s (report); {args.clock} {spent:.0f} s (wall {out['wall_s']:.0f} s); "
          + (f"switched to CGE after step {switched}" if switched else "still in the sign-RGE phase"))
    rge = cost["step_s"]
    cge = cost.get("step_cge_s", rge)
    left = out["steps_planned"] - out["steps"]
    evals_left = max(0, cost["evaluations"] - len(out["curve"]))
    rest_s = (cge if switched else rge) * left + evals_left * cost["eval_s"]
    out["projected_full_s"] = spent + rest_s
    print(f"full run ({out['steps_planned']} steps) projected on {'one thread' if args.device == 'cpu' else args.device}: {duration(out['projected_full_s'])} "
          f"(the remaining {left} steps in the {'CGE' if switched else 'sign-RGE'} phase at "
          f"{(cge if switched else rge):.3g} s per step)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="mnist_small pair, 1 round, 3 s of training (< 30 s)")
    ap.add_argument("--networks", default="TT,dense", help="comma-separated subset of TT,dense")
    ap.add_argument("--rounds", type=int, default=3, help="timed calls per measurement (median)")
    ap.add_argument("--workers", type=int, nargs="+", default=list(WORKERS), help="Ray worker counts projected")
    ap.add_argument("--exchange-ms", type=float, default=EXCHANGE_MS, help="Ray round trip per step (ms)")
    ap.add_argument("--train-budget", type=float, default=600.0, help="seconds of training (0: none)")
    ap.add_argument("--train", choices=sorted(NETWORKS), default="TT", help="the network the partial run trains")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="what the costs and the budget count")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a scenario value for both networks, as photonic-sim run --set (repeatable)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (forces --clock wall, synchronized)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.device != "cpu":
        if not torch.cuda.is_available():
            ap.error(f"--device {args.device}: torch sees no CUDA device here")
        args.clock = "wall"
    names = [n.strip() for n in args.networks.split(",") if n.strip()]
    if not names or any(n not in NETWORKS for n in names):
        ap.error(f"--networks: allowed {','.join(NETWORKS)}")
    if args.quick:
        args.rounds, args.train_budget = 1, min(args.train_budget, 3.0)
    torch.set_num_threads(args.threads)
    global clock
    clock = _cuda_wall if args.device != "cpu" else CLOCKS[args.clock]
    loadavg = Path("/proc/loadavg")
    load = " ".join(loadavg.read_text().split()[:3]) if loadavg.exists() else "n/a"
    where = torch.cuda.get_device_name(args.device) if args.device != "cpu" else "cpu"
    print(f"bench_mnist: torch {torch.__version__}, device {where}, threads {torch.get_num_threads()}, rounds {args.rounds}, "
          f"clock {args.clock}, set {args.set or 'nothing'}, "
          f"load average {load}{', QUICK (mnist_small pair, not the paper pair)' if args.quick else ''}")
    rows = [cost_row(n, NETWORKS[n], args) for n in names]
    print_costs(rows, args)
    run = None
    if args.train_budget > 0 and args.train in names:
        run = partial_run(args, rows[names.index(args.train)])
    if args.json:
        args.json.write_text(json.dumps({"costs": rows, "partial_run": run}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
