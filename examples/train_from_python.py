"""Train the quickstart network from Python with ``photonic_sim.Experiment`` and write its report.

The pieces a scenario file names are given here as Python objects: the device card (silicon
thermo-optic: 8-bit phases, γ-noise, crosstalk, phase bias, noisy 8-bit readout), the
accelerator card (space-multiplexed TONN), the network (the ``digits`` preset: TT 64 -> 64 +
dense 64 -> 10), the task (scikit-learn digits, 25 % test split), the training recipe
(``zo_rge``: two-sided random-gradient estimates, q 16, μ 0.05 rad, Adam, cosine lr) and the
seed. ``Experiment`` builds the chip, the task, the strategy and the trainer the way
``photonic-sim run scenarios/quickstart.yaml`` does (the same pieces give the same numbers, bit
for bit), runs it in situ (the strategy only sees chip queries) and returns a result whose report
the reports layer writes as it is.

It asserts its own result: test accuracy (measured through the noisy chip) at least 10 points
above chance (10 %) in the quick mode (60 steps, 1 920 queries; measured 25.2 %) and at least
40 points above chance in the full mode (600 steps: the quickstart scenario, about 70 %). Run
it with

    python examples/train_from_python.py [OUT_DIR]                      # 600 steps, 1-2 min
    PHOTONIC_SIM_QUICK=1 python examples/train_from_python.py [OUT_DIR] # 60 steps, the CI mode

The report goes to OUT_DIR (default ``runs/train_from_python``; replaced if it exists).
"""
from __future__ import annotations

import os
import sys

from photonic_sim import Experiment
from photonic_sim.devices import load_device_card
from photonic_sim.scenarios import load_training_recipe

QUICK = os.environ.get("PHOTONIC_SIM_QUICK") == "1"
STEPS = 60 if QUICK else 600
CHANCE = 0.10
MARGIN = 0.10 if QUICK else 0.40


def main(out_dir: str) -> None:
    recipe = load_training_recipe("zo_rge", overrides={"steps": STEPS, "eval_every": 60 if QUICK else 150,
                                                       "checkpoint_every": 0})
    exp = Experiment(
        devices=load_device_card("silicon_thermo_optic"),  # or overrides={"phase_shifter.bits": 6}
        accelerator="tonn_space",
        model="digits",
        task={"kind": "digits", "test_fraction": 0.25},
        training=recipe,
        seed=0,
        name="train_from_python",
    )
    print(f"{exp.spec.name}: {exp.chip.num_phases} phases on {exp.network.num_blocks} blocks, "
          f"strategy {exp.recipe.strategy}, {STEPS} steps")
    result = exp.run(progress=not QUICK)
    metrics, training = result.report["metrics"], result.report["training"]
    print(f"test accuracy {metrics['final']:.3f} (chance {CHANCE}), {training['queries']} chip queries, "
          f"training energy {training['energy_j']:.3g} J, latency {training['latency_s']:.3g} s")
    out = result.write(out_dir, overwrite=True)
    print(f"report: {out / 'report.md'}")
    assert result.in_situ, "the strategy read more than chip queries"
    assert metrics["final"] >= CHANCE + MARGIN, (
        f"accuracy {metrics['final']:.3f} is not {MARGIN:.2f} above chance {CHANCE}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/train_from_python")
