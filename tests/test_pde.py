"""PINN problem library: transforms, derivative bookkeeping, residuals and references."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.integrate import solve_ivp

from photonic_sim.training.pde import HJB, BlackScholes, Burgers, Darcy, cole_hopf
from photonic_sim.training.stein import Autograd, SparseGridStein

F64 = torch.float64
PDES = [HJB(), BlackScholes(), Burgers(), Darcy()]
IDS = ["hjb", "black_scholes", "burgers", "darcy"]


def smooth_net(dim, gen, p=None):
    """A small tanh network [M, dim] -> [M] (or [P, M] with a leading batch of P weights)."""
    shape = (dim, 4) if p is None else (p, dim, 4)
    w = torch.randn(*shape, generator=gen, dtype=F64)
    if p is None:
        return lambda z: torch.tanh(z @ w).sum(-1) + 0.3
    return lambda z: torch.tanh(torch.einsum("md,pdk->pmk", z, w)).sum(-1) + 0.3


@pytest.mark.parametrize("pde", PDES, ids=IDS)
def test_u_derivatives_match_autograd_of_transform(pde, gen):
    """Analytic chain rule through the transform vs autograd of x ↦ transform(x, NN(x))."""
    x = pde.sample_interior(40, gen)
    net = smooth_net(pde.dim, gen, p=3)
    got = pde.u_derivatives(x, Autograd().estimate(net, x, need=pde.need))
    ref = Autograd().estimate(lambda z: pde.transform(z, net(z)), x, need=("u", "grad", "diag2"))
    torch.testing.assert_close(got["u"], ref["u"], rtol=0, atol=1e-12)
    torch.testing.assert_close(got["grad"], ref["grad"], rtol=1e-10, atol=1e-10)
    lap = ref["diag2"][..., list(pde.space_dims)].sum(-1)
    torch.testing.assert_close(got["lap"], lap, rtol=1e-10, atol=1e-10)
    # leading batch: element p equals the unbatched computation
    single = pde.u_derivatives(
        x, {k: v[1] for k, v in Autograd().estimate(net, x, need=pde.need).items()}
    )
    torch.testing.assert_close(single["lap"], got["lap"][1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("pde", PDES, ids=IDS)
def test_sampling_and_metric(pde):
    x = pde.sample_interior(500, torch.Generator().manual_seed(3))
    y = pde.sample_interior(500, torch.Generator().manual_seed(3))
    assert torch.equal(x, y) and x.shape == (500, pde.dim)
    lo, hi = torch.tensor(pde.lower, dtype=F64), torch.tensor(pde.upper, dtype=F64)
    assert torch.all((x >= lo) & (x <= hi))
    assert x.std(0).min() > 0.2 * (hi - lo).min()  # spread over the box
    assert pde.test_points().shape == (10000, pde.dim)
    ref = pde.reference(x)
    assert pde.relative_l2(ref, x).item() == 0.0
    assert abs(pde.relative_l2(torch.stack([1.01 * ref, ref]), x)[0].item() - 0.01) < 1e-12
    with pytest.raises(ValueError, match="x must"):
        pde.transform(torch.zeros(3, pde.dim + 1, dtype=F64), torch.zeros(3, dtype=F64))
    with pytest.raises(ValueError, match="n must"):
        pde.sample_interior(0, torch.Generator())


# ---------------------------------------------------------------- HJB
def test_hjb_exact_solution_residual_zero(gen):
    pde = HJB()
    x = pde.sample_interior(200, gen)
    exact = {
        "u": pde.reference(x),
        "grad": torch.cat([torch.ones(200, 20, dtype=F64), -torch.ones(200, 1, dtype=F64)], 1),
        "lap": torch.zeros(200, dtype=F64),
    }
    assert pde.residual(x, exact).abs().max() < 1e-12
    # exact u corresponds to NN ≡ 1; NN ≡ 0 is wrong (u_t = 0 → residual 1)
    ones = {"u": torch.ones(200, dtype=F64), "grad": torch.zeros(200, 21, dtype=F64),
            "diag2": torch.zeros(200, 21, dtype=F64)}
    torch.testing.assert_close(pde.transform(x, ones["u"]), pde.reference(x), rtol=0, atol=1e-12)
    assert pde.nn_residual(x, ones).abs().max() < 1e-12
    zeros = {k: 0 * v for k, v in ones.items()}
    torch.testing.assert_close(pde.nn_residual(x, zeros), torch.ones(200, dtype=F64))


def test_hjb_terminal_condition_and_sparse_grid_pipeline(gen):
    pde = HJB()
    x = pde.sample_interior(30, gen)
    x[:, -1] = 1.0
    out = torch.randn(2, 30, generator=gen, dtype=F64) * 100
    assert torch.equal(pde.transform(x, out), x[:, :-1].sum(-1).expand(2, 30))
    # SG-Stein on a quadratic network: smoothed derivatives exact, so the residual of
    # u = Σx + (1−t)·NN_σ matches the one built from the analytic smoothed derivatives
    x = pde.sample_interior(30, gen)
    q = torch.randn(21, generator=gen, dtype=F64) * 0.1

    def net(z):
        return 1 + (q * z**2).sum(-1)

    sigma = 0.1
    est = SparseGridStein(21, sigma).estimate(net, x, need=pde.need)
    exact = {"u": net(x) + sigma**2 * q.sum(), "grad": 2 * q * x, "diag2": (2 * q).expand(30, 21)}
    torch.testing.assert_close(
        pde.nn_residual(x, est), pde.nn_residual(x, exact), rtol=0, atol=1e-9
    )


# ---------------------------------------------------------------- Black–Scholes
def scipy_call(s_dollars, tau, vol=0.2, r=0.05, k=100.0):
    d1 = (np.log(s_dollars / k) + (r + vol**2 / 2) * tau) / (vol * np.sqrt(tau))
    d2 = d1 - vol * np.sqrt(tau)
    return s_dollars * scipy.stats.norm.cdf(d1) - k * np.exp(-r * tau) * scipy.stats.norm.cdf(d2)


def test_black_scholes_reference_matches_scipy_and_solves_pde(gen):
    pde = BlackScholes()
    x = pde.sample_interior(300, gen)
    x[:, 0] = 0.02 + 0.98 * x[:, 0]
    x[:, 1] = 0.95 * x[:, 1]  # t ≤ 0.95: τ ≥ 0.05
    price = pde.reference(x) * 200
    expected = scipy_call(200 * x[:, 0].numpy(), 1 - x[:, 1].numpy())
    np.testing.assert_allclose(price.numpy(), expected, rtol=1e-10, atol=1e-10)
    # autograd on the analytic formula: the residual vanishes
    d = Autograd().estimate(pde.reference, x, need=("u", "grad", "diag2"))
    r = pde.residual(x, {"u": d["u"], "grad": d["grad"], "lap": d["diag2"][..., 0]})
    assert r.abs().max() < 1e-10
    # a perturbed second derivative does not satisfy it (the check can fail)
    wrong = {"u": d["u"], "grad": d["grad"], "lap": 1.1 * d["diag2"][..., 0]}
    assert pde.residual(x, wrong).abs().max() > 1e-3


def test_black_scholes_transform_conditions_exact(gen):
    pde = BlackScholes()
    s = torch.rand(200, generator=gen, dtype=F64)
    s[:5] = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=F64)
    out = torch.randn(3, 200, generator=gen, dtype=F64) * 50
    terminal = torch.stack([s, torch.ones_like(s)], 1)
    assert torch.equal(pde.transform(terminal, out), (s - 0.5).clamp_min(0).expand(3, 200))
    t = torch.rand(200, generator=gen, dtype=F64)
    boundary = torch.stack([torch.zeros_like(t), t], 1)
    assert torch.equal(pde.transform(boundary, out), torch.zeros(3, 200, dtype=F64))
    # the smoothed-payoff base alone is already close: the network learns a small correction
    x = pde.test_points(2000)
    base = pde.transform(x, torch.zeros(2000, dtype=F64))
    corr = (pde.reference(x) - base) / ((1 - x[:, 1]) * x[:, 0])
    assert corr.abs().max() < 0.1


# ---------------------------------------------------------------- Burgers
def test_burgers_transform_conditions(gen):
    pde = Burgers()
    out = torch.randn(2, 100, generator=gen, dtype=F64) * 100
    xs = torch.rand(100, generator=gen, dtype=F64) * 2 - 1
    t = torch.rand(100, generator=gen, dtype=F64)
    init = pde.transform(torch.stack([xs, torch.zeros_like(xs)], 1), out)
    assert torch.equal(init, (-torch.sin(math.pi * xs)).expand(2, 100))
    for edge in (-1.0, 1.0):
        u = pde.transform(torch.stack([torch.full_like(t, edge), t], 1), out)
        assert u.abs().max() < 2e-16  # sin(±π) in floating point


def test_burgers_reference_basdevant_slope():
    """Maximal slope at x = 0: |u_x| = 152.00516 at t = 1.6037/π (Basdevant et al., Comput.
    Fluids 14 (1986) 23–41), from a central difference of the Cole–Hopf reference."""
    nu, h, t = 0.01 / math.pi, 1e-6, 1.6037 / math.pi
    slope = (cole_hopf(h, t, nu) - cole_hopf(-h, t, nu)) / (2 * h)
    assert abs(slope + 152.00516) < 1e-5
    # it is the maximum in t (slope is flat there and smaller a little earlier / later)
    for dt in (-0.01, 0.01):
        assert (cole_hopf(h, t + dt, nu) - cole_hopf(-h, t + dt, nu)) / (2 * h) > slope + 0.1


def test_burgers_reference_symmetry_and_initial_profile(gen):
    pde = Burgers()
    x = pde.sample_interior(300, gen)
    mirrored = torch.stack([-x[:, 0], x[:, 1]], 1)
    torch.testing.assert_close(pde.reference(mirrored), -pde.reference(x), rtol=0, atol=1e-12)
    zero_x = torch.stack([torch.zeros(300, dtype=F64), x[:, 1]], 1)
    assert pde.reference(zero_x).abs().max() < 1e-12
    for t0 in (0.0, 1e-8):
        pts = torch.stack([x[:, 0], torch.full((300,), t0, dtype=F64)], 1)
        torch.testing.assert_close(
            pde.reference(pts), -torch.sin(math.pi * x[:, 0]), rtol=0, atol=1e-6
        )


def _mol(n, t_end, nu):
    """Independent method-of-lines solution: conservative central differences, n intervals."""
    xs = np.linspace(-1, 1, n + 1)
    h = xs[1] - xs[0]

    def rhs(_, u):
        v = np.concatenate([[0.0], u, [0.0]])
        return -(v[2:] ** 2 - v[:-2] ** 2) / (4 * h) + nu * (v[2:] - 2 * v[1:-1] + v[:-2]) / h**2

    sol = solve_ivp(rhs, (0, t_end), -np.sin(np.pi * xs[1:-1]), rtol=1e-10, atol=1e-12)
    return xs[1:-1], sol.y[:, -1]


def test_burgers_reference_matches_method_of_lines():
    """Second-order MOL errors vs Cole–Hopf fall ~4× per grid doubling (t = 0.25, pre-shock),
    and the Richardson extrapolation of the two MOL solutions agrees with it to 1e-5."""
    nu, t = 0.01 / math.pi, 0.25
    (xc, uc), (xf, uf) = _mol(400, t, nu), _mol(800, t, nu)
    errs = [np.abs(u - cole_hopf(xs, t, nu)).max() for xs, u in ((xc, uc), (xf, uf))]
    assert errs[1] < 3e-4 and 3.5 < errs[0] / errs[1] < 4.5, errs
    extrapolated = (4 * uf[1::2] - uc) / 3  # the fine grid's odd interior nodes are xc
    assert np.abs(extrapolated - cole_hopf(xc, t, nu)).max() < 1e-5


def test_burgers_reference_residual_small(gen):
    """Central differences of the reference at smooth points satisfy the PDE."""
    pde = Burgers()
    x = pde.sample_interior(100, gen)
    x[:, 1] = 0.05 + 0.2 * x[:, 1]  # t ∈ [0.05, 0.25]: before the front steepens
    h = 1e-4
    ex, et = torch.tensor([h, 0.0], dtype=F64), torch.tensor([0.0, h], dtype=F64)
    u = pde.reference(x)
    up, um = pde.reference(x + ex), pde.reference(x - ex)
    derivs = {
        "u": u,
        "grad": torch.stack(
            [(up - um) / (2 * h), (pde.reference(x + et) - pde.reference(x - et)) / (2 * h)], 1
        ),
        "lap": (up + um - 2 * u) / h**2,
    }
    assert pde.residual(x, derivs).abs().max() < 1e-5


# ---------------------------------------------------------------- Darcy
def poisson_series(x, y, c=1.0, m_max=4001):
    """Exact solution of −Δu = 1/c on the unit square (zero boundary): x(1−x)/2 minus the
    harmonic Fourier sine series Σ_{m odd} 4/(π³m³) sin(mπx) cosh(mπ(y−½))/cosh(mπ/2)."""
    m = np.arange(1, m_max + 1, 2)[:, None]
    a = m * np.pi
    yy = np.abs(y - 0.5)
    ratio = (np.exp(a * (yy - 0.5)) + np.exp(-a * (yy + 0.5))) / (1 + np.exp(-a))
    return (x * (1 - x) / 2 - (4 / np.pi**3 * np.sin(a * x) / m**3 * ratio).sum(0)) / c


@pytest.mark.parametrize("c", [1.0, 0.1])
def test_darcy_reference_matches_fourier_series(c):
    pde = Darcy(c)
    x = pde.sample_interior(1500, torch.Generator().manual_seed(11))
    exact = poisson_series(x[:, 0].numpy(), x[:, 1].numpy(), c)
    assert pde.relative_l2(torch.as_tensor(exact), x).item() < 2e-6
    centre = pde.reference(torch.tensor([[0.5, 0.5]], dtype=F64)).item()
    assert abs(centre * c - 0.0736713) < 1e-6  # torsion function of the unit square


def test_darcy_transform_zero_on_boundary(gen):
    pde = Darcy()
    r = torch.rand(50, generator=gen, dtype=F64)
    out = torch.randn(2, 50, generator=gen, dtype=F64) * 1e3
    z, o = torch.zeros_like(r), torch.ones_like(r)
    for pts in ([z, r], [o, r], [r, z], [r, o]):
        assert torch.all(pde.transform(torch.stack(pts, 1), out) == 0)
    # exact residual of a known solution: u = xy(x−1)(y−1)·NN with NN ≡ const has
    # Δu = 2c₀[y(y−1) + x(x−1)]; compare with the residual from u_derivatives
    x = pde.sample_interior(50, gen)
    nn = {"u": torch.full((50,), 3.0, dtype=F64), "grad": torch.zeros(50, 2, dtype=F64),
          "diag2": torch.zeros(50, 2, dtype=F64)}
    lap = 6.0 * (x[:, 1] * (x[:, 1] - 1) + x[:, 0] * (x[:, 0] - 1))
    torch.testing.assert_close(pde.nn_residual(x, nn), 1 + lap, rtol=0, atol=1e-14)
