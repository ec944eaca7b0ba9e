"""Per-step cost of in-situ ZO training against its floors (issue 24, items 1, 2, 4).

    python benchmarks/bench_step.py [--threads N] [--device cpu|cuda] [--quick]
                                    [--cases digits,hjb_zo,hjb_polish] [--rounds R]

Cases (one ZO step each, assembled with :class:`photonic_sim.Experiment`):

* ``digits``: the quickstart step (scenarios/quickstart.yaml: digits TONN on the thermo-optic
  card, recipe zo_rge: two-sided RGE q 16 → 32 settings, mini-batch 32, noisy 8-bit readout,
  float32 signals); ``digits64``: the same with mini-batches of 64 (the issue's figure);
* ``hjb_zo`` / ``hjb_polish``: the HJB-20 CPU row (scenarios/hjb20_small_tonn.yaml, the run
  of ``bench_pinn.py --cases hjb_tonn_zo``: TT 21→64→64→1, sine, 1 collocation point, level-3
  sparse-grid Stein: 925 inputs per setting, exact readout, float64): the first stage of its
  recipe (RGE q 64 one-sided → 65 settings) and the second alone, its lattice polish
  (two-sided Rademacher q 128 → 256 settings).

For each case, in one process, interleaved rounds (step, floors, 2-thread step, …; per-call
medians, GC off while timing, as ``bench_mesh.py``):

* ``step``: one ``strategy.step`` on the chip's black-box closure (directions, the batched
  ``Chip.measure`` of every setting, losses, the optimizer update);
* ``loose floor``: the same MACs as one complex batched matmul per hardware matrix
  ([P, br, bc, k, k] @ [P, 1, bc, k, N], the signal's complex dtype) + the block-matrix build
  (``SVDBlock.matrix`` of every block of every setting) + ``torch.randn`` for every reading
  (noisy readout only);
* ``tight floor``: one real matmul per hardware matrix ([P, 2·br·k, bc·k] @ [P, bc·k, N]: Re
  and Im rows stacked, the signal's real dtype) + the same build + the readout kernel's own
  Philox normals for every reading (noisy readout only; ``photonic_sim.cores.readout_normals``). The floors' shapes are
  derived from the network spec and checked against the chip ledger's ADC conversions.
* ``split``: one profiled pass (cProfile) of ``--profile-steps`` steps, attributed to realise
  (``Chip._realise``: quantize, drive law, crosstalk, bias, phase noise), build
  (``SVDBlock.matrix``), kernel (``matvec_read``, or the torch readout path), estimator
  (``strategy.step`` outside the closure: directions, wrap, cat, the update) and other
  (the rest of the closure: the network's Python, activations, the loss); shares of the
  profiled time, shown in ms of the unprofiled median;
* ``1 thr`` / ``2 thr``: the step with ``torch.set_num_threads(1)`` and ``(2)``;
* ``faults``: minor page faults per step (``getrusage``).

Targets (issue 24): digits step ≤ 2× the tight floor, PINN steps ≤ 1.3× their matmul floor
(the tight one: exact readout, so no draws), on one thread. ``--device cuda`` runs the same on
the GPU (CUDA synchronised around each call) and says so when CUDA is unavailable.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import pstats
import resource
import statistics
import time

import torch

from photonic_sim import Experiment
from photonic_sim.cores import readout_normals
from photonic_sim.scenarios import load_scenario
from photonic_sim.training import task_closure

CASES = ("digits", "digits64", "hjb_zo", "hjb_polish")
HJB = "hjb20_small_tonn"  # the HJB-20 CPU row of bench_pinn.py and docs/pinn.md


# ----------------------------------------------------------------------------- the cases
def build(case: str, device: str) -> Experiment:
    """The Experiment of a case (module docstring), built."""
    if case.startswith("digits"):
        batch = 64 if case == "digits64" else 32
        return Experiment.from_file("quickstart", [f"training.batch_size={batch}", "training.checkpoint_every=0"],
                                    torch_device=device).build()
    sets = []  # hjb_zo: the staged recipe, whose steps here are all in its first stage
    if case == "hjb_polish":  # the recipe's second stage alone, with the options it has there
        polish = dict(load_scenario(HJB).recipe.strategy_options["stages"][1])
        name, _ = polish.pop("strategy"), polish.pop("steps")
        sets = [f"training.strategy={name}", f"training.strategy_options={json.dumps(polish)}"]
    return Experiment.from_file(HJB, sets, torch_device=device).build()


class Step:
    """One training step of an Experiment: a mini-batch, its black-box closure, strategy.step."""

    def __init__(self, exp: Experiment) -> None:
        self.task, self.chip, self.strategy = exp.task, exp.chip, exp.strategy
        self.gen = torch.Generator().manual_seed(12345)

    def __call__(self) -> None:
        batch = self.task.sample_batch(self.gen)
        self.strategy.step(task_closure(self.task, self.chip, batch, self.strategy))


def vectors_per_input(spec) -> list[int]:
    """Vectors each hardware matrix multiplies per network input (order of
    ``hardware_matrices``): core k of a TT layer sees the state [n_1..n_{k-1}, n_k r_k,
    m_{k+1}..m_d] (cores contracted last to first), so prod(n_<k)·prod(m_>k); dense: 1."""
    out = []
    for layer in spec.layers:
        if layer.kind == "tt":
            n, m = layer.in_modes, layer.out_modes
            out += [math.prod(n[:k]) * math.prod(m[k + 1:]) for k in range(len(n))]
        else:
            out.append(1)
    return out


class Floor:
    """The loose and tight floors of one step (module docstring) for the step's shapes. Like
    the step (``PhotonicNetwork`` docstring, "Batching"), each matrix runs on chunks of
    settings whose outputs stay near 2^21 elements, into preallocated outputs (no allocation
    or page faults are timed)."""

    CHUNK = 1 << 21

    def __init__(self, exp: Experiment, settings: int, inputs: int, adc_per_step: int, device: str) -> None:
        net, chip = exp.network, exp.chip
        k, self.block = net.block_size, net.block
        real = chip.dtype
        cplx = torch.complex64 if real == torch.float32 else torch.complex128
        self.noisy = not (chip.exact_readout or chip.ideal)
        gen = torch.Generator().manual_seed(0)
        self.mats = []  # per hardware matrix: (chunk sizes, complex a, x, out, real a, x, out) for one chunk
        adc = 0
        for hm, per in zip(net.hardware_matrices(), vectors_per_input(exp.spec)):
            br, bc, n = math.ceil(hm.rows / k), math.ceil(hm.cols / k), per * inputs
            adc += settings * br * bc * n * k
            c = max(1, min(settings, self.CHUNK // (2 * br * k * n)))
            sizes = [c] * (settings // c) + ([settings % c] if settings % c else [])

            def rnd(*shape, dtype):
                return torch.randn(*shape, dtype=dtype, generator=gen).to(device)

            self.mats.append((sizes, rnd(c, br, bc, k, k, dtype=cplx), rnd(c, 1, bc, k, n, dtype=cplx),
                              torch.empty(c, br, bc, k, n, dtype=cplx, device=device),
                              rnd(c, 2 * br * k, bc * k, dtype=real), rnd(c, bc * k, n, dtype=real),
                              torch.empty(c, 2 * br * k, n, dtype=real, device=device)))
        if adc != adc_per_step:
            raise SystemExit(f"bench_step: floor shapes give {adc} readings per step, the chip ledger {adc_per_step}")
        self.readings = adc
        nph = net.block.num_phases
        self.phases = torch.rand(settings, net.num_blocks, nph, dtype=torch.float64, generator=gen).to(device) * 6
        self.normals = torch.empty(adc if self.noisy else 0, dtype=torch.float32, device=device)
        self.device = device
        self.key = 0x5EED

    def build(self) -> None:
        """Every block matrix of every setting, built in float64 as ``PhotonicNetwork.forward`` does."""
        self.block.matrix(self.phases, dtype=torch.complex128)

    def noise(self, tight: bool) -> None:
        if not self.noisy:
            return
        if tight and self.device == "cpu":  # the kernel's own draws (module docstring)
            self.key += 1
            readout_normals(self.key, 0, self.readings)
        else:
            torch.randn(self.readings, out=self.normals)

    def loose(self) -> None:
        self.build()
        for sizes, a, x, out, _, _, _ in self.mats:
            for c in sizes:
                torch.matmul(a[:c], x[:c], out=out[:c])
        self.noise(False)

    def tight(self) -> None:
        self.build()
        for sizes, _, _, _, a, x, out in self.mats:
            for c in sizes:
                torch.bmm(a[:c], x[:c], out=out[:c])
        self.noise(True)


# ----------------------------------------------------------------------------- timing
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, cpu: bool = False) -> float:
    """Seconds of one call of ``fn``: wall, or the process's CPU time (``cpu``)."""
    clock = time.process_time if cpu else time.perf_counter
    sync(device)
    t = clock()
    fn()
    sync(device)
    return clock() - t


def split(step: Step, steps: int) -> dict[str, float]:
    """Shares of a profiled run of ``steps`` steps (module docstring, ``split``)."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)

    def cum(file_end: str, name: str) -> float:
        return sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file_end) and n == name)

    total = sum(v[2] for v in stats.values())
    closure = cum("chip.py", "__call__")
    realise = cum("chip.py", "_realise")
    build_t = cum("svd.py", "matrix")
    kernel = cum("_fused_read.py", "matvec_read")
    if kernel == 0:  # torch readout path (no kernel, or CUDA)
        kernel = cum("photonic.py", "_matvec")
    parts = {"realise": realise, "build": build_t, "kernel": kernel, "estimator": total - closure,
             "other": closure - realise - build_t - kernel}
    return {key: value / total for key, value in parts.items()}


def faults_per_step(step: Step, steps: int) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def run_case(case: str, args) -> dict:
    exp = build(case, args.device)
    step = Step(exp)
    led = exp.chip.ledger
    step()  # warm-up (kernels compiled, buffers allocated) and the shapes of one step
    q0, s0, a0 = led.queries, led.samples, exp.chip.ledger.adc_conversions
    step()
    settings, inputs = led.queries - q0, (led.samples - s0) // max(1, led.queries - q0)
    floor = Floor(exp, settings, inputs, led.adc_conversions - a0, args.device)
    floor.loose(), floor.tight()
    rows: dict[str, list[float]] = {"step": [], "loose": [], "tight": [], "step1": [], "step2": []}
    torch.set_num_threads(args.threads)
    gc.collect()
    gc.disable()
    try:
        for r in range(args.rounds):  # interleaved, the order reversed every other round
            order = [("step", step, args.threads), ("loose", floor.loose, args.threads),
                     ("tight", floor.tight, args.threads), ("step1", step, 1), ("step2", step, 2)]
            for name, fn, threads in (order if r % 2 == 0 else order[::-1]):
                if threads != torch.get_num_threads():  # a new thread count: one untimed call first
                    torch.set_num_threads(threads)
                    fn()
                rows[name].append(timed(fn, args.device, cpu=args.clock == "cpu" and name in ("step", "loose", "tight")))
    finally:
        gc.enable()
        torch.set_num_threads(args.threads)
    med = {name: statistics.median(v) for name, v in rows.items()}
    ratios = {"loose": statistics.median(a / b for a, b in zip(rows["step"], rows["loose"])),
              "tight": statistics.median(a / b for a, b in zip(rows["step"], rows["tight"]))}
    shares = split(step, args.profile_steps)
    return {"case": case, "settings": settings, "inputs": inputs, "readings": floor.readings, "med": med,
            "ratios": ratios, "shares": shares, "faults": faults_per_step(step, max(2, args.rounds // 2))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the step and floor columns (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--cases", default="digits,hjb_zo,hjb_polish", help=f"comma list of {CASES}")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 15; 5 with --quick)")
    ap.add_argument("--profile-steps", type=int, default=None, help="steps profiled for the split (default 10)")
    ap.add_argument("--quick", action="store_true", help="fewer rounds and profiled steps (smoke run)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="clock of the step and floor columns: process CPU time (default; robust to other load "
                         "when --threads is 1) or wall time; the 1 thr / 2 thr columns are always wall time")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bench_step: --device cuda: CUDA is not available here (torch.cuda.is_available() is "
                         "False, torch " + torch.__version__ + "); nothing was timed")
    if args.threads < 1:
        raise SystemExit(f"--threads: must be an integer >= 1, got {args.threads}")
    args.rounds = args.rounds or (5 if args.quick else 15)
    args.profile_steps = args.profile_steps or (3 if args.quick else 10)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            raise SystemExit(f"--cases: {c!r} is not one of {CASES}")
    torch.set_num_threads(args.threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    fused = "off (PHOTONIC_SIM_NO_FUSED)" if os.environ.get("PHOTONIC_SIM_NO_FUSED", "") not in ("", "0") else "on"
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()} (cores usable "
          f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}), "
          f"device {args.device}, fused kernels {fused}, rounds {args.rounds}, clock {args.clock}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("# step/loose/tight: medians of one call on the clock above; 1 thr / 2 thr: wall time")
    print(f"{'case':<11}{'P':>5}{'B':>6}{'readings':>10}{'step ms':>9}{'loose ms':>9}{'tight ms':>9}"
          f"{'/loose':>7}{'/tight':>7}{'1 thr ms':>9}{'2 thr ms':>9}{'1/2':>6}{'faults':>8}")
    results = []
    for case in cases:
        res = run_case(case, args)
        results.append(res)
        m = res["med"]
        print(f"{case:<11}{res['settings']:>5}{res['inputs']:>6}{res['readings']:>10}{1e3 * m['step']:>9.2f}"
              f"{1e3 * m['loose']:>9.2f}{1e3 * m['tight']:>9.2f}{res['ratios']['loose']:>7.2f}"
              f"{res['ratios']['tight']:>7.2f}{1e3 * m['step1']:>9.2f}{1e3 * m['step2']:>9.2f}"
              f"{m['step1'] / m['step2']:>6.2f}{res['faults']:>8.0f}", flush=True)
    print("\nsplit of the step (share of a profiled run, in ms of the step median):")
    names = ("realise", "build", "kernel", "estimator", "other")
    print(f"{'case':<11}" + "".join(f"{n:>16}" for n in names))
    for res in results:
        print(f"{res['case']:<11}" + "".join(
            f"{1e3 * res['med']['step'] * res['shares'][n]:>9.2f} ({100 * res['shares'][n]:>3.0f}%)" for n in names))


if __name__ == "__main__":
    main()
