"""Derivative estimators for PINN training without back-propagation through the model.

Every estimator takes a batched callable ``f(x: Tensor[M, d]) -> Tensor[..., M]`` (a leading
batch, e.g. P phase settings, is allowed on the output) and calls it ONCE per estimate, with all
shifted copies of all collocation points stacked into one [M, d] input.

Stein estimators approximate the Gaussian-smoothed model u_σ(x) = E_δ[f(x+δ)], δ ~ N(0, σ²I),
with nodes δ_i = σ·z_i and weights w_i (Σ w_i = 1), in antithetic form (docs/physics.md#bp-free-pinns);
σ may also be one width σ_j per coordinate (δ ~ N(0, diag σ_j²), δ_i = σ ⊙ z_i; below σ² → σ_j²
and σ⁴ → σ_j⁴ of the coordinate j differentiated):

    u        ≈ Σ w_i (f(x+δ_i) + f(x−δ_i)) / 2
    ∂_j u    ≈ Σ w_i δ_ij (f(x+δ_i) − f(x−δ_i)) / (2σ²)
    ∂²_jj u  ≈ Σ w_i (δ_ij² − σ²)(f(x+δ_i) + f(x−δ_i) − 2 f(x)) / (2σ⁴)
    Δu       = Σ_j ∂²_jj u

``SparseGridStein`` uses the level-ℓ Smolyak Gauss–Hermite grid, exact for polynomial f of total
degree ≤ 2ℓ−1 (value), ≤ 2ℓ−2 (gradient), ≤ 2ℓ−3 (second derivatives) — level 3: any quadratic
or cubic f is differentiated exactly.  For other f, level 3 is deterministic but biased: errors
O(σ⁶) in the value, O(σ⁴) in the gradient and O(σ²) in the second derivatives; the ∂²_jj estimate
also picks up −σ²/12·∂⁴_k f-type terms from every other coordinate k (the level-3 nodes have at
most two non-zero coordinates), so the Laplacian bias grows with d (tests pin closed forms);
``MonteCarloStein`` draws n fresh standard-normal z_i (weights 1/n) from its generator at each
estimate.  ``FiniteDifference`` (central, step h) and ``Autograd`` (first-order baseline only)
differentiate f itself, without smoothing.

Outputs (only the requested keys): "u" [..., N], "grad" [..., N, k], "diag2" [..., N, k]
(∂²u/∂x_j², j ∈ dims), "lap" [..., N] (Σ_{j ∈ dims} ∂²u/∂x_j²), where k = len(dims).
``dims`` restricts the coordinates that derivatives are taken along (default: all d).  For the
Stein estimators the smoothing still acts in all d dimensions (δ ~ N(0, σ²I_d)); only the
reported derivatives are restricted, which costs no extra evaluations.  For finite differences
only the coordinates in ``dims`` are stepped (2·len(dims)+1 points).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch

from .quadrature import smolyak_gauss_hermite

Model = Callable[[torch.Tensor], torch.Tensor]
NEEDS = ("u", "grad", "diag2", "lap")
DEFAULT_NEED = ("u", "grad", "lap")


def _check_need(need: Sequence[str]) -> tuple[str, ...]:
    need = tuple(need)
    bad = [n for n in need if n not in NEEDS]
    if bad or not need:
        raise ValueError(f"need must be a non-empty subset of {NEEDS}, got {need!r}")
    return need


def _needs_derivatives(need: Sequence[str]) -> bool:
    return any(n != "u" for n in need)


def _needs_second(need: Sequence[str]) -> bool:
    return "diag2" in need or "lap" in need


def _put_second(out: dict, diag2: torch.Tensor, need: Sequence[str]) -> None:
    """Store the second derivatives ``diag2`` [..., N, k] and/or their sum ``lap`` in ``out``,
    as ``need`` asks."""
    if "diag2" in need:
        out["diag2"] = diag2
    if "lap" in need:
        out["lap"] = diag2.sum(-1)


def _eval_stacked(f: Model, points: torch.Tensor, blocks: int, n: int) -> torch.Tensor:
    """f on [blocks·n, d] points → [..., blocks, n]."""
    out = f(points)
    if out.shape[-1:] != (blocks * n,):
        raise ValueError(
            f"f must map [M, d] to [..., M] with M = {blocks * n}, "
            f"got output shape {tuple(out.shape)}"
        )
    return out.reshape(*out.shape[:-1], blocks, n)


class DerivativeEstimator(ABC):
    """Common interface: ``estimate(f, x, need, dims) -> dict`` and ``num_evaluations``."""

    def __init__(self, d: int | None):
        if d is not None and (not isinstance(d, int) or d < 1):
            raise ValueError(f"d must be an integer >= 1, got {d!r}")
        self.d = d

    def _check_x(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or (self.d is not None and x.shape[1] != self.d):
            raise ValueError(f"x must have shape [N, {self.d or 'd'}], got {tuple(x.shape)}")

    def _dims(self, dims: Sequence[int] | None, d: int) -> list[int]:
        if dims is None:
            return list(range(d))
        dims = list(dims)
        if not dims or any(not 0 <= j < d for j in dims) or len(set(dims)) != len(dims):
            raise ValueError(f"dims must be distinct indices in [0, {d}), got {dims!r}")
        return dims

    @abstractmethod
    def estimate(
        self,
        f: Model,
        x: torch.Tensor,
        need: Sequence[str] = DEFAULT_NEED,
        dims: Sequence[int] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Estimates at the N points x [N, d]; see the module docstring for the keys."""

    @abstractmethod
    def num_evaluations(
        self, n_points: int, need: Sequence[str] = DEFAULT_NEED, dims: Sequence[int] | None = None
    ) -> int:
        """Forward evaluations of f (rows of the stacked input) one estimate costs."""


class _SteinEstimator(DerivativeEstimator):
    """Antithetic Stein forms on nodes z [K, d] (standard normal) with weights [K].

    ``sigma``: one width (isotropic, a float) or d widths σ_j, one per coordinate (a float64
    tensor [d]): the anisotropic smoothing δ ~ N(0, diag(σ_j²)), δ = σ ⊙ z, for which every
    formula of the module docstring holds with σ² → σ_j² and σ⁴ → σ_j⁴ of the coordinate j
    differentiated (the Gaussian factorises over coordinates).
    """

    def __init__(self, d: int, sigma):
        super().__init__(d)
        self.sigma = sigma

    @property
    def sigma(self):
        """The width: a float, or a float64 tensor [d] (one per coordinate); set either."""
        return self._sigma

    @sigma.setter
    def sigma(self, value) -> None:
        if not isinstance(value, (int, float)) and torch.as_tensor(value).numel() == 1:
            value = float(torch.as_tensor(value))
        if isinstance(value, (int, float)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"sigma must be a finite number > 0, got {value!r}")
            self._sigma = float(value)
            return
        s = torch.as_tensor(value, dtype=torch.float64).detach().reshape(-1).cpu()
        if s.numel() != self.d or not bool((torch.isfinite(s) & (s > 0)).all()):
            raise ValueError(f"sigma must be one number > 0 or {self.d} of them (one per coordinate)")
        self._sigma = s.clone()

    @abstractmethod
    def _nodes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(z [K, d], w [K]) float64 for one estimate."""

    @abstractmethod
    def _num_nodes(self) -> int:
        """K."""

    def _mirror(self) -> tuple[torch.Tensor, int] | None:
        """For a node set closed under negation with the origin among its nodes: (m [K], o),
        z[m[i]] = −z[i] exactly and z[o] = 0; else None (every node is evaluated at ±)."""
        return None

    def estimate(self, f, x, need=DEFAULT_NEED, dims=None):
        need = _check_need(need)
        self._check_x(x)
        dims = self._dims(dims, self.d)
        z, w = self._nodes()
        z, w = z.to(x), w.to(x)
        sig = self.sigma if isinstance(self.sigma, float) else self.sigma.to(x)  # σ or σ_j [d]
        sub = sig if isinstance(sig, float) else sig[dims]  # the differentiated coordinates' widths
        delta = sig * z  # [K, d]
        k, n = delta.shape[0], x.shape[0]
        center = _needs_second(need)
        mirror = self._mirror()
        if mirror is not None:  # x + δ_i for every node: x − δ_i is x + δ_m(i), x is x + δ_o
            m, o = mirror
            points = (x.unsqueeze(0) + delta.unsqueeze(1)).reshape(-1, x.shape[1])
            fp = _eval_stacked(f, points, k, n)  # [..., K, N]
            fm, f0 = fp[..., m.to(x.device), :], (fp[..., o, :] if center else None)
        else:
            shifted = [x.unsqueeze(0) + delta.unsqueeze(1), x.unsqueeze(0) - delta.unsqueeze(1)]
            points = torch.cat(([x.unsqueeze(0)] if center else []) + shifted).reshape(-1, x.shape[1])
            vals = _eval_stacked(f, points, (2 * k + 1) if center else 2 * k, n)
            f0 = vals[..., 0, :] if center else None
            fp, fm = vals[..., -2 * k : -k, :], vals[..., -k:, :]  # [..., K, N]
        out = {}
        if "u" in need:
            out["u"] = torch.einsum("k,...kn->...n", w, fp + fm) / 2
        if "grad" in need:
            dsub = delta[:, dims]
            out["grad"] = torch.einsum("k,kj,...kn->...nj", w, dsub, fp - fm) / (2 * sub**2)
        if center:
            coef = w.unsqueeze(1) * (delta[:, dims] ** 2 - sub**2)  # [K, k]
            second = fp + fm - 2 * f0.unsqueeze(-2)
            diag2 = torch.einsum("kj,...kn->...nj", coef, second) / (2 * sub**4)
            _put_second(out, diag2, need)
        return out

    def num_evaluations(self, n_points, need=DEFAULT_NEED, dims=None):
        need = _check_need(need)
        if self._mirror() is not None:
            return n_points * self._num_nodes()
        return n_points * (2 * self._num_nodes() + (1 if _needs_second(need) else 0))


class SparseGridStein(_SteinEstimator):
    """Stein estimator on the level-ℓ Smolyak Gauss–Hermite grid (925 nodes for d=21, ℓ=3).

    The grid is symmetric (−z is a node whenever z is, with the same weight, bit for bit) and
    holds the origin, so the 2K + 1 points x, x ± δ_i of the antithetic forms are only K
    distinct points x + δ_i: f is evaluated there once each. Cost per estimate: N·K evaluations
    (925 per point for d = 21, level 3), with or without second derivatives; the estimates are
    the same, to the last bit, as evaluating every ± pair (x + (−δ) and x − δ round alike).
    """

    def __init__(self, d: int, sigma: float, level: int = 3):
        super().__init__(d, sigma)
        z, w = smolyak_gauss_hermite(d, level)
        self.level = level
        self._z = torch.tensor(z, dtype=torch.float64)
        self._w = torch.tensor(w, dtype=torch.float64)
        index = {tuple(row): i for i, row in enumerate(self._z.tolist())}
        mirror = [index.get(tuple(-v for v in row)) for row in self._z.tolist()]
        origin = index.get((0.0,) * d)
        symmetric = None not in mirror and origin is not None and bool((self._w[mirror] == self._w).all())
        self._mirror_map = (torch.tensor(mirror, dtype=torch.long), origin) if symmetric else None

    def _nodes(self):
        return self._z, self._w

    def _mirror(self):
        return self._mirror_map

    def _num_nodes(self):
        return self._z.shape[0]


class MonteCarloStein(_SteinEstimator):
    """Stein estimator on n fresh N(0, I) draws per estimate (weights 1/n), from ``generator``.

    The ± antithetic form pairs every draw with its mirror image; cost N·(2n+1) with second
    derivatives, N·2n without.  The draws are made on the generator's device in float64.
    """

    def __init__(self, d: int, sigma: float, n: int, generator: torch.Generator):
        super().__init__(d, sigma)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if not isinstance(generator, torch.Generator):
            raise ValueError("generator must be a torch.Generator")
        self.n = n
        self.generator = generator

    def _nodes(self):
        g = self.generator
        z = torch.randn(self.n, self.d, generator=g, dtype=torch.float64, device=g.device)
        return z, torch.full((self.n,), 1.0 / self.n, dtype=torch.float64, device=g.device)

    def _num_nodes(self):
        return self.n


class FiniteDifference(DerivativeEstimator):
    """Central differences of f itself (no smoothing), step h along each coordinate in dims.

    u = f(x); ∂_j u = (f(x+h_j e_j) − f(x−h_j e_j)) / (2h_j); ∂²_jj u = (f(x+h_j e_j) +
    f(x−h_j e_j) − 2f(x)) / h_j².  ``h`` is one step for every coordinate or one per coordinate
    (a sequence of d steps, in the coordinates' order: e.g. a finer step along x than along t
    for a front in x).  Errors O(h_j²) per coordinate: h_j²/6·∂³_j f in ∂_j u, h_j²/12·∂⁴_j f in
    ∂²_jj u.  Cost N·(2·len(dims)+1) with derivatives, N for "u" only.
    """

    def __init__(self, d: int, h: float | Sequence[float]):
        super().__init__(d)
        if isinstance(h, (int, float)) and not isinstance(h, bool):
            steps = (float(h),)
        elif isinstance(h, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in h):
            steps = tuple(float(v) for v in h)
        else:
            steps = ()
        if len(steps) not in (1, d) or not all(math.isfinite(v) and v > 0 for v in steps):
            raise ValueError(f"h must be one finite step > 0 or {d} of them (one per coordinate), got {h!r}")
        self.h = steps[0] if len(steps) == 1 and not isinstance(h, (list, tuple)) else steps

    @property
    def steps(self) -> tuple[float, ...]:
        """The step h_j of each of the d coordinates."""
        return (self.h,) * self.d if isinstance(self.h, float) else \
            (self.h * self.d if len(self.h) == 1 else self.h)

    @staticmethod
    def first(fp, fm, h):
        """∂u ≈ (f(x+h) − f(x−h)) / (2h), from the shifted values (tensors; h broadcasts)."""
        return (fp - fm) / (2 * h)

    @staticmethod
    def second(f0, fp, fm, h):
        """∂²u ≈ (f(x+h) + f(x−h) − 2f(x)) / h², from the values (tensors; h broadcasts)."""
        return (fp + fm - 2 * f0) / h**2

    def estimate(self, f, x, need=DEFAULT_NEED, dims=None):
        need = _check_need(need)
        self._check_x(x)
        dims = self._dims(dims, self.d)
        n = x.shape[0]
        if not _needs_derivatives(need):
            return {"u": _eval_stacked(f, x, 1, n)[..., 0, :]}
        if isinstance(self.h, float):  # one step: scalar arithmetic
            h = self.h
            steps = h * torch.eye(self.d, dtype=x.dtype, device=x.device)[dims]  # [k, d]
        else:
            hs = torch.tensor(self.steps, dtype=x.dtype, device=x.device)
            steps = torch.diag(hs)[dims]
            h = hs[dims]  # [k]: divides the [..., N, k] differences coordinate by coordinate
        x0 = x.unsqueeze(0)
        points = torch.cat([x0, x0 + steps.unsqueeze(1), x0 - steps.unsqueeze(1)])
        points = points.reshape(-1, x.shape[1])
        k = len(dims)
        vals = _eval_stacked(f, points, 2 * k + 1, n)
        f0 = vals[..., 0, :]
        fp = vals[..., 1 : k + 1, :].transpose(-1, -2)  # [..., N, k]
        fm = vals[..., k + 1 :, :].transpose(-1, -2)
        out = {}
        if "u" in need:
            out["u"] = f0
        if "grad" in need:
            out["grad"] = self.first(fp, fm, h)
        if _needs_second(need):
            _put_second(out, self.second(f0.unsqueeze(-1), fp, fm, h), need)
        return out

    def num_evaluations(self, n_points, need=DEFAULT_NEED, dims=None):
        need = _check_need(need)
        if not _needs_derivatives(need):
            return n_points
        k = len(self._dims(dims, self.d))
        return n_points * (2 * k + 1)


def _grad_or_zero(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if not out.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(out, x, create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


class Autograd(DerivativeEstimator):
    """Exact derivatives of f by reverse-mode autograd (first-order baseline / reference only).

    The graph is kept (create_graph=True), so the outputs stay differentiable with respect to
    the parameters of f.  Requires that row m of f's output depends on input row m only.
    Costs one forward pass (``num_evaluations`` = N); the 1 + len(dims) backward passes per
    leading-batch element are not counted as evaluations.
    """

    def __init__(self):
        super().__init__(None)

    def estimate(self, f, x, need=DEFAULT_NEED, dims=None):
        need = _check_need(need)
        self._check_x(x)
        dims = self._dims(dims, x.shape[1])
        n = x.shape[0]
        if not _needs_derivatives(need):
            return {"u": _eval_stacked(f, x, 1, n)[..., 0, :]}
        xg = x.detach().requires_grad_(True)
        vals = _eval_stacked(f, xg, 1, n)[..., 0, :]  # [..., N]
        batch = vals.shape[:-1]
        flat = vals.reshape(-1, n)
        grads, diag2s = [], []
        for row in flat:  # leading-batch elements (phase settings), not collocation points
            g = _grad_or_zero(row.sum(), xg)  # [N, d]
            grads.append(g[:, dims])
            if _needs_second(need):
                diag2s.append(
                    torch.stack([_grad_or_zero(g[:, j].sum(), xg)[:, j] for j in dims], dim=-1)
                )
        out = {}
        if "u" in need:
            out["u"] = vals
        if "grad" in need:
            out["grad"] = torch.stack(grads).reshape(*batch, n, len(dims))
        if _needs_second(need):
            _put_second(out, torch.stack(diag2s).reshape(*batch, n, len(dims)), need)
        return out

    def num_evaluations(self, n_points, need=DEFAULT_NEED, dims=None):
        _check_need(need)
        return n_points
