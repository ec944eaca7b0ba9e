"""sign_rge_step_gain against a diagonal quadratic, where every term has a closed form."""
import math

import pytest
import torch

from photonic_sim.training.diagnostics import linear_gain_theory, reference_gradient, sign_rge_step_gain


def quadratic(h: torch.Tensor, b: torch.Tensor):
    """L(θ) = ½ Σ h_j θ_j² + b·θ, batched over rows; gradient h·θ + b, Hessian diag(h)."""
    return lambda P: 0.5 * (h * P * P).sum(-1) + P @ b


@pytest.fixture
def problem():
    gen = torch.Generator().manual_seed(0)
    d = 400
    h = torch.rand(d, generator=gen, dtype=torch.float64) * 2.0
    b = torch.randn(d, generator=gen, dtype=torch.float64)
    theta = torch.randn(d, generator=gen, dtype=torch.float64)
    return h, b, theta, h * theta + b


def test_second_order_terms_are_exact_on_a_diagonal_quadratic(problem):
    h, b, theta, g = problem
    lr = 0.03
    r = sign_rge_step_gain(quadratic(h, b), theta, g, q=8, mu=0.01, lr=lr, trials=5,
                           generator=torch.Generator().manual_seed(1))
    half_trace = 0.5 * lr**2 * float(h.sum())
    # antithetic random signs: [L(θ+lr s) + L(θ−lr s)]/2 − L(θ) = ½ lr² Σ h_j s_j² = ½ lr² tr H
    assert r.random == pytest.approx(half_trace, rel=1e-9)
    # the sign step: linear part + ½ lr² tr H exactly (s_j² = 1), trial by trial hence on average
    assert r.actual == pytest.approx(r.linear + half_trace, rel=1e-9)
    assert r.ideal == pytest.approx(-lr * float(g.abs().sum()) + half_trace, rel=1e-9)
    assert r.loss == pytest.approx(float(quadratic(h, b)(theta[None])[0]), rel=1e-12)
    assert (r.d, r.q, r.trials) == (400, 8, 5)


@pytest.mark.parametrize("q", [16, 64])
def test_cosine_and_linear_gain_match_the_gaussian_predictions(problem, q):
    # Two-sided differences of a quadratic are exact directional derivatives, so ĝ is the
    # Gaussian-direction estimate of g itself; 300 trials put the means within a few %. (The
    # cosine formula is a ratio of means: at q = 4 the mean cosine is ~5 % below it.)
    h, b, theta, g = problem
    r = sign_rge_step_gain(quadratic(h, b), theta, g, q=q, mu=0.01, lr=0.01, trials=300,
                           generator=torch.Generator().manual_seed(2))
    assert r.cos_theory == pytest.approx(math.sqrt(q / (q + 401)))
    assert r.cos == pytest.approx(r.cos_theory, rel=0.05)
    assert r.linear == pytest.approx(r.linear_theory, rel=0.05)
    assert r.linear < 0


def test_linear_gain_does_not_depend_on_the_number_of_coordinates():
    # Equal |g|₂ spread over d coordinates: the predicted first-order gain of a sign step is
    # ≈ lr √(2q/π) |g|₂ for q ≪ d, whatever d is — the mechanism docs/classification.md cites.
    q, lr = 64, 0.01
    gains = [linear_gain_theory(torch.full((d,), 1.0 / math.sqrt(d), dtype=torch.float64), q, lr)
             for d in (4_000, 40_000, 400_000)]
    assert gains == pytest.approx([-lr * math.sqrt(2 * q / math.pi)] * 3, rel=0.01)


def test_bad_sizes_are_refused(problem):
    h, b, theta, g = problem
    with pytest.raises(ValueError, match="trials"):
        sign_rge_step_gain(quadratic(h, b), theta, g, q=4, mu=0.01, lr=0.01, trials=0,
                           generator=torch.Generator())


def test_chip_rge_estimates_follow_the_fo_reference_gradient():
    # The black-box estimates (chip.measure only) and the FO baseline's autograd gradient are two
    # views of one loss: on an exact chip (no noise, no quantizer; μ small, so the loss is close
    # to linear over ±μu) the mean cosine and the first-order gain of the sign step match the
    # Gaussian-direction predictions for the autograd gradient. 15 % covers the residual
    # curvature at μ = 0.01 and 40 trials of sampling error (measured: 3.7 % and 4.0 % below).
    from photonic_sim.chip import Chip
    from photonic_sim.cores.photonic import TONN
    from photonic_sim.cores.spec import preset
    from photonic_sim.devices import load_device_card
    from photonic_sim.training.data import load_digits
    from photonic_sim.training.tasks import ClassificationTask

    chip = Chip(TONN(preset("digits")), load_device_card("silicon_thermo_optic"), seed=0, ideal=True,
                dtype=torch.float64)
    task = ClassificationTask(load_digits(seed=0), batch_size=64)
    theta = chip.init_phases(torch.Generator().manual_seed(0))
    batch = task.sample_batch(torch.Generator().manual_seed(1))
    g = reference_gradient(task.closure(chip, batch, differentiable=True), theta)
    r = sign_rge_step_gain(task.closure(chip, batch), theta, g, q=16, mu=0.01, lr=0.01, trials=40,
                           generator=torch.Generator().manual_seed(2))
    assert r.d == chip.num_phases
    assert r.cos == pytest.approx(r.cos_theory, rel=0.15)
    assert r.linear == pytest.approx(r.linear_theory, rel=0.15)
    assert r.actual < 0


def test_zo_gain_row_on_the_digits_tonn():
    # What benchmarks/bench_zo_gain.py measures, at smoke size (2 trials, 1 reading), on the chip
    # the builder assembles: the digits TONN on the default noisy chip at the bench recipe's
    # q 16; the sign step has a first-order gain (g·sign ĝ > 0 needs the estimates to correlate
    # with the FO gradient) and the sizes are the network's.
    from photonic_sim import Experiment

    exp = Experiment(devices="silicon_thermo_optic", accelerator="tonn_space", model="digits", task="digits",
                     training={"strategy": "fo", "steps": 1, "batch_size": 512, "logit_scale": 10.0}, seed=0)
    chip, task, theta = exp.chip, exp.task, exp.params
    batch = task.sample_batch(torch.Generator().manual_seed(11))
    grad = reference_gradient(task.closure(chip, batch, differentiable=True), theta)
    r = sign_rge_step_gain(task.closure(chip, batch), theta, grad, q=16, mu=0.05, lr=0.01, trials=2,
                           generator=torch.Generator().manual_seed(12))
    assert (r.d, r.q, r.trials) == (3338, 16, 2)
    assert r.cos > 0 and r.linear < 0
    assert r.linear_theory < 0 and r.cos_theory == pytest.approx((16 / (16 + 3339)) ** 0.5)
