"""Meshes, decomposition and SVD blocks against independent references (numpy, analytic T)."""

import math
import os
import shutil

import numpy as np
import pytest
import torch
from scipy.stats import unitary_group

from photonic_sim.circuits import ClementsMesh, Mesh, ReckMesh, SVDBlock, attenuator_transmission, decompose
from photonic_sim.circuits import _fused
from photonic_sim.circuits import mesh as mesh_module
from photonic_sim.devices.mzi import coupler_matrix, mzi_matrix

MESHES = [ClementsMesh, ReckMesh]
TWO_PI = 2 * math.pi


def rand_phases(mesh, gen, *lead):
    return torch.rand(*lead, mesh.num_phases, generator=gen, dtype=torch.float64) * TWO_PI


def t_ref(theta, phi, k1=0.5, k2=0.5, loss_db=0.0):
    """Independent numpy MZI: B(κ2)·diag(e^{iθ},1)·B(κ1)·diag(e^{iφ},1)·10^(-IL/20)."""

    def b(k):
        return np.array([[math.sqrt(1 - k), 1j * math.sqrt(k)], [1j * math.sqrt(k), math.sqrt(1 - k)]])

    amp = 10 ** (-loss_db / 20)
    return amp * b(k2) @ np.diag([np.exp(1j * theta), 1]) @ b(k1) @ np.diag([np.exp(1j * phi), 1])


def dense_reference(mesh, phases, kappa=None, loss_db=None):
    """Product of n×n embedded MZIs, one by one in index (light) order, then the screen."""
    p = np.asarray(phases)
    M, n = mesh.num_mzis, mesh.n
    u = np.eye(n, dtype=complex)
    for k, (_, top) in enumerate(mesh.mzis):
        k1, k2 = (0.5, 0.5) if kappa is None else kappa[k]
        il = 0.0 if loss_db is None else loss_db[k]
        e = np.eye(n, dtype=complex)
        e[top : top + 2, top : top + 2] = t_ref(p[k], p[M + k], k1, k2, il)
        u = e @ u
    return np.diag(np.exp(1j * p[2 * M :])) @ u


@pytest.fixture
def torch_build(monkeypatch):
    """Force the pure-torch fast build (as without a C compiler or on CUDA)."""
    monkeypatch.setattr(_fused, "kernel", lambda: None)


@pytest.fixture
def fused_kernel():
    """The fused C kernel; skips when it cannot be built here (see test_fused_kernel_builds)."""
    if _fused.kernel() is None:
        pytest.skip(f"fused kernel unavailable: {_fused.unavailable_reason()}")


def crossings(mesh):
    """Number of MZIs each mode passes through."""
    d = np.zeros(mesh.n, dtype=int)
    for _, top in mesh.mzis:
        d[top : top + 2] += 1
    return d


# ---------------------------------------------------------------------------- layout
@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 8])
def test_layout_counts_and_depths(n):
    c, r = ClementsMesh(n), ReckMesh(n)
    for m in (c, r):
        assert m.num_mzis == n * (n - 1) // 2
        assert m.num_phases == n * (n - 1) + n
        assert sorted(k for col in m.columns for k in col.mzis) == list(range(m.num_mzis))
        for ci, col in enumerate(m.columns):
            assert col.offset == ci % 2
            assert all(m.mzis[k] == (ci, col.offset + 2 * j) for j, k in enumerate(col.mzis))
    assert c.num_columns == n and r.num_columns == 2 * n - 3
    # Clements: interior modes cross every column; edge modes only the columns that reach them.
    exp_c = [n] * n
    exp_c[0] = (n + 1) // 2
    exp_c[-1] = n // 2 if n % 2 == 0 else (n - 1) // 2
    assert crossings(c).tolist() == exp_c
    # Reck triangle: mode 0 crosses n-1, mode j (1..n-2) 2n-1-2j, mode n-1 one MZI.
    exp_r = [n - 1] + [2 * n - 1 - 2 * j for j in range(1, n - 1)] + [1]
    assert crossings(r).tolist() == exp_r


@pytest.mark.parametrize("cls", MESHES)
def test_single_mzi_analytic(cls, gen):
    m = cls(2)
    p = rand_phases(m, gen, 5)
    U = m.unitary(p).numpy()
    th, ph, a0, a1 = p.numpy().T
    s, c = np.sin(th / 2), np.cos(th / 2)
    g = 1j * np.exp(1j * th / 2)
    T = g[:, None, None] * np.stack(
        [np.stack([np.exp(1j * ph) * s, c], -1), np.stack([np.exp(1j * ph) * c, -s], -1)], -2
    )
    ref = np.exp(1j * np.stack([a0, a1], -1))[:, :, None] * T
    np.testing.assert_allclose(U, ref, atol=1e-14)


@pytest.mark.parametrize("cls", MESHES)
@pytest.mark.parametrize("n", [3, 4, 5, 8])
def test_mesh_matches_dense_reference_nonideal(cls, n, gen):
    m = cls(n)
    p = rand_phases(m, gen)
    kappa = 0.5 + 0.1 * (torch.rand(m.num_mzis, 2, generator=gen, dtype=torch.float64) - 0.5)
    loss = torch.rand(m.num_mzis, generator=gen, dtype=torch.float64)
    np.testing.assert_allclose(m.unitary(p).numpy(), dense_reference(m, p), atol=1e-12)
    U = m.unitary(p, kappa=kappa, loss_db=loss).numpy()
    np.testing.assert_allclose(U, dense_reference(m, p, kappa.numpy(), loss.numpy()), atol=1e-12)


def test_positions_and_periods():
    m = ClementsMesh(4)
    pos, M = m.positions(), m.num_mzis
    assert pos.shape == (m.num_phases, 2)
    for k, (col, top) in enumerate(m.mzis):
        assert pos[k].tolist() == [col, top + 0.5]
        assert pos[M + k].tolist() == [col - 0.5, top + 0.5]
    assert pos[2 * M :].tolist() == [[4.0, j] for j in range(4)]
    assert torch.equal(m.phase_periods(), torch.full((m.num_phases,), TWO_PI, dtype=torch.float64))


# ---------------------------------------------------------------------------- physics
@pytest.mark.parametrize("cls", MESHES)
@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 8, 16, 31, 64])
def test_unitarity(cls, n, gen):
    m = cls(n)
    p = rand_phases(m, gen, 2)
    eye = torch.eye(n, dtype=torch.complex128)
    U = m.unitary(p)
    assert (U @ U.mH - eye).abs().max() < 1e-12
    U32 = m.unitary(p.float(), dtype=torch.complex64)
    assert U32.dtype == torch.complex64
    assert (U32 @ U32.mH - eye.to(torch.complex64)).abs().max() < 5e-5
    assert (U32.to(torch.complex128) - U).abs().max() < 2e-5


@pytest.mark.parametrize("cls", MESHES)
def test_imbalanced_couplers_stay_unitary(cls, gen):
    m = cls(9)
    p = rand_phases(m, gen)
    kappa = 0.5 + 0.2 * (torch.rand(m.num_mzis, 2, generator=gen, dtype=torch.float64) - 0.5)
    U = m.unitary(p, kappa=kappa)
    assert (U @ U.mH - torch.eye(9, dtype=torch.complex128)).abs().max() < 1e-12
    assert (U - m.unitary(p)).abs().max() > 1e-3  # imbalance does change the transfer matrix


@pytest.mark.parametrize("cls", MESHES)
@pytest.mark.parametrize("n", [6, 7])
def test_uniform_loss(cls, n, gen):
    m = cls(n)
    il = 0.3
    amp = 10 ** (-il / 20)
    depth = crossings(m)
    # Bar state (θ = π): every mode stays on its waveguide and picks up amp per MZI crossed.
    p = rand_phases(m, gen)
    p[: m.num_mzis] = math.pi
    U = m.unitary(p, loss_db=il).numpy()
    np.testing.assert_allclose(np.abs(U), np.diag(amp**depth), atol=1e-12)
    # Any setting: the loss only removes power, bounded by the shallowest/deepest path.
    U = m.unitary(rand_phases(m, gen), loss_db=il).numpy()
    sv = np.linalg.svd(U, compute_uv=False)
    assert sv.max() <= amp ** depth.min() + 1e-12 and sv.min() >= amp ** depth.max() - 1e-12


@pytest.mark.parametrize("cls", MESHES)
def test_apply_equals_unitary_and_broadcasts(cls, gen):
    m = cls(6)
    p = rand_phases(m, gen, 3)
    x = torch.randn(3, 4, 6, generator=gen, dtype=torch.complex128)
    U = m.unitary(p)
    ref = torch.einsum("pij,pbj->pbi", U, x)
    assert (m.apply(p, x) - ref).abs().max() < 1e-13
    xs = x[0]
    assert (m.apply(p, xs) - torch.einsum("pij,bj->pbi", U, xs)).abs().max() < 1e-13
    # real float32 input is promoted to complex64
    y = m.apply(p.float(), x.real.float())
    assert y.dtype == torch.complex64
    assert (y.to(torch.complex128) - torch.einsum("pij,pbj->pbi", U, x.real.to(U.dtype))).abs().max() < 1e-5


def test_batching_two_leading_dims(gen):
    m = ReckMesh(5)
    p = rand_phases(m, gen, 2, 3)
    kappa = 0.5 + 0.05 * torch.randn(2, 3, m.num_mzis, 2, generator=gen, dtype=torch.float64)
    loss = torch.rand(2, 3, m.num_mzis, generator=gen, dtype=torch.float64)
    U = m.unitary(p, kappa=kappa, loss_db=loss)
    assert U.shape == (2, 3, 5, 5)
    for i in range(2):
        for j in range(3):
            one = m.unitary(p[i, j], kappa=kappa[i, j], loss_db=loss[i, j])
            assert (U[i, j] - one).abs().max() < 1e-14


def test_gradient_matches_finite_differences(gen):
    m = ClementsMesh(4)
    p = rand_phases(m, gen).requires_grad_(True)
    kappa = 0.5 + 0.05 * torch.randn(m.num_mzis, 2, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 4, generator=gen, dtype=torch.complex128)

    def f(q):
        u = m.unitary(q, kappa=kappa, loss_db=0.2)
        return (u * w).real.sum() + (u.abs() ** 2 * w.imag).sum()

    (grad,) = torch.autograd.grad(f(p), p)
    h = 1e-6
    basis = torch.eye(m.num_phases, dtype=torch.float64)
    fd = torch.stack([(f(p.detach() + h * e) - f(p.detach() - h * e)) / (2 * h) for e in basis])
    assert (grad - fd).abs().max() < 1e-7
    assert grad.abs().max() > 1e-2


@pytest.mark.parametrize("cls", MESHES)
@pytest.mark.parametrize("n", [2, 5, 8, 9])
@pytest.mark.parametrize("length", [2, 3, 4, 64])
def test_fast_build_matches_column_sweep(cls, n, length, gen, torch_build, monkeypatch):
    """Pure-torch grouped band sweep (no autograd) == out-of-place column sweep (taken when phases need
    grad) == dense numpy product, for every group length: partial last groups, odd lengths
    (Clements parities differ → one group), lengths beyond the mesh; nonideal κ and loss."""
    monkeypatch.setattr(mesh_module, "_group_length", lambda batch: length)
    m = cls(n)
    p = rand_phases(m, gen, 3)
    kappa = 0.5 + 0.05 * torch.randn(3, m.num_mzis, 2, generator=gen, dtype=torch.float64)
    loss = torch.rand(m.num_mzis, generator=gen, dtype=torch.float64)
    fast = m.unitary(p, kappa=kappa, loss_db=loss)
    swept = m.unitary(p.clone().requires_grad_(True), kappa=kappa, loss_db=loss).detach()
    assert (fast - swept).abs().max() < 1e-13
    ref = dense_reference(m, p[1].numpy(), kappa[1].numpy(), loss.numpy())
    np.testing.assert_allclose(fast[1].numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("batch", [1, 5, 32])
def test_fast_build_large_mesh_default_groups(batch, gen, torch_build):
    """64-mode Clements, pure-torch build with the default group length for this batch:
    equal to the sweep."""
    m = ClementsMesh(64)
    p = rand_phases(m, gen, batch)
    fast = m.unitary(p)
    swept = m.unitary(p.clone().requires_grad_(True)).detach()
    assert (fast - swept).abs().max() < 1e-12
    eye = torch.eye(64, dtype=torch.complex128)
    assert (fast @ fast.mH - eye).abs().max() < 1e-12


@pytest.mark.parametrize(("n", "length", "batch"), [(40, 4, 1), (33, 4, 1), (40, 6, 1), (40, 4, 3)])
def test_fast_build_banded_first_level(n, length, batch, gen, torch_build, monkeypatch):
    """Groups narrow next to n: the first tree level multiplies row blocks of the bands
    (checked to be taken) — even and odd group counts, n not a multiple of the block, a
    partial last group (identity pads), a batch (sweep layout copied to matrices) — equal
    to the column sweep and, for one setting, to the dense numpy product."""
    monkeypatch.setattr(mesh_module, "_group_length", lambda b: length)
    m = ClementsMesh(n)
    p = rand_phases(m, gen, batch)
    loss = torch.rand(m.num_mzis, generator=gen, dtype=torch.float64)
    fast = m.unitary(p, loss_db=loss)
    assert all(w["blocks"] is not None for w in m._cache["work"].values())
    swept = m.unitary(p.clone().requires_grad_(True), loss_db=loss).detach()
    assert (fast - swept).abs().max() < 1e-12
    ref = dense_reference(m, p[0].numpy(), loss_db=loss.numpy())
    np.testing.assert_allclose(fast[0].numpy(), ref, atol=1e-12)
    again = m.unitary(p.flip(0), loss_db=loss)  # reused workspace: no state leaks between calls
    assert (again - fast.flip(0)).abs().max() < 1e-13


# ---------------------------------------------------------------------------- fused kernel
def test_fused_kernel_builds():
    """Where a C compiler exists (CI, dev machines) the fused kernel must load: a silent
    fallback to the slower pure-torch build would go unnoticed otherwise."""
    if _fused._compiler() is None:
        pytest.skip("no C compiler: the pure-torch build is used")
    if os.environ.get("PHOTONIC_SIM_NO_FUSED", "") not in ("", "0"):
        pytest.skip("fused kernel turned off by PHOTONIC_SIM_NO_FUSED")
    assert _fused.kernel() is not None, _fused.unavailable_reason()


@pytest.mark.parametrize("cls", MESHES)
@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 9, 16, 17, 33, 64])
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("ideal", [True, False])
def test_fused_equals_torch_build(cls, n, dtype, ideal, gen, fused_kernel, monkeypatch):
    """Fused C kernel == pure-torch grouped build (1e-12 in complex128, float32 rounding in
    complex64), batched; ideal couplers (entries taken inside the kernel) and nonideal κ and
    loss (entries from devices.mzi); checked to go through the kernel."""
    m = cls(n)
    rdt = torch.float64 if dtype == torch.complex128 else torch.float32
    p = rand_phases(m, gen, 3).to(rdt)
    extra = {}
    if not ideal:
        extra = {"kappa": 0.5 + 0.05 * torch.randn(3, m.num_mzis, 2, generator=gen, dtype=torch.float64),
                 "loss_db": torch.rand(m.num_mzis, generator=gen, dtype=torch.float64)}
    calls = []
    for name in ("build", "build_ideal"):
        monkeypatch.setattr(_fused, name, lambda *a, _f=getattr(_fused, name), _n=name: calls.append(_n) or _f(*a))
    fused = m.unitary(p, dtype=dtype, **extra)
    assert calls == ["build_ideal" if ideal else "build"]
    monkeypatch.setattr(_fused, "kernel", lambda: None)
    pure = m.unitary(p, dtype=dtype, **extra)
    assert fused.dtype == pure.dtype == dtype and fused.shape == (3, n, n)
    tol = 1e-12 if dtype == torch.complex128 else 2e-5
    assert (fused - pure).abs().max() < tol
    if n <= 9 and dtype == torch.complex128:  # independent reference
        kappa = None if ideal else extra["kappa"][2].numpy()
        loss = None if ideal else extra["loss_db"].numpy()
        np.testing.assert_allclose(fused[2].numpy(), dense_reference(m, p[2].numpy(), kappa, loss), atol=1e-12)


def test_fused_broadcast_and_strides(gen, fused_kernel):
    """Kernel inputs with zero / odd batch strides: two leading dims, κ broadcasting the
    phases' batch, a non-contiguous phase tensor, an empty batch; == pure-torch build."""
    m = ClementsMesh(7)
    p = rand_phases(m, gen, 2, 3)
    kappa = 0.5 + 0.05 * torch.randn(4, 1, 1, m.num_mzis, 2, generator=gen, dtype=torch.float64)
    cases = [(p, {}), (p, {"loss_db": 0.4}), (p[0], {"kappa": kappa}), (rand_phases(m, gen, 6)[::2], {}),
             (rand_phases(m, gen, 5, 2).transpose(0, 1), {"loss_db": torch.rand(5, m.num_mzis, generator=gen,
                                                                                 dtype=torch.float64)}),
             (torch.zeros(0, m.num_phases, dtype=torch.float64), {})]
    fused = [m.unitary(q, **kw) for q, kw in cases]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_fused, "kernel", lambda: None)
        pure = [m.unitary(q, **kw) for q, kw in cases]
    for f, q in zip(fused, pure):
        assert f.shape == q.shape
        assert f.numel() == 0 or (f - q).abs().max() < 1e-13


def test_fused_load_fallbacks(tmp_path, monkeypatch):
    """_load: a fresh cache dir gets one compiled library (reused on the next load); no
    compiler, a failing compiler or PHOTONIC_SIM_NO_FUSED give None with a reason (the mesh
    then uses the pure-torch build)."""
    monkeypatch.setenv("PHOTONIC_SIM_CACHE", str(tmp_path))
    monkeypatch.delenv("PHOTONIC_SIM_NO_FUSED", raising=False)
    if _fused._compiler() is not None:
        lib, why = _fused._load()
        assert lib is not None and why is None
        built = list(tmp_path.glob("*.so"))
        assert len(built) == 1
        stamp = built[0].stat().st_mtime_ns
        assert _fused._load()[0] is not None and built[0].stat().st_mtime_ns == stamp
    monkeypatch.setenv("CC", shutil.which("false") or "false")
    monkeypatch.setattr(_fused, "_compiler", lambda: shutil.which("false"))
    if shutil.which("false"):
        lib, why = _fused._load()
        assert lib is None and "failed" in why
    monkeypatch.setattr(_fused, "_compiler", lambda: None)
    assert _fused._load() == (None, "no C compiler found ($CC, cc, gcc, clang)")
    monkeypatch.setenv("PHOTONIC_SIM_NO_FUSED", "1")
    lib, why = _fused._load()
    assert lib is None and "PHOTONIC_SIM_NO_FUSED" in why


@pytest.mark.parametrize("fused", [True, False])
def test_apply_rule_paths_agree(fused, gen, monkeypatch):
    """apply: with the fused kernel U is always built (n ≤ 256); with the pure-torch build
    B < n/4 rows → column sweep, B ≥ n/4 → U then matmul. Every path equals the dense
    reference, and a grad-requiring x forces the sweep (same numbers)."""
    if fused and _fused.kernel() is None:
        pytest.skip(f"fused kernel unavailable: {_fused.unavailable_reason()}")
    if not fused:
        monkeypatch.setattr(_fused, "kernel", lambda: None)
    m = ClementsMesh(16)
    swept = []
    monkeypatch.setattr(m, "_sweep", lambda *a, _f=m._sweep: swept.append(1) or _f(*a))
    p = rand_phases(m, gen, 2)
    u_ref = torch.from_numpy(np.stack([dense_reference(m, q.numpy()) for q in p]))
    for rows in (1, 3, 4, 40):
        x = torch.randn(2, rows, 16, generator=gen, dtype=torch.complex128)
        ref = torch.einsum("pij,pbj->pbi", u_ref, x)
        swept.clear()
        assert (m.apply(p, x) - ref).abs().max() < 1e-12
        assert bool(swept) == (not fused and 4 * rows < 16)
        assert (m.apply(p, x.clone().requires_grad_(True)).detach() - ref).abs().max() < 1e-12
        assert swept


def test_apply_gradient_matches_finite_differences(gen):
    """Gradient through apply with B ≥ n/4 (autograd → sweep) vs central differences of the
    no-grad calls (→ fast build), with respect to phases and loss."""
    m = ReckMesh(4)
    p = rand_phases(m, gen).requires_grad_(True)
    loss = torch.full((m.num_mzis,), 0.3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(6, 4, generator=gen, dtype=torch.complex128)
    w = torch.randn(6, 4, generator=gen, dtype=torch.float64)

    def f(q, il):
        return (m.apply(q, x, loss_db=il).abs() ** 2 * w).sum()

    gp, gl = torch.autograd.grad(f(p, loss), (p, loss))
    h = 1e-6
    with torch.no_grad():
        fd_p = torch.stack([(f(p + h * e, loss) - f(p - h * e, loss)) / (2 * h)
                            for e in torch.eye(m.num_phases, dtype=torch.float64)])
        fd_l = torch.stack([(f(p, loss + h * e) - f(p, loss - h * e)) / (2 * h)
                            for e in torch.eye(m.num_mzis, dtype=torch.float64)])
    assert (gp - fd_p).abs().max() < 1e-7 and (gl - fd_l).abs().max() < 1e-7
    assert gp.abs().max() > 1e-2 and gl.abs().max() > 1e-2


# ---------------------------------------------------------------------------- decomposition
@pytest.mark.parametrize("name,cls", [("clements", ClementsMesh), ("reck", ReckMesh)])
@pytest.mark.parametrize("n", [2, 3, 5, 8, 16, 33, 64])
def test_decompose_round_trip(name, cls, n):
    U = unitary_group.rvs(n, random_state=np.random.default_rng(n))
    p = decompose(U, name)
    assert p.dtype == np.float64 and p.shape == (cls(n).num_phases,)
    assert p.min() >= 0 and p.max() < TWO_PI
    V = cls(n).unitary(torch.from_numpy(p)).numpy()
    assert np.abs(V - U).max() <= 1e-10


def test_decompose_batch_and_torch_input():
    rng = np.random.default_rng(7)
    U = np.stack([unitary_group.rvs(4, random_state=rng) for _ in range(6)]).reshape(2, 3, 4, 4)
    p = decompose(torch.from_numpy(U), "reck")
    assert p.shape == (2, 3, ReckMesh(4).num_phases)
    np.testing.assert_array_equal(p[1, 2], decompose(U[1, 2], "reck"))
    V = ReckMesh(4).unitary(torch.from_numpy(p)).numpy()
    assert np.abs(V - U).max() <= 1e-12


# ---------------------------------------------------------------------------- SVD block
def test_attenuator_against_couplers(gen):
    theta = torch.rand(7, generator=gen, dtype=torch.float64) * math.pi
    np.testing.assert_allclose(attenuator_transmission(theta).numpy(), np.sin(theta.numpy() / 2), atol=1e-15)
    kappa = 0.5 + 0.1 * torch.randn(7, 2, generator=gen, dtype=torch.float64)
    loss = torch.rand(7, generator=gen, dtype=torch.float64)
    pp = torch.diag_embed(torch.polar(torch.ones(7, 2, dtype=torch.float64), torch.stack((theta / 2, -theta / 2), -1)))
    bar = (coupler_matrix(kappa[:, 1]) @ pp @ coupler_matrix(kappa[:, 0]))[:, 0, 0]
    ref = bar * 10 ** (-loss / 20) / 1j
    assert (attenuator_transmission(theta, kappa=kappa, loss_db=loss) - ref).abs().max() < 1e-15
    # same bar transmission read from mzi_matrix with φ = 0 (push-pull = e^{-iθ/2}·diag(e^{iθ}, 1))
    t00 = mzi_matrix(theta, torch.zeros(7, dtype=torch.float64), kappa1=kappa[:, 0], kappa2=kappa[:, 1])[:, 0, 0]
    assert (attenuator_transmission(theta, kappa=kappa) - t00 * torch.exp(-0.5j * theta) / 1j).abs().max() < 1e-15


@pytest.mark.parametrize("shape", [(4, 4), (3, 6), (6, 3), (1, 5), (5, 1), (8, 8)])
@pytest.mark.parametrize("complex_w", [False, True])
def test_svd_round_trip(shape, complex_w):
    rng = np.random.default_rng(sum(shape) + complex_w)
    W = rng.normal(size=shape) + (1j * rng.normal(size=shape) if complex_w else 0)
    b = SVDBlock(*shape)
    p, scale = b.from_matrix(W)
    assert p.shape == (b.num_phases,) and isinstance(scale, float)
    assert np.isclose(scale, np.linalg.norm(W, 2), rtol=1e-12)
    s = p[b.slices["S"]]
    assert s.min() >= 0 and s.max() <= math.pi
    M = b.matrix(torch.from_numpy(p)).numpy() * scale
    assert np.abs(M - W).max() <= 1e-10
    x = torch.from_numpy(rng.normal(size=(5, shape[1])) + 1j * rng.normal(size=(5, shape[1])))
    y = b.apply(torch.from_numpy(p), x).numpy() * scale
    np.testing.assert_allclose(y, x.numpy() @ W.T, atol=1e-10)


def test_svd_zero_matrix_and_batch():
    b = SVDBlock(3, 4)
    p, scale = b.from_matrix(np.zeros((3, 4)))
    assert scale == 1.0 and np.all(p[b.slices["S"]] == 0)
    assert np.abs(b.matrix(torch.from_numpy(p)).numpy()).max() < 1e-15
    rng = np.random.default_rng(3)
    W = rng.normal(size=(2, 3, 4))
    p, scale = b.from_matrix(W)
    assert p.shape == (2, b.num_phases) and scale.shape == (2,)
    M = b.matrix(torch.from_numpy(p)).numpy() * scale[:, None, None]
    assert np.abs(M - W).max() <= 1e-10


def test_svd_nonideal_parts(gen):
    b = SVDBlock(4, 3)
    p = torch.rand(b.num_phases, generator=gen, dtype=torch.float64) * TWO_PI
    kappa = 0.5 + 0.05 * torch.randn(b.num_mzis, 2, generator=gen, dtype=torch.float64)
    loss = torch.rand(b.num_mzis, generator=gen, dtype=torch.float64)
    parts = {k: kappa[b.mzi_slices[k]] for k in "USV"}
    lparts = {k: loss[b.mzi_slices[k]] for k in "USV"}
    u = b.u.unitary(p[b.slices["U"]], kappa=parts["U"], loss_db=lparts["U"])
    vh = b.v.unitary(p[b.slices["V"]], kappa=parts["V"], loss_db=lparts["V"])
    s = attenuator_transmission(p[b.slices["S"]], kappa=parts["S"], loss_db=lparts["S"])
    sig = torch.zeros(4, 3, dtype=torch.complex128)
    sig[range(3), range(3)] = s
    ref = u @ sig @ vh
    assert (b.matrix(p, kappa=parts, loss_db=lparts) - ref).abs().max() < 1e-14
    assert (b.matrix(p, kappa=kappa, loss_db=loss) - ref).abs().max() < 1e-14
    x = torch.randn(2, 5, 3, generator=gen, dtype=torch.complex128)
    y = b.apply(p.expand(2, -1), x, kappa=kappa, loss_db=loss)
    assert (y - x @ ref.T).abs().max() < 1e-14


def test_svd_positions_and_periods():
    b = SVDBlock(4, 3)
    pos = b.positions()
    assert pos.shape == (b.num_phases, 2)
    xu, xs, xv = (pos[b.slices[k], 0] for k in "USV")
    assert xv.max() < xs.min() and xs.max() < xu.min()  # light order V → Σ → U
    per = b.phase_periods()
    assert torch.all(per[b.slices["S"]] == math.pi)
    assert torch.all(per[b.slices["U"]] == TWO_PI) and torch.all(per[b.slices["V"]] == TWO_PI)


# ---------------------------------------------------------------------------- bad input
def test_bad_inputs_raise():
    for bad in (1, 0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n"):
            ClementsMesh(bad)
        with pytest.raises(ValueError, match="n"):
            ReckMesh(bad)
    m = ClementsMesh(3)
    with pytest.raises(ValueError, match="phases"):
        m.unitary(torch.zeros(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="kappa"):
        m.unitary(torch.zeros(m.num_phases), kappa=1.2)
    with pytest.raises(ValueError, match="kappa"):
        m.unitary(torch.zeros(m.num_phases), kappa=torch.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="loss_db"):
        m.unitary(torch.zeros(m.num_phases), loss_db=-1.0)
    with pytest.raises(ValueError, match="x"):
        m.apply(torch.zeros(m.num_phases), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="dtype"):
        m.unitary(torch.zeros(m.num_phases), dtype=torch.float64)
    with pytest.raises(ValueError, match="square"):
        decompose(np.eye(3)[:2])
    with pytest.raises(ValueError, match="not unitary"):
        decompose(2 * np.eye(3))
    with pytest.raises(ValueError, match="mesh"):
        decompose(np.eye(3), "triangle")
    with pytest.raises(ValueError, match="2×2"):
        decompose(np.eye(1))
    b = SVDBlock(3, 2)
    with pytest.raises(ValueError, match="W"):
        b.from_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="keys"):
        b.matrix(torch.zeros(b.num_phases), kappa={"X": 0.5})
    with pytest.raises(ValueError, match="n_in"):
        SVDBlock(3, 0)
    assert Mesh(1).num_mzis == 0  # the bare one-mode phase screen of an SVD side is allowed


def test_wrap_kernel_equals_torch_formula_bit_for_bit():
    """``circuits._fused.wrap`` (the C pass ``estimators.wrap`` uses for float64 CPU rows)
    gives the torch formula's bits: remainder, r >= p → r − p, entries with a period that is
    NaN, 0, negative or infinite kept; edge values (±0, ±tiny, ±2π, NaN, inf), both ends of
    the kernel's branch-free range (−p, 2p) and their neighbours, values many turns out,
    strided rows and random periods."""
    from photonic_sim.circuits import _fused

    if _fused.realise_kernel() is None:
        pytest.skip("phase kernels unavailable (no C compiler or PHOTONIC_SIM_NO_FUSED)")

    def formula(x, periods):
        valid = torch.isfinite(periods) & (periods > 0)
        safe = torch.where(valid, periods, torch.ones_like(periods))
        r = torch.remainder(x, safe)
        r = torch.where(r >= safe, r - safe, r)
        return torch.where(valid, r, x)

    g = torch.Generator().manual_seed(0)
    per = torch.rand(300, dtype=torch.float64, generator=g) * 7 + 0.01
    per[:3] = 2 * math.pi
    per[3:8] = torch.tensor([math.pi, float("nan"), 0.0, -1.0, float("inf")], dtype=torch.float64)
    for scale in (0.1, 1.0, 50.0, 1e6):
        x = (torch.rand(9, 300, dtype=torch.float64, generator=g) * 2 - 0.5) * 6.3 * scale
        x[0, :8] = torch.tensor([-1e-300, 2 * math.pi, -0.0, float("nan"), float("inf"), -2 * math.pi, math.pi,
                                 -1e-17], dtype=torch.float64)
        zero = torch.zeros((), dtype=torch.float64)  # the kernel's branch-free range (−p, 2p): its ends
        x[1], x[2] = -per, 2 * per
        x[3], x[4] = torch.nextafter(-per, zero), torch.nextafter(2 * per, zero)
        x[5], x[6] = torch.nextafter(-per, -2 * per), torch.nextafter(2 * per, 3 * per)
        for rows in (x, x[::2]):
            a, b = formula(rows, per), _fused.wrap(rows, per)
            assert torch.equal(a.isnan(), b.isnan()) and torch.equal(torch.signbit(a), torch.signbit(b))
            assert torch.equal(a.nan_to_num(), b.nan_to_num())
