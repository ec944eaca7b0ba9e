"""Write your own zeroth-order strategy: a gradient estimator plugged into torch.optim.

A strategy in photonic_sim is an *estimator*: it gets the chip only as a black-box loss
closure ``closure(phases[P, N]) -> losses[P]`` (one row = one chip query, phases in rad),
spends its queries in ONE batched call and writes its gradient estimate (loss per rad) into
``phases.grad``. Any ``torch.optim`` optimizer and ``lr_scheduler`` does the update.

The estimator below is a forward-difference *random-coordinate* estimate: each step it picks
``k`` coordinates at random and measures L(θ) and L(θ + μ·e_c) for each of them (k + 1 rows),

    ĝ_c = (n / k) · [L(θ + μ e_c) − L(θ)] / μ      (0 on the coordinates not picked),

n the number of phases, so that E[ĝ] is the μ-forward-difference gradient. Its options are
declared once, in ``options``; the base class checks them and makes them attributes.

It trains a one-layer tensorized ONN (TT 64 -> 10 on two 8x8 meshes) in situ on the
scikit-learn digits on the silicon thermo-optic chip (8-bit phases, noise, crosstalk, noisy
readout), with Adam and a cosine schedule, and asserts its own result: test accuracy at least
20 points above chance (10 %); measured 11.1 % -> 41.6 % in the quick mode (150 steps, 9 752
queries, about 15 s of CPU). Run it with

    python examples/write_a_strategy.py                      # 600 steps
    PHOTONIC_SIM_QUICK=1 python examples/write_a_strategy.py # 150 steps, the CI mode
"""
from __future__ import annotations

import os
import time

import torch

from photonic_sim import Experiment
from photonic_sim.cores.spec import NetworkSpec, tt
from photonic_sim.training.strategies import Estimate, Estimator, constrain_
from photonic_sim.training.strategies.estimators import evaluate, support, wrap
from photonic_sim.training.strategies.options import integer, positive

QUICK = os.environ.get("PHOTONIC_SIM_QUICK", "") not in ("", "0")
CHANCE, MARGIN = 0.10, 0.20


class RandomCoordinates(Estimator):
    """Forward differences along ``k`` random coordinates (module docstring); k + 1 rows."""

    options = {
        "k": integer(64, doc="coordinates per estimate"),
        "mu": positive(0.1, doc="finite-difference step (rad)"),
    }

    def queries(self, n: int) -> int:
        return self.k + 1

    def estimate(self, closure, theta, *, mask=None, periods=None):
        idx = support(theta, mask)                     # the coordinates we may touch
        k = min(self.k, idx.numel())
        chosen = idx[torch.randperm(idx.numel(), generator=self.generator)[:k]]
        rows = theta.repeat(k + 1, 1)                  # row 0: θ; row i: θ + μ e_{chosen[i-1]}
        rows[torch.arange(1, k + 1), chosen] += self.mu
        losses = evaluate(closure, wrap(rows, periods))  # ONE call to the chip
        grad = torch.zeros_like(theta)
        grad[chosen] = (losses[1:] - losses[0]) / self.mu * (idx.numel() / k)
        return Estimate(grad, losses[0])


def main() -> float:
    steps = 150 if QUICK else 600
    t0 = time.perf_counter()
    exp = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space",
                     model=NetworkSpec("tt64x10", (tt((8, 8), (2, 5), 1),)), task="digits",
                     training={"strategy": "zo-rge", "steps": steps, "batch_size": 64,
                               "logit_scale": 10.0}, seed=0)
    chip, task, phases = exp.chip, exp.task, exp.params       # the pieces the builder made
    periods = chip.controls()["periods"]

    estimator = RandomCoordinates(k=64, mu=0.1, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam([phases], lr=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=0.005)
    batches = torch.Generator().manual_seed(2)

    before = task.evaluate(chip, phases)["metric"]
    for step in range(1, steps + 1):
        closure = task.closure(chip, task.sample_batch(batches))  # the black box of one batch
        loss = estimator.estimate_(closure, phases, periods=periods)
        optimizer.step()
        scheduler.step()
        constrain_(phases, periods)                                # phases back into [0, 2π)
        if step % (steps // 5) == 0:
            print(f"step {step:4d}  batch loss {loss:.3f}  queries {chip.ledger.queries}")
    after = task.evaluate(chip, phases)["metric"]
    print(f"test accuracy {before:.1%} -> {after:.1%} after {steps} steps "
          f"({chip.ledger.queries} queries, {time.perf_counter() - t0:.1f} s)")
    assert after >= CHANCE + MARGIN, f"accuracy {after:.3f} is not {MARGIN:.0%} above chance"
    return after


if __name__ == "__main__":
    main()
