"""Speed of one ZO query batch on the chip: ``Chip.measure`` with the fused readout kernel vs
the torch path, side by side in one process.

    python benchmarks/bench_measure.py [--threads N] [--settings P] [--batch B] [--rounds R]
    python benchmarks/bench_measure.py --workload pinn [--threads N] [--rounds R]

Workload ``zo`` (default): P = 32 phase settings (a two-sided q = 16 estimate) × a batch of
B = 64 inputs (uniform in [0, 1], seeded) through the default silicon chip (8-bit phases,
γ-noise, crosstalk, phase bias, noisy detectors and 8-bit ADCs, intensity readout), for the
``mnist_small`` and ``digits`` presets. Workload ``pinn``: one step of the HJB lattice
polish (benchmarks/bench_pinn.py): P = 256 settings (q 128, two-sided) × B = 1851 inputs
(one collocation point's 2·925 + 1 Stein points; uniform here) through ``HJB_SMALL`` on
the same card with exact coherent readout in float64. Columns: ``fused``
(``photonic_sim.cores._fused_read``: E/O encoding + block matvec + readout with its own
Philox noise + block-column sum in one C call per matrix, on ``--threads`` threads, the
settings in chunks: ``PhotonicNetwork.forward``), ``one pass`` (the same kernel on all
settings at once: the chunking off) and ``torch`` (the same chip with that kernel switched
off; the mesh-build kernel stays on in all). Each round times one call of each,
interleaved; the table gives medians and the medians of the per-round ratios (the machine
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
from photonic_sim.cores import _fused_read, photonic
from photonic_sim.cores.photonic import TONN
from photonic_sim.cores.spec import preset
from photonic_sim.devices.cards import load_device_card

PRESETS = ("mnist_small", "digits")
PATHS = ("fused", "one pass", "torch")


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
    ap.add_argument("--workload", choices=("zo", "pinn"), default="zo")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--settings", type=int, default=None, help="default 32 (zo), 256 (pinn)")
    ap.add_argument("--batch", type=int, default=None, help="default 64 (zo), 1851 (pinn)")
    ap.add_argument("--rounds", type=int, default=None, help="default 9 (zo), 3 (pinn)")
    args = ap.parse_args(argv)
    pinn = args.workload == "pinn"
    for flag, zo, pi in (("settings", 32, 256), ("batch", 64, 1851), ("rounds", 9, 3)):
        if getattr(args, flag) is None:
            setattr(args, flag, pi if pinn else zo)
    for flag in ("threads", "settings", "batch", "rounds"):
        if getattr(args, flag) < 1:
            raise SystemExit(f"--{flag}: must be an integer >= 1, got {getattr(args, flag)}")
    torch.set_num_threads(args.threads)
    if _fused_read.kernel() is None:
        raise SystemExit(f"fused readout kernel unavailable: {_fused_read.unavailable_reason()}")
    card = load_device_card("silicon_thermo_optic")
    usable, budget = _fused_read.usable, photonic._FUSED_CHUNK_ELEMENTS
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, workload {args.workload}: "
          f"{args.settings} settings × batch {args.batch}, {args.rounds} interleaved rounds")
    print(f"{'preset':<13}{'fused':>12}{'one pass':>12}{'torch':>12}{'torch/fused':>13}{'one pass/fused':>16}"
          f"{'max|Δ|/max|y|':>16}")
    if pinn:
        from bench_pinn import HJB_SMALL  # the PINN bench's network (benchmarks/ is on sys.path)
        workloads = [("hjb20_small", HJB_SMALL, dict(readout="coherent", exact_readout=True, dtype=torch.float64), 0.02)]
    else:
        workloads = [(name, preset(name), {}, 0.05) for name in PRESETS]
    for name, spec, chip_kw, spread in workloads:
        net = TONN(spec)
        base = net.init_phases(torch.Generator().manual_seed(1))
        gen = torch.Generator().manual_seed(2)
        phases = base + spread * torch.randn(args.settings, base.numel(), generator=gen, dtype=base.dtype)
        x = torch.rand(args.batch, net.in_features, generator=gen)
        chips = {path: Chip(net, card, seed=0, **chip_kw) for path in PATHS}

        def call(path: str, chip: Chip | None = None):
            _fused_read.usable = (lambda *t: False) if path == "torch" else usable
            photonic._FUSED_CHUNK_ELEMENTS = 1 << 62 if path == "one pass" else budget
            try:
                return (chip or chips[path]).measure(x, phases)
            finally:
                _fused_read.usable, photonic._FUSED_CHUNK_ELEMENTS = usable, budget

        exact = dict(chip_kw, exact_readout=True)
        first = {path: call(path, Chip(net, card, seed=0, **exact)) for path in PATHS}  # + warm-up
        if not torch.equal(first["fused"], first["one pass"]):
            raise SystemExit(f"{name}: chunked and one-pass readings differ")
        diff = float((first["fused"] - first["torch"]).abs().max() / first["torch"].abs().max())
        times = {path: [] for path in PATHS}
        for _ in range(args.rounds):
            for path in PATHS:
                times[path].append(timed(lambda: call(path)))
        ratio = {path: statistics.median(t / f for f, t in zip(times["fused"], times[path])) for path in PATHS}
        ms = {path: statistics.median(times[path]) * 1e3 for path in PATHS}
        print(f"{name:<13}{ms['fused']:>9.1f} ms{ms['one pass']:>9.1f} ms{ms['torch']:>9.1f} ms"
              f"{ratio['torch']:>12.2f}×{ratio['one pass']:>15.2f}×{diff:>16.1e}", flush=True)


if __name__ == "__main__":
    main()
