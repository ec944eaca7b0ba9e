"""Acceptance runs for in-situ classification (docs/classification.md has the measured numbers).

    python benchmarks/bench_classification.py                 # every part
    python benchmarks/bench_classification.py --part digits   # digits: TONN ZO vs FO vs dense ZO
    python benchmarks/bench_classification.py --part digits-wide   # same at 64→256→10 (dense: 10× controls)
    python benchmarks/bench_classification.py --part digits-sgd    # TONN vs dense ZO without Adam
    python benchmarks/bench_classification.py --part mnist    # MNIST 10k: TT 784→hidden→10, ZO and FO
    python benchmarks/bench_classification.py --part weightmap
    python benchmarks/bench_classification.py --quick        # short smoke version of each part

Every run is a :class:`photonic_sim.Experiment` (the assembly ``photonic-sim run`` uses; a
:class:`Setup` holds one part's plain data and builds it per strategy and seed), compared with
``photonic_sim.training.compare``: the chip is the default silicon card (8-bit phases, γ-noise
0.002, crosstalk 0.005, phase bias U(−1, 1) rad, intensity readout; no insertion loss,
``Experiment(insertion_loss=False)``, the model the published tables were measured with — a
scenario's ``chip.insertion_loss`` is on by default), the test metric is measured
through the noisy chip, queries and training energy/latency come from the training ledger only.
A run's seed sets the chip, the train/test split, the initial phases, the strategy's generator
(seed + 1) and the mini-batch order. ``--workers N`` runs jobs in N processes (torch
single-threaded in each); ``--json FILE`` writes all rows.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from photonic_sim import Experiment
from photonic_sim.cores.spec import NetworkSpec, tt
from photonic_sim.devices import load_device_card
from photonic_sim.training import compare, summarize

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"


@dataclass(frozen=True)
class Setup:
    """One classification setup, run per ``(strategy, seed)`` (picklable plain data).

    ``task`` a scenario task mapping; ``model`` a preset name or ``NetworkSpec``;
    ``accelerator`` card name (its architecture picks TONN or the dense ONN, and it prices the
    run); ``devices`` card name with ``device_overrides`` (dotted keys); the recipe's
    ``steps``, ``batch_size``, ``eval_every``, ``eval_batch_size``, ``logit_scale``, ``loss``;
    ``options[strategy]`` the strategy's options (``lr`` included). ``"weight-map"`` (not in
    situ): ``Experiment.weight_map`` with ``options["weight-map"]`` (lr, steps), deployed on the
    chip; ``"weight-map+<strategy>"`` trains in situ from the mapped phases.
    """

    task: dict = field(default_factory=lambda: {"kind": "digits"})
    model: Any = "digits"
    accelerator: str = "tonn_space"
    devices: str = "silicon_thermo_optic"
    device_overrides: dict = field(default_factory=dict)
    steps: int = 300
    batch_size: int = 64
    eval_every: int = 25
    eval_batch_size: int = 512
    logit_scale: float = 10.0
    loss: str = "cross_entropy"
    options: dict = field(default_factory=dict)
    metric: str = "accuracy"

    def experiment(self, strategy: str, seed: int, **kwargs) -> Experiment:
        recipe = {"name": "bench", "strategy": strategy, "strategy_options": dict(self.options.get(strategy, {})),
                  "steps": self.steps, "batch_size": self.batch_size, "eval_every": self.eval_every,
                  "eval_batch_size": self.eval_batch_size, "logit_scale": self.logit_scale, "loss": self.loss}
        return Experiment(devices=load_device_card(self.devices, overrides=dict(self.device_overrides)),
                          accelerator=self.accelerator, model=self.model, task=dict(self.task), training=recipe,
                          seed=seed, insertion_loss=False, **kwargs)

    def __call__(self, strategy: str, seed: int) -> dict:
        base, _, insitu = strategy.partition("+")
        if base != "weight-map":
            return self.experiment(strategy, seed).run().row(strategy)
        wm = dict(self.options.get("weight-map", {}))
        exp = self.experiment(insitu or "fo", seed)
        t0 = time.perf_counter()
        phases, _ = exp.weight_map(lr=wm.get("lr", 0.01), steps=wm.get("steps"))
        if insitu:
            return exp.run().row(strategy)
        deployed = exp.task.evaluate(exp.chip, phases)["metric"]
        return {"strategy": strategy, "seed": int(seed), "metric": self.metric, "metric_final": deployed,
                "queries": 0, "training_energy_j": 0.0, "training_latency_s": 0.0,
                "wall_s": time.perf_counter() - t0, "history": [[0, deployed]], "in_situ": False,
                "stopped": "offline training on the ideal model, mapped, deployed"}

# digits: the `digits` preset (64 → 64 TT rank 4 + dense 64 → 10: 24 blocks, 3338 controls);
# docs/classification.md compares smaller all-TT networks (fewer controls, weaker gradients)
DIGITS_NET = "digits"
# two-sided RGE (2q rows: the antithetic pair cancels the curvature term that dominates one-sided
# differences at μ = 0.05 in 3338 dimensions), Adam, cosine lr — the best recipe measured so far.
# zo-sign-rge uses the same recipe on sign(ĝ): Adam then moves each coordinate by ≈ lr·E[sign ĝ_i],
# i.e. ∝ the per-coordinate SNR, as Adam on ĝ itself does (m/√v), so the two reach the same accuracy
DIGITS_ZO = {"lr": 0.01, "q": 16, "two_sided": True, "mu": 0.05, "optimizer": "adam", "schedule": "cosine"}
DIGITS = Setup(
    model=DIGITS_NET, steps=8000, batch_size=64, eval_every=500, eval_batch_size=512,
    options={"zo-rge": DIGITS_ZO, "zo-sign-rge": DIGITS_ZO, "fo": {"lr": 0.01}},
)
DIGITS_STEPS = {"fo": 600}

# digits with a wide hidden layer, 64 → 256 → 10, both layers TT rank 4 (4210 controls); the dense
# ONN of the same widths has 43 786 (10.4×), where the `digits` preset's dense twin has 3.3×. This is
# the shape of the seed paper's claim (TT vs dense at equal widths), at a size the CPU can run:
# zo-sign-rge with DIGITS_ZO at q 64, 2000 steps (256 000 queries, as 8000 steps at q 16).
DIGITS_WIDE_NET = NetworkSpec("digits_wide", (
    tt((4, 4, 4), (4, 8, 8), 4, "relu"),
    tt((4, 8, 8), (2, 5, 1), 4, "none"),
))
DIGITS_WIDE = Setup(
    model=DIGITS_WIDE_NET, steps=2000, batch_size=64, eval_every=250, eval_batch_size=512,
    options={"zo-sign-rge": {**DIGITS_ZO, "q": 64}, "fo": {"lr": 0.01}},
)

# digits, TONN vs dense ONN under ZO without Adam (twelfth session): plain SGD on the RGE estimate
# (θ −= lr·ĝ, whose noise grows like d/q, the paper's variance argument) and pure sign-RGE (each
# coordinate moves by ±lr), each at its best lr of the sweep in docs/classification.md; two-sided
# Gaussian q 64, μ 0.05, cosine, 2000 steps (256 000 queries, the digits budget). Measured, seeds 0 / 1:
# RGE-SGD TONN 93.54 / 92.20 %, dense 93.32 / 93.10 %; sign-RGE TONN 95.32 / 93.99 %, dense 93.99 / 94.65 %.
DIGITS_SGD = replace(DIGITS, steps=2000, eval_every=250, options={
    "zo-rge": {**DIGITS_ZO, "q": 64, "optimizer": "sgd", "lr": 0.03},
    "zo-sign-rge": {**DIGITS_ZO, "q": 64, "optimizer": "sgd", "lr": 0.01},
})

# MNIST: the `mnist_small` preset, 784 = 28×28 → 64 → 10 (TT rank 4, core matrices 8×112 and
# 32×28 with no padded output rows, + dense 64 → 10: 46 blocks, 6330 controls); two-sided
# Adam-RGE with batch 64 and q = 192 directions per step at lr 0.015, 2000 steps (~18 min with
# --threads 2 on an idle 2-core machine: 0.53 s per step). At 2000 steps, q 8 / 16 / 32 / 64 at
# lr 0.03 reach 73.2 / 80.9 / 84.1 / 87.2 % (seed 0); lr 0.015 gives 85.3 % at q 32,
# 86.9 ± 1.2 % at q 64, 88.0 ± 0.9 % at q 96 (2 seeds) and 88.4 ± 0.6 % at q 192 (3 seeds); lr 0.06
# 79.4 % at q 32; batch 16 / q 16 66.5 %, batch 128 / q 8 75.3 % (docs/classification.md).
# More directions per step beat more steps: 6000 steps at q 16 (the queries of 1500 steps at
# q 64) stalled at 83.2 %.
MNIST_NET = "mnist_small"
MNIST = Setup(
    task={"kind": "mnist", "data_dir": str(MNIST_DIR)}, model=MNIST_NET, steps=2000, batch_size=64, eval_every=250,
    eval_batch_size=1000,
    options={"zo-rge": {**DIGITS_ZO, "lr": 0.015, "q": 192}, "fo": {"lr": 0.01}},
)


def table(title: str, rows: list[dict]) -> str:
    """A plain-text summary table (mean ± std over seeds)."""
    lines = [f"\n## {title}", "| run | accuracy (mean ± std) | runs | queries | training energy (J) | "
             "training latency (s) | wall (s) |", "|---|---|---|---|---|---|---|"]
    for s in summarize(rows):
        acc = f"{100 * s['metric_mean']:.2f} ± {100 * s['metric_std']:.2f} %"
        fail = f" ({s['failed']} failed)" if s["failed"] else ""
        lines.append(f"| {s['strategy']} | {acc} | {s['runs']}{fail} | {s['queries']:.0f} | "
                     f"{s['training_energy_j']:.3g} | {s['training_latency_s']:.3g} | {s['wall_s']:.0f} |")
    for r in rows:
        if "error" in r:
            lines.append(f"error in {r['strategy']} seed {r['seed']}: {r['error']}")
    return "\n".join(lines)


class Labelled:
    """Runs ``run`` but reports under ``label`` (several setups in one table)."""

    def __init__(self, label: str, run: Setup, strategy: str):
        self.label, self.run, self.strategy, self.metric = label, run, strategy, run.metric

    def __call__(self, _strategy: str, seed: int) -> dict:
        row = self.run(self.strategy, seed)
        row["strategy"] = self.label
        return row


def run_labelled(jobs: list[Labelled], seeds: list[int], workers: int) -> list[dict]:
    rows: list[dict] = []
    for job in jobs:
        rows += compare(job, [job.label], seeds, workers=workers)
    return rows


def dense_twin(run: Setup) -> Setup:
    """The same run on the dense ONN of the same layer widths (its own accelerator card)."""
    return replace(run, accelerator="dense_onn")


def tonn_vs_dense(zo: Setup, fo: Setup, seeds, workers, widths: str = ""):
    """TONN zo-sign-rge, TONN fo, and the dense ONN of the same widths trained like the TONN ZO row."""
    tag = f" {widths}" if widths else ""
    dense = dense_twin(zo)
    jobs = [Labelled(f"TONN{tag} zo-sign-rge (in situ)", zo, "zo-sign-rge"),
            Labelled(f"TONN{tag} fo (NOT in situ)", fo, "fo"),
            Labelled(f"dense ONN{tag} zo-sign-rge (in situ)", dense, "zo-sign-rge")]
    return run_labelled(jobs, seeds, workers)


def digits_part(quick: bool, seeds, workers):
    base = DIGITS if not quick else replace(DIGITS, steps=40, eval_every=20)
    fo = replace(base, steps=DIGITS_STEPS["fo"] if not quick else 20, eval_every=100 if not quick else 20)
    return tonn_vs_dense(base, fo, seeds, workers)


def digits_wide_part(quick: bool, seeds, workers):
    base = DIGITS_WIDE if not quick else replace(DIGITS_WIDE, steps=10, eval_every=10)
    fo = replace(base, steps=DIGITS_STEPS["fo"] if not quick else 10, eval_every=100 if not quick else 10)
    return tonn_vs_dense(base, fo, seeds, workers, widths="64-256-10")


def digits_sgd_part(quick: bool, seeds, workers):
    base = DIGITS_SGD if not quick else replace(DIGITS_SGD, steps=10, eval_every=10)
    dense = dense_twin(base)
    jobs = [Labelled(f"{net} {name} SGD (in situ)", run, name)
            for name in ("zo-rge", "zo-sign-rge") for net, run in (("TONN", base), ("dense ONN", dense))]
    return run_labelled(jobs, seeds, workers)


def mnist_part(quick: bool, seeds, workers):
    if not MNIST_DIR.is_dir():
        print(f"MNIST part skipped: no IDX files at {MNIST_DIR}")
        return []
    base = MNIST if not quick else replace(MNIST, steps=10, eval_every=10, task={**MNIST.task, "test_fraction": 0.05})
    fo = replace(base, steps=600 if not quick else 10, eval_every=100 if not quick else 10)
    jobs = [Labelled("TT zo-rge (in situ)", base, "zo-rge"), Labelled("TT fo (NOT in situ)", fo, "fo")]
    return run_labelled(jobs, seeds, workers)


def weightmap_part(quick: bool, seeds, workers):
    base = replace(DIGITS, steps=6000) if not quick else replace(DIGITS, steps=40, eval_every=20)
    wm = {"lr": 0.01, "steps": 600 if not quick else 40}
    base = replace(base, options={**base.options, "weight-map": wm})
    ideal = replace(base, device_overrides={"phase_shifter.bias_range": 0.0, "phase_shifter.gamma_noise_std": 0.0,
                                            "crosstalk.factor": 0.0, "phase_shifter.bits": 16})
    no_bias = replace(base, device_overrides={"phase_shifter.bias_range": 0.0})
    jobs = [Labelled("weight-map on a near-ideal chip (no bias/γ/crosstalk, 16-bit)", ideal, "weight-map"),
            Labelled("weight-map on the chip without phase bias", no_bias, "weight-map"),
            Labelled("weight-map on the default chip (bias U(-1,1))", base, "weight-map"),
            Labelled("in-situ zo-sign-rge from the mapped phases", base, "weight-map+zo-sign-rge"),
            Labelled("in-situ zo-sign-rge from random phases", base, "zo-sign-rge")]
    return run_labelled(jobs, seeds, workers)


PARTS = {"digits": ("digits: TONN ZO vs FO vs dense ZO", digits_part),
         "digits-wide": ("digits, 64-256-10: TONN ZO vs FO vs dense ZO (10x the controls)", digits_wide_part),
         "digits-sgd": ("digits: TONN vs dense ZO without Adam (RGE-SGD, sign-RGE)", digits_sgd_part),
         "mnist": ("MNIST 10k (8000/2000 split): TT network", mnist_part),
         "weightmap": ("weight-map baseline vs in-situ ZO (digits)", weightmap_part)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=sorted(PARTS), action="append")
    ap.add_argument("--quick", action="store_true", help="short smoke version of each run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in this process, also used by the fused readout kernel (default 1; on an idle 2-core machine 2 threads take a q = 64 MNIST step from 0.50 to 0.30 s, on a loaded one they can be much slower)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, seeds {args.seeds}, quick {args.quick}")
    everything = {}
    for part in args.part or list(PARTS):
        title, fn = PARTS[part]
        t0 = time.perf_counter()
        rows = fn(args.quick, args.seeds, args.workers)
        if rows:
            print(table(title, rows) + f"\n({time.perf_counter() - t0:.0f} s)", flush=True)
        everything[part] = rows
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1, default=lambda v: None if isinstance(v, float) and
                                        math.isnan(v) else str(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
