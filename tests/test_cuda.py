"""The GPU path (issue 24, item 4): meshes, the chip, the tasks and a whole run on CUDA.

The C kernels are CPU code; on a GPU the chip runs its pure-torch path. These tests compare
that path with the CPU (the fused kernels where they build) on the same chip:

* float64 numerics (mesh transfer matrices, an ideal chip's readings, a PINN's evaluation)
  agree to 1e-10 or better: the same formulas in the same precision, different summation order;
* static device errors are drawn on the CPU and moved, so a seed gives the same chip, bit for
  bit, on every device;
* per-query noise, and a strategy's random directions, are drawn on the GPU (other draws than
  the CPU's), so they are compared in distribution: mean within 5-6 standard errors, spread
  within 15 %; a strategy whose random draws stay on the CPU (coordinate subsets) follows the
  CPU run on an ideal chip to float64 rounding;
* a run on the GPU resumes from its checkpoint to the same bits as the run without a break.

Skipped, with the reason, where torch sees no CUDA device (this project's CI machines); they run
on a GPU machine: ``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from photonic_sim.chip import Chip
from photonic_sim.circuits import ClementsMesh, ReckMesh
from photonic_sim.cli import main
from photonic_sim.cores.photonic import TONN
from photonic_sim.cores.spec import NetworkSpec, dense, tt
from photonic_sim.devices import load_device_card
from photonic_sim.scenarios.experiment import Experiment

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device visible to torch here (CI machines have none); run on a GPU machine")

CUDA = "cuda"
CARD = load_device_card("silicon_thermo_optic")
SPEC = NetworkSpec("small", (tt((2, 4), (4, 2), 2, "relu"), dense(8, 3)))
RUN6 = ["--set", "training.steps=6", "--set", "training.eval_every=3", "--set", "training.checkpoint_every=2",
        "--no-progress"]  # quickstart, 6 steps, a checkpoint every 2


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("cls", [ClementsMesh, ReckMesh])
def test_mesh_on_cuda_equals_the_cpu_in_float64(cls):
    """Transfer matrices (couplers and loss included) and field propagation: max |Δ| < 1e-12."""
    mesh, g = cls(12), _gen(1)
    phases = torch.rand(5, mesh.num_phases, generator=g, dtype=torch.float64) * 2 * math.pi
    kappa = 0.5 + 0.02 * torch.randn(5, mesh.num_mzis, 2, generator=g, dtype=torch.float64)
    loss_db = 0.1 * torch.rand(5, mesh.num_mzis, generator=g, dtype=torch.float64)
    want = mesh.unitary(phases, kappa=kappa, loss_db=loss_db)
    got = mesh.unitary(phases.to(CUDA), kappa=kappa.to(CUDA), loss_db=loss_db.to(CUDA))
    assert got.device.type == "cuda"
    assert (got.cpu() - want).abs().max() < 1e-12
    x = torch.randn(5, 7, 12, generator=g, dtype=torch.complex128)
    fields = mesh.apply(phases.to(CUDA), x.to(CUDA))
    assert (fields.cpu() - mesh.apply(phases, x)).abs().max() < 1e-12


def test_a_seed_gives_the_same_static_errors_on_cuda():
    """Phase-shifter gain and bias errors, coupler ratios: drawn on the CPU, equal bit for bit."""
    net = TONN(SPEC)
    cpu, gpu = Chip(net, CARD, seed=7), Chip(net, CARD, seed=7, device=CUDA)
    for name in ("_gamma", "_bias", "_kappa", "_xtalk"):
        a, b = getattr(cpu, name), getattr(gpu, name)
        if a is None:
            assert b is None
            continue
        assert b.device.type == "cuda" and torch.equal(b.cpu().to_dense(), a.to_dense()), name


def test_ideal_chip_on_cuda_reads_what_the_cpu_reads():
    """An ideal float64 chip: P settings in one batched call, |Δ| < 1e-10 of readings in [0, 1]."""
    net = TONN(SPEC)
    phases = torch.stack([net.init_phases(_gen(s)) for s in range(4)])
    x = torch.rand(9, net.in_features, generator=_gen(2))
    cpu = Chip(net, CARD, ideal=True, dtype=torch.float64)
    gpu = Chip(net, CARD, ideal=True, dtype=torch.float64, device=CUDA)
    want, got = cpu.measure(x, phases), gpu.measure(x.to(CUDA), phases.to(CUDA))
    assert got.device.type == "cuda" and got.shape == want.shape == (4, 9, 3)
    assert (got.cpu() - want).abs().max() < 1e-10
    assert gpu.ledger.totals() == cpu.ledger.totals()


def test_noisy_readings_on_cuda_have_the_cpus_distribution():
    """The default (noisy) card: 600 reads of one setting on each device. The GPU draws other
    noise than the CPU, so the readings agree in distribution: per-output mean within 5
    standard errors of the difference, standard deviation within 15 % (5 standard errors of a
    600-sample spread) wherever the CPU's readings vary."""
    net = TONN(SPEC)
    phases = net.init_phases(_gen(3))
    x = torch.rand(1, net.in_features, generator=_gen(4))
    reps = 600
    cpu, gpu = Chip(net, CARD, seed=11), Chip(net, CARD, seed=11, device=CUDA)
    a = cpu.measure(x, phases.expand(reps, -1)).to(torch.float64)[:, 0]  # [reps, C]
    b = gpu.measure(x.to(CUDA), phases.to(CUDA).expand(reps, -1)).to(torch.float64).cpu()[:, 0]
    sa, sb = a.std(0), b.std(0)
    varies = sa > 0
    assert varies.any()  # the test can see noise
    tol = 5 * torch.sqrt((sa**2 + sb**2) / reps) + 1e-12
    assert ((a.mean(0) - b.mean(0)).abs() <= tol).all(), (a.mean(0), b.mean(0), tol)
    assert ((sb[varies] / sa[varies] - 1).abs() < 0.15).all(), (sb, sa)


def test_zo_run_on_cuda_follows_the_cpu_on_an_ideal_chip():
    """A short ZO run (quickstart, 3 steps of ZO-CGE on 24 random coordinates) on an ideal chip:
    the coordinates are drawn on the CPU and the chip is exact, so the GPU run takes the CPU
    run's steps to float64 rounding."""
    sets = ["training.steps=3", "training.eval_every=3", "training.checkpoint_every=0",
            "training.strategy=zo-cge", 'training.strategy_options={"lr": 0.05, "coords_per_step": 24}']
    cpu = Experiment.from_file("quickstart", sets, ideal=True).run()
    gpu = Experiment.from_file("quickstart", sets, ideal=True, torch_device=CUDA).run()
    assert gpu.phases.device.type == "cuda"
    moved = (cpu.phases - Experiment.from_file("quickstart", sets, ideal=True).params).abs().max()
    assert moved > 1e-4  # the run moved the phases
    assert (gpu.phases.cpu() - cpu.phases).abs().max() < 1e-9
    assert gpu.report["training"]["queries"] == cpu.report["training"]["queries"] == 3 * 25
    assert gpu.report["metrics"]["final"] == pytest.approx(cpu.report["metrics"]["final"], abs=1e-12)


@pytest.mark.parametrize("dist", ["gaussian", "rademacher", "sphere"])
def test_directions_for_a_gpu_are_drawn_there_from_one_cpu_draw(dist):
    """``sample_directions(device="cuda")``: drawn on the GPU from a generator seeded by ONE draw
    of the CPU generator (the only state a checkpoint keeps): E[u] = 0 and E[u²] = 1 within 6
    standard errors of 2^20 entries, reproducible from the CPU generator's state."""
    from photonic_sim.training.strategies.estimators import sample_directions

    g = _gen(5)
    state = g.get_state()
    u = sample_directions(64, 1 << 14, dist=dist, generator=g, device=CUDA)
    assert u.device.type == "cuda" and u.shape == (64, 1 << 14)
    after = g.get_state()
    g.set_state(state)
    torch.randint(0, 2**62, (1,), generator=g)
    assert torch.equal(g.get_state(), after)  # exactly one CPU draw
    g.set_state(state)
    assert torch.equal(sample_directions(64, 1 << 14, dist=dist, generator=g, device=CUDA), u)
    n = u.numel()
    assert abs(float(u.mean())) < 6 / math.sqrt(n)
    assert abs(float(u.square().mean()) - 1) < 6 * math.sqrt(2 / n)


def test_pinn_evaluation_on_cuda_equals_the_cpu():
    """Black-Scholes on the TONN: the evaluation (test points drawn on the CPU, the same on every
    device) of the same phases, on an ideal chip, agrees to 1e-9 relative; a short run on the
    GPU spends the CPU run's queries and ends finite."""
    sets = ["training.steps=4", "training.eval_every=2", "training.checkpoint_every=0"]
    cpu = Experiment.from_file("black_scholes_tonn", sets, ideal=True)
    gpu = Experiment.from_file("black_scholes_tonn", sets, ideal=True, torch_device=CUDA)
    want = cpu.task.evaluate(cpu.chip, cpu.params)
    got = gpu.task.evaluate(gpu.chip, gpu.params)
    for key in ("metric", "loss"):
        assert got[key] == pytest.approx(want[key], rel=1e-9), key
    run_cpu, run_gpu = cpu.run(), gpu.run()
    assert run_gpu.report["training"]["queries"] == run_cpu.report["training"]["queries"]
    assert math.isfinite(run_gpu.report["metrics"]["final"])


def test_cli_run_on_cuda_resumes_to_the_same_bits(tmp_path, interrupt_at):
    """``photonic-sim run --device cuda``: a run broken off after step 3 and resumed from its
    step-2 checkpoint ends on the uninterrupted GPU run's phases, bit for bit."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["run", "quickstart", "--device", CUDA, "--out", str(straight), *RUN6]) == 0
    interrupt_at(3)
    assert main(["run", "quickstart", "--device", CUDA, "--out", str(resumed), *RUN6]) == 1
    interrupt_at(None)
    assert main(["run", "quickstart", "--device", CUDA, "--out", str(resumed), *RUN6, "--resume"]) == 0

    def final(run_dir):
        return torch.load(run_dir / "checkpoint" / "checkpoint.pt", map_location="cpu", weights_only=True)["params"]

    assert torch.equal(final(straight), final(resumed))
    a, b = (json.loads((d / "report.json").read_text()) for d in (straight, resumed))
    assert a["training"]["queries"] == b["training"]["queries"] == 6 * 32  # zo_rge: q 16 two-sided, 32 settings a step
    assert a["metrics"]["final"] == b["metrics"]["final"]


def test_cli_device_flag_names_the_gpu():
    """``--device cuda:N`` beyond the GPUs torch sees is refused (exit 2) before anything runs."""
    n = torch.cuda.device_count()
    assert main(["run", "quickstart", "--device", f"cuda:{n}", "--out", "unused"]) == 2


def test_training_cost_of_phases_on_cuda_equals_the_cpus():
    """The per-step energy and latency of a control vector on the GPU (only its mean programmed
    phase comes to the host) equal the CPU's (1e-12 relative)."""
    exp = Experiment.from_file("quickstart", ["training.steps=1"])
    ledger = {"queries": 170, "phase_settings": 170, "samples": 170 * 64, "dac_conversions": 10**6,
              "adc_conversions": 10**6, "clipped": 0}
    want = exp.cost(ledger, exp.params)
    got = exp.cost(ledger, exp.params.to(CUDA))
    assert got == pytest.approx(want, rel=1e-12)
    assert exp.cost(ledger, exp.params + 1.0) != pytest.approx(want, rel=1e-6)  # the phases matter
