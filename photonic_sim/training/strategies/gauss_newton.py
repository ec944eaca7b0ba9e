"""Random-subspace Gauss–Newton from forward queries: the estimator :class:`SubspaceGaussNewton`
and the strategy ``zo-gn`` (:class:`ZoGN`).

Why: a zeroth-order estimate of ∇L from q probe settings uses one number per setting, the
loss. When the loss is a sum of squares, L(θ) = Σ_n ρ_n(θ)² (a PINN's weighted residuals at
the collocation points; a classifier's √(ℓ_b / B) per example), the chip's readings give the
whole vector ρ at every setting, and q probes v_1..q (rad) give a sketch of the Jacobian,

    S = [ρ(θ + v_1) − ρ(θ), …, ρ(θ + v_q) − ρ(θ)]  ≈  J V      ([N, q], V = [v_1 … v_q]).

The Levenberg–Marquardt step restricted to span(V) is

    a = −(SᵀS + λ·diag(SᵀS))⁻¹ Sᵀρ(θ),     Δθ = V a,

the Gauss–Newton step of the q-dimensional model ‖ρ(θ) + S a‖², damped by λ (Marquardt's
scaling). It is the random-subspace derivative-free Gauss–Newton method (Cartis & Roberts,
"Scalable subspace methods for derivative-free nonlinear least-squares optimization", Math.
Program. 2023; DFO-LS is its full-space form) with one batch of q + 1 settings a step and no
line search. The estimate written into ``.grad`` is ĝ = −Δθ (a Gauss–Newton-preconditioned
gradient, rad), so plain SGD at lr 1 takes the step and a cosine schedule shrinks it as the
run ends; ``max_step`` caps the largest coordinate change of Δθ (rad) before the optimizer
sees it, the trust region that keeps a step from leaving the model's range of validity.

Probes: each direction perturbs ``nnz`` coordinates (sparse: the model stays linear over
the probe) by ``codes`` DAC code steps where the chip has a phase lattice (``lattice``, set by
the strategy from its build argument: a probe of whole codes is realised exactly, the
quantizer shifts with it) and by ``mu`` rad elsewhere, with random signs (``dist``
"rademacher") or Gaussian values. With ``reflect`` a probe that would carry a phase across its
period boundary (0 ↔ p) goes the other way: there the heater jumps from no power to full
power, which thermal crosstalk and the γ error turn into a jump of the neighbours' phases, not a
small change. Queries per step: q + 1 rows in ONE closure call (the closure kind
"residuals": phases [P, d] → ρ [P, N]).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Estimator, Strategy
from .estimators import Estimate, _scatter, sparse_directions, support, wrap
from .options import choice, flag, integer, positive

DIRECTIONS = ("rademacher", "gaussian")


def evaluate_residuals(closure, batch: Tensor) -> Tensor:
    """One closure call on ``batch`` [P, d]; returns ρ [P, N] (N ≥ 1) in ``batch``'s dtype."""
    out = closure(batch)
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch.shape[0] or out.shape[1] < 1:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"closure must return residuals of shape [P, N]=({batch.shape[0]}, N), got {got}")
    return out.detach().to(batch.dtype)


def probe_steps(theta: Tensor, u: Tensor, step: Tensor, periods: Tensor | None, reflect: bool) -> Tensor:
    """Probe displacements v = step ⊙ u [q, d] (rad); with ``reflect``, an entry that would
    carry θ across its period boundary (θ mod p + v outside [0, p)) changes sign."""
    v = u * step
    if not reflect or periods is None:
        return v
    p = torch.nan_to_num(periods.to(theta.dtype), nan=0.0)
    where = wrap(theta, p)  # θ mod p on the periodic entries (the rows' own wrap)
    out = (p > 0) & ((where + v < 0) | (where + v >= p))
    return torch.where(out, -v, v)


def subspace_gauss_newton(closure, theta: Tensor, *, q: int, nnz: int | None, step: Tensor, dist: str,
                          damping: float, max_step: float | None, generator: torch.Generator,
                          mask: Tensor | None = None, periods: Tensor | None = None,
                          reflect: bool = True) -> Estimate:
    """The damped Gauss–Newton step in a random q-dimensional subspace (module docstring).

    ``step`` [d] is each coordinate's probe size (rad). Returns (ĝ = −Δθ [d], 0 outside
    ``mask``; the loss Σ ρ(θ)²). Rows [θ, θ + v_1..q], one call."""
    idx = support(theta, mask)
    d, m = theta.shape[-1], idx.numel()
    k = m if nnz is None else min(int(nnz), m)
    u = _scatter(sparse_directions(q, m, k, dist=dist, generator=generator, dtype=theta.dtype,
                                   device=theta.device), idx, d)
    v = probe_steps(theta, u, step, periods, reflect)
    rows = torch.cat([theta[None], theta + v])
    rho = evaluate_residuals(closure, wrap(rows, periods))
    r0, s = rho[0], (rho[1:] - rho[0]).T  # [N], [N, q]
    a_mat = s.T @ s
    scale = float(a_mat.diagonal().mean())
    if not scale > 0:  # no probe moved the residuals: no step
        return Estimate(torch.zeros_like(theta), (r0**2).sum())
    lhs = a_mat + damping * torch.diag(a_mat.diagonal()) + 1e-12 * scale * torch.eye(q, dtype=a_mat.dtype,
                                                                                        device=a_mat.device)
    coef = torch.linalg.solve(lhs, -(s.T @ r0))
    delta = coef @ v  # [d] rad
    if max_step is not None:
        largest = float(delta.abs().max())
        if largest > max_step:
            delta = delta * (max_step / largest)
    return Estimate(-delta, (r0**2).sum())


class SubspaceGaussNewton(Estimator):
    """Random-subspace Gauss–Newton (module docstring): ĝ = −Δθ from q + 1 residual vectors.

    Options: q (probe directions), nnz (coordinates each probe moves; null: all), codes (probe
    size in DAC code steps where the chip has a phase lattice; 0: ``mu`` everywhere), mu (probe
    size in rad elsewhere), dist ("rademacher" signs or "gaussian" values), damping (λ of the
    Marquardt term λ·diag(SᵀS)), max_step (largest coordinate change of Δθ, rad; null: no
    cap), reflect (probes do not cross a period boundary). ``lattice`` ([d] code step, rad;
    NaN/0: none) is set by the strategy.
    """

    options = {
        "q": integer(16, doc="probe directions per step"),
        "nnz": integer(64, 1, nullable=True, doc="coordinates each probe moves (at most all; null: all)"),
        "codes": integer(1, 0, doc="probe size in DAC code steps on lattice controls (0: mu everywhere)"),
        "mu": positive(0.03, doc="probe size (rad) on controls without a lattice"),
        "dist": choice("rademacher", DIRECTIONS, doc="probe values: random signs or Gaussian"),
        "damping": positive(0.1, doc="Marquardt damping lambda (times diag(S^T S))"),
        "max_step": positive(0.1, nullable=True, doc="cap on the largest coordinate change of a step (rad)"),
        "reflect": flag(True, doc="probes do not cross a phase's period boundary"),
    }
    lattice: Tensor | None = None

    def queries(self, n: int) -> int:
        return self.q + 1

    def probe_size(self, theta: Tensor) -> Tensor:
        """Each coordinate's probe size [d] (rad): ``codes`` code steps on the lattice, else ``mu``."""
        size = torch.full_like(theta, self.mu)
        if self.lattice is None or self.codes == 0:
            return size
        lat = self.lattice.to(theta.dtype)
        on = torch.isfinite(lat) & (lat > 0)
        return torch.where(on, self.codes * torch.nan_to_num(lat, nan=0.0), size)

    def estimate(self, closure, theta, *, mask=None, periods=None):
        return subspace_gauss_newton(closure, theta, q=self.q, nnz=self.nnz, step=self.probe_size(theta),
                                     dist=self.dist, damping=self.damping, max_step=self.max_step,
                                     generator=self.generator, mask=mask, periods=periods, reflect=self.reflect)


class ZoGN(Strategy):
    """``zo-gn``: :class:`SubspaceGaussNewton` + the common optimizer/schedule (default plain
    SGD: lr 1 takes the Gauss–Newton step; a cosine schedule shrinks it over the run). Needs
    the task's "residuals" closure (PINN tasks; classification as √(per-example loss / B)).
    Build argument ``lattice`` (``Chip.controls()["lattice"]``, which ``Experiment`` passes)
    sizes the probes in DAC codes."""

    name = "zo-gn"
    estimator_class = SubspaceGaussNewton
    closure_kind = "residuals"

    def _build(self) -> None:
        super()._build()
        self.estimator.lattice = self.lattice
