"""Stein / finite-difference / autograd derivative estimators against analytic derivatives."""

import math

import numpy as np
import pytest
import torch

from photonic_sim.training.stein import (
    Autograd,
    FiniteDifference,
    MonteCarloStein,
    SparseGridStein,
)

F64 = torch.float64


class Counting:
    """Wraps f; records how many calls and how many rows were evaluated."""

    def __init__(self, f):
        self.f, self.calls, self.rows = f, 0, 0

    def __call__(self, x):
        self.calls += 1
        self.rows += x.shape[0]
        return self.f(x)


def quadratics(d, p, gen):
    """P quadratics f_p = xᵀA_p x + b_pᵀx + c_p and their σ-smoothed derivatives."""
    a = torch.randn(p, d, d, generator=gen, dtype=F64)
    b = torch.randn(p, d, generator=gen, dtype=F64)
    c = torch.randn(p, generator=gen, dtype=F64)

    def f(x):  # [M, d] -> [P, M]
        return torch.einsum("mi,pij,mj->pm", x, a, x) + b @ x.T + c[:, None]

    def smoothed(x, sigma):
        tr = torch.diagonal(a, dim1=1, dim2=2).sum(-1)
        sym = a + a.transpose(1, 2)
        return {
            "u": f(x) + sigma**2 * tr[:, None],
            "grad": torch.einsum("pij,nj->pni", sym, x) + b[:, None, :],
            "diag2": 2 * torch.diagonal(a, dim1=1, dim2=2)[:, None, :].expand(p, x.shape[0], d),
            "lap": 2 * tr[:, None].expand(p, x.shape[0]),
        }

    return f, smoothed


def sine_sum(a):
    """f = Σ_j sin(a_j x_j) and its Gaussian smoothing (E sin(a(x+δ)) = sin(ax) e^{−a²σ²/2})."""

    def f(x):
        return torch.sin(x * a).sum(-1)

    def smoothed(x, sigma):
        damp = torch.exp(-0.5 * (a * sigma) ** 2)
        s, co = torch.sin(x * a) * damp, torch.cos(x * a) * damp
        return {"u": s.sum(-1), "grad": a * co, "diag2": -(a**2) * s, "lap": (-(a**2) * s).sum(-1)}

    return f, smoothed


def max_rel_err(est, ref, keys=("u", "grad", "diag2", "lap")):
    return {
        k: ((est[k] - ref[k]).abs().max() / ref[k].abs().max().clamp_min(1)).item() for k in keys
    }


def test_sparse_grid_exact_on_quadratics_d20_batched(gen):
    d, sigma = 20, 0.3
    f, smoothed = quadratics(d, 3, gen)
    x = torch.randn(7, d, generator=gen, dtype=F64)
    fc = Counting(f)
    est = SparseGridStein(d, sigma).estimate(fc, x, need=("u", "grad", "diag2", "lap"))
    assert fc.calls == 1
    assert est["u"].shape == (3, 7) and est["grad"].shape == (3, 7, d)
    for k, err in max_rel_err(est, smoothed(x, sigma)).items():
        assert err < 1e-8, (k, err)


def test_sparse_grid_exact_on_cubic(gen):
    """Level 3 differentiates cubics exactly: E[(x+δ)³] = x³ + 3σ²x."""
    d, sigma = 6, 0.2
    c = torch.randn(d, generator=gen, dtype=F64)
    x = torch.randn(5, d, generator=gen, dtype=F64)
    est = SparseGridStein(d, sigma).estimate(
        lambda y: (c * y**3).sum(-1), x, need=("grad", "diag2")
    )
    torch.testing.assert_close(est["grad"], c * (3 * x**2 + 3 * sigma**2), rtol=0, atol=1e-9)
    torch.testing.assert_close(est["diag2"], c * 6 * x, rtol=0, atol=1e-9)


def test_sparse_grid_on_sines_d20(gen):
    """Separable f = Σ_k g_k(x_k), g_k = sin(a_k x_k).  Writing the Smolyak rule as Σ ⊗Δ_i
    (Δ_i = Q_i − Q_{i−1}; Q_1, Q_2, Q_3 have 1, 2, 3 Gauss–Hermite points) gives closed forms,
    with S_k(h) = g_k(x+h) + g_k(x−h) − 2g_k(x) and h₃ = √3σ:
        u      = Σ_k Q_3[g_k(x+σz)]                       (3-point rule per axis)
        ∂_j u  = (g_j(x+h₃) − g_j(x−h₃)) / (2h₃)
        ∂²_jj u = S_j(h₃)/(3σ²) + Σ_{k≠j} (S_k(σ) − S_k(h₃)/3) / (2σ²)
    (the second term is a cross-dimension bias: A[(z_j²−1) h(z_k)] = (Q_2 − Q_3) h).  Against
    the analytic smoothing the errors are the leading Taylor terms: value a⁶σ⁶/120, gradient
    a⁵σ⁴/20, ∂²_jj: a_j⁴σ²/4 + Σ_{k≠j} a_k⁴σ²/12 (tested as bounds with a 10% margin)."""
    d, sigma = 20, 0.1
    a = torch.linspace(0.5, 2.0, d, dtype=F64)
    f, smoothed = sine_sum(a)
    x = torch.rand(9, d, generator=gen, dtype=F64) * 2 - 1
    est = SparseGridStein(d, sigma).estimate(f, x, need=("u", "grad", "diag2", "lap"))
    h3 = math.sqrt(3) * sigma
    g0 = torch.sin(a * x)

    def s2(h):
        return torch.sin(a * (x + h)) + torch.sin(a * (x - h)) - 2 * g0

    cross = (s2(sigma) - s2(h3) / 3) / (2 * sigma**2)
    closed = {
        "u": (g0 + s2(h3) / 6).sum(-1),
        "grad": (torch.sin(a * (x + h3)) - torch.sin(a * (x - h3))) / (2 * h3),
        "diag2": s2(h3) / (3 * sigma**2) + cross.sum(-1, keepdim=True) - cross,
    }
    for k, v in closed.items():
        torch.testing.assert_close(est[k], v, rtol=0, atol=1e-10)
    ref = smoothed(x, sigma)
    a4 = a**4 * sigma**2
    bounds = {
        "u": ((a * sigma) ** 6 / 120).sum(),
        "grad": a**5 * sigma**4 / 20,
        "diag2": a4 / 4 + (a4.sum() - a4) / 12,
    }
    for k, bound in bounds.items():
        assert torch.all((est[k] - ref[k]).abs() <= 1.1 * bound + 1e-12), k


def test_sparse_grid_on_coupled_cosine_d20(gen):
    """f = cos(aᵀx), ‖a‖ = 1, couples all dims: u_σ = cos(aᵀx) e^{−σ²/2}, ∂_j u_σ = −a_j
    sin(aᵀx) e^{−σ²/2}, Δu_σ = −u_σ.  Level 3 is exact to degree 5, so the errors scale as
    σ⁶ (value), σ⁴ (gradient) and σ² (second derivatives): halving σ divides them by ≈ 64,
    16 and 4.  (The σ² Laplacian bias grows with d: level-3 nodes have at most two non-zero
    coordinates, so degree-6 moments over three distinct dims are missed.)"""
    d = 20
    a = torch.randn(d, generator=gen, dtype=F64)
    a = a / a.norm()
    x = torch.randn(6, d, generator=gen, dtype=F64)
    errs = []
    for sigma in (0.1, 0.05):
        damp = math.exp(-0.5 * sigma**2)
        ref = {
            "u": torch.cos(x @ a) * damp,
            "grad": -torch.sin(x @ a)[:, None] * a * damp,
            "lap": -torch.cos(x @ a) * damp,
        }
        est = SparseGridStein(d, sigma).estimate(lambda y: torch.cos(y @ a), x, need=tuple(ref))
        errs.append({k: (est[k] - ref[k]).abs().max().item() for k in ref})
    assert errs[0]["u"] < 1e-7 and errs[0]["grad"] < 2e-5 and errs[0]["lap"] < 0.05
    assert 40 < errs[0]["u"] / errs[1]["u"] < 90
    assert 13 < errs[0]["grad"] / errs[1]["grad"] < 19
    assert 3.5 < errs[0]["lap"] / errs[1]["lap"] < 4.5


def test_dims_restricts_derivatives_only(gen):
    d, sigma = 21, 0.1
    f, smoothed = quadratics(d, 1, gen)
    x = torch.rand(4, d, generator=gen, dtype=F64)
    dims = list(range(20))
    sg = SparseGridStein(d, sigma)
    est = sg.estimate(f, x, need=("u", "grad", "diag2", "lap"), dims=dims)
    ref = smoothed(x, sigma)
    torch.testing.assert_close(est["u"], ref["u"], rtol=0, atol=1e-9)  # smoothing in all 21 dims
    torch.testing.assert_close(est["grad"], ref["grad"][..., dims], rtol=0, atol=1e-9)
    torch.testing.assert_close(est["lap"], ref["diag2"][..., dims].sum(-1), rtol=0, atol=1e-9)
    fd = FiniteDifference(d, 1e-3)
    fc = Counting(f)
    est_fd = fd.estimate(fc, x, dims=dims)
    assert fc.rows == fd.num_evaluations(4, dims=dims) == 4 * 41
    # smoothing does not change the second derivatives of a quadratic, so FD must agree
    torch.testing.assert_close(est_fd["lap"], ref["diag2"][..., dims].sum(-1), rtol=0, atol=1e-6)
    assert est_fd["grad"].shape == (1, 4, 20)


def test_monte_carlo_error_shrinks_like_inverse_sqrt_n():
    d, sigma, n_pts, seeds = 5, 0.2, 4, 48
    a = torch.tensor([0.7, 1.0, 1.3, 1.6, 2.0], dtype=F64)
    f, smoothed = sine_sum(a)
    x = torch.rand(n_pts, d, generator=torch.Generator().manual_seed(7), dtype=F64)
    ref = smoothed(x, sigma)
    ns = [16, 64, 256, 1024]
    rms = {"grad": [], "lap": []}
    for n in ns:
        est = MonteCarloStein(d, sigma, n, torch.Generator().manual_seed(n))
        errs = {k: [] for k in rms}
        for _ in range(seeds):
            e = est.estimate(f, x, need=("grad", "lap"))
            for k in rms:
                errs[k].append(((e[k] - ref[k]) ** 2).mean().item())
        for k in rms:
            rms[k].append(math.sqrt(np.mean(errs[k])))
    for k, v in rms.items():
        slope = np.polyfit(np.log(ns), np.log(v), 1)[0]
        assert -0.65 <= slope <= -0.35, (k, slope, v)


def test_monte_carlo_reproducible_and_unbiased_on_quadratic(gen):
    d, sigma = 4, 0.3
    f, smoothed = quadratics(d, 1, gen)
    x = torch.randn(3, d, generator=gen, dtype=F64)
    e1 = MonteCarloStein(d, sigma, 64, torch.Generator().manual_seed(5)).estimate(f, x)
    e2 = MonteCarloStein(d, sigma, 64, torch.Generator().manual_seed(5)).estimate(f, x)
    for k in e1:
        assert torch.equal(e1[k], e2[k])
    # antithetic gradient of a quadratic: δ·(f(x+δ) − f(x−δ)) is linear-in-δ times δ, so the
    # estimate is exact up to the sample covariance; with many draws it approaches the truth
    big = MonteCarloStein(d, sigma, 200_000, torch.Generator().manual_seed(6)).estimate(f, x)
    ref = smoothed(x, sigma)
    assert (big["grad"] - ref["grad"]).abs().max() < 0.05 * ref["grad"].abs().max()


def test_finite_difference_second_order(gen):
    d = 6
    a = torch.linspace(0.5, 2.0, d, dtype=F64)
    f, smoothed = sine_sum(a)
    x = torch.rand(5, d, generator=gen, dtype=F64)
    exact = smoothed(x, 0.0)
    errs = []
    for h in (0.04, 0.02):
        est = FiniteDifference(d, h).estimate(f, x, need=("u", "grad", "lap"))
        torch.testing.assert_close(est["u"], exact["u"], rtol=0, atol=1e-15)
        errs.append([(est[k] - exact[k]).abs().max().item() for k in ("grad", "lap")])
    ratio = np.array(errs[0]) / np.array(errs[1])
    assert np.all((ratio > 3.6) & (ratio < 4.4)), ratio  # O(h²)
    # leading error terms: h²/6·f''' for the gradient, h²/12·f'''' per dim for the Laplacian
    assert errs[1][0] < 0.02**2 / 6 * float(a.max() ** 3) * 1.01


def test_finite_difference_per_coordinate_steps_have_their_own_exact_error(gen):
    """One step per coordinate: on f = sum_j x_j^4 the central differences' errors are known in
    closed form, h_j^2 * 4 x_j in d_j u (h^2/6 f''') and 2 h_j^2 in d2_jj u (h^2/12 f''''), so
    each coordinate's error follows its own step (float64, to 1e-9); a list of equal steps gives
    the single step's estimate; a wrong count, a step <= 0 or a non-number is refused."""
    d = 3
    h = torch.tensor([0.05, 0.01, 0.002], dtype=F64)
    x = torch.rand(7, d, generator=gen, dtype=F64) * 2 - 1

    def f(p):
        return (p**4).sum(-1)

    est = FiniteDifference(d, h.tolist()).estimate(f, x, need=("u", "grad", "diag2", "lap"))
    torch.testing.assert_close(est["u"], f(x), rtol=0, atol=0)
    torch.testing.assert_close(est["grad"], 4 * x**3 + h**2 * 4 * x, rtol=0, atol=1e-9)
    torch.testing.assert_close(est["diag2"], 12 * x**2 + 2 * h**2, rtol=0, atol=1e-9)
    torch.testing.assert_close(est["lap"], (12 * x**2 + 2 * h**2).sum(-1), rtol=0, atol=1e-9)
    # dims: only the coordinates asked for, each with its own step
    part = FiniteDifference(d, h.tolist()).estimate(f, x, need=("grad",), dims=[2, 0])
    torch.testing.assert_close(part["grad"], est["grad"][:, [2, 0]], rtol=0, atol=1e-12)
    one, same = (FiniteDifference(d, hh).estimate(f, x) for hh in (0.01, [0.01] * d))
    for key in one:
        torch.testing.assert_close(one[key], same[key], rtol=1e-14, atol=1e-12)
    for bad in ([0.01, 0.01], [0.01, 0.0, 0.01], [0.01, float("nan"), 0.01], [True, 0.01, 0.01], "0.01"):
        with pytest.raises(ValueError, match="h must be one finite step"):
            FiniteDifference(d, bad)


def test_autograd_exact_batched_and_differentiable(gen):
    d = 5
    a = torch.linspace(0.5, 2.0, d, dtype=F64)
    scale = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    base, smoothed = sine_sum(a)
    x = torch.rand(6, d, generator=gen, dtype=F64)

    def f(y):  # leading batch of 2 "phase settings"
        return scale[:, None] * base(y)[None, :]

    est = Autograd().estimate(f, x, need=("u", "grad", "diag2", "lap"))
    exact = smoothed(x, 0.0)
    for k in ("u", "grad", "diag2", "lap"):
        torch.testing.assert_close(est[k][1], 2 * exact[k], rtol=0, atol=1e-12)
    (g,) = torch.autograd.grad(est["lap"].sum(), scale)
    torch.testing.assert_close(g, exact["lap"].sum().expand(2), rtol=0, atol=1e-12)


def test_stein_differentiable_in_parameters(gen):
    d, sigma = 3, 0.2
    w = torch.tensor(1.5, dtype=F64, requires_grad=True)
    x = torch.randn(4, d, generator=gen, dtype=F64)
    est = SparseGridStein(d, sigma).estimate(lambda y: w * (y**2).sum(-1), x, need=("lap",))
    (g,) = torch.autograd.grad(est["lap"].sum(), w)
    assert abs(g.item() - 4 * 2 * d) < 1e-9  # lap = 2d·w at each of 4 points


def test_num_evaluations_match_rows_evaluated(gen):
    sg = SparseGridStein(21, 0.1)
    assert sg.num_evaluations(100) == 100 * 925 == 92_500  # the symmetric grid's distinct points
    x = torch.rand(100, 21, generator=gen, dtype=F64)
    cases = [
        (sg, ("u", "grad", "lap")),
        (sg, ("u", "grad")),
        (MonteCarloStein(21, 0.1, 32, gen), ("lap",)),
        (FiniteDifference(21, 1e-3), ("u", "grad", "lap")),
        (FiniteDifference(21, 1e-3), ("u",)),
        (Autograd(), ("u", "grad", "lap")),
    ]
    expected = [92_500, 92_500, 100 * 65, 100 * 43, 100, 100]
    for (est, need), exp in zip(cases, expected):
        fc = Counting(lambda y: y.sum(-1))
        est.estimate(fc, x, need=need)
        assert fc.calls == 1 and fc.rows == est.num_evaluations(100, need=need) == exp


class _FullPairs(SparseGridStein):
    """The same grid evaluated the long way: x, then x + δ_i and x − δ_i for every node."""

    def _mirror(self):
        return None


@pytest.mark.parametrize("d, level, sigma", [(21, 3, 0.1), (2, 4, [0.02, 0.07]), (5, 2, 0.3)])
def test_sparse_grid_evaluates_each_distinct_point_once_with_the_same_bits(gen, d, level, sigma):
    """The level-l grid is closed under negation and holds the origin, so x and x ± δ_i are the
    grid's K points x + δ_i: f is called on K·N rows instead of (2K + 1)·N, and every estimate
    equals the one from all 2K + 1 rows to the last bit (f a non-polynomial map with a leading
    batch of settings, float64)."""
    sg, full = SparseGridStein(d, sigma, level), _FullPairs(d, sigma, level)
    k = sg._z.shape[0]
    a = torch.linspace(0.3, 1.7, d, dtype=F64)

    def f(y):  # row by row (elementwise ops only: a BLAS product may round a row by its position)
        t, r = y[:, 0] * a[0], y[:, 0] * y[:, 0]
        for j in range(1, d):
            t, r = t + y[:, j] * a[j], r + y[:, j] * y[:, j]
        return torch.stack([torch.sin(t) * torch.exp(-r), torch.cos(t + 0.5)])

    x = torch.rand(9, d, generator=gen, dtype=F64) * 2 - 1
    for need in (("u", "grad", "diag2", "lap"), ("u", "grad")):
        short, long_ = Counting(f), Counting(f)
        got, ref = sg.estimate(short, x, need=need), full.estimate(long_, x, need=need)
        assert short.rows == k * 9 == sg.num_evaluations(9, need=need)
        assert long_.rows == (2 * k + ("lap" in need)) * 9 == full.num_evaluations(9, need=need)
        for key in need:
            assert torch.equal(got[key], ref[key]), key


def test_bad_inputs(gen):
    sg = SparseGridStein(3, 0.1)
    x = torch.rand(4, 3, dtype=F64)
    with pytest.raises(ValueError, match="need"):
        sg.estimate(lambda y: y.sum(-1), x, need=("hessian",))
    with pytest.raises(ValueError, match="x must"):
        sg.estimate(lambda y: y.sum(-1), torch.rand(4, 2, dtype=F64))
    with pytest.raises(ValueError, match="f must"):
        sg.estimate(lambda y: y, x)
    with pytest.raises(ValueError, match="dims"):
        sg.estimate(lambda y: y.sum(-1), x, dims=[3])
    with pytest.raises(ValueError, match="sigma"):
        SparseGridStein(3, 0.0)
    with pytest.raises(ValueError, match="h must"):
        FiniteDifference(3, -1.0)
    with pytest.raises(ValueError, match="n must"):
        MonteCarloStein(3, 0.1, 0, gen)


def _aniso_poly(p):
    """f = x⁴y + x²y³ + y⁵ (total degree 5) at p [M, 2]."""
    x, y = p[:, 0], p[:, 1]
    return x**4 * y + x**2 * y**3 + y**5


def _aniso_smoothed(p, sx, sy):
    """E f(x + δx, y + δy), δx ~ N(0, sx²), δy ~ N(0, sy²) independent, in closed form from the
    Gaussian moments E(x+δ)² = x² + s², E(x+δ)³ = x³ + 3xs², E(x+δ)⁴ = x⁴ + 6x²s² + 3s⁴,
    E(y+δ)⁵ = y⁵ + 10y³s² + 15ys⁴."""
    x, y = p[:, 0], p[:, 1]
    return ((x**4 + 6 * x**2 * sx**2 + 3 * sx**4) * y + (x**2 + sx**2) * (y**3 + 3 * y * sy**2)
            + y**5 + 10 * y**3 * sy**2 + 15 * y * sy**4)


def _derivs(fn, x):
    """u, ∇u and ∂²u/∂x_j² of a scalar field fn at x [N, 2] by autograd (exact for polynomials)."""
    xg = x.clone().requires_grad_(True)
    u = fn(xg)
    (g,) = torch.autograd.grad(u.sum(), xg, create_graph=True)
    d2 = torch.stack([torch.autograd.grad(g[:, j].sum(), xg, retain_graph=True)[0][:, j] for j in range(2)], -1)
    return {"u": u.detach(), "grad": g.detach(), "diag2": d2.detach()}


ANISO_X = torch.tensor([[0.3, -0.7], [-0.5, 0.2], [0.9, 0.4]], dtype=F64)


def test_anisotropic_sparse_grid_equals_the_smoothed_polynomial_in_closed_form():
    """Widths (σx, σy) = (0.05, 0.4): the level-4 grid (exact to degree 7 / 6 / 5 in u / ∇ / ∂²)
    gives the derivatives of the anisotropically smoothed quintic to rounding; an isotropic
    width of either σ is visibly wrong."""
    widths = torch.tensor([0.05, 0.4], dtype=F64)
    est = SparseGridStein(2, widths, level=4)
    assert torch.equal(est.sigma, widths)
    got = est.estimate(_aniso_poly, ANISO_X, need=("u", "grad", "diag2"))
    ref = _derivs(lambda p: _aniso_smoothed(p, 0.05, 0.4), ANISO_X)
    for key in ("u", "grad", "diag2"):
        torch.testing.assert_close(got[key], ref[key], rtol=1e-11, atol=1e-12)
    for s in (0.05, 0.4):  # an isotropic width is another function
        iso = SparseGridStein(2, s, level=4).estimate(_aniso_poly, ANISO_X, need=("grad", "diag2"))
        assert float((iso["diag2"] - ref["diag2"]).abs().max()) > 1e-2


def test_anisotropic_monte_carlo_is_unbiased_for_the_smoothed_polynomial():
    """20 independent estimates of 20 000 draws each at widths (0.05, 0.4): their mean is within
    5 standard errors of the closed form."""
    est = MonteCarloStein(2, [0.05, 0.4], 20_000, torch.Generator().manual_seed(3))
    runs = [est.estimate(_aniso_poly, ANISO_X, need=("u", "grad", "diag2")) for _ in range(20)]
    ref = _derivs(lambda p: _aniso_smoothed(p, 0.05, 0.4), ANISO_X)
    for key in ("u", "grad", "diag2"):
        vals = torch.stack([r[key] for r in runs])
        stderr = vals.std(0) / math.sqrt(len(runs))
        assert bool(((vals.mean(0) - ref[key]).abs() < 5 * stderr).all()), key


def test_anisotropic_widths_shrink_to_the_exact_derivatives():
    """Widths (0.3, 0.6)·s, s = 1, 0.1, 0.01: the smoothing bias is O(s²), so the estimates
    tend to the derivatives of f itself, 100× closer per decade of s."""
    exact = _derivs(_aniso_poly, ANISO_X)
    errors = []
    for s in (1.0, 0.1, 0.01):
        est = SparseGridStein(2, [0.3 * s, 0.6 * s], level=4)
        got = est.estimate(_aniso_poly, ANISO_X, need=("grad", "diag2"))
        errors.append(max(float((got[k] - exact[k]).abs().max()) for k in ("grad", "diag2")))
    assert errors[0] > 0.1
    assert errors[1] < 0.02 * errors[0] and errors[2] < 0.02 * errors[1] and errors[2] < 2e-3


def test_anisotropic_width_refused_unless_one_positive_width_per_coordinate():
    for bad in ([0.1, 0.2, 0.3], [0.1, 0.0], [0.1, float("nan")], -0.1):
        with pytest.raises(ValueError, match="sigma"):
            SparseGridStein(2, bad)
