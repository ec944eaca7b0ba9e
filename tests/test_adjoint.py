"""In-situ adjoint (photonic_sim.circuits.adjoint and the 'adjoint' strategy).

Reference: torch autograd of the same loss through ``Mesh.unitary`` / ``SVDBlock.matrix``
(float64, an independent implementation of the same transfer matrices). The adjoint passes
use no autograd; tolerance 1e-8 (float64 rounding is ~1e-14 here).
"""
from __future__ import annotations

import pytest
import torch

from photonic_sim.circuits.adjoint import AdjointCircuit
from photonic_sim.circuits.mesh import ClementsMesh, Mesh, ReckMesh
from photonic_sim.circuits.svd import SVDBlock

TOL = 1e-8


def _circuit(kind: str, n: int):
    return {"clements": ClementsMesh, "reck": ReckMesh, "screen": lambda n: Mesh(1), "svd": lambda n: SVDBlock(n, n)}[kind](n)


def _autograd(circ, phases, x, target, kappa=None, loss_db=None):
    """Phase gradient and output-field error g = ∂L/∂Re y + i ∂L/∂Im y of
    L = Σ (Re y − t)² + 0.3 Σ (Im y)², y = M x (rows)."""
    p = phases.clone().requires_grad_()
    build = circ.matrix if isinstance(circ, SVDBlock) else circ.unitary
    m = build(p, kappa=kappa, loss_db=loss_db)
    y = x.to(m.dtype) @ m.transpose(-1, -2)
    loss = ((y.real - target) ** 2).sum() + 0.3 * (y.imag ** 2).sum()
    xg = torch.autograd.grad(loss, p)[0]
    y = y.detach()
    return xg, 2.0 * (y.real - target) + 0.6j * y.imag, y


@pytest.mark.parametrize("kind,n", [("clements", 4), ("clements", 7), ("reck", 5), ("screen", 1), ("svd", 4),
                                    ("svd", 5)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_intensity_passes_equal_autograd_on_an_ideal_circuit(kind, n, seed):
    gen = torch.Generator().manual_seed(seed)
    circ = _circuit(kind, n)
    width = 1 if kind == "screen" else n
    phases = 2 * torch.pi * torch.rand(circ.num_phases, generator=gen, dtype=torch.float64)
    if kind == "svd":  # the Σ attenuators over their whole range [0, π]
        phases[circ.slices["S"]] = torch.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    x = torch.randn(6, width, generator=gen, dtype=torch.float64)
    target = torch.randn(6, width, generator=gen, dtype=torch.float64)
    ref, g, y = _autograd(circ, phases, x, target)
    adj = AdjointCircuit(circ)
    res = adj.gradient(phases, x, g)
    assert (res.y[..., :width] - y).abs().max() < TOL
    assert (res.grad - ref).abs().max() < TOL
    # Re of the adjoint field leaving the inputs is dL/dx
    xr = x.clone().requires_grad_()
    build = circ.matrix if isinstance(circ, SVDBlock) else circ.unitary
    yy = xr.to(torch.complex128) @ build(phases).transpose(-1, -2)
    dx = torch.autograd.grad(((yy.real - target) ** 2).sum() + 0.3 * (yy.imag ** 2).sum(), xr)[0]
    assert (res.x_adj[..., :width].real - dx).abs().max() < TOL


@pytest.mark.parametrize("kind", ["clements", "reck", "svd"])
def test_imbalanced_couplers_keep_the_scheme_exact_and_loss_only_the_field_formula(kind):
    gen = torch.Generator().manual_seed(5)
    circ = _circuit(kind, 4)
    kappa = 0.5 + 0.05 * torch.randn(circ.num_mzis, 2, generator=gen, dtype=torch.float64)
    phases = 2 * torch.pi * torch.rand(circ.num_phases, generator=gen, dtype=torch.float64)
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    target = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    ref, g, _ = _autograd(circ, phases, x, target, kappa=kappa)
    assert (AdjointCircuit(circ, kappa=kappa).gradient(phases, x, g).grad - ref).abs().max() < TOL
    # insertion loss: the tapped-field formula stays exact; time reversal (intensities) does not
    ref, g, _ = _autograd(circ, phases, x, target, kappa=kappa, loss_db=0.3)
    adj = AdjointCircuit(circ, kappa=kappa, loss_db=0.3)
    _, f = adj.forward(phases, adj.pad(x))
    _, a = adj.backward(phases, adj.pad(g.conj()))
    assert (adj.field_gradient(f, a) - ref).abs().max() < TOL
    assert (adj.gradient(phases, x, g).grad - ref).abs().max() > 1e-3


def test_batched_phases_broadcast_like_mesh_apply():
    gen = torch.Generator().manual_seed(3)
    circ = SVDBlock(3, 3)
    phases = torch.rand(2, 5, circ.num_phases, generator=gen, dtype=torch.float64) * 6
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    g = torch.randn(2, 5, 4, 3, generator=gen, dtype=torch.float64)
    adj = AdjointCircuit(circ)
    batched = adj.gradient(phases, x, g).grad
    assert batched.shape == (2, 5, circ.num_phases)
    one = adj.gradient(phases[1, 3], x, g[1, 3]).grad
    assert (batched[1, 3] - one).abs().max() < TOL


def test_rectangular_block_is_refused():
    with pytest.raises(ValueError, match="square"):
        AdjointCircuit(SVDBlock(3, 4))


# ---------------------------------------------------------------------- network level (Chip)
import torch.nn.functional as F  # noqa: E402

from photonic_sim.chip import AdjointClosure, Chip  # noqa: E402
from photonic_sim.cores.photonic import DenseONN, TONN  # noqa: E402
from photonic_sim.cores.spec import NetworkSpec, dense, tt  # noqa: E402
from photonic_sim.devices import load_device_card  # noqa: E402

CARD = load_device_card("silicon_thermo_optic")
SPEC = NetworkSpec("small", (tt((2, 4), (4, 2), 2, "tanh"), dense(8, 3)))


def _setup(readout, cls=TONN, ideal=True, spec=SPEC):
    net = cls(spec, block_size=4)
    phases = net.init_phases(torch.Generator().manual_seed(0))
    chip = Chip(net, CARD, ideal=ideal, readout=readout, dtype=torch.float64)
    x = torch.rand(5, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])

    def example_loss(r):
        return F.cross_entropy(3.0 * r.reshape(-1, 3), y.repeat(r.numel() // 15), reduction="none").reshape(r.shape[:-1])

    return chip, phases, x, example_loss


def _autograd_reference(chip, phases, x, example_loss):
    p = phases.clone().requires_grad_()
    example_loss(chip.measure(x, p, differentiable=True)).mean().backward()
    return p.grad


@pytest.mark.parametrize("readout", ["coherent", "intensity"])
@pytest.mark.parametrize("cls", [TONN, DenseONN])
def test_network_adjoint_equals_autograd_on_an_ideal_chip(readout, cls):
    """Every phase (U, Σ, V of every block, TT cores and dense layer) and bias, float64."""
    chip, phases, x, example_loss = _setup(readout, cls)
    ref = _autograd_reference(chip, phases, x, example_loss)
    loss, grad = chip.adjoint_gradient(x, phases, example_loss)
    assert (grad - ref).abs().max() < TOL
    assert ref.abs().max() > 0.1  # a gradient that could be wrong


def test_adjoint_ledger_counts_the_extra_passes_and_closure_protects_the_chip():
    chip, phases, x, example_loss = _setup("intensity", ideal=False)
    closure = chip.adjoint_closure(x, example_loss)
    assert isinstance(closure, AdjointClosure)
    before = chip.ledger.totals()
    loss, grad = closure(phases)
    after = chip.ledger.totals()
    assert after["queries"] - before["queries"] == 3 and closure.queries == 3
    assert after["samples"] - before["samples"] == 3 * x.shape[0]
    assert after["phase_settings"] - before["phase_settings"] == 1
    assert after["adc_conversions"] > before["adc_conversions"]
    assert torch.isfinite(grad).all() and grad.shape == phases.shape
    assert not hasattr(closure, "__dict__")
    with pytest.raises(TypeError):
        import copy
        copy.copy(closure)
    with pytest.raises(TypeError):
        type("Sub", (AdjointClosure,), {})


def test_noisy_adjoint_is_close_to_the_exact_readout_gradient():
    """Detector noise and ADC/DAC quantization only (same realised phases): the measured
    gradient points the same way as the noiseless one (measured: cosine 0.998, relative error
    6.5 % at this card's ADC; asserted: cosine > 0.99)."""
    chip, phases, x, example_loss = _setup("intensity", ideal=False)
    exact = Chip(chip._net, CARD, readout="intensity", exact_readout=True, dtype=torch.float64)
    _, g_exact = exact.adjoint_gradient(x, phases, example_loss)
    _, g_noisy = chip.adjoint_gradient(x, phases, example_loss)
    cos = F.cosine_similarity(g_noisy, g_exact, 0)
    assert cos > 0.99


# ---------------------------------------------------------------------- loss-balanced circuits (issue 23)
IL64 = torch.tensor(1.16, dtype=torch.float64)  # IL_MZI of the silicon card, dB (float64: SVDBlock keeps the dtype)


@pytest.mark.parametrize("kind,n,columns", [("clements", 4, 4), ("clements", 5, 5), ("svd", 4, 9), ("svd", 3, 7)])
def test_balanced_lossy_circuit_is_exact_with_the_transmission_correction(kind, n, columns):
    """Every column attenuates all modes by 10^(−IL/20) (dummies on the unpaired modes), so the
    circuit is a·U with a = 10^(−columns·IL/20); the autograd reference is built independently
    as a·(lossless matrix). The corrected intensity gradient equals it to 1e-8; the same loss
    without the dummies (unbalanced: the chip's default mesh) is biased (measured cosines
    −0.68 to 0.13 here; asserted < 0.5)."""
    gen = torch.Generator().manual_seed(7)
    circ = _circuit(kind, n)
    phases = 2 * torch.pi * torch.rand(circ.num_phases, generator=gen, dtype=torch.float64)
    if kind == "svd":
        phases[circ.slices["S"]] = torch.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    x = torch.randn(6, n, generator=gen, dtype=torch.float64)
    target = torch.randn(6, n, generator=gen, dtype=torch.float64)
    build = circ.matrix if isinstance(circ, SVDBlock) else circ.unitary
    a = 10.0 ** (-columns * 1.16 / 20.0)

    p = phases.clone().requires_grad_()
    y = x.to(torch.complex128) @ (a * build(p)).transpose(-1, -2)
    ref = torch.autograd.grad(((y.real - target) ** 2).sum() + 0.3 * (y.imag ** 2).sum(), p)[0]
    y = y.detach()
    g = 2.0 * (y.real - target) + 0.6j * y.imag
    adj = AdjointCircuit(circ, loss_db=IL64, balanced=True)
    assert adj.transmission is not None and float(adj.transmission.min()) < 0.5  # deep cuts lose > 3 dB
    res = adj.gradient(phases, x, g)
    assert (res.y[..., :n] - y).abs().max() < TOL
    assert (res.grad - ref).abs().max() < TOL and ref.abs().max() > 0.1

    ref_u, g_u, _ = _autograd(circ, phases, x, target, loss_db=IL64)
    plain = AdjointCircuit(circ, loss_db=IL64)
    assert plain.transmission is None
    cos = torch.nn.functional.cosine_similarity(plain.gradient(phases, x, g_u).grad, ref_u, 0)
    assert cos < 0.5


def test_scalar_loss_on_sigma_only_is_corrected():
    """The balanced chip's only simulated loss is a laser shortfall on the Σ column (a scalar
    on all 2n ports, U and V lossless): T = 1 before Σ and 10^(−s/10) after it, and the
    corrected gradient is exact; without the correction (T forced to None) it is not."""
    gen = torch.Generator().manual_seed(8)
    circ = SVDBlock(4, 4)
    loss = {"U": torch.zeros(circ.u.num_mzis, dtype=torch.float64), "S": torch.full((4,), 6.0, dtype=torch.float64),
            "V": torch.zeros(circ.v.num_mzis, dtype=torch.float64)}
    phases = 2 * torch.pi * torch.rand(circ.num_phases, generator=gen, dtype=torch.float64)
    x = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    target = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    ref, g, _ = _autograd(circ, phases, x, target, loss_db=loss)
    adj = AdjointCircuit(circ, loss_db=loss)
    t = adj.transmission
    assert torch.allclose(torch.unique(t), torch.tensor([10 ** -0.6, 1.0], dtype=torch.float64), rtol=1e-12)
    assert int((t < 1).sum()) == 2 * circ.u.num_mzis + 4  # the U mesh's φ and θ taps and its output screen
    assert (adj.gradient(phases, x, g).grad - ref).abs().max() < TOL
    adj.transmission = None
    assert (adj.gradient(phases, x, g).grad - ref).abs().max() > 1e-3


def _errorless_chip(net, **kw):
    """No phase errors (bias, γ-error, crosstalk, dynamic noise) and exact conversion: the chip's
    realised phases are the quantized targets, so autograd through ``measure`` is the reference."""
    card = load_device_card("silicon_thermo_optic", overrides={
        "phase_shifter.bias_range": 0.0, "phase_shifter.gamma_noise_std": 0.0, "crosstalk.factor": 0.0,
        "phase_shifter.dynamic_noise_std": 0.0})
    return Chip(net, card, seed=0, exact_readout=True, dtype=torch.float64, **kw)


@pytest.mark.parametrize("readout", ["intensity", "coherent"])
def test_chip_adjoint_on_a_balanced_lossy_chip_matches_autograd(readout):
    """4×4 blocks (TT core chain + dense layer), insertion loss on. Balanced: cosine with autograd
    through the same chip > 0.99 (measured 1.0000, the laser pays all the loss); the
    unbalanced lossy chip's adjoint is biased (measured cosines 0.78 intensity / 0.76
    coherent; asserted < 0.95)."""
    _, phases, x, example_loss = _setup(readout)
    cos = {}
    for balanced in (True, False):
        chip = _errorless_chip(TONN(SPEC, block_size=4), readout=readout, insertion_loss=True, loss_balanced=balanced)
        ref = _autograd_reference(chip, phases, x, example_loss)
        _, grad = chip.adjoint_gradient(x, phases, example_loss)
        cos[balanced] = float(F.cosine_similarity(grad, ref, 0))
        assert ref.abs().max() > 0.1
    assert cos[True] > 0.99 and cos[False] < 0.95, cos


@pytest.mark.parametrize("readout", ["intensity", "coherent"])
def test_chip_adjoint_with_a_laser_shortfall_undoes_the_digital_gain(readout):
    """Balanced lossy chip whose laser (``laser.max_power`` 10 µW) cannot feed the link: the
    shortfall is simulated on the Σ column and the controller's digital readout gain (> 1)
    scales every reading. The adjoint pass must re-inject the optical field (reading / gain)
    and weight the adjoint source by the gain; then its gradient still has cosine > 0.99 with
    autograd through the same chip (without that correction: 0.54)."""
    _, phases, x, example_loss = _setup(readout)
    card = load_device_card("silicon_thermo_optic", overrides={
        "phase_shifter.bias_range": 0.0, "phase_shifter.gamma_noise_std": 0.0, "crosstalk.factor": 0.0,
        "phase_shifter.dynamic_noise_std": 0.0, "laser.max_power": 1e-5})
    chip = Chip(TONN(SPEC, block_size=4), card, seed=0, exact_readout=True, dtype=torch.float64,
                readout=readout, insertion_loss=True, loss_balanced=True)
    assert chip._readout_chain.gain > 1.5  # the shortfall is simulated and undone digitally
    ref = _autograd_reference(chip, phases, x, example_loss)
    _, grad = chip.adjoint_gradient(x, phases, example_loss)
    assert ref.abs().max() > 0.1
    assert float(F.cosine_similarity(grad, ref, 0)) > 0.99
