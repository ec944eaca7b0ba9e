"""Random-subspace Gauss–Newton (``zo-gn``, photonic_sim.training.strategies.gauss_newton)
against problems with known answers, and the "residuals" black boxes of the tasks."""
from __future__ import annotations

import math

import pytest
import torch

from photonic_sim.training.strategies import SubspaceGaussNewton, make_strategy
from photonic_sim.training.strategies.gauss_newton import probe_steps


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class Recorder:
    """A residual closure that keeps the rows it was called with."""

    def __init__(self, fn):
        self.fn, self.rows = fn, []

    def __call__(self, rows):
        self.rows.append(rows.clone())
        return self.fn(rows)


def linear_problem(n=30, d=8, seed=3):
    g = gen(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    return a, b, torch.linalg.lstsq(a, b[:, None]).solution[:, 0]


@pytest.mark.parametrize("dist", ["rademacher", "gaussian"])
def test_full_subspace_step_solves_a_linear_least_squares_problem(dist):
    """ρ(θ) = Aθ − b is linear, so with q = d independent probes the sketch is exact and one
    undamped step at SGD lr 1 lands on the least-squares solution (float64, to 1e-9)."""
    a, b, best = linear_problem()
    theta = torch.zeros(8, dtype=torch.float64)
    s = make_strategy("zo-gn", theta, lr=1.0, generator=gen(1), q=8, nnz=None, codes=0, mu=0.5, dist=dist,
                      damping=1e-12, max_step=None)
    loss = s.step(lambda rows: rows @ a.T - b)
    assert loss == pytest.approx(float((b**2).sum()), rel=1e-12)  # Σρ(θ0)² at θ0 = 0
    assert torch.allclose(theta, best, atol=1e-9, rtol=0)


def test_subspace_step_is_the_least_squares_minimiser_within_the_probed_span():
    """q < d: the step is the minimiser of ‖ρ‖² over θ0 + span(probes) (the probes read back
    from the rows the closure received), to 1e-9; the loss does not rise."""
    a, b, _ = linear_problem()
    theta0 = torch.randn(8, generator=gen(5), dtype=torch.float64)
    theta = theta0.clone()
    f = Recorder(lambda rows: rows @ a.T - b)
    s = make_strategy("zo-gn", theta, lr=1.0, generator=gen(2), q=3, nnz=4, codes=0, mu=0.1,
                      damping=1e-12, max_step=None)
    s.step(f)
    (rows,) = f.rows
    assert rows.shape == (4, 8) and torch.equal(rows[0], theta0)
    v = (rows[1:] - rows[0]).T  # [d, q]
    assert int((v != 0).sum(0).max()) == 4  # nnz coordinates per probe
    coef = torch.linalg.lstsq(a @ v, (b - a @ theta0)[:, None]).solution[:, 0]
    assert torch.allclose(theta, theta0 + v @ coef, atol=1e-9, rtol=0)
    assert ((a @ theta - b) ** 2).sum() <= ((a @ theta0 - b) ** 2).sum()


def test_rosenbrock_residuals_converge_to_the_minimum():
    """Nonlinear least squares with a known minimum: ρ = (10(θ₂ − θ₁²), 1 − θ₁), minimum at
    (1, 1). Gauss–Newton from (−1.2, 1) with both coordinates probed each step gets there to
    1e-6 in 30 steps, where the same number of plain RGE + SGD steps does not get within 0.1."""
    def rho(rows):
        return torch.stack([10 * (rows[:, 1] - rows[:, 0] ** 2), 1 - rows[:, 0]], dim=1)

    theta = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    s = make_strategy("zo-gn", theta, lr=1.0, generator=gen(0), q=2, nnz=None, codes=0, mu=1e-4,
                      dist="gaussian", damping=1e-3, max_step=None)
    for _ in range(30):
        s.step(rho)
    assert torch.allclose(theta, torch.ones(2, dtype=torch.float64), atol=1e-6, rtol=0)
    base = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    r = make_strategy("zo-rge", base, lr=1e-3, generator=gen(0), q=2, mu=1e-4)
    for _ in range(30):
        r.step(lambda rows: (rho(rows) ** 2).sum(1))
    assert float((base - 1).abs().max()) > 0.1


def test_max_step_caps_the_largest_phase_change():
    a, b, _ = linear_problem()
    theta = torch.zeros(8, dtype=torch.float64)
    s = make_strategy("zo-gn", theta, lr=1.0, generator=gen(1), q=8, nnz=None, codes=0, mu=0.5,
                      damping=1e-12, max_step=0.05)
    s.step(lambda rows: rows @ a.T - b)
    assert float(theta.abs().max()) == pytest.approx(0.05, rel=1e-12)


def test_probes_are_whole_code_steps_on_the_lattice_and_mu_elsewhere():
    """``codes`` DAC steps where the chip has a lattice, ``mu`` where it has none (NaN / 0)."""
    h = 2 * math.pi / 256
    lattice = torch.tensor([h, h, float("nan"), 0.0], dtype=torch.float64)
    theta = torch.full((4,), 1.0, dtype=torch.float64)
    f = Recorder(lambda rows: rows[:, :1] * 0 + rows.sum(1, keepdim=True))
    s = make_strategy("zo-gn", theta, lr=1.0, generator=gen(0), lattice=lattice, q=6, nnz=None, codes=2,
                      mu=0.01, max_step=None)
    s.step(f)
    v = (f.rows[0][1:] - f.rows[0][0]).abs()
    assert torch.allclose(v[:, :2], torch.full((6, 2), 2 * h, dtype=torch.float64), atol=1e-15, rtol=0)
    assert torch.allclose(v[:, 2:], torch.full((6, 2), 0.01, dtype=torch.float64), atol=1e-15, rtol=0)


def test_probes_do_not_cross_a_period_boundary():
    """A phase just above 0 is probed upward, one just below its period downward (the wrap is
    where the heater's power, and with it crosstalk and the γ error, jumps); ``reflect`` off
    keeps the drawn signs."""
    p = 2 * math.pi
    theta = torch.tensor([0.001, p - 0.001, 3.0, 0.001 + 4 * p], dtype=torch.float64)
    periods = torch.tensor([p, p, p, p], dtype=torch.float64)
    u = torch.tensor([[-1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, 1.0]], dtype=torch.float64)
    step = torch.full((4,), 0.0245, dtype=torch.float64)
    v = probe_steps(theta, u, step, periods, reflect=True)
    assert torch.equal(v.sign(), torch.tensor([[1.0, -1.0, -1.0, 1.0], [1.0, -1.0, 1.0, 1.0]], dtype=torch.float64))
    assert torch.equal(probe_steps(theta, u, step, periods, reflect=False), u * step)
    assert torch.equal(probe_steps(theta, u, step, None, reflect=True), u * step)  # not periodic


def test_a_closure_that_returns_losses_is_refused_in_one_line():
    theta = torch.zeros(4, dtype=torch.float64)
    est = SubspaceGaussNewton(q=2, nnz=None, codes=0)
    with pytest.raises(ValueError, match=r"^closure must return residuals of shape \[P, N\]=\(3, N\), got \(3,\)$"):
        est.estimate(lambda rows: rows.sum(1), theta)


def test_masked_coordinates_are_neither_probed_nor_moved():
    a, b, _ = linear_problem()
    theta = torch.zeros(8, dtype=torch.float64)
    mask = torch.tensor([True, False] * 4)
    f = Recorder(lambda rows: rows @ a.T - b)
    s = make_strategy("zo-gn", theta, lr=1.0, generator=gen(1), mask=mask, q=4, nnz=None, codes=0, mu=0.5,
                      max_step=None)
    s.step(f)
    assert torch.equal(f.rows[0][:, ~mask], torch.zeros(5, 4, dtype=torch.float64))
    assert torch.equal(theta[~mask], torch.zeros(4, dtype=torch.float64)) and bool((theta[mask] != 0).all())


# ------------------------------------------------------------------ the tasks' residual black boxes
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_classification_residuals_square_sum_to_the_batch_loss(loss):
    from photonic_sim.training.data import Dataset
    from photonic_sim.training.tasks import ClassificationTask

    g = gen(4)
    x = torch.rand(12, 5, generator=g)
    data = Dataset("toy", x, torch.arange(12) % 3, x, torch.arange(12) % 3, 3)
    task = ClassificationTask(data, batch_size=6, loss=loss)
    readings = torch.rand(3, 6, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    rho = task.residuals(readings, y)
    assert rho.shape == (3, 6 if loss == "cross_entropy" else 18)
    assert torch.allclose((rho**2).sum(1), task.losses(readings, y), rtol=1e-12, atol=0)


@pytest.mark.parametrize("causal", [0.0, 1.0])
def test_pinn_residuals_square_sum_to_the_training_loss(causal):
    """The PINN "residuals" closure: Σρ² equals the "batch" closure's loss, setting by
    setting, with and without causal weights (float64, 1e-12), in one chip call each."""
    from photonic_sim import Experiment
    from photonic_sim.cores.spec import NetworkSpec, dense, tt

    spec = NetworkSpec("bs_small", (tt((1, 2), (4, 4), (1, 2, 1), "sin"), dense(16, 1)))
    task = dict(kind="pde", pde="burgers", estimator="finite_difference", collocation=20, test_points=50,
                residual_points=20, exact_readout=True, causal_eps=causal, causal_bins=4)
    exp = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model=spec, task=task, seed=0,
                     training={"strategy": "zo-gn", "strategy_options": {"lr": 1.0}, "steps": 2, "loss": "pinn"}, insertion_loss=False)
    batch = exp.task.sample_batch(gen(3))
    rows = exp.params[None] + 0.05 * torch.randn(3, exp.params.numel(), generator=gen(4), dtype=exp.params.dtype)
    rho = exp.task.closure(exp.chip, batch, kind="residuals")(rows)
    losses = exp.task.closure(exp.chip, batch)(rows)
    assert rho.shape == (3, 20) and rho.dtype == torch.float64
    assert torch.allclose((rho**2).sum(1), losses, rtol=1e-12, atol=0)


def test_zo_gn_trains_a_pinn_through_the_builder():
    """``zo-gn`` through ``Experiment.run`` on a small Burgers PINN: q + 1 queries a step, and the
    training loss of the last 10 of 60 steps is below that of the first 10."""
    from photonic_sim import Experiment
    from photonic_sim.cores.spec import NetworkSpec, dense, tt

    spec = NetworkSpec("bs_small", (tt((1, 2), (4, 4), (1, 2, 1), "sin"), dense(16, 1)))
    task = dict(kind="pde", pde="burgers", estimator="finite_difference", collocation=40, test_points=200,
                residual_points=50, exact_readout=True, input_gain=[5.0, 1.0])
    training = {"strategy": "zo-gn", "strategy_options": {"lr": 1.0, "q": 8, "nnz": 16}, "steps": 60,
                "eval_every": 60, "loss": "pinn"}
    exp = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model=spec, task=task, seed=0,
                     training=training, insertion_loss=False)
    res = exp.run().train
    losses = [h["loss"] for h in res.history if h["step"] >= 1 and "metric" not in h]  # training losses
    assert res.ledger["queries"] == 60 * 9 and len(losses) == 59
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])


def test_a_staged_stage_gets_the_lattice_too():
    """``staged`` hands its build argument ``lattice`` to each stage's strategy: a ``zo-gn``
    stage probes in code steps as it does alone (and a ``quzo`` stage rounds onto the lattice)."""
    h = 2 * math.pi / 256
    lattice = torch.full((4,), h, dtype=torch.float64)
    theta = torch.full((4,), 1.0, dtype=torch.float64)
    f = Recorder(lambda rows: rows.sum(1, keepdim=True) - 3.0)
    s = make_strategy("staged", theta, lr=1.0, generator=gen(0), lattice=lattice,
                      stages=[dict(strategy="zo-gn", steps=1, q=3, nnz=None, codes=3, max_step=None)])
    assert torch.equal(s.inner.lattice, lattice)
    s.step(f)
    v = (f.rows[0][1:] - f.rows[0][0]).abs()
    assert torch.allclose(v, torch.full((3, 4), 3 * h, dtype=torch.float64), atol=1e-15, rtol=0)
