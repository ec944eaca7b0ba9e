"""What bias drift does to a weight-mapped chip versus a chip trained in situ, and how often
recalibration pays (docs/physics.md#drift-and-thermal-settling, docs/calibration.md#drift-a-weight-mapped-chip-versus-a-chip-trained-in-situ).

    nice -n 10 python benchmarks/bench_drift.py --diffusion 0.001 --lr 0.003   # the table's rows
    nice -n 10 python benchmarks/bench_drift.py --diffusion 0.01 --lr 0.03
    python benchmarks/bench_drift.py --quick                                  # a short smoke version
    python benchmarks/bench_drift.py --part in-situ --lr 0.01                 # only the in-situ row

Chip: the default silicon thermo-optic card with a random-walk drift of the U/V biases
(``--diffusion`` rad²/s) and a query time of ``--query-time`` s (the clock step per query; the
drift is a function of time only, so a slow query time just makes a long run cheap to
simulate), exact coherent readout (the error below is the mapping's, not detector noise). A
dense 16×16 layer (four 8×8 blocks) is mapped from a random weight matrix, calibrated from
readings (``photonic_sim.calibration.calibrate``) and pre-compensated, then queried with the
same setting (inference) while the clock runs. Error: ‖chip(x) − ideal(x)‖ / ‖ideal(x)‖ over a
fixed batch x against the ideal chip with the ideal phases.

Rows (``--part mapped``): (1) the error against time since the one calibration at t = 0;
(2) recalibrating every T_r seconds over the horizon: the mean error, the share of the time
spent calibrating and the calibrations' queries and energy. In situ (``--part in-situ``): the
same calibrated start, then ZO training through the chip's black box for the whole horizon
(``--strategy``, ``--q``, ``--mu``, ``--lr``, ``--optimizer``) on ‖chip(x) − ideal(x)‖² /
‖ideal(x)‖², one inference read of the error after every step; the drift goes on between the
steps. Energy: ``accelerators.training_cost`` of the ledger on the ``dense_onn`` card.

Measured (seed 0, one thread, load 7–9 on 2 cores; 112 / 128 s of CPU for the two commands):
D = 0.001: calibrated once 0.050 at t = 0 → 0.127 after 4 s → 0.359 after 20 s; recalibrating
every 1 / 4 / 16 s: mean 0.059 / 0.094 / 0.197 (51 / 23 / 10 % of the time calibrating; 1 056 /
480 / 192 queries, 0.174 / 0.079 / 0.032 J); in situ (zo-rge q 8, Adam lr 0.003): 0.051 → 0.121
→ 0.216, mean 0.162, 1 800 training queries, 0.297 J. D = 0.01: calibrated once 0.167 → 0.578
→ 1.115; recalibrating every 1 / 4 / 16 s: 0.255 / 0.361 / 0.788; in situ (lr 0.03): 0.164 →
0.609 → 0.880, mean 0.726. Uncalibrated: 1.151.
"""

from __future__ import annotations

import argparse
import time

import torch

from photonic_sim.accelerators import training_cost
from photonic_sim.calibration import calibrate
from photonic_sim.chip import Chip
from photonic_sim.cores.photonic import DenseONN
from photonic_sim.cores.spec import NetworkSpec, dense
from photonic_sim.devices import load_device_card
from photonic_sim.training.strategies.registry import make_strategy

SPEC = NetworkSpec("drift16", (dense(16, 16, bias=False),))


def setup(diffusion: float, query_time: float, seed: int = 0):
    card = load_device_card("silicon_thermo_optic", overrides={
        "phase_shifter.drift.kind": "random_walk", "phase_shifter.drift.diffusion": diffusion,
        "phase_shifter.query_time": query_time})
    net = DenseONN(SPEC)
    ideal_ph = net.init_phases(torch.Generator().manual_seed(seed))
    chip = Chip(net, card, seed=seed, exact_readout=True, readout="coherent", dtype=torch.float64)
    ideal = Chip(net, card, seed=seed, ideal=True, readout="coherent", dtype=torch.float64)
    x = torch.rand(32, 16, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64) * 2 - 1
    return card, net, chip, ideal_ph, ideal.measure(x, ideal_ph), x


def error(chip, x, ph, ref) -> float:
    return float((chip.measure(x, ph) - ref).norm() / ref.norm())


def energy(card, ledger: dict) -> float:
    """Energy (J) of ledger totals on the dense accelerator card (``accelerators.training_cost``:
    the card's own settle and query times, not this benchmark's slow clock)."""
    return training_cost("dense_onn", SPEC, card, ledger)["energy_j"]


def spent(chip, before: dict) -> dict:
    return {k: v - before[k] for k, v in chip.ledger.totals().items()}


def in_situ(diffusion: float, query_time: float, horizon: float, points: int, settings: int, strategy: str,
            lr: float, q: int, mu: float, optimizer: str = "adam", calibrated: bool = True) -> None:
    """The same layer trained in situ while the bias drifts: from the calibrated mapping at
    t = 0 (``calibrated``; else from the plain mapping), ZO steps on the loss
    ‖chip(x, φ) − ideal(x)‖² / ‖ideal(x)‖² (the error's square, measured through the chip's
    black box), one after the other until the horizon; after every step one inference query of
    the current phases reads the error. Every query (steps and inference) advances the clock
    and the drift between the steps, as on a lab's chip."""
    card, net, chip, ideal_ph, ref, x = setup(diffusion, query_time)
    led0 = chip.ledger.totals()
    ph = calibrate(chip, net, card, settings=settings).compensate(net, ideal_ph) if calibrated else ideal_ph.clone()
    start, cal_ledger = chip.clock, spent(chip, led0)
    controls = chip.controls()
    opt = make_strategy(strategy, ph, lr=lr, generator=torch.Generator().manual_seed(0), q=q, mu=mu,
                        optimizer=optimizer, mask=controls["masks"]["phase"], periods=controls["periods"])
    norm = float(ref.square().sum())
    closure = chip.closure(lambda rows: (chip.measure(x, rows) - ref).square().sum((1, 2)) / norm)
    marks, errs, train = [horizon * (i / points) for i in range(points + 1)], [], dict.fromkeys(cal_ledger, 0)
    label = "calibrated at t = 0, then" if calibrated else "plain mapping, then"
    print(f"in situ ({label} {strategy} q={q} lr={lr:g} mu={mu:g}, {optimizer}) | t (s) | rel. error")
    while True:
        errs.append(error(chip, x, ph, ref))
        if marks and chip.clock - start >= marks[0]:
            print(f"{'':>40} | {chip.clock - start:5.2f} | {errs[-1]:.4f}")
            while marks and chip.clock - start >= marks[0]:
                marks.pop(0)
        if chip.clock - start >= horizon:
            break
        before = chip.ledger.totals()
        opt.step(closure)
        train = {k: v + spent(chip, before)[k] for k, v in train.items()}
    print(f"  mean error {sum(errs) / len(errs):.4f} over {len(errs)} inference reads; training: {opt.step_count} "
          f"steps, {train['queries']} queries, {energy(card, train):.3g} J (calibration at t = 0: "
          f"{cal_ledger['queries']} queries, {energy(card, cal_ledger):.3g} J)")


def run(diffusion: float, query_time: float, horizon: float, points: int, intervals: list[float], settings: int):
    card, net, chip, ideal_ph, ref, x = setup(diffusion, query_time)
    t0 = time.perf_counter()
    uncal = error(chip, x, ideal_ph, ref)
    cal = calibrate(chip, net, card, settings=settings)
    ph = cal.compensate(net, ideal_ph)
    start, cal_time = chip.clock, chip.clock
    print(f"drift D = {diffusion:g} rad^2/s, query time {query_time:g} s; calibration: "
          f"{cal.ledger['queries']} queries, {cal_time:.3g} s of chip time; error uncalibrated {uncal:.4f}")
    print("t since calibration (s) | rel. error")
    marks = [horizon * (i / points) for i in range(points + 1)]
    for m in marks:
        while chip.clock - start < m:
            chip.measure(x, ph)
        print(f"{chip.clock - start:23.3f} | {error(chip, x, ph, ref):.4f}")
    print("recalibrate every T_r (s) | mean error | time calibrating | calibration cost")
    for every in intervals:
        card, net, chip, ideal_ph, ref, x = setup(diffusion, query_time)
        errs, calibrating, last, cal_ledger = [], 0.0, None, {k: 0 for k in chip.ledger.totals()}
        while chip.clock < horizon:
            if last is None or chip.clock - last >= every:
                before = chip.clock
                cal = calibrate(chip, net, card, settings=settings)
                ph = cal.compensate(net, ideal_ph)
                cal_ledger = {k: v + cal.ledger[k] for k, v in cal_ledger.items()}
                calibrating += chip.clock - before
                last = chip.clock
            errs.append(error(chip, x, ph, ref))
        print(f"{every:25.3g} | {sum(errs) / len(errs):.4f}     | {calibrating / chip.clock:.1%}"
              f"            | {cal_ledger['queries']} queries, {energy(card, cal_ledger):.3g} J")
    print(f"({time.perf_counter() - t0:.1f} s wall)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--diffusion", type=float, default=0.01)
    ap.add_argument("--query-time", type=float, default=0.01)
    ap.add_argument("--horizon", type=float, default=20.0)
    ap.add_argument("--settings", type=int, default=24)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", choices=("mapped", "in-situ", "both"), default="both")
    ap.add_argument("--strategy", default="zo-rge", help="in-situ ZO strategy (a training strategy name)")
    ap.add_argument("--lr", type=float, default=0.01, help="in situ: Adam learning rate (rad)")
    ap.add_argument("--q", type=int, default=8, help="in situ: perturbations per step")
    ap.add_argument("--optimizer", default="adam", help="in situ: sgd, momentum or adam")
    ap.add_argument("--mu", type=float, default=0.01, help="in situ: perturbation size (rad)")
    ap.add_argument("--from-plain", action="store_true", help="in situ: start from the plain (uncalibrated) mapping")
    a = ap.parse_args()
    torch.set_num_threads(1)
    horizon, points, settings = (2.0, 2, 8) if a.quick else (a.horizon, 5, a.settings)
    t0 = time.process_time()
    if a.part != "in-situ":
        run(a.diffusion, a.query_time, horizon, points, [1.0] if a.quick else [1.0, 4.0, 16.0], settings)
    if a.part != "mapped":
        in_situ(a.diffusion, a.query_time, horizon, points, settings, a.strategy, a.lr, a.q, a.mu, a.optimizer,
                calibrated=not a.from_plain)
    print(f"({time.process_time() - t0:.0f} s of CPU in all)")


if __name__ == "__main__":
    main()
