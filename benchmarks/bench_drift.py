"""What bias drift does to a weight-mapped chip, and how often recalibration pays
(docs/physics.md#drift-and-thermal-settling, docs/calibration.md).

    python benchmarks/bench_drift.py            # the table
    python benchmarks/bench_drift.py --quick    # a short smoke version

Chip: the default silicon thermo-optic card with a random-walk drift of the U/V biases
(``--diffusion`` rad²/s) and a query time of ``--query-time`` s (the clock step per query; the
drift is a function of time only, so a slow query time just makes a long run cheap to
simulate), exact coherent readout (the error below is the mapping's, not detector noise). A
dense 16×16 layer (four 8×8 blocks) is mapped from a random weight matrix, calibrated from
readings (``photonic_sim.calibration.calibrate``) and pre-compensated, then queried with the
same setting (inference) while the clock runs. Error: ‖chip(x) − ideal(x)‖ / ‖ideal(x)‖ over a
fixed batch x against the ideal chip with the ideal phases.

Rows: (1) the error against time since the one calibration at t = 0; (2) recalibrating every
T_r seconds over the horizon: the mean error and the share of the time spent calibrating.
Measured (default arguments, seed 0, one thread, ~200 s of CPU): uncalibrated 1.151;
calibrated at t = 0 (96 queries, 0.96 s of chip time) 0.167, after 4 s 0.578, 8 s 0.899, 20 s
1.115 (as bad as uncalibrated); recalibrating every 1 / 4 / 16 s: mean error 0.255 / 0.361 /
0.788 at 51 % / 23 % / 10 % of the time spent calibrating. The calibration itself takes chip
time during which the bias drifts (√(D·0.96 s) ≈ 0.1 rad), which limits its error at t = 0.
``--diffusion 0.001``: 0.050 at t = 0, 0.127 after 4 s, 0.227 after 8 s, 0.359 after 20 s;
recalibrating every 1 / 4 / 16 s: 0.059 / 0.094 / 0.197 (same time shares).

Not here (not measured yet): the comparison with a chip trained in situ, whose trainer would
track the drift with its own queries.
"""

from __future__ import annotations

import argparse
import time

import torch

from photonic_sim.calibration import calibrate
from photonic_sim.chip import Chip
from photonic_sim.cores.photonic import DenseONN
from photonic_sim.cores.spec import NetworkSpec, dense
from photonic_sim.devices import load_device_card


def setup(diffusion: float, query_time: float, seed: int = 0):
    card = load_device_card("silicon_thermo_optic", overrides={
        "phase_shifter.drift.kind": "random_walk", "phase_shifter.drift.diffusion": diffusion,
        "phase_shifter.query_time": query_time})
    net = DenseONN(NetworkSpec("drift16", (dense(16, 16, bias=False),)))
    ideal_ph = net.init_phases(torch.Generator().manual_seed(seed))
    chip = Chip(net, card, seed=seed, exact_readout=True, readout="coherent", dtype=torch.float64)
    ideal = Chip(net, card, seed=seed, ideal=True, readout="coherent", dtype=torch.float64)
    x = torch.rand(32, 16, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64) * 2 - 1
    return card, net, chip, ideal_ph, ideal.measure(x, ideal_ph), x


def error(chip, x, ph, ref) -> float:
    return float((chip.measure(x, ph) - ref).norm() / ref.norm())


def run(diffusion: float, query_time: float, horizon: float, points: int, intervals: list[float], settings: int):
    card, net, chip, ideal_ph, ref, x = setup(diffusion, query_time)
    t0 = time.perf_counter()
    uncal = error(chip, x, ideal_ph, ref)
    cal = calibrate(chip, net, card, settings=settings)
    ph = cal.compensate(net, ideal_ph)
    start, cal_time = chip._clock, chip._clock
    print(f"drift D = {diffusion:g} rad^2/s, query time {query_time:g} s; calibration: "
          f"{cal.ledger['queries']} queries, {cal_time:.3g} s of chip time; error uncalibrated {uncal:.4f}")
    print("t since calibration (s) | rel. error")
    marks = [horizon * (i / points) for i in range(points + 1)]
    for m in marks:
        while chip._clock - start < m:
            chip.measure(x, ph)
        print(f"{chip._clock - start:23.3f} | {error(chip, x, ph, ref):.4f}")
    print("recalibrate every T_r (s) | mean error | time calibrating")
    for every in intervals:
        card, net, chip, ideal_ph, ref, x = setup(diffusion, query_time)
        errs, calibrating, last = [], 0.0, None
        while chip._clock < horizon:
            if last is None or chip._clock - last >= every:
                before = chip._clock
                ph = calibrate(chip, net, card, settings=settings).compensate(net, ideal_ph)
                calibrating += chip._clock - before
                last = chip._clock
            errs.append(error(chip, x, ph, ref))
        print(f"{every:25.3g} | {sum(errs) / len(errs):.4f}     | {calibrating / chip._clock:.1%}")
    print(f"({time.perf_counter() - t0:.1f} s of CPU)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--diffusion", type=float, default=0.01)
    ap.add_argument("--query-time", type=float, default=0.01)
    ap.add_argument("--horizon", type=float, default=20.0)
    ap.add_argument("--settings", type=int, default=24)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.quick:
        run(a.diffusion, a.query_time, 2.0, 2, [1.0], 8)
    else:
        run(a.diffusion, a.query_time, a.horizon, 5, [1.0, 4.0, 16.0], a.settings)


if __name__ == "__main__":
    main()
