"""Why the dense ONN is not worse under ZO here: one sign-RGE step on a TONN and on the dense
ONN of the same widths (docs/classification.md, "Why the dense ONN is not worse under ZO").

    python benchmarks/bench_zo_gain.py            # digits (3.3x controls) and digits-wide (10.4x), seed 0
    python benchmarks/bench_zo_gain.py --fo-steps 200   # the same at a partly trained point
    python benchmarks/bench_zo_gain.py --pair mnist-paper --trials 5 --reps 2   # the paper's MNIST pair
    python benchmarks/bench_zo_gain.py --quick    # 2 trials per row, 1 reading (smoke run, ~2 min)

For each network (a :class:`photonic_sim.Experiment`), at its random initial phases (or after
``--fo-steps`` steps of the FO baseline, Adam lr 0.01 on batches of 512, trained by the
experiment, to look at a partly trained point) on the default chip (the classification bench's
chip, intensity readout, detector noise on), on one fixed batch of 512 training images:
``photonic_sim.training.diagnostics.sign_rge_step_gain`` with the bench recipe's q, μ 0.05 and
lr 0.01 against the FO reference gradient (autograd through the simulator, a yardstick that the
strategies never see). Columns: controls d, loss, |g|₂, cos(g, ĝ) measured / √(q/(q+d+1)),
first-order gain −lr·g·sign ĝ measured / predicted (−lr Σ|g_j| erf(...)), the measured loss
change of the step, the change of a random-sign step of the same size (the curvature cost,
½ lr² tr H), and of the sign step along the true gradient. Losses are cross-entropy (nats),
each averaged over ``--reps`` readings.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from photonic_sim import Experiment
from photonic_sim.cores.spec import NetworkSpec, tt
from photonic_sim.training import reference_gradient, sign_rge_step_gain

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"
# The networks of bench_classification.py's parts and the q of their sign-RGE recipe:
# digits (the `digits` preset, q 16), digits-wide (64 -> 256 -> 10, TT rank 4, q 64), and the
# seed paper's MNIST pair, the `mnist` preset (784 -> 1024 -> 10, TT rank 6, 8514 controls on
# 8x8 blocks) against the dense ONN of the same widths (~1.74 M controls, 12 800 blocks); not
# trained here (a GPU job); at the initial phases the dense row takes ~80 s per trial at q 16
# (one loaded core), ~10 min for --trials 5 --reps 2.
DIGITS_WIDE_NET = NetworkSpec("digits_wide", (
    tt((4, 4, 4), (4, 8, 8), 4, "relu"),
    tt((4, 8, 8), (2, 5, 1), 4, "none"),
))
PAIRS = {"digits": ("digits", {"kind": "digits"}, 16),
         "digits-wide": (DIGITS_WIDE_NET, {"kind": "digits"}, 64),
         "mnist-paper": ("mnist", {"kind": "mnist", "data_dir": str(MNIST_DIR)}, 16)}
DEFAULT_PAIRS = ("digits", "digits-wide")
MU, LR, BATCH = 0.05, 0.01, 512
ACCELERATOR = {"tonn": "tonn_space", "dense": "dense_onn"}


def experiment(pair: str, network: str, seed: int, fo_steps: int = 0) -> Experiment:
    """The pair's network (TONN or its dense twin) on the default chip, batches of 512; with
    ``fo_steps`` the FO baseline (Adam lr 0.01) trains it that many steps. No insertion loss
    (``insertion_loss=False``), as when docs/classification.md's table was measured."""
    model, task, _ = PAIRS[pair]
    recipe = {"strategy": "fo", "strategy_options": {"lr": 0.01, "optimizer": "adam"}, "steps": max(fo_steps, 1),
              "batch_size": BATCH, "logit_scale": 10.0}
    return Experiment(devices="silicon_thermo_optic", accelerator=ACCELERATOR[network], model=model, task=task,
                      training=recipe, seed=seed, insertion_loss=False)


def gain_row(pair: str, network: str, seed: int, trials: int, reps: int, fo_steps: int = 0) -> dict:
    exp = experiment(pair, network, seed, fo_steps)
    chip, task = exp.chip, exp.task
    theta = exp.run().phases if fo_steps else exp.params
    batch = task.sample_batch(torch.Generator().manual_seed(seed + 11))
    grad = reference_gradient(task.closure(chip, batch, differentiable=True), theta, reps=reps)
    q = PAIRS[pair][2]
    t0 = time.perf_counter()
    r = sign_rge_step_gain(task.closure(chip, batch), theta, grad, q=q, mu=MU, lr=LR, trials=trials,
                           generator=torch.Generator().manual_seed(seed + 12), reps=reps)
    return {"network": network, "seed": seed, "fo_steps": fo_steps, **r.as_dict(), "wall_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", choices=sorted(PAIRS), action="append")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--reps", type=int, default=4, help="readings averaged per loss / gradient (detector noise)")
    ap.add_argument("--fo-steps", type=int, default=0, help="FO steps before measuring (0: the initial phases)")
    ap.add_argument("--quick", action="store_true", help="2 trials, 1 reading")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    trials, reps = (2, 1) if args.quick else (args.trials, args.reps)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, trials {trials}, reps {reps}, "
          f"mu {MU}, lr {LR}, batch {BATCH}, fo steps {args.fo_steps}")
    rows = []
    for name in args.pair or DEFAULT_PAIRS:
        if name == "mnist-paper" and not MNIST_DIR.is_dir():
            print(f"mnist-paper skipped: no IDX files at {MNIST_DIR}")
            continue
        print(f"\n## {name}\n| network | seed | d | q | loss | abs g | cos (theory) | linear (theory) | "
              "step | random step | sign(g) step |\n|---|---|---|---|---|---|---|---|---|---|---|")
        for seed in args.seeds:
            pair = [gain_row(name, net, seed, trials, reps, args.fo_steps) for net in ("tonn", "dense")]
            for r in pair:
                print(f"| {r['network']} | {seed} | {r['d']} | {r['q']} | {r['loss']:.4f} | {r['grad_norm']:.3f} | "
                      f"{r['cos']:.3f} ({r['cos_theory']:.3f}) | {r['linear']:.2e} ({r['linear_theory']:.2e}) | "
                      f"{r['actual']:.2e} | {r['random']:.2e} | {r['ideal']:.2e} |", flush=True)
            t, d = pair
            print(f"dense / TONN: controls {d['d'] / t['d']:.1f}x, step gain {d['actual'] / t['actual']:.2f}x, "
                  f"random-step cost {d['random'] / t['random']:.2f}x")
            rows += [{"pair": name, **r} for r in pair]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
