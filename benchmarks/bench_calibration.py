"""Weight mapping with and without calibration on the default chip (docs/calibration.md).

    python benchmarks/bench_calibration.py                      # the digits table of docs/calibration.md
    python benchmarks/bench_calibration.py --scenario black_scholes_tonn --insitu-steps 0   # the PDE rows
    python benchmarks/bench_calibration.py --quick              # a short smoke version

The quickstart scenario's chip, accelerator and model (silicon thermo-optic card: 8-bit phases,
γ error 0.002, crosstalk 0.005, phase bias U(−1, 1) rad, noisy 8-bit intensity readout;
tonn_space; the `digits` network, 24 blocks), seed 0. Rows, public API only
(:class:`photonic_sim.Experiment`):

1. mapped, no calibration: ``Experiment.weight_map`` (offline FO on the ideal model,
   ``--offline-steps``), deployed as it is;
2. mapped + calibrated: ``Experiment.calibrate`` (readings only) on the chip, the same mapped
   phases pre-compensated with ``Calibration.compensate`` (as ``weight_map(calibration=...)``
   does), deployed;
3. mapped + calibrated + a short in-situ ZO fine-tune (the quickstart recipe, ``--finetune-steps``
   at ``--finetune-lr``) from row 2's phases;
4. fully in situ: the quickstart recipe from random phases for ``--insitu-steps`` (0: skipped).

``--scenario`` takes another scenario (e.g. ``black_scholes_tonn``: its chip, model and PINN
recipe; the metric is then the test relative L2 error against the analytic solution).

The offline training runs once; rows 2-3 reuse its phases and block gains on fresh
experiments of the same seed (the same chip). Queries, energy (J) and latency (s) are what the
chip was asked to do for that row (calibration + training; the offline training on the ideal
model and the test evaluations are not chip work), priced by ``Experiment.cost``. Accuracy is
the test metric measured through the chip (accuracy for digits). The chip is simulated without
insertion loss (``chip.insertion_loss=false``, the physics docs/calibration.md's tables were
measured with; a scenario's default is now on): ``--insertion-loss`` keeps the scenario's.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from photonic_sim import Experiment

LOSS = ["chip.insertion_loss=false"]  # the tables' physics; --insertion-loss: the scenario's default (on)


def _fresh(scenario: str, steps: int, lr: float | None = None, init=None, scales=None) -> Experiment:
    sets = [*LOSS, f"training.steps={steps}", f"training.eval_every={max(steps, 1)}", "training.checkpoint_every=0"]
    if lr is not None:
        sets.append(f"training.strategy_options.lr={lr}")
    exp = Experiment.from_file(scenario, sets, init_phases=init)
    if scales is not None:  # the block gains the offline mapping set (same network layout)
        exp.network.block_scales = scales.clone()
    return exp


def _add(a: dict, b: dict) -> dict:
    return {key: int(a.get(key, 0)) + int(b.get(key, 0)) for key in set(a) | set(b)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="quickstart", help="scenario name or file (default quickstart)")
    ap.add_argument("--quick", action="store_true", help="short smoke version")
    ap.add_argument("--offline-steps", type=int, default=600)
    ap.add_argument("--settings", type=int, default=48, help="calibration settings per hardware block")
    ap.add_argument("--fit-steps", type=int, default=300, help="calibration fit steps")
    ap.add_argument("--finetune-steps", type=int, default=200)
    ap.add_argument("--finetune-lr", type=float, default=0.002)
    ap.add_argument("--insitu-steps", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--insertion-loss", action="store_true",
                    help="simulate insertion loss (the scenarios' default; the docs' tables were measured without)")
    args = ap.parse_args(argv)
    if args.insertion_loss:
        LOSS.clear()
    if args.quick:
        args.offline_steps, args.settings, args.fit_steps = 20, 8, 20
        args.finetune_steps, args.insitu_steps = 5, 5
    torch.set_num_threads(args.threads)
    rows = []

    def row(label, metric, ledger, exp, t0):
        energy, latency = exp.cost(ledger) if ledger else (0.0, 0.0)
        rows.append({"run": label, "metric": metric, "queries": int(ledger.get("queries", 0)),
                     "energy_j": energy, "latency_s": latency, "wall_s": time.perf_counter() - t0})
        print(f"{label:44s} {name} {fmt(metric)}  queries {rows[-1]['queries']:7d}  "
              f"energy {energy:.3g} J  latency {latency:.3g} s  wall {rows[-1]['wall_s']:.0f} s", flush=True)

    t0 = time.perf_counter()
    offline = _fresh(args.scenario, args.offline_steps)  # its recipe: evaluated once, at the end
    name = offline.task.metric_name

    def fmt(value: float) -> str:
        return f"{100 * value:.2f} %" if name == "accuracy" else f"{value:.3g}"

    mapped, ideal = offline.weight_map(steps=args.offline_steps)
    print(f"offline training on the ideal model ({args.offline_steps} FO steps): test {name} "
          f"{fmt(ideal.report['metrics']['final'])} (not chip work, not a row)")
    scales = offline.network.block_scales.clone()
    row("mapped, no calibration", offline.task.evaluate(offline.chip, mapped)["metric"], {}, offline, t0)

    t0 = time.perf_counter()
    exp = _fresh(args.scenario, 1, init=mapped, scales=scales)
    cal = exp.calibrate(settings=args.settings, steps=args.fit_steps)
    compensated = cal.compensate(exp.network, mapped)
    print(f"calibration: fit residual max {float(cal.residual.max()):.4f} (field units), ledger {cal.ledger}")
    row("mapped + calibrated", exp.task.evaluate(exp.chip, compensated)["metric"], cal.ledger, exp, t0)

    t0 = time.perf_counter()
    tune = _fresh(args.scenario, args.finetune_steps, args.finetune_lr, init=compensated, scales=scales)
    res = tune.run()
    ledger = _add(res.report["training"]["ledger"], cal.ledger)
    row(f"mapped + calibrated + ZO fine-tune ({args.finetune_steps} steps)",
        res.report["metrics"]["final"], ledger, tune, t0)

    if args.insitu_steps:
        t0 = time.perf_counter()
        insitu = _fresh(args.scenario, args.insitu_steps)
        res = insitu.run()
        row(f"fully in situ ({insitu.recipe.strategy}, {args.insitu_steps} steps)", res.report["metrics"]["final"],
            res.report["training"]["ledger"], insitu, t0)

    print(f"\n| run | test {name} | queries | energy (J) | latency (s) |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {fmt(r['metric'])} | {r['queries']} | {r['energy_j']:.3g} | {r['latency_s']:.3g} |")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
