"""Speed of one ZO query batch on the chip: ``Chip.measure`` with the fused readout kernel vs
the torch path, side by side in one process.

    python benchmarks/bench_measure.py [--threads N] [--settings P] [--batch B] [--rounds R]

Workload: P = 32 phase settings (a two-sided q = 16 estimate) × a batch of B = 64 inputs
(uniform in [0, 1], seeded) through the default silicon chip (8-bit phases, γ-noise,
crosstalk, phase bias, noisy detectors and 8-bit ADCs, intensity readout), for the
``mnist_small`` and ``digits`` presets. Rows: ``fused`` (``photonic_sim.cores._fused_read``:
E/O encoding + block matvec + readout with its own Philox noise + block-column sum in one C
call per matrix, on ``--threads`` threads) and ``torch`` (the same chip with that kernel
switched off; the mesh-build kernel stays on in both). Each round times one call of each,
interleaved; the table gives medians and the median of the per-round ratios (the machine
may be shared: per-round ratios cancel most of the load drift). The two paths draw
different noise (same distribution, tests/test_fused_read.py), so their readings are
compared on noise-free chips (``exact_readout``: equal but for float rounding): the largest
difference relative to the largest reading.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch

from photonic_sim.chip import Chip
from photonic_sim.cores import _fused_read
from photonic_sim.cores.photonic import TONN
from photonic_sim.cores.spec import preset
from photonic_sim.devices.cards import load_device_card

PRESETS = ("mnist_small", "digits")


def timed(fn) -> float:
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--settings", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)
    for flag in ("threads", "settings", "batch", "rounds"):
        if getattr(args, flag) < 1:
            raise SystemExit(f"--{flag}: must be an integer >= 1, got {getattr(args, flag)}")
    torch.set_num_threads(args.threads)
    if _fused_read.kernel() is None:
        raise SystemExit(f"fused readout kernel unavailable: {_fused_read.unavailable_reason()}")
    card = load_device_card("silicon_thermo_optic")
    usable = _fused_read.usable
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, {args.settings} settings × "
          f"batch {args.batch}, {args.rounds} interleaved rounds")
    print(f"{'preset':<13}{'fused':>12}{'torch':>12}{'torch/fused':>13}{'max|Δ|/max|y|':>16}")
    for name in PRESETS:
        net = TONN(preset(name))
        base = net.init_phases(torch.Generator().manual_seed(1))
        gen = torch.Generator().manual_seed(2)
        phases = base + 0.05 * torch.randn(args.settings, base.numel(), generator=gen, dtype=base.dtype)
        x = torch.rand(args.batch, net.in_features, generator=gen)
        chips = {"fused": Chip(net, card, seed=0), "torch": Chip(net, card, seed=0)}

        def call(path: str, chip: Chip | None = None):
            _fused_read.usable = usable if path == "fused" else (lambda *t: False)
            try:
                return (chip or chips[path]).measure(x, phases)
            finally:
                _fused_read.usable = usable

        first = {path: call(path, Chip(net, card, seed=0, exact_readout=True)) for path in chips}  # + warm-up
        diff = float((first["fused"] - first["torch"]).abs().max() / first["torch"].abs().max())
        times = {"fused": [], "torch": []}
        for _ in range(args.rounds):
            for path in chips:
                times[path].append(timed(lambda: call(path)))
        ratio = statistics.median(t / f for f, t in zip(times["fused"], times["torch"]))
        print(f"{name:<13}{statistics.median(times['fused']) * 1e3:>9.1f} ms{statistics.median(times['torch']) * 1e3:>9.1f} ms"
              f"{ratio:>12.2f}×{diff:>16.1e}", flush=True)


if __name__ == "__main__":
    main()
