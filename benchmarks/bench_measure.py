"""Speed of one ZO query batch on the chip: ``Chip.measure`` with the fused C kernels vs the
torch path (``PHOTONIC_SIM_NO_FUSED=1``), each path in its own process.

    python benchmarks/bench_measure.py [--threads N] [--settings P] [--batch B] [--rounds R]
    python benchmarks/bench_measure.py --workload pinn [--threads N] [--rounds R]

Workload ``zo`` (default): P = 32 phase settings (a two-sided q = 16 estimate) × a batch of
B = 64 inputs (uniform in [0, 1], seeded) through the default silicon chip (8-bit phases,
γ-noise, crosstalk, phase bias, noisy detectors and 8-bit ADCs, intensity readout), for the
``mnist_small`` and ``digits`` presets. Workload ``pinn``: one step of the HJB lattice
polish (benchmarks/bench_pinn.py): P = 256 settings (q 128, two-sided) × B = 1851 inputs
(uniform; one collocation point's 2·925 + 1 Stein points as the polish read them until the
sparse grid evaluated each distinct point once: 925 now, ``--batch 925``) through bench_pinn's
``HJB_SMALL`` network on the same card with exact coherent readout in float64. Columns:
``fused`` (the default: the mesh-build and readout kernels, on ``--threads`` threads) and
``torch`` (the same chip in a process with ``PHOTONIC_SIM_NO_FUSED=1``: both kernels off),
medians of ``--rounds`` timed calls after a warm-up, and their ratio. The two paths draw
different noise (same distribution), so their readings are compared on noise-free chips
(``exact_readout``: equal but for float rounding): the largest difference relative to the
largest reading. Only the public API is used.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from photonic_sim.chip import Chip
from photonic_sim.cores import TONN
from photonic_sim.cores.spec import NetworkSpec, dense, preset, tt
from photonic_sim.devices import load_device_card

PRESETS = ("mnist_small", "digits")
PATHS = ("fused", "torch")
# bench_pinn.py's HJB_SMALL (TT 21 -> 64 -> 64 -> 1), the network of the HJB polish rows
HJB_SMALL = NetworkSpec("hjb20_small", (tt((3, 7), (8, 8), 2, "sin"), tt((8, 8), (8, 8), 2, "sin"), dense(64, 1)))


def timed(fn) -> float:
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


def workloads(pinn: bool):
    if pinn:
        return [("hjb20_small", HJB_SMALL, dict(readout="coherent", exact_readout=True, dtype=torch.float64), 0.02)]
    return [(name, preset(name), {}, 0.05) for name in PRESETS]


def child(args, out: Path) -> None:
    """One path (this process's PHOTONIC_SIM_NO_FUSED): per workload the exact readings and
    the call times, saved to ``out``."""
    card = load_device_card("silicon_thermo_optic")
    result = {}
    for name, spec, chip_kw, spread in workloads(args.workload == "pinn"):
        net = TONN(spec)
        base = net.init_phases(torch.Generator().manual_seed(1))
        gen = torch.Generator().manual_seed(2)
        phases = base + spread * torch.randn(args.settings, base.numel(), generator=gen, dtype=base.dtype)
        x = torch.rand(args.batch, net.in_features, generator=gen)
        exact = Chip(net, card, seed=0, **dict(chip_kw, exact_readout=True)).measure(x, phases)  # + warm-up
        chip = Chip(net, card, seed=0, **chip_kw)
        times = [timed(lambda: chip.measure(x, phases)) for _ in range(args.rounds)]
        result[name] = {"exact": exact, "times": torch.tensor(times, dtype=torch.float64)}
    torch.save(result, out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=("zo", "pinn"), default="zo")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--settings", type=int, default=None, help="default 32 (zo), 256 (pinn)")
    ap.add_argument("--batch", type=int, default=None, help="default 64 (zo), 1851 (pinn)")
    ap.add_argument("--rounds", type=int, default=None, help="default 9 (zo), 3 (pinn)")
    ap.add_argument("--child-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    pinn = args.workload == "pinn"
    for flag, zo, pi in (("settings", 32, 256), ("batch", 64, 1851), ("rounds", 9, 3)):
        if getattr(args, flag) is None:
            setattr(args, flag, pi if pinn else zo)
    for flag in ("threads", "settings", "batch", "rounds"):
        if getattr(args, flag) < 1:
            raise SystemExit(f"--{flag}: must be an integer >= 1, got {getattr(args, flag)}")
    torch.set_num_threads(args.threads)
    if args.child_out is not None:
        child(args, args.child_out)
        return
    print(f"# torch {torch.__version__}, threads {args.threads}, workload {args.workload}: "
          f"{args.settings} settings × batch {args.batch}, {args.rounds} timed calls per path")
    flags = ["--workload", args.workload, "--threads", str(args.threads), "--settings", str(args.settings),
             "--batch", str(args.batch), "--rounds", str(args.rounds)]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in PATHS:
            env = {k: v for k, v in os.environ.items() if k != "PHOTONIC_SIM_NO_FUSED"}
            if path == "torch":
                env["PHOTONIC_SIM_NO_FUSED"] = "1"
            out = Path(tmp) / f"{path}.pt"
            subprocess.run([sys.executable, __file__, *flags, "--child-out", str(out)], env=env, check=True)
            results[path] = torch.load(out, weights_only=True)
    print(f"{'preset':<13}{'fused':>12}{'torch':>12}{'torch/fused':>13}{'max|Δ|/max|y|':>16}")
    for name in results["fused"]:
        fused, slow = results["fused"][name], results["torch"][name]
        ms = {p: statistics.median(results[p][name]["times"].tolist()) * 1e3 for p in PATHS}
        diff = float((fused["exact"] - slow["exact"]).abs().max() / slow["exact"].abs().max())
        print(f"{name:<13}{ms['fused']:>9.1f} ms{ms['torch']:>9.1f} ms{ms['torch'] / ms['fused']:>12.2f}×{diff:>16.1e}",
              flush=True)


if __name__ == "__main__":
    main()
