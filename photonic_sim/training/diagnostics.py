"""How much one ZO sign-RGE step gains, and why it does not depend on the number of controls.

``sign_rge_step_gain`` takes a batched loss closure (settings [P, d] → losses [P], e.g. a
task's closure on a fixed batch) and a *reference* gradient g at θ (for a chip: the
first-order baseline's autograd gradient; a diagnostic, never seen by a strategy). Over
``trials`` independent estimates ĝ (two-sided Gaussian RGE, q directions, radius μ — the same
``estimators.rge`` the strategies use) it measures the loss change of the step
θ → θ − lr·sign(ĝ) (the first step of sign-RGE, and of Adam, whose first update is sign(ĝ))
and splits it:

* ``linear``  = mean of −lr·g·sign(ĝ): the first-order gain;
* ``actual``  = mean of L(θ − lr·sign ĝ) − L(θ);
* ``random``  = mean over antithetic pairs of [L(θ + lr·s) + L(θ − lr·s)]/2 − L(θ), s uniform
  random signs: the second-order cost of a step of the same size that carries no signal,
  ½·lr²·tr(H) for a quadratic with Hessian H (exact for diagonal H);
* ``ideal``   = L(θ − lr·sign g) − L(θ): the sign step with the true gradient.

And compares two statistics with their Gaussian-direction predictions:

* cos(g, ĝ) ≈ √(q / (q + d + 1))  (E|ĝ|² = |g|²(d + q + 1)/q for a linear loss; a ratio of
  means, so the mean cosine falls below it for small q: 5.5 % at q = 4, 1.4 % at q = 16, 0.2 %
  at q = 64, d = 400);
* E[−lr·g·sign ĝ] ≈ −lr Σ_j |g_j| erf(|g_j| / (σ_j √2)), σ_j² = (|g|² + g_j²)/q
  (ĝ_j ≈ normal with mean g_j and that variance).

The second line is the point: with d coordinates of similar |g_j| and q ≪ d, the sum is
≈ lr·√(2q/π)·|g|₂, independent of d — a sign-RGE step gains as much on a network with ten
times the controls if its gradient norm is the same, and the random-step cost depends on
tr(H), not on d (docs/classification.md, "Why the dense ONN is not worse under ZO").
Losses are in the closure's units.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .strategies.estimators import Closure, evaluate, rge
from .strategies.fo import closure_gradient


@dataclass(frozen=True)
class StepGain:
    """One measurement (module doc): sizes ``d`` (controls), ``q``, ``lr``, ``mu`` (rad), ``trials``;
    ``loss`` L(θ), ``grad_norm`` |g|₂ of the reference gradient; ``cos`` / ``cos_theory``;
    ``linear`` / ``linear_theory``; ``actual``, ``random``, ``ideal`` loss changes (loss units)."""

    d: int
    q: int
    lr: float
    mu: float
    trials: int
    loss: float
    grad_norm: float
    cos: float
    cos_theory: float
    linear: float
    linear_theory: float
    actual: float
    random: float
    ideal: float

    def as_dict(self) -> dict:
        return asdict(self)


def linear_gain_theory(grad: Tensor, q: int, lr: float) -> float:
    """−lr Σ_j |g_j| erf(|g_j| / (σ_j √2)), σ_j² = (|g|² + g_j²)/q (module doc)."""
    g = grad.abs().to(torch.float64)
    sigma = ((g.pow(2).sum() + g.pow(2)) / q).sqrt()
    return float(-lr * (g * torch.special.erf(g / (sigma * math.sqrt(2.0)))).sum())


def sign_rge_step_gain(closure: Closure, theta: Tensor, grad: Tensor, *, q: int, mu: float, lr: float,
                       trials: int, generator: torch.Generator, reps: int = 1) -> StepGain:
    """Measure one sign-RGE step at ``theta`` against the reference gradient ``grad`` (module doc).

    ``reps`` repeats every evaluation of the step points and averages (for noisy closures);
    the estimates ĝ use single readings, as a strategy would.
    """
    if q < 1 or trials < 1 or reps < 1:
        raise ValueError(f"q, trials and reps must be >= 1, got {q}, {trials}, {reps}")
    theta = theta.detach().to(torch.float64)
    g = grad.detach().to(torch.float64)
    d = theta.numel()
    coss, signs = [], []
    for _ in range(trials):
        est = rge(closure, theta, q=q, mu=mu, generator=generator, two_sided=True)
        coss.append(float(g @ est.grad / (g.norm() * est.grad.norm())))
        signs.append(torch.sign(est.grad))
    s_est = torch.stack(signs)
    s_rnd = 2.0 * torch.randint(0, 2, (trials, d), generator=generator).to(torch.float64) - 1.0
    points = torch.cat([theta[None], theta - lr * s_est, theta + lr * s_rnd, theta - lr * s_rnd,
                        (theta - lr * torch.sign(g))[None]])
    with torch.no_grad():
        losses = torch.stack([evaluate(closure, points) for _ in range(reps)]).mean(0)
    base, steps = losses[0], losses[1 : 1 + trials]
    plus, minus = losses[1 + trials : 1 + 2 * trials], losses[1 + 2 * trials : 1 + 3 * trials]
    return StepGain(
        d=d, q=q, lr=lr, mu=mu, trials=trials, loss=float(base), grad_norm=float(g.norm()),
        cos=sum(coss) / trials, cos_theory=math.sqrt(q / (q + d + 1)),
        linear=float((-lr * s_est @ g).mean()), linear_theory=linear_gain_theory(g, q, lr),
        actual=float((steps - base).mean()), random=float(((plus + minus) / 2 - base).mean()),
        ideal=float(losses[-1] - base),
    )


def reference_gradient(closure: Closure, theta: Tensor, *, reps: int = 1) -> Tensor:
    """Mean over ``reps`` readings of d L/dθ at ``theta`` through a *differentiable* closure
    (e.g. a task's ``closure(chip, batch, differentiable=True)``, the FO baseline's view):
    the yardstick ``sign_rge_step_gain`` compares the estimates with."""
    theta = theta.detach().to(torch.float64)
    return torch.stack([closure_gradient(closure, theta)[0] for _ in range(reps)]).mean(0)
