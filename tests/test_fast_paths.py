"""Fast paths of the training step against the reference paths they replace (issue 24).

Every fast path here claims the SAME bits as the code it replaces, so the checks are exact
equality (``torch.equal``), on random phases and the device errors of a real chip; the one
exception is the block build on a CPU where torch uses AVX-512 kernels (``AVX512`` below).
"""

import pytest
import torch

from photonic_sim.cores.photonic import TONN, DenseONN
from photonic_sim.cores.spec import NetworkSpec, dense, tt

# TT 4·4·4 → 4·4·4 (ranks 1, 3, 3, 1) and dense 64 → 10, k = 8: 2 + 4 + 2 + 16 blocks in four
# matrices of different block grids (the quickstart network's shape)
# Where torch dispatches its CPU kernels to AVX-512 (torch.backends.cpu.get_cpu_capability()),
# its vectorized complex products round some entries differently from the scalar path, and which
# path an entry takes depends on the tensor's layout: the one-call block build then differs from
# the per-matrix reference by about one ulp in a few entries (complex128 with coupler errors).
# With ATEN_CPU_CAPABILITY=avx2 or default the same machine gives the same bits, as elsewhere.
AVX512 = torch.backends.cpu.get_cpu_capability() == "AVX512"
SPEC = NetworkSpec("fast", (tt((4, 4, 4), (4, 4, 4), (1, 3, 3, 1), "relu"), dense(64, 10, "none")))


def per_matrix(net, ph, kappa, loss_db, cdt):
    """The reference build: one ``SVDBlock.matrix`` call per hardware matrix (the code
    ``PhotonicNetwork._block_matrices`` ran before it built all blocks at once)."""
    nb = net.block.num_phases
    build = torch.complex128 if ph.dtype == torch.float64 else torch.complex64
    return [net.block.matrix(ph[:, m.start: m.start + m.num_blocks * nb].reshape(-1, m.block_rows, m.block_cols, nb),
                             kappa=net._per_block(kappa, m), loss_db=net._per_block(loss_db, m), dtype=build).to(cdt)
            for m in net._mats]


def loss_dict(net, gen):
    """A per-MZI loss dict like ``accelerators.cost.simulated_loss_db`` (zeros and 1.16 dB)."""
    return {part: (torch.rand(sl.stop - sl.start, generator=gen, dtype=torch.float64) < 0.4) * 1.16
            for part, sl in net.block.mzi_slices.items()}


@pytest.mark.parametrize("mux", ["space", "time"])
@pytest.mark.parametrize("errors", ["ideal", "loss", "kappa_loss"])
@pytest.mark.parametrize("cdt", [torch.complex64, torch.complex128])
def test_block_matrices_in_one_call_equal_one_call_per_matrix(mux, errors, cdt):
    gen = torch.Generator().manual_seed(3)
    net = TONN(SPEC, 8, mux, num_cores=5 if mux == "time" else None)
    ph = torch.rand(6, net.num_phases, generator=gen, dtype=torch.float64) * 7
    kappa = loss_db = None
    if errors != "ideal":
        loss_db = loss_dict(net, gen)
    if errors == "kappa_loss":  # per hardware block tensors (gathered by hw_block)
        m = net.block.num_mzis
        kappa = 0.5 + 0.02 * torch.randn(net.num_hw_blocks, m, 2, generator=gen, dtype=torch.float64)
        loss_db = torch.rand(net.num_hw_blocks, m, generator=gen, dtype=torch.float64)
    got = net._block_matrices(ph, kappa, loss_db, cdt)
    want = per_matrix(net, ph, kappa, loss_db, cdt)
    assert [g.shape for g in got] == [w.shape for w in want]
    if AVX512:  # see AVX512: a few ulp at most (seen: 1.0e-16 on 196 entries, complex128 with couplers)
        eps = torch.finfo(torch.float64 if cdt == torch.complex128 else torch.float32).eps
        assert all(float((g - w).abs().max()) <= 4 * eps * max(1.0, float(w.abs().max())) for g, w in zip(got, want))
    else:
        assert all(torch.equal(g, w) for g, w in zip(got, want))


def test_block_matrices_dense_onn_float32_controls():
    gen = torch.Generator().manual_seed(4)
    net = DenseONN(SPEC, 8)
    ph = (torch.rand(3, net.num_phases, generator=gen, dtype=torch.float64) * 7).to(torch.float32)
    loss_db = loss_dict(net, gen)
    got = net._block_matrices(ph, None, loss_db, torch.complex64)
    want = per_matrix(net, ph, None, loss_db, torch.complex64)
    assert all(torch.equal(g, w) for g, w in zip(got, want))


# ------------------------------------------------------------------ mesh build with loss
def closed_form(e, m, amp):
    """(T00, T01, T10, T11) [..., M] of ideal couplers times ``amp``, one numpy operation at a
    time (no fused multiply-add): the products of ``mzi_coefficients_from_phasors`` and
    ``t * amp`` as torch's vectorised complex arithmetic rounds them."""
    e = e.numpy()
    tr, ti, fr, fi = e[..., :m].real, e[..., :m].imag, e[..., m:2 * m].real, e[..., m:2 * m].imag
    dr, di, br, bi = (1 - tr) * 0.5, -ti * 0.5, -ti * 0.5, (1 + tr) * 0.5
    parts = ((-(fr * dr - fi * di), -(fr * di + fi * dr)), (br, bi), (fr * br - fi * bi, fr * bi + fi * br), (dr, di))
    return tuple(torch.complex(torch.from_numpy(re * amp), torch.from_numpy(im * amp)) for re, im in parts)


@pytest.fixture
def mesh_kernel():
    from photonic_sim.circuits import _fused

    if _fused.kernel() is None:
        pytest.skip(f"fused mesh kernel unavailable: {_fused.unavailable_reason()}")
    return _fused


@pytest.mark.parametrize("n", [3, 8, 16])
@pytest.mark.parametrize("cdt", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("loss_shape", ["shared", "per_setting", "scalar"])
def test_fused_build_with_loss_equals_scaled_entries(mesh_kernel, n, cdt, loss_shape):
    """The kernel's closed-form entries × loss amplitude equal the same products taken one
    rounding at a time (``closed_form``) handed to the kernel, bit for bit; and the matrix
    equals the independent column sweep to float rounding."""
    from photonic_sim.circuits.mesh import ClementsMesh, _unit_phasor

    gen = torch.Generator().manual_seed(n)
    mesh = ClementsMesh(n)
    m = mesh.num_mzis
    ph = torch.rand(4, 3, mesh.num_phases, generator=gen, dtype=torch.float64) * 7
    ph[0, 0, :m] = torch.pi  # cos = -1 exactly: zero entries
    ph[0, 1, :m] = 0.0
    ph = mesh._check_phases(ph, cdt, ph.device)  # as ``unitary`` hands them over: the real dtype of cdt
    loss = {"shared": (torch.rand(m, generator=gen) < 0.5).double() * 1.16,
            "per_setting": torch.rand(3, m, generator=gen, dtype=torch.float64) * 2,
            "scalar": torch.tensor(0.7, dtype=torch.float64)}[loss_shape]
    got = mesh._build(ph, None, loss, cdt)
    rdt = torch.float32 if cdt == torch.complex64 else torch.float64
    amp = (10.0 ** (-loss.to(rdt) / 20.0)).expand(4, 3, m).numpy()
    e = _unit_phasor(ph, cdt)
    flat = tuple(t.to(cdt).reshape(12, m) for t in closed_form(e, m, amp))
    want = mesh_kernel.build(mesh._tops(), flat, e[..., 2 * m:].reshape(12, n), n).reshape(4, 3, n, n)
    assert torch.equal(got, want)
    coefs, alpha = mesh._coefficients(ph, None, loss, cdt)  # torch's entries
    ref = mesh._sweep(coefs, alpha, torch.eye(n, dtype=cdt)).transpose(-1, -2)
    tol = 1e-13 if cdt == torch.complex128 else 2e-6
    assert (got - ref).abs().max() < tol


def test_fused_build_with_loss_equals_torch_entries_k16(mesh_kernel):
    """Where torch's vectorised loops cover every MZI (M = 120 entries a row, complex128), its
    entries ``mzi_coefficients_from_phasors`` × amplitude handed to the kernel give the same
    matrix bit for bit (torch's scalar tail loops may round one product differently, by an ulp:
    compiled with fused multiply-add)."""
    from photonic_sim.circuits.mesh import ClementsMesh

    mesh = ClementsMesh(16)
    m = mesh.num_mzis
    ph = torch.rand(5, mesh.num_phases, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 7
    loss = (torch.arange(m) % 3 == 0).double() * 1.16
    coefs, alpha = mesh._coefficients(ph, None, loss, torch.complex128)
    want = mesh_kernel.build(mesh._tops(), coefs, alpha, 16)
    assert torch.equal(mesh._build(ph, None, loss, torch.complex128), want)


def test_fused_build_loss_wider_than_phases_falls_back():
    """A loss_db with more batch dims than the phases broadcasts them (the torch entries)."""
    from photonic_sim.circuits.mesh import ClementsMesh

    mesh = ClementsMesh(4)
    ph = torch.rand(mesh.num_phases, dtype=torch.float64) * 6
    loss = torch.rand(3, mesh.num_mzis, dtype=torch.float64)
    u = mesh._build(ph, None, loss, torch.complex128)
    assert u.shape == (3, 4, 4)
    assert (u[1] - mesh._build(ph, None, loss[1], torch.complex128)).abs().max() < 1e-13  # torch entries vs kernel
    with pytest.raises(ValueError, match="loss_db"):
        mesh._build(ph, None, -loss, torch.complex128)


# ------------------------------------------------------------------ Σ attenuators with loss
@pytest.mark.parametrize("cdt", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("shape", [(7,), (5, 3, 8), (2, 8)])
def test_attenuator_with_loss_equals_general_mzi_path(cdt, shape):
    """The short ideal-coupler-with-loss path of ``attenuator_transmission`` equals the general
    ``mzi_matrix`` path (run here through autograd, which takes it) bit for bit."""
    from photonic_sim.circuits.svd import attenuator_transmission

    gen = torch.Generator().manual_seed(len(shape))
    theta = torch.rand(*shape, generator=gen, dtype=torch.float64) * 3.5
    theta.view(-1)[:3] = torch.tensor([0.0, torch.pi, 2 * torch.pi], dtype=torch.float64)
    loss = torch.rand(shape[-1], generator=gen, dtype=torch.float64) * 2
    loss[0] = 0.0
    got = attenuator_transmission(theta, loss_db=loss, dtype=cdt)
    leaf = theta.clone().requires_grad_()
    want = attenuator_transmission(leaf, loss_db=loss, dtype=cdt).detach()
    assert torch.equal(got, want)
    ideal = torch.sin(0.5 * theta) * 10.0 ** (-loss / 20.0)  # float64 closed form
    assert (got - ideal).abs().max() < (1e-14 if cdt == torch.complex128 else 1e-6)


# ------------------------------------------------------------------ a chip's static loss, kept
def test_static_loss_amplitudes_follow_the_tensor_and_stay_checked():
    """A chip passes the same static loss tensors on every call; the meshes keep their
    amplitudes and the attenuators theirs (``Mesh._amplitudes``, ``svd._static``). Kept
    values must follow the tensor: changed in place, the block is what a fresh tensor with
    the new values gives (exactly), not the old block; a negative loss written in place is
    refused as on a first call; a different tensor with the same values gives the same bits."""
    from photonic_sim.circuits.svd import SVDBlock

    blk = SVDBlock(4, 4)
    gen = torch.Generator().manual_seed(3)
    ph = torch.rand(5, blk.num_phases, generator=gen, dtype=torch.float64) * 6
    loss = {part: torch.rand(sl.stop - sl.start, generator=gen, dtype=torch.float64) for part, sl in
            blk.mzi_slices.items()}
    first = blk.matrix(ph, loss_db=loss)
    assert torch.equal(blk.matrix(ph, loss_db=loss), first)  # kept: the same bits
    assert torch.equal(blk.matrix(ph, loss_db={k: v.clone() for k, v in loss.items()}), first)
    for part in ("U", "S", "V"):  # each part's kept amplitudes follow an in-place change
        loss[part].mul_(3.0)
        fresh = blk.matrix(ph, loss_db={k: v.clone() for k, v in loss.items()})
        again = blk.matrix(ph, loss_db=loss)
        assert torch.equal(again, fresh) and not torch.allclose(again, first)
        first = again
    for part in ("U", "S"):
        loss[part][0] = -1.0
        with pytest.raises(ValueError, match="loss_db"):
            blk.matrix(ph, loss_db=loss)
        loss[part][0] = 0.5
