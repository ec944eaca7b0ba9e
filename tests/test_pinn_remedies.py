"""PINN remedies (photonic_sim/training/pinn_remedies.py) on cases with known answers: the
shrinking Stein width converges to the exact derivatives of a polynomial, adaptive sampling
draws with the RAD probabilities and concentrates points where a synthetic residual is large,
causal weights follow their closed form, the residual's dual norms are the Poisson error's;
and the task wiring (schedule per step, residuals
recorded, causal loss) on an ideal chip."""
import math

import pytest
import torch

from photonic_sim.chip import Chip
from photonic_sim.cores.photonic import TONN
from photonic_sim.cores.spec import NetworkSpec, dense, tt
from photonic_sim.devices import load_device_card
from photonic_sim.training.pde import Burgers, Darcy
from photonic_sim.training.pinn import PINNTask
from photonic_sim.training.pinn_remedies import (FourierFeatures, InputWarp, ResidualSampler, Separable, SigmaSchedule, Symmetry,
                                                  causal_weights, dual_norm_sq, grid_axes, grid_points, midpoint_grid,
                                                  sobol_points)
from photonic_sim.training.stein import SparseGridStein

TWO_D = NetworkSpec("two_d", (tt((1, 2), (4, 2), (1, 2, 1), "sin"), dense(8, 1)))


def test_sigma_schedule_is_geometric_and_holds_its_end():
    s = SigmaSchedule(0.1, 0.001, 100)
    assert s(0) == pytest.approx(0.1, rel=1e-15)
    assert s(50) == pytest.approx(0.01, rel=1e-12)  # halfway in log: sqrt(0.1 * 0.001)
    assert s(100) == pytest.approx(0.001, rel=1e-12) and s(10**6) == pytest.approx(0.001, rel=1e-12)
    assert all(s(t + 1) < s(t) for t in range(100))
    for bad in ((0.1, 0.2, 10), (0.1, 0.0, 10), (0.1, 0.01, 0), (float("nan"), 0.01, 10)):
        with pytest.raises(ValueError):
            SigmaSchedule(*bad)


def test_shrinking_stein_width_converges_to_the_exact_derivatives_of_a_polynomial():
    """f = x⁴y² + x⁵ − y⁴ (degree 6: the level-3 grid is exact only to degree 3 in ∂²): the
    estimate at σ(t) tends to the exact ∂, ∂² of f (not of its smoothing), errors O(σ²)."""
    x = torch.tensor([[0.3, -0.7], [-0.5, 0.2], [0.9, 0.4]], dtype=torch.float64)

    def f(p):
        return p[:, 0] ** 4 * p[:, 1] ** 2 + p[:, 0] ** 5 - p[:, 1] ** 4

    a, b = x[:, 0], x[:, 1]
    grad = torch.stack([4 * a**3 * b**2 + 5 * a**4, 2 * a**4 * b - 4 * b**3], -1)
    diag2 = torch.stack([12 * a**2 * b**2 + 20 * a**3, 2 * a**4 - 12 * b**2], -1)
    sched, est = SigmaSchedule(0.2, 0.002, 10), SparseGridStein(2, 0.2, 3)
    errors = []
    for step in (0, 5, 10):
        est.sigma = sched(step)
        out = est.estimate(f, x, need=("grad", "diag2"))
        errors.append(max(float((out["grad"] - grad).abs().max()), float((out["diag2"] - diag2).abs().max())))
    assert errors[0] > 1e-2  # a wide smoothing is visibly biased ...
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-3 * errors[0] * 10 and errors[2] < 5e-4  # ... O(σ²): 100× smaller σ


class _Box:
    """A 2-d PDE stand-in for the sampler: the unit square."""

    dim, lower, upper = 2, (0.0, 0.0), (1.0, 1.0)
    sample_interior = Darcy.sample_interior


def test_resampling_draws_with_the_rad_probabilities():
    sampler = ResidualSampler(_Box(), pool=50, k=2.0, c=0.5)
    gen = torch.Generator().manual_seed(0)
    x = sampler.draw(50, gen)
    assert torch.allclose(sampler.probabilities(), torch.full((50,), 0.02, dtype=torch.float64))
    r2 = (x[:, 0] + 0.1) ** 3  # a synthetic residual
    sampler.record(r2)
    s = torch.full((50,), float("nan"), dtype=torch.float64)
    s[sampler.last_index] = r2
    s = torch.where(torch.isnan(s), s[~torch.isnan(s)].max(), s) ** 2
    expect = s / s.mean() + 0.5
    torch.testing.assert_close(sampler.probabilities(), expect / expect.sum(), rtol=1e-12, atol=0)


def test_resampling_concentrates_points_where_the_residual_is_large():
    """Residual a narrow bump at (0.8, 0.2) (area fraction of |x − x0| < 0.1: π/100 ≈ 3 %): after
    the pool has been measured, the batches put most points there (k = 1, c = 0)."""
    x0 = torch.tensor([0.8, 0.2], dtype=torch.float64)

    def residual2(p):
        return torch.exp(-((p - x0) ** 2).sum(-1) / 0.005)

    sampler = ResidualSampler(_Box(), pool=2000, k=1.0, c=0.0)
    gen = torch.Generator().manual_seed(1)
    near = []
    for step in range(60):
        x = sampler.draw(200, gen)
        sampler.record(residual2(x))
        near.append(float(((x - x0).norm(dim=-1) < 0.1).double().mean()))
    assert near[0] < 0.1  # first draw is uniform
    assert sum(near[-10:]) / 10 > 0.6
    uniform = ResidualSampler(_Box(), pool=2000, k=1.0, c=1e6)  # c → ∞: uniform
    for step in range(3):
        x = uniform.draw(200, gen)
        uniform.record(residual2(x))
    assert float(((x - x0).norm(dim=-1) < 0.1).double().mean()) < 0.1


def test_resampling_pool_refresh():
    sampler = ResidualSampler(_Box(), pool=10, refresh_every=2)
    gen = torch.Generator().manual_seed(2)
    sampler.draw(4, gen)
    first = sampler.pool.clone()
    sampler.record(torch.ones(4, dtype=torch.float64))
    sampler.draw(4, gen)
    assert torch.equal(sampler.pool, first)
    sampler.draw(4, gen)
    assert not torch.equal(sampler.pool, first) and bool(torch.isnan(sampler.scores).all())


def test_causal_weights_closed_form():
    t = torch.tensor([0.05, 0.30, 0.40, 0.95, 0.55], dtype=torch.float64)  # slices 0, 1, 1, 3, 2 of 4
    r2 = torch.tensor([[1.0, 2.0, 4.0, 8.0, 0.5], [3.0, 2.0, 0.0, 8.0, 1.5]], dtype=torch.float64)
    w = causal_weights(t, r2, eps=0.5, bins=4, lower=0.0, upper=1.0)
    L = [2.0, 2.0, 1.0, 8.0]  # slice means of the mean over the two settings
    wk = [math.exp(-0.5 * sum(L[:k])) for k in range(4)]
    expect = torch.tensor([wk[0] / 4, wk[1] / 8, wk[1] / 8, wk[3] / 4, wk[2] / 4], dtype=torch.float64)
    torch.testing.assert_close(w, expect, rtol=1e-14, atol=0)
    # ε = 0: the plain mean over slices; weighted loss = Σ_k L_k / K
    w0 = causal_weights(t, r2, eps=0.0, bins=4, lower=0.0, upper=1.0)
    torch.testing.assert_close((r2.mean(0) * w0).sum(), torch.tensor(sum(L) / 4, dtype=torch.float64))


def _ideal_chip(seed=0, net=None):
    chip = Chip(net or TONN(TWO_D), load_device_card("silicon_thermo_optic"), seed=seed, readout="coherent",
                ideal=True, dtype=torch.float64)
    return chip, chip.init_phases(torch.Generator().manual_seed(seed + 1))


def test_task_applies_the_schedule_per_batch_and_records_residuals():
    chip, ph = _ideal_chip()
    task = PINNTask("darcy", collocation=5, test_points=8, residual_points=4, sigma=0.1, sigma_final=0.01,
                    sigma_decay_steps=2, resample_pool=30, resample_c=0.0)
    gen = torch.Generator().manual_seed(0)
    sigmas = []
    for _ in range(4):
        x = task.sample_batch(gen)
        sigmas.append(task.estimator.sigma)
        loss = task.closure(chip, x)(ph[None].repeat(2, 1))
    assert sigmas == pytest.approx([0.1, math.sqrt(0.1 * 0.01), 0.01, 0.01], rel=1e-12)
    # the recorded scores are the residuals of the last batch at the current width
    ref = (task.pde.nn_residual(x, task.estimator.estimate(task.model(chip, ph[None]), x, need=task.pde.need)) ** 2)[0]
    torch.testing.assert_close(task.sampler.scores[task.sampler.last_index], ref, rtol=1e-10, atol=0)
    torch.testing.assert_close(loss, ref.mean().repeat(2), rtol=1e-10, atol=0)


def test_task_causal_loss_equals_weighted_slices():
    chip, ph = _ideal_chip()
    task = PINNTask(Burgers(), collocation=12, test_points=8, residual_points=4, causal_eps=2.0, causal_bins=3)
    x = task.sample_batch(torch.Generator().manual_seed(4))
    got = task.closure(chip, x)(ph[None])
    r2 = (task.pde.nn_residual(x, task.estimator.estimate(task.model(chip, ph[None]), x, need=task.pde.need)) ** 2)[0]
    k = (x[:, 1] * 3).floor().clamp(max=2).long()
    L = [float(r2[k == j].mean()) if bool((k == j).any()) else 0.0 for j in range(3)]
    expect = sum(math.exp(-2.0 * sum(L[:j])) * L[j] for j in range(3)) / 3
    assert float(got[0]) == pytest.approx(expect, rel=1e-10)


def test_task_remedy_options_refused_in_one_line():
    for kw, word in ((dict(sigma_final=0.2), "sigma_final"), (dict(causal_eps=1.0), "causal_eps"),
                     (dict(resample_pool=10, resample_k=-1.0), "resample_k"),
                     (dict(estimator="autograd", sigma_final=0.01), "sigma_final")):
        with pytest.raises(ValueError, match=word):
            PINNTask("darcy", collocation=2, test_points=4, residual_points=2, **kw)


def test_input_gain_is_a_larger_first_layer_input_on_an_ideal_chip():
    """input_gain g: the loss equals the estimator on the plain network forward at g ⊙ (a x + b)
    (the block floating point of the chip rescales the inputs exactly); bad gains refused."""
    tonn = TONN(TWO_D)
    chip, ph = _ideal_chip(net=tonn)
    task = PINNTask(Burgers(), collocation=4, test_points=8, residual_points=4, input_gain=[8.0, 2.0])
    x = task.sample_batch(torch.Generator().manual_seed(5))
    gain = torch.tensor([8.0, 2.0], dtype=torch.float64)
    lo, hi = torch.tensor(task.pde.lower, dtype=torch.float64), torch.tensor(task.pde.upper, dtype=torch.float64)
    a, b = 2 / (hi - lo), -(hi + lo) / (hi - lo)

    def f(p):
        return tonn.forward((p * a + b) * gain, ph[None])[..., 0]

    est = SparseGridStein(2, 0.1, 3)
    ref = (task.pde.nn_residual(x, est.estimate(f, x, need=task.pde.need)) ** 2).mean(-1)
    torch.testing.assert_close(task.closure(chip, x)(ph[None]), ref, rtol=1e-9, atol=1e-12)
    for bad in ([1.0, 2.0, 3.0], [0.0, 1.0], float("inf")):
        with pytest.raises(ValueError, match="input_gain"):
            PINNTask("darcy", collocation=2, test_points=4, residual_points=2, input_gain=bad)


def _pinn_run(tmp_path, steps, resume=False, net=TWO_D, **task_kw):
    """A tiny Darcy ZO run through the Trainer (noisy chip), checkpoints in tmp_path."""
    from photonic_sim.training.strategies import make_strategy
    from photonic_sim.training.trainer import TrainConfig, Trainer

    chip = Chip(TONN(net), load_device_card("silicon_thermo_optic"), seed=3, readout="coherent",
                dtype=torch.float64)
    params = chip.init_phases(torch.Generator().manual_seed(4))
    strategy = make_strategy("zo-rge", params, lr=0.02, q=2, mu=0.03, generator=torch.Generator().manual_seed(5))
    task = PINNTask("darcy", collocation=4, test_points=6, residual_points=3, **task_kw)
    config = TrainConfig(steps=steps, eval_every=3, seed=0)  # same evaluations (they draw chip noise)
    trainer = Trainer(chip, task, strategy, config, checkpoint_dir=tmp_path)
    return trainer.run(resume=resume), task


@pytest.mark.parametrize("task_kw", [
    dict(sigma=0.1, sigma_final=0.01, sigma_decay_steps=6, resample_pool=20, resample_c=0.0, resample_refresh=5),
    dict(estimator="monte_carlo", mc_samples=3, sigma=0.1, sigma_final=0.02, sigma_decay_steps=6),
], ids=["sparse_grid+resample", "monte_carlo"])
def test_resume_continues_the_width_schedule_sampler_and_draws_bit_identically(tmp_path, task_kw):
    """N steps, checkpoint, resume to 2N == a straight 2N run: phases, losses and the width;
    a fresh task that ignored the checkpoint's task state would restart the schedule at σ₀."""
    straight, task_2n = _pinn_run(tmp_path / "a", 6, **task_kw)
    _pinn_run(tmp_path / "b", 3, **task_kw)
    resumed, task_r = _pinn_run(tmp_path / "b", 6, resume=True, **task_kw)
    assert torch.equal(resumed.phases, straight.phases)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    assert task_r.batches == task_2n.batches == 6
    assert task_r.estimator.sigma == task_2n.estimator.sigma == pytest.approx(task_kw["sigma_final"] ** (5 / 6)
                                                                              * task_kw["sigma"] ** (1 / 6))
    assert resumed.final == straight.final


def test_per_coordinate_width_schedule_and_task_options():
    """σ = (0.02, 0.08) → (0.002, 0.02) over 4 steps: each coordinate shrinks geometrically on
    its own (a single final width broadcasts); the task hands the per-coordinate width to its
    estimators; wrong lengths or values are refused in one line naming the key."""
    s = SigmaSchedule([0.02, 0.08], [0.002, 0.02], 4)
    torch.testing.assert_close(s(2), torch.tensor([math.sqrt(0.02 * 0.002), math.sqrt(0.08 * 0.02)],
                                                   dtype=torch.float64), rtol=1e-13, atol=0)
    torch.testing.assert_close(SigmaSchedule([0.02, 0.08], 0.01, 2)(9), torch.tensor([0.01, 0.01], dtype=torch.float64))
    with pytest.raises(ValueError, match="sigma_final"):
        SigmaSchedule([0.02, 0.08], [0.03, 0.01], 4)  # grows in x
    task = PINNTask(Burgers(), collocation=3, test_points=4, residual_points=2, sigma=[0.02, 0.08],
                    sigma_final=[0.002, 0.02], sigma_decay_steps=4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        task.sample_batch(gen)
    torch.testing.assert_close(task.estimator.sigma, s(2), rtol=0, atol=0)
    for kw, key in ((dict(sigma=[0.1, 0.1, 0.1]), "sigma"), (dict(sigma=[0.1, -0.1]), "sigma"),
                    (dict(sigma=0.1, sigma_final=[0.01, 0.0]), "sigma_final"), (dict(sigma="wide"), "sigma")):
        with pytest.raises(ValueError, match=f"^{key}: need one width > 0 or 2 of them") as info:
            PINNTask(Burgers(), collocation=2, test_points=4, residual_points=2, **kw)
        assert "\n" not in str(info.value)


def test_per_coordinate_width_in_the_scenario_schema():
    from photonic_sim.scenarios.errors import ScenarioError
    from photonic_sim.scenarios.schema import PdeTask, validate

    ok = validate(PdeTask, dict(kind="pde", pde="burgers", sigma=[0.01, 0.05], sigma_final=0.005), "s.yaml", "task")
    assert ok.sigma == [0.01, 0.05] and ok.sigma_final == 0.005
    for bad, key in (([0.01, 0.05, 0.1], "task.sigma"), ([0.01, 0.0], "task.sigma"), ("0.1", "task.sigma")):
        with pytest.raises(ScenarioError, match=key) as info:
            validate(PdeTask, dict(kind="pde", pde="burgers", sigma=bad), "s.yaml", "task")
        assert "list of 2 numbers > 0" in str(info.value) and "\n" not in str(info.value)
        assert "Value error" not in str(info.value)  # the validator's message, not pydantic's wrapper


def test_per_coordinate_fd_step_reaches_the_estimator_and_is_checked():
    """``fd_step`` is one step or one per coordinate (PDE order): the task hands it to its
    finite-difference estimator; the scenario schema and PINNTask refuse a wrong count, a step
    outside (0, 0.5] or a non-number in one line naming the key."""
    from photonic_sim.scenarios.errors import ScenarioError
    from photonic_sim.scenarios.schema import PdeTask, validate

    task = PINNTask(Burgers(), estimator="finite_difference", fd_step=[0.002, 0.01], collocation=2,
                    test_points=4, residual_points=2)
    assert task.estimator.h == (0.002, 0.01)
    ok = validate(PdeTask, dict(kind="pde", pde="burgers", estimator="finite_difference", fd_step=[0.002, 0.01]),
                  "s.yaml", "task")
    assert ok.fd_step == [0.002, 0.01]
    assert validate(PdeTask, dict(kind="pde", pde="darcy"), "s.yaml", "task").fd_step == 0.01
    for bad in ([0.01, 0.02, 0.03], [0.01, 0.0], [0.01, 0.6], "0.01", [True, 0.01], float("inf")):
        with pytest.raises(ScenarioError, match="task.fd_step") as info:
            validate(PdeTask, dict(kind="pde", pde="burgers", fd_step=bad), "s.yaml", "task")
        assert "list of 2 of them" in str(info.value) and "\n" not in str(info.value)
        assert "Value error" not in str(info.value)
    for bad in ([0.01, 0.02, 0.03], [0.01, -0.01], "x"):
        with pytest.raises(ValueError, match="^fd_step: need one finite step > 0 or 2 of them") as info:
            PINNTask(Burgers(), estimator="finite_difference", fd_step=bad, collocation=2, test_points=4,
                     residual_points=2)
        assert "\n" not in str(info.value)


# ------------------------------------------------------------------ Fourier-feature inputs
FF = dict(count=3, scale=[2.0, 0.5], seed=7)
FF_NET = NetworkSpec("ff8", (tt((2, 4), (4, 2), (1, 2, 1), "sin"), dense(8, 1)))  # 2 + 2·3 inputs


def _encoded_reference(task, x, w):
    """u = w · φ(a x + b) and its exact ∂u/∂x_j, ∂²u/∂x_j² (float64, written out by hand):
    θ_k = 2π B_k · (a ⊙ x + b), ∂θ_k/∂x_j = 2π B_kj a_j."""
    ff = task.features
    a, b = task.norm_scale, task.norm_shift
    g = ff.gain if ff.gain is not None else torch.ones(2, dtype=torch.float64)
    z = x * a + b
    theta = 2 * math.pi * z @ ff.B.T  # [N, m]
    w_in, w_s, w_c = w[:2], w[2:2 + ff.B.shape[0]], w[2 + ff.B.shape[0]:]
    u = z @ (w_in * g) + torch.sin(theta) @ w_s + torch.cos(theta) @ w_c
    dtheta = 2 * math.pi * ff.B * a  # [m, d]
    grad = (torch.cos(theta) * w_s - torch.sin(theta) * w_c) @ dtheta + w_in * g * a
    diag2 = -(torch.sin(theta) * w_s + torch.cos(theta) * w_c) @ dtheta**2
    return u, grad, diag2


def test_fourier_features_values_and_jacobian_against_the_closed_form():
    """φ(ẑ) = [g ⊙ ẑ, sin 2πBẑ, cos 2πBẑ]; autograd's Jacobian equals the analytic one; B is
    scale_j · N(0, 1) from the seed (same seed, same B; a zero scale leaves a coordinate out)."""
    gain = torch.tensor([50.0, 1.0], dtype=torch.float64)
    ff = FourierFeatures(2, 3, [2.0, 0.0], seed=7, gain=gain)
    assert ff.width == 8 and torch.equal(ff.B, FourierFeatures(2, 3, [2.0, 0.0], seed=7).B)
    assert bool((ff.B[:, 1] == 0).all()) and bool((ff.B[:, 0] != 0).all())
    z = torch.tensor([[0.3, -0.2], [-0.9, 0.7]], dtype=torch.float64)
    theta = 2 * math.pi * z @ ff.B.T
    torch.testing.assert_close(ff(z), torch.cat([z * gain, torch.sin(theta), torch.cos(theta)], -1),
                               rtol=1e-15, atol=1e-15)
    jac = torch.autograd.functional.jacobian(lambda p: ff(p[None])[0], z[0])  # [8, 2]
    expect = torch.cat([torch.diag(gain), (torch.cos(theta[0])[:, None] * 2 * math.pi * ff.B),
                        (-torch.sin(theta[0])[:, None] * 2 * math.pi * ff.B)])
    torch.testing.assert_close(jac, expect, rtol=1e-13, atol=1e-13)
    assert FourierFeatures(2, 5, 1.0, include_input=False).width == 10
    for args, key in (((0, 1.0), "count"), ((3, [1.0, 2.0, 3.0]), "scale"), ((3, [0.0, 0.0]), "scale"),
                      ((3, -1.0), "scale"), ((3, 1.0, -2), "seed")):
        with pytest.raises(ValueError, match=f"^fourier_features.{key}:"):
            FourierFeatures(2, *args)


@pytest.mark.parametrize("estimator, kw, rtol", [
    ("autograd", {}, 1e-12),
    ("finite_difference", dict(fd_step=1e-4), 1e-5),
    ("sparse_grid", dict(sigma=2e-4), 5e-5),
], ids=["autograd", "finite_difference", "sparse_grid"])
def test_estimators_differentiate_the_encoded_function_with_respect_to_x(estimator, kw, rtol):
    """The task's model is x ↦ NN(φ(a x + b)): each estimator's ∂u/∂x, ∂²u/∂x² of a function
    linear in the features (u = w · φ) match the closed form (Burgers: a = (1, 2), so the chain
    rule through the normalisation is checked too). Tolerances: autograd exact to rounding;
    central differences (h 1e-4) O(h² u'''') plus rounding ~1e-8/h²; Stein σ 2e-4 biased by
    O((kσ)²) ≈ 2.5e-5 relative (k = 2π|B a| ≲ 25 rad per unit the largest angular frequency)."""
    task = PINNTask(Burgers(), estimator=estimator, collocation=5, test_points=4, residual_points=2,
                    input_gain=[3.0, 1.0], fourier_features=FF, **kw)
    x = task.sample_batch(torch.Generator().manual_seed(2))
    w = torch.linspace(-1.0, 1.0, 8, dtype=torch.float64) + 0.3

    def f(p):
        return (task.encode(p) @ w)[None]

    out = task.estimator.estimate(f, x, need=("u", "grad", "diag2"))
    u, grad, diag2 = _encoded_reference(task, x, w)
    scale = lambda v: float(v.abs().max())  # noqa: E731
    torch.testing.assert_close(out["u"][0], u, rtol=0, atol=rtol * scale(u) + 1e-12)
    torch.testing.assert_close(out["grad"][0], grad, rtol=0, atol=rtol * scale(grad))
    torch.testing.assert_close(out["diag2"][0], diag2, rtol=0, atol=10 * rtol * scale(diag2))


def test_fourier_features_loss_on_an_ideal_chip_and_width_check():
    """The chip gets φ(a x + b): the loss equals the estimator on the plain network forward at
    φ; a network of the PDE's own width (2) is refused in one line naming the needed width."""
    tonn = TONN(FF_NET)
    chip, ph = _ideal_chip(net=tonn)
    task = PINNTask(Burgers(), estimator="finite_difference", collocation=4, test_points=8, residual_points=4,
                    fourier_features=FF)
    assert task.input_width == 8
    x = task.sample_batch(torch.Generator().manual_seed(5))
    ff = FourierFeatures(2, **FF)

    def f(p):
        return tonn.forward(ff(p * task.norm_scale + task.norm_shift), ph[None])[..., 0]

    ref = (task.pde.nn_residual(x, task.estimator.estimate(f, x, need=task.pde.need)) ** 2).mean(-1)
    torch.testing.assert_close(task.closure(chip, x)(ph[None]), ref, rtol=1e-9, atol=1e-12)
    plain, ph2 = _ideal_chip()
    with pytest.raises(ValueError, match=r"^chip: network must map 8 -> 1 \(fourier_features") as info:
        task.closure(plain, x)(ph2[None])
    assert "\n" not in str(info.value)
    for bad in (dict(count=3), dict(count=3, scale=1.0, width=2), [3, 1.0]):
        with pytest.raises(ValueError, match="^fourier_features: need a dict"):
            PINNTask("darcy", collocation=2, test_points=4, residual_points=2, fourier_features=bad)


def test_fourier_features_in_the_scenario_schema_and_model_width():
    """The option round-trips through the schema (model_dump → validate gives the same task and
    the same frequencies), sets the model's input width the loader checks, and bad values are
    one-line ScenarioErrors naming the key."""
    from photonic_sim.scenarios.errors import ScenarioError
    from photonic_sim.scenarios.schema import PdeTask, validate

    spec = dict(kind="pde", pde="burgers", fourier_features=dict(count=7, scale=[5.0, 1.0]))
    ok = validate(PdeTask, spec, "s.yaml", "task")
    assert ok.io == (16, 1) and ok.fourier_features.seed == 0 and ok.fourier_features.include_input
    again = validate(PdeTask, ok.model_dump(), "s.yaml", "task")
    assert again == ok
    assert validate(PdeTask, dict(spec, fourier_features=dict(count=4, scale=2.0, include_input=False)),
                    "s.yaml", "task").io == (8, 1)
    assert validate(PdeTask, dict(kind="pde", pde="hjb20"), "s.yaml", "task").io == (21, 1)
    b1 = PINNTask("burgers", collocation=2, test_points=4, residual_points=2,
                  fourier_features=ok.fourier_features.model_dump()).features.B
    b2 = PINNTask("burgers", collocation=2, test_points=4, residual_points=2,
                  fourier_features=again.fourier_features.model_dump()).features.B
    assert torch.equal(b1, b2)
    for bad, key in ((dict(count=0, scale=1.0), "task.fourier_features.count"),
                     (dict(count=3, scale=[1.0, 2.0, 3.0]), "task.fourier_features"),
                     (dict(count=3, scale=[0.0, 0.0]), "task.fourier_features.scale"),
                     (dict(count=3, scale="5"), "task.fourier_features.scale"),
                     (dict(count=3, scale=1.0, sede=1), "task.fourier_features.sede"),
                     (dict(scale=1.0), "task.fourier_features.count")):
        with pytest.raises(ScenarioError, match=key) as info:
            validate(PdeTask, dict(kind="pde", pde="burgers", fourier_features=bad), "s.yaml", "task")
        assert "\n" not in str(info.value)


def test_fourier_features_model_width_checked_by_the_loader():
    """An experiment whose model has the PDE's plain width but a task with Fourier features is a
    one-line ScenarioError on ``model`` naming the width needed; the right width builds."""
    from photonic_sim import Experiment
    from photonic_sim.scenarios.errors import ScenarioError

    task = dict(kind="pde", pde="darcy", estimator="finite_difference", collocation=2, test_points=4,
                fourier_features=FF)
    with pytest.raises(ScenarioError, match="needs 8 -> 1") as info:
        Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model=TWO_D, task=task,
                   training=dict(name="t", strategy="fo", steps=1, loss="pinn"), seed=0).chip
    assert "\n" not in str(info.value)
    exp = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model=FF_NET, task=task,
                     training=dict(name="t", strategy="fo", steps=1, loss="pinn"), seed=0)
    assert exp.task.input_width == exp.chip.in_features == 8


def test_resume_with_fourier_features_is_bit_identical(tmp_path):
    """The frequencies are rebuilt from the configuration: N steps, checkpoint, resume to 2N ==
    a straight 2N run."""
    kw = dict(estimator="finite_difference", fourier_features=FF, net=FF_NET)
    straight, _ = _pinn_run(tmp_path / "a", 6, **kw)
    _pinn_run(tmp_path / "b", 3, **kw)
    resumed, _ = _pinn_run(tmp_path / "b", 6, resume=True, **kw)
    assert torch.equal(resumed.phases, straight.phases)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    assert resumed.final == straight.final


# ------------------------------------------------------------------ dual norms of the residual
def test_dual_norms_of_one_sine_mode_are_exact():
    """r = sin(πx) sin(2πy) on the unit square is ½ φ_12 (φ orthonormal, λ = 5π²): ‖r‖²_{H^-1} =
    1/(20π²), ‖r‖²_{H^-2} = 1/(100π⁴), exact on the midpoints (discrete sine orthogonality) to
    1e-13; on [−1, 1] × [0, 1] (|Ω| = 2, λ = π²/4 + π²) and in 3-d as well."""
    x = midpoint_grid((0.0, 0.0), (1.0, 1.0), 32)
    assert x.shape == (1024, 2) and float(x.min()) == 1 / 64 and float(x.max()) == 1 - 1 / 64
    r = torch.sin(math.pi * x[:, 0]) * torch.sin(2 * math.pi * x[:, 1])
    assert dual_norm_sq(r, (0, 0), (1, 1), 1) == pytest.approx(1 / (20 * math.pi**2), rel=1e-13)
    assert dual_norm_sq(r, (0, 0), (1, 1), 2) == pytest.approx(1 / (100 * math.pi**4), rel=1e-13)
    x = midpoint_grid((-1.0, 0.0), (1.0, 1.0), 16)
    r = torch.sin(math.pi * (x[:, 0] + 1) / 2) * torch.sin(math.pi * x[:, 1])
    assert dual_norm_sq(r, (-1, 0), (1, 1), 1) == pytest.approx(2 * 0.25 / (math.pi**2 / 4 + math.pi**2), rel=1e-13)
    x = midpoint_grid((0.0,) * 3, (1.0,) * 3, 8)
    r = torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1]) * torch.sin(3 * math.pi * x[:, 2])
    assert dual_norm_sq(r, (0,) * 3, (1,) * 3, 2) == pytest.approx(1 / 8 / (11 * math.pi**2) ** 2, rel=1e-13)
    with pytest.raises(ValueError, match="need G\\^2 residuals"):
        dual_norm_sq(torch.ones(10), (0, 0), (1, 1), 1)


def test_dual_norms_are_the_poisson_errors():
    """For −Δe = r, e = 0 on the boundary: ‖r‖_{H^-2} = ‖e‖ and ‖r‖_{H^-1} = ‖∇e‖. With
    e = x(1−x)y(1−y) (r = 2[x(1−x) + y(1−y)], not a finite sine sum): ‖e‖² = 1/900 and
    ‖∇e‖² = 2 · (1/3)(1/30) = 1/45 (closed forms); the midpoint sums at G = 128 within 1e-3."""
    x = midpoint_grid((0.0, 0.0), (1.0, 1.0), 128)
    px, py = x[:, 0] * (1 - x[:, 0]), x[:, 1] * (1 - x[:, 1])
    r = 2 * (px + py)
    assert dual_norm_sq(r, (0, 0), (1, 1), 2) == pytest.approx(1 / 900, rel=1e-3)
    assert dual_norm_sq(r, (0, 0), (1, 1), 1) == pytest.approx(1 / 45, rel=1e-3)


def test_task_h_minus_2_loss_is_the_darcy_error_without_the_reference():
    """On Darcy (1 + Δu = 0, zero boundary built in) the task's evaluation loss with
    eval_loss="h_minus_2" is ‖e‖² for the network's error e, computed from the residual alone:
    its root matches rel. L2 × ‖u_ref‖ (test-point estimates, 10 000 points) within 1 % (seen: 6e-4); the mean
    square stays in residual_rms; the default leaves "loss" the mean square."""
    chip, phases = _ideal_chip(seed=1)
    kw = dict(estimator="finite_difference", collocation=4, test_points=10000, residual_points=500)
    task = PINNTask(Darcy(), eval_loss="h_minus_2", eval_grid=64, **kw)
    ev = task.evaluate(chip, phases)
    u_norm = float(task.test_ref.pow(2).mean().sqrt())
    assert math.sqrt(ev["loss"]) == pytest.approx(ev["relative_l2"] * u_norm, rel=0.01)
    assert ev["h_minus_2"] == ev["loss"]
    plain = PINNTask(Darcy(), **kw).evaluate(chip, phases)
    assert plain["loss"] == pytest.approx(ev["residual_rms"] ** 2, rel=1e-12) and "h_minus_2" not in plain
    assert ev["relative_l2"] == plain["relative_l2"]
    for bad, msg in ((dict(eval_loss="h1"), "eval_loss: 'h1' is not one of"),
                     (dict(eval_loss="h_minus_1", eval_grid=1), "eval_grid: 1 is out of range .* 2 \\.\\. 1024"),
                     (dict(eval_loss="h_minus_1", eval_grid=1025), "eval_grid: 1025")):
        with pytest.raises(ValueError, match=msg):
            PINNTask(Darcy(), **bad)


def test_sobol_points_are_a_net_in_the_box():
    """Known answer: the first 2^4 points of a scrambled 2-d Sobol sequence are a (0, 4, 2)-net in
    base 2, so every elementary box of area 1/16 (4 x 4 cells, 16 strips in x, 16 in y) holds
    exactly one; scrambling keeps that, for every seed. On a non-unit box the points are the
    affine image of the unit points."""
    for seed in range(5):
        x = sobol_points(16, (0.0, 0.0), (1.0, 1.0), torch.Generator().manual_seed(seed))
        assert x.shape == (16, 2) and x.dtype == torch.float64 and bool(((x >= 0) & (x < 1)).all())
        cells = (x[:, 0] * 4).floor() * 4 + (x[:, 1] * 4).floor()
        assert sorted(cells.tolist()) == list(range(16))
        for j in range(2):
            assert sorted((x[:, j] * 16).floor().tolist()) == list(range(16))
        y = sobol_points(16, (-1.0, 2.0), (3.0, 2.5), torch.Generator().manual_seed(seed))
        assert torch.allclose(y, torch.tensor([-1.0, 2.0], dtype=torch.float64)
                              + torch.tensor([4.0, 0.5], dtype=torch.float64) * x, rtol=0, atol=1e-15)


def test_sobol_batches_are_unbiased_with_far_less_variance_than_uniform():
    """The batch mean of f(x, y) = sin(pi x) sin(pi y) over 16 points, 400 batches: both samplers
    are unbiased for the integral 4/pi^2 (within 4 standard errors), and the scrambled-Sobol
    batches vary far less. Uniform: Var = (1/4 - 16/pi^4)/16 exactly; the sample variance is
    checked against it (within 25 %), Sobol's is below a quarter of it (seen: 1/10.4)."""
    exact, var_f = 4 / math.pi**2, 0.25 - 16 / math.pi**4
    f = lambda x: torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])  # noqa: E731
    gen_s, gen_u = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    sob = torch.stack([f(sobol_points(16, (0.0, 0.0), (1.0, 1.0), gen_s)).mean() for _ in range(400)])
    uni = torch.stack([f(Darcy().sample_interior(16, gen_u)).mean() for _ in range(400)])
    for means in (sob, uni):
        assert abs(float(means.mean()) - exact) < 4 * math.sqrt(float(means.var()) / 400)
    assert float(uni.var()) == pytest.approx(var_f / 16, rel=0.25)
    assert float(sob.var()) < 0.25 * var_f / 16
    # each point alone is uniform: the first point of each batch has mean 1/2 per coordinate
    first = torch.stack([sobol_points(10, (0.0, 0.0), (1.0, 1.0), gen_s)[0] for _ in range(2000)])
    assert torch.allclose(first.mean(0), torch.full((2,), 0.5, dtype=torch.float64), atol=4 * math.sqrt(1 / 12 / 2000))


def test_task_sobol_sampling_draws_from_the_batch_generator_and_is_checked():
    """sampling="sobol": each batch is sobol_points from the Trainer's batch generator (so a seed
    and a checkpointed generator reproduce it), inside the PDE box; refused in one line with
    resample_pool and for unknown names; the default stays uniform (the bits of earlier runs)."""
    task = PINNTask(Burgers(), collocation=10, test_points=6, residual_points=3, sampling="sobol")
    a, b = task.sample_batch(torch.Generator().manual_seed(3)), task.sample_batch(torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, task.sample_batch(torch.Generator().manual_seed(4)))
    assert torch.equal(a, sobol_points(10, Burgers.lower, Burgers.upper, torch.Generator().manual_seed(3)))
    lo, hi = torch.tensor(Burgers.lower, dtype=torch.float64), torch.tensor(Burgers.upper, dtype=torch.float64)
    assert bool(((a >= lo) & (a <= hi)).all())
    plain = PINNTask(Burgers(), collocation=10, test_points=6, residual_points=3)
    assert torch.equal(plain.sample_batch(torch.Generator().manual_seed(3)),
                       Burgers().sample_interior(10, torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="sampling: 'halton' is not one of"):
        PINNTask(Darcy(), sampling="halton")
    with pytest.raises(ValueError, match="sampling: 'sobol' .* resample_pool"):
        PINNTask(Darcy(), sampling="sobol", resample_pool=100)


def test_resume_with_sobol_sampling_is_bit_identical(tmp_path):
    """The scramble seeds come from the Trainer's checkpointed batch generator: N steps, resume
    to 2N == a straight 2N run (phases, losses, final evaluation)."""
    straight, _ = _pinn_run(tmp_path / "a", 6, sampling="sobol")
    _pinn_run(tmp_path / "b", 3, sampling="sobol")
    resumed, _ = _pinn_run(tmp_path / "b", 6, resume=True, sampling="sobol")
    assert torch.equal(resumed.phases, straight.phases)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    assert resumed.final == straight.final


# ------------------------------------------------------------------ symmetry


def test_symmetric_projection_of_a_known_function():
    """Odd in x / even in y about the middle of Darcy's box [0, 1]²: the projection of
    g = 1 + a·(x−½) + b·(y−½)² + c·(x−½)(y−½)² + e·(y−½) keeps exactly its odd-in-x, even-in-y
    terms; Burgers odd in x: the odd part of eˣ(1 + t) is sinh(x)(1 + t)."""
    x = torch.rand(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sym = Symmetry(Darcy(), {"x": "odd", "y": "even"})
    assert sym.count == 4

    def g(p):
        u, v = p[:, 0] - 0.5, p[:, 1] - 0.5
        return 1 + 0.7 * u + 1.3 * v**2 - 2.1 * u * v**2 + 0.4 * v

    u, v = x[:, 0] - 0.5, x[:, 1] - 0.5
    torch.testing.assert_close(sym.combine(g(sym.images(x))), 0.7 * u - 2.1 * u * v**2, rtol=0, atol=1e-15)
    xb = x * torch.tensor([2.0, 1.0], dtype=torch.float64) - torch.tensor([1.0, 0.0], dtype=torch.float64)
    odd = Symmetry(Burgers(), {"x": "odd"})
    got = odd.combine(torch.exp(odd.images(xb)[:, 0]) * (1 + odd.images(xb)[:, 1]))
    torch.testing.assert_close(got, torch.sinh(xb[:, 0]) * (1 + xb[:, 1]), rtol=1e-14, atol=1e-15)
    even = Symmetry(Burgers(), {"x": "even"})
    got = even.combine(torch.exp(even.images(xb)[:, 0]))
    torch.testing.assert_close(got, torch.cosh(xb[:, 0]), rtol=1e-14, atol=0)
    for bad in ({"z": "odd"}, {"x": "oddd"}, {}, ["x"]):
        with pytest.raises(ValueError, match="symmetry"):
            Symmetry(Burgers(), bad)


def test_task_symmetry_makes_the_chip_network_odd_and_reads_both_images():
    """PINNTask(symmetry={"x": "odd"}) on an ideal chip: the model is (NN(x, t) − NN(−x, t))/2 of
    the plain network, exactly odd, its finite-difference u_x even and u_xx odd, and one closure
    call reads twice the rows of the plain task."""
    chip, ph = _ideal_chip()
    plain = PINNTask(Burgers(), estimator="finite_difference", collocation=6, test_points=8, residual_points=4)
    task = PINNTask(Burgers(), estimator="finite_difference", collocation=6, test_points=8, residual_points=4,
                    symmetry={"x": "odd"})
    assert task.evaluations_per_point() == 2 * plain.evaluations_per_point()
    x = task.sample_batch(torch.Generator().manual_seed(2))
    mirror = x * torch.tensor([-1.0, 1.0], dtype=torch.float64)
    f, g = task.model(chip, ph[None]), plain.model(chip, ph[None])
    torch.testing.assert_close(f(x), (g(x) - g(mirror)) / 2, rtol=1e-14, atol=1e-15)
    assert torch.equal(f(mirror), -f(x))
    d, dm = task.estimator.estimate(f, x, need=("u", "grad", "diag2")), \
        task.estimator.estimate(f, mirror, need=("u", "grad", "diag2"))
    torch.testing.assert_close(dm["grad"][..., 0], d["grad"][..., 0], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(dm["diag2"][..., 0], -d["diag2"][..., 0], rtol=1e-7, atol=1e-9)
    rows = []
    for t in (plain, task):
        before = chip.ledger.samples
        t.closure(chip, x)(ph[None])
        rows.append(chip.ledger.samples - before)
    assert rows[1] == 2 * rows[0] == 2 * plain.evaluations_per_point() * x.shape[0]
    with pytest.raises(ValueError, match="symmetry"):
        PINNTask(Burgers(), collocation=2, test_points=4, residual_points=2, symmetry={"s": "odd"})
    v = torch.tensor([-0.7, 0.0, 0.25], dtype=torch.float64)
    signs, images = Symmetry(Burgers(), {"x": "odd"}).axis_images(0, v)  # x in [-1, 1]: R v = -v
    assert signs.tolist() == [1.0, -1.0] and torch.equal(images, torch.stack([v, -v]))
    signs, images = Symmetry(Darcy(), {"y": "even"}).axis_images(1, v)  # y in [0, 1]: R v = 1 - v
    assert signs.tolist() == [1.0, 1.0] and torch.equal(images[1], 1.0 - v)
    signs, images = Symmetry(Darcy(), {"y": "even"}).axis_images(0, v)  # x not named: v alone
    assert signs.tolist() == [1.0] and torch.equal(images, v[None])


def test_symmetry_in_the_scenario_schema():
    from photonic_sim.scenarios.errors import ScenarioError
    from photonic_sim.scenarios.schema import PdeTask, validate

    ok = validate(PdeTask, dict(kind="pde", pde="burgers", symmetry={"x": "odd"}), "s.yaml", "task")
    assert ok.symmetry == {"x": "odd"} and validate(PdeTask, ok.model_dump(), "s.yaml", "task") == ok
    for bad, key in (({"y": "odd"}, "task.symmetry"), ({"x": "skew"}, "task.symmetry"), ("x", "task.symmetry")):
        with pytest.raises(ScenarioError, match=key) as info:
            validate(PdeTask, dict(kind="pde", pde="burgers", symmetry=bad), "s.yaml", "task")
        assert "\n" not in str(info.value)
    for bad in ([1.0, 2.0, 3.0], 0.0, [1.0, -2.0]):
        with pytest.raises(ScenarioError, match="task.input_gain") as info:
            validate(PdeTask, dict(kind="pde", pde="burgers", input_gain=bad), "s.yaml", "task")
        assert "\n" not in str(info.value)


# ------------------------------------------------------------------ separable


def test_separable_rows_and_products_of_a_known_rank_two_function():
    """Separable(d=2, R=2): the rows of M points are [z_j e_j, e_j] (coordinate-major), and
    readings F(row) built from known factors (a(x), b(x) on x rows, c(t), e(t) on t rows, chosen
    by the tag) combine to a(x)c(t) + b(x)e(t) exactly; in d = 3 to the product of three."""
    z = torch.tensor([[0.3, -0.2], [-0.7, 0.9], [0.1, 0.5]], dtype=torch.float64)
    sep = Separable(2, 2)
    rows = sep.rows_of(z)
    assert sep.width == 4 and sep.rows == 2 and rows.shape == (6, 4)
    torch.testing.assert_close(rows[:3], torch.stack([z[:, 0], 0 * z[:, 0], 1 + 0 * z[:, 0], 0 * z[:, 0]], -1))
    torch.testing.assert_close(rows[3:], torch.stack([0 * z[:, 1], z[:, 1], 0 * z[:, 1], 1 + 0 * z[:, 1]], -1))

    def readings(r):  # [N, 4] -> [N, 2]: tag 0 rows give (a, b) of x, tag 1 rows (c, e) of t
        x, t, on_x = r[:, 0], r[:, 1], r[:, 2]
        return torch.stack([on_x * torch.sin(3 * x) + (1 - on_x) * torch.exp(t),
                            on_x * x**3 + (1 - on_x) * torch.cos(2 * t)], -1)

    want = torch.sin(3 * z[:, 0]) * torch.exp(z[:, 1]) + z[:, 0] ** 3 * torch.cos(2 * z[:, 1])
    torch.testing.assert_close(sep.combine(readings(rows)), want, rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(sep.combine(readings(rows)[None].expand(3, -1, -1)), want.expand(3, -1))
    z3 = torch.rand(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    three = Separable(3, 1)
    r3 = three.rows_of(z3)
    value = (r3[:, :3].sum(-1) + 2 * r3[:, 3:].argmax(-1)).unsqueeze(-1)  # factor j: z_j + 2j
    torch.testing.assert_close(three.combine(value), z3[:, 0] * (z3[:, 1] + 2) * (z3[:, 2] + 4), rtol=1e-15, atol=0)
    for bad in ((2, 0), (2, 65), (0, 2)):
        with pytest.raises(ValueError, match="separable"):
            Separable(*bad)
    with pytest.raises(ValueError, match="separable"):
        sep.combine(torch.zeros(5, 2))


SEP_NET = NetworkSpec("sep", (tt((2, 2), (4, 2), (1, 2, 1), "sin"), dense(8, 3)))


def test_task_separable_reads_each_coordinate_alone_and_is_odd_with_the_symmetry():
    """PINNTask(separable=3) on an ideal chip (network 4 -> 3): the model is the sum over the
    rank of the product of the chip's readings of the x row and the t row, each row moving
    only with its own coordinate (a t row's readings do not change with x); with symmetry odd
    in x it is exactly odd; a
    closure call reads 2 (coordinates) × 2 (images) rows per evaluation point; a network of
    the wrong width is refused naming it."""
    chip, ph = _ideal_chip(net=TONN(SEP_NET))
    task = PINNTask(Burgers(), estimator="finite_difference", collocation=5, test_points=8, residual_points=4,
                    separable=3, input_gain=[5.0, 1.0])
    plain = PINNTask(Burgers(), estimator="finite_difference", collocation=5, test_points=8, residual_points=4)
    assert task.input_width == 4 and task.out_width == 3
    assert task.evaluations_per_point() == 2 * plain.evaluations_per_point()
    x = task.sample_batch(torch.Generator().manual_seed(3))
    z = task.encode(x)
    read = chip.measure(task.separable.rows_of(z), ph)  # [2M, 3]
    m = x.shape[0]
    want = (read[:m] * read[m:]).sum(-1)
    f = task.model(chip, ph[None])
    torch.testing.assert_close(f(x)[0], want, rtol=1e-14, atol=1e-15)
    moved = x.clone()
    moved[:, 0] = -x[:, 0] * 0.5  # only x changes: the t rows' readings stay
    read2 = chip.measure(task.separable.rows_of(task.encode(moved)), ph)
    assert torch.equal(read2[m:], read[m:]) and not torch.allclose(read2[:m], read[:m])
    odd = PINNTask(Burgers(), estimator="finite_difference", collocation=5, test_points=8, residual_points=4,
                   separable=3, symmetry={"x": "odd"})
    g = odd.model(chip, ph[None])
    mirror = x * torch.tensor([-1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(g(mirror), -g(x), rtol=1e-13, atol=1e-15)
    before = chip.ledger.samples
    odd.closure(chip, x)(ph[None])
    read = chip.ledger.samples - before  # each distinct factor row once: x rows of x and −x, t rows
    stencil = []  # the points the estimator hands the model in one call
    odd.estimator.estimate(lambda p: stencil.append(p) or torch.zeros(1, p.shape[0], dtype=p.dtype), x,
                           need=odd.pde.need)
    rows = odd.separable.rows_of(odd.encode(odd.symmetry.images(stencil[0])))
    assert read == len({tuple(r.tolist()) for r in rows}) < 4 * plain.evaluations_per_point() * x.shape[0]
    every = odd.symmetry.combine(odd.separable.combine(chip.measure(rows, ph)))  # every row read, no sharing
    torch.testing.assert_close(g(stencil[0])[0], every, rtol=1e-14, atol=1e-15)
    # autograd derivatives in x (the first-order baseline): rows are not shared, and they match
    # central differences of the model (h = 1e-5, float64)
    ad = PINNTask(Burgers(), estimator="autograd", collocation=5, test_points=8, residual_points=4,
                  separable=3, symmetry={"x": "odd"})
    got = ad.estimator.estimate(ad.model(chip, ph[None], differentiable=True), x, need=("u", "grad"))
    h = 1e-5
    for j in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[j] = h
        fd = (g(x + e) - g(x - e)) / (2 * h)
        torch.testing.assert_close(got["grad"][..., j], fd, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="4 -> 3"):
        task.model(_ideal_chip()[0], ph[None])
    for bad in (0, 65, 2.5, True):
        with pytest.raises(ValueError, match="separable"):
            PINNTask(Burgers(), collocation=2, test_points=4, residual_points=2, separable=bad)
    with pytest.raises(ValueError, match="separable"):
        PINNTask(Burgers(), collocation=2, test_points=4, residual_points=2, separable=2,
                 fourier_features={"count": 2, "scale": 1.0})


def test_grid_points_and_their_axes():
    """grid_points: the C-order product of the axes (last coordinate fastest); grid_axes gives
    the axes back, and None for anything else (a moved entry, random points, another size)."""
    a = torch.tensor([0.1, -0.4, 0.7], dtype=torch.float64)
    b = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    x = grid_points([a, b])
    assert x.shape == (9, 2)
    assert [tuple(r) for r in x.tolist()] == [(float(u), float(v)) for u in a for v in b]
    back = grid_axes(x, 3)
    assert back is not None and torch.equal(back[0], a) and torch.equal(back[1], b)
    assert grid_axes(x, 4) is None and grid_axes(x[:8], 3) is None
    moved = x.clone()
    moved[4, 1] += 1e-12
    assert grid_axes(moved, 3) is None
    assert grid_axes(torch.rand(9, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), 3) is None
    c = torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64)
    x3 = grid_points([a, b, c])
    assert torch.equal(x3[1 * 9 + 2 * 3 + 0], torch.stack([a[1], b[2], c[0]]))
    assert all(torch.equal(u, v) for u, v in zip(grid_axes(x3, 3), (a, b, c)))


def test_separable_grid_products_are_the_pointwise_sums_of_products():
    """Separable.grid_products of factors [P, n_j, R] on a grid equals Σ_r Π_j F_j at every
    grid point, computed point by point (float64, d = 1, 2, 3, a leading batch)."""
    gen = torch.Generator().manual_seed(2)
    for sizes in ((4,), (3, 5), (2, 3, 4)):
        factors = [torch.randn(2, n, 3, generator=gen, dtype=torch.float64) for n in sizes]
        got = Separable.grid_products(factors)
        assert got.shape == (2, math.prod(sizes))
        for k, index in enumerate(__import__("itertools").product(*(range(n) for n in sizes))):
            want = math.prod(f[:, i, :] for f, i in zip(factors, index)).sum(-1)
            torch.testing.assert_close(got[:, k], want, rtol=1e-14, atol=1e-15)


def test_task_grid_sampling_and_the_separable_fast_path_equal_the_generic_differences():
    """sampling="grid": each batch is the grid of ``collocation`` uniform values per coordinate
    (the columns of ``sample_interior``'s points); with a separable model and finite
    differences the task differentiates each coordinate's factor (symmetrised on its own) and
    takes the products on the grid. The residuals equal the generic path's (every stencil point
    read as a row) to rounding, on Burgers (odd in x, per-coordinate steps, input gain) and
    Darcy; both read the same 3·n rows per coordinate (twice for the mirrored one: the generic
    path finds them by de-duplication, the fast path skips the per-point gather); a grid too big is
    refused naming collocation; a Stein estimator on the grid takes the generic path."""
    chip, ph = _ideal_chip(net=TONN(SEP_NET))
    settings = torch.stack([ph, ph + 0.03, ph - 0.05])
    for pde, extra in ((Burgers(), dict(symmetry={"x": "odd"}, fd_step=[1e-3, 1e-2], input_gain=[5.0, 1.0])),
                       (Darcy(), dict(fd_step=1e-2))):
        kw = dict(estimator="finite_difference", collocation=6, test_points=8, residual_points=4, separable=3, **extra)
        grid = PINNTask(pde, sampling="grid", **kw)
        plain = PINNTask(pde, **kw)
        x = grid.sample_batch(torch.Generator().manual_seed(7))
        assert x.shape == (36, 2)
        cols = pde.sample_interior(6, torch.Generator().manual_seed(7))
        assert torch.equal(x, grid_points([cols[:, 0], cols[:, 1]]))
        fast, slow = grid.residuals(chip, x, settings), plain.residuals(chip, x, settings)
        assert fast.shape == (3, 36) and float(slow.abs().max()) > 0.1
        torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-9)
        grads = []  # first order through the chip (differentiable in the phases): the same gradient
        for task in (grid, plain):
            p = ph.clone().requires_grad_(True)
            task.losses(chip, x, p[None], differentiable=True).sum().backward()
            grads.append(p.grad)
        assert float(grads[1].abs().max()) > 0
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-7, atol=1e-9)
        before = chip.ledger.samples
        grid.residuals(chip, x, ph)
        mirrored = 2 if "symmetry" in extra else 1
        assert chip.ledger.samples - before == 3 * 6 * mirrored + 3 * 6
        before = chip.ledger.samples
        plain.residuals(chip, x, ph)
        assert chip.ledger.samples - before == 3 * 6 * mirrored + 3 * 6  # the same rows, found by de-duplication
    stein = PINNTask(Burgers(), sampling="grid", collocation=4, test_points=8, residual_points=4)
    xs = stein.sample_batch(torch.Generator().manual_seed(1))
    assert stein._grid_axes(xs) is None and xs.shape == (16, 2)
    with pytest.raises(ValueError, match="collocation: 1025 values per coordinate"):
        PINNTask(Burgers(), sampling="grid", collocation=1025, test_points=8, residual_points=4)


def test_input_warp_is_the_asinh_stretch_onto_the_box():
    """InputWarp on Burgers' x in [-1, 1], width 0.1 at the middle: ξ(±1) = ±1, ξ(0) = 0, ξ odd
    and increasing, ξ(0.1) = asinh(1)/asinh(10) (= 0.29396, by hand), slope at 0 (by central
    differences, h 1e-6) = 1/(0.1·asinh(10)) = 3.3353; t passes unchanged. Off the middle
    (center 0.5) the ends still map onto themselves and ξ(0.5) = the fraction asinh(15)/(asinh(15)
    + asinh(5)) of the way up; bad widths, names and a centre outside the box are refused."""
    warp = InputWarp(Burgers(), {"x": 0.1})
    v = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    xi = warp.axis(0, v)
    torch.testing.assert_close(xi[[0, 1000, 2000]], torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64),
                               rtol=0, atol=1e-15)
    torch.testing.assert_close(xi, -xi.flip(0), rtol=0, atol=1e-15)
    assert bool((xi.diff() > 0).all())
    point = torch.tensor([0.1], dtype=torch.float64)
    assert abs(float(warp.axis(0, point)) - 0.8813735870 / 2.9982229503) < 1e-9
    h = 1e-6
    slope = (warp.axis(0, torch.tensor([h], dtype=torch.float64)) - warp.axis(0, torch.tensor([-h], dtype=torch.float64))) / (2 * h)
    assert abs(float(slope) - 1 / (0.1 * 2.9982229503)) < 1e-6
    x = torch.tensor([[0.3, 0.7], [-0.02, 0.1]], dtype=torch.float64)
    out = warp(x)
    assert torch.equal(out[:, 1], x[:, 1]) and torch.equal(out[:, 0], warp.axis(0, x[:, 0]))
    off = InputWarp(Burgers(), {"x": {"width": 0.1, "center": 0.5}})
    ends = off.axis(0, torch.tensor([-1.0, 0.5, 1.0], dtype=torch.float64))
    frac = math.asinh(15) / (math.asinh(15) + math.asinh(5))
    torch.testing.assert_close(ends, torch.tensor([-1.0, -1 + 2 * frac, 1.0], dtype=torch.float64), rtol=0, atol=1e-14)
    for bad in ({"x": 0.0}, {"x": -1}, {"s": 0.1}, {"x": {"center": 0.0}}, {"x": {"width": 0.1, "shift": 0}}, {},
                {"x": float("nan")}, {"x": True}):
        with pytest.raises(ValueError, match="input_warp"):
            InputWarp(Burgers(), bad)
    with pytest.raises(ValueError, match="x.center 3 is outside the box"):
        InputWarp(Burgers(), {"x": {"width": 0.1, "center": 3}})


def test_task_input_warp_feeds_the_network_the_stretched_coordinate():
    """PINNTask(input_warp=...) on an ideal chip: the model at x equals the plain task's model at
    ξ(x) (the warp comes before the encoding); its finite-difference u_x is the chain rule's
    NN'(ξ)·ξ'(x) (to O(h²)); the separable grid fast path equals the generic differences with
    the warp too (and with the odd symmetry, the model stays exactly odd)."""
    chip, ph = _ideal_chip()
    kw = dict(estimator="finite_difference", collocation=6, test_points=8, residual_points=4, fd_step=[1e-4, 1e-3])
    plain = PINNTask(Burgers(), **kw)
    task = PINNTask(Burgers(), input_warp={"x": 0.05}, **kw)
    x = task.sample_batch(torch.Generator().manual_seed(3))
    xi = task.warp(x)
    assert float((xi - x).abs().max()) > 0.05
    f, g = task.model(chip, ph[None]), plain.model(chip, ph[None])
    torch.testing.assert_close(f(x), g(xi), rtol=1e-14, atol=1e-15)
    d = task.estimator.estimate(f, x, need=("u", "grad"))
    dg = plain.estimator.estimate(g, xi, need=("u", "grad"))
    xr = x[:, 0].clone().requires_grad_(True)
    dxi = torch.autograd.grad(task.warp.axis(0, xr).sum(), xr)[0]
    torch.testing.assert_close(d["grad"][..., 0], dg["grad"][..., 0] * dxi, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(d["grad"][..., 1], dg["grad"][..., 1], rtol=1e-6, atol=1e-8)
    chip, ph = _ideal_chip(net=TONN(SEP_NET))
    settings = torch.stack([ph, ph + 0.03])
    sep = dict(kw, separable=3, symmetry={"x": "odd"}, input_warp={"x": {"width": 0.05, "center": 0.0}},
               input_gain=[5.0, 1.0])
    grid, generic = PINNTask(Burgers(), sampling="grid", **sep), PINNTask(Burgers(), **sep)
    xg = grid.sample_batch(torch.Generator().manual_seed(4))
    assert grid._grid_axes(xg) is not None
    fast, slow = grid.residuals(chip, xg, settings), generic.residuals(chip, xg, settings)
    assert float(slow.abs().max()) > 0.1
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-9)
    model = generic.model(chip, ph[None])
    mirror = xg * torch.tensor([-1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(model(mirror), -model(xg), rtol=0, atol=1e-15)


def test_input_warp_in_the_scenario_schema_and_the_loader():
    from photonic_sim.scenarios.errors import ScenarioError
    from photonic_sim.scenarios.schema import PdeTask, validate
    from photonic_sim.training.names import PDE_BOXES
    from photonic_sim.training.pinn import make_pde

    ok = validate(PdeTask, dict(kind="pde", pde="burgers", input_warp={"x": {"width": 0.1, "center": 0.2}}),
                  "s.yaml", "task")
    assert ok.input_warp == {"x": {"width": 0.1, "center": 0.2}}
    assert validate(PdeTask, dict(kind="pde", pde="burgers", input_warp={"x": 0.1}), "s.yaml", "task").input_warp == {"x": 0.1}
    for bad in ({"y": 0.1}, {"x": 0}, {"x": {"center": 0.1}}, {"x": {"width": 0.1, "c": 0}}, "x", {"x": ".inf"}):
        with pytest.raises(ScenarioError, match="task.input_warp") as info:
            validate(PdeTask, dict(kind="pde", pde="burgers", input_warp=bad), "s.yaml", "task")
        assert "\n" not in str(info.value)
    for name, (lo, hi) in PDE_BOXES.items():  # the loader's boxes are the PDE classes' own
        pde = make_pde(name)
        assert (tuple(pde.lower), tuple(pde.upper)) == (lo, hi)


def test_separable_in_the_scenario_schema():
    from photonic_sim.scenarios.errors import ScenarioError
    from photonic_sim.scenarios.schema import PdeTask, validate

    ok = validate(PdeTask, dict(kind="pde", pde="burgers", separable=8), "s.yaml", "task")
    assert ok.separable == 8 and ok.io == (4, 8) and validate(PdeTask, dict(kind="pde", pde="hjb20", separable=2),
                                                               "s.yaml", "task").io == (42, 2)
    for bad in (0, 65, "eight", 2.5):
        with pytest.raises(ScenarioError, match="task.separable") as info:
            validate(PdeTask, dict(kind="pde", pde="burgers", separable=bad), "s.yaml", "task")
        assert "\n" not in str(info.value)
    with pytest.raises(ScenarioError, match="task.separable") as info:
        validate(PdeTask, dict(kind="pde", pde="burgers", separable=4,
                               fourier_features=dict(count=2, scale=1.0)), "s.yaml", "task")
    assert "fourier_features" in str(info.value)
