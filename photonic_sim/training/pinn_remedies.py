"""Training remedies for hard PINNs, usable by any PDE of the library (docs/physics.md#bp-free-pinns).

Four recipe options of :class:`~photonic_sim.training.pinn.PINNTask` (scenario ``task:`` keys
in brackets); none queries the chip by itself:

* :class:`SigmaSchedule` (``sigma_final``, ``sigma_decay_steps``): a Stein smoothing width that
  shrinks during training, geometrically from σ₀ to σ₁ over T steps and constant afterwards,

      σ(t) = σ₀ · (σ₁/σ₀)^{min(t/T, 1)}     (PDE coordinates, t = training steps done).

  A Stein estimator differentiates the Gaussian smoothing u_σ of the network, so the trained
  u_σ — not the network — satisfies the PDE, and its sparse-grid estimate carries an O(σ²) bias
  in the second derivatives; a wide σ early smooths the loss landscape, a small σ late makes the
  estimated derivatives those of the network (both errors → 0 as σ → 0).

* :class:`ResidualSampler` (``resample_pool``, ``resample_k``, ``resample_c``): residual-based
  adaptive sampling of the collocation points (RAD, Wu et al. 2023, CMAME 403, 115671). A pool
  of ``pool`` uniform points carries a score s_i (the last squared residual measured there);
  each batch draws N points from the pool, with replacement, with probability

      p_i ∝ s_i^k / mean(s^k) + c,

  so c → ∞ is uniform sampling and c = 0 samples in proportion to the residual. Points not yet
  measured get the largest known score (they are drawn early). The scores come for free: the
  training loss already measures r² at the batch points (mean over the closure's phase
  settings; stale by the steps since the point was last drawn). ``refresh_every`` steps, the
  whole pool is redrawn uniformly (scores reset), so the points do not stay on a fixed set.

* :func:`causal_weights` (``causal_eps``, ``causal_bins``): causal training for time-dependent
  PDEs (Wang, Sankaran & Perdikaris 2024, CMAME 421, 116813). The batch is cut into ``bins``
  equal slices of the time coordinate (``pde.names`` entry "t"); slice k's mean squared residual
  L_k is weighted by w_k = exp(−ε Σ_{j<k} L_j), the weights held fixed (computed from the mean
  of L over the closure's phase settings, the stop-gradient of the paper), and the loss is
  Σ_k w_k L_k / K. A later time slice counts only once the earlier ones are solved.

* :func:`sobol_points` (``sampling: sobol``): each step's collocation points as randomized
  quasi-Monte Carlo (for PINNs: Wu et al. 2023, the RAD paper's study of non-adaptive
  sampling): the first N points of a scrambled Sobol sequence, scrambled afresh every step (linear
  matrix scramble and digital shift of ``torch.quasirandom.SobolEngine``, seeded from the
  batch generator, so a seed and a resumed run reproduce them). Every point is still uniform on
  the box, so the batch loss stays an unbiased estimate of the mean squared residual; but the
  N points cover the box evenly (low discrepancy) instead of clumping, so for a smooth
  residual the batch mean varies far less from step to step. With few points per step
  (``collocation`` 10 buys a ZO run its steps) that sampling noise, not the gradient
  estimator, is what stops training: Darcy FO + AD at 10 points per step and 1500 steps ends
  on rel. L2 1.05e-2 with uniform points and 2.5e-3 with these (seed 1; docs/pinn.md).

* :func:`grid_points` (``sampling: grid``): each step's collocation points as the grid of n
  values per coordinate (n = ``collocation``, n^d points), the values drawn uniformly afresh
  every step (the columns of n uniform points), as separable PINNs train (Cho et al. 2023). For
  a separable model the grid is what makes points cheap: a derivative stencil moves one
  coordinate, so the n^d points need only the 3n factor rows per coordinate, and with finite
  differences the task differences each factor on its own and forms the products on the
  grid (``PINNTask._grid_derivatives``: Π n_j·R multiply-adds per setting, no gather per point).
  On Burgers a 50 × 50 grid (2500 points) costs about a quarter of the time a step of 250
  uniform points costs, but at the same steps ends higher (docs/pinn.md: the time, not the
  accuracy, is what the grid buys there).

A fifth option changes the network's input rather than the loss:

* :class:`FourierFeatures` (``fourier_features: {count, scale, seed, include_input}``): random
  Fourier-feature inputs (Tancik et al. 2020, NeurIPS). Electronic pre-processing before the
  modulators: the normalised coordinate ẑ = a ⊙ x + b ∈ [−1, 1]^d (PDE module docstring) is
  encoded as

      φ(ẑ) = [g ⊙ ẑ (if include_input), sin(2π B ẑ), cos(2π B ẑ)]   ∈ R^{d·[include_input] + 2m},

  B [m, d] with B_kj = s_j · N(0, 1) drawn once (float64, CPU generator seeded by ``seed``),
  s_j the scale of coordinate j (cycles per unit of ẑ; one number or one per coordinate, 0
  leaves coordinate j out of the features), g the task's ``input_gain`` (1 when unset). The
  network's input width is that of φ. The encoding is part of the model function x ↦ NN(φ(ẑ(x))),
  so every derivative estimator differentiates with respect to x through it (finite
  differences and Stein shift x; autograd runs through sin/cos). B is deterministic from the
  configuration: a resumed run rebuilds the same features, nothing is checkpointed.

The input can also be stretched before it is encoded (with or without Fourier features):

* :class:`InputWarp` (``input_warp: {coordinate: w}`` or ``{coordinate: {width: w, center: c}}``):
  a sharp feature at c (a front, a boundary layer) gets more of the input's range. Coordinate j
  in [lo, hi] reaches the encoding as

      ξ_j = lo + (hi − lo) · (A(x_j) − A(lo)) / (A(hi) − A(lo)),   A(v) = asinh((v − c) / w),

  a smooth, monotone map of the box onto itself (c the middle of the box by default): linear
  within about w of c, logarithmic beyond, so the slope at c is (hi − lo)/(w (A(hi) − A(lo)))
  times the plain input's (Burgers, w = 0.1: 3.3×, and the smooth outer part compressed). The
  model is x ↦ NN(encode(ξ(x))), so every estimator differentiates with respect to x through
  it; ``symmetry`` reflects x before the warp, so the model keeps its parity for any c. The
  points are not moved: ``sampling`` still draws them in x.

A sixth changes the form of the model:

* :class:`Separable` (``separable: R``): a separable, rank-R model (the CP form of separable
  PINNs, Cho et al. 2023, NeurIPS) read from ONE network F: R^{2d} → R^R,

      NN(x) = Σ_{r<R} Π_{j<d} F(ψ_j(z))_r,   ψ_j(z) = [z_j e_j, e_j],

  z the encoded point (gain included): the chip row of coordinate j carries its value in slot j,
  zeros in the others, and a tag 1 in slot d + j, so the factor of each coordinate is a
  function of that coordinate alone (the tag lets the one network tell them apart). A point
  costs d chip rows. A solution with a moving front can still be of low separable rank:
  Burgers' Cole–Hopf solution, written as the network's part NN = (u + sin πx)/(t(1 − x²)), is
  within rel. L2 4.5e-2 / 1.2e-2 / 1.7e-3 of its best rank 3 / 4 / 6 approximation (SVD of an
  800 × 400 grid), so each factor network only has to resolve the front in x, a
  one-dimensional function, and the t factors stay smooth. Products and sums are electronic,
  after the readout, as the bias and the transform are.

A seventh builds a known symmetry of the solution into the network (a hard constraint, as the
PDE's transform builds in its boundary conditions):

* :class:`Symmetry` (``symmetry: {coordinate: odd | even}``): with R_j the reflection of
  coordinate j about the middle of the box (x_j → lower_j + upper_j − x_j), the model is the
  projection of the network onto the functions odd (s_j = −1) or even (s_j = +1) under each
  named reflection,

      NN_sym(x) = 2^{−k} Σ_{S ⊆ {j_1 … j_k}} (Π_{j ∈ S} s_j) · NN(R_S x),

  for k named coordinates (2^k images of every point, read in the same chip call, so a query
  costs 2^k times the rows). Burgers' solution is odd in x (its initial profile −sin(πx) is,
  and the PDE keeps it so): made odd, the network keeps the front at x = 0 by construction. The
  projection is part of the model function, so every derivative estimator differentiates it.

And one option changes how an evaluation scores the phases, for ``keep: lowest_eval_loss``
(``TrainConfig.keep``: a run ends on its best-scored evaluation):

* :func:`dual_norm_sq` (``eval_loss: h_minus_1`` / ``h_minus_2``, ``eval_grid`` G): a negative
  Sobolev norm of the residual r on the PDE box Ω = Π_j [lower_j, upper_j], from r on a G^d
  midpoint grid,

      ‖r‖²_{H^{-s}} = |Ω| Σ_k r̂_k² / λ_k^s,   r̂_k = G^{-d} Σ_i r(x_i) φ_k(t_i),
      φ_k(t) = Π_j √2 sin(k_j π t_j),   λ_k = Σ_j (k_j π / L_j)²,   k_j = 1 … G,

  (t ∈ (0, 1)^d the box coordinate, L_j its edges; the sine basis is the Dirichlet Laplacian's,
  orthonormal on the unit box, and exactly orthogonal on the midpoints, so the sums are a
  discrete sine transform). The mean squared residual weights every frequency alike, so a
  residual that no network of the solution's form can remove (Darcy: r = 1 at the corners,
  where the built-in boundary factor forces Δu = 0) swamps the error that matters. The dual
  norms weight the residual as the error it causes: for −Δe = r with e = 0 on ∂Ω (the error of
  a Poisson-type PDE, zero boundary built in), ‖∇e‖ = ‖r‖_{H^{-1}} and ‖e‖ = ‖r‖_{H^{-2}}, so on
  Darcy (1 + cΔu = 0) ‖r‖_{H^{-2}} / c is the L2 error, estimated without the reference
  solution. For other operators they are a smoothness-weighted score of the residual, not an
  error bound.
"""

from __future__ import annotations

import math

import torch

from photonic_sim.training.names import MAX_SEPARABLE_RANK, symmetry_problem, warp_problem

Tensor = torch.Tensor


class Symmetry:
    """The symmetric projection of a network (module docstring) for ``pde``: ``spec`` maps
    coordinate names of ``pde.names`` to "odd" or "even" (1 .. 8 of them)."""

    def __init__(self, pde, spec: dict) -> None:
        names = tuple(pde.names)
        problem = symmetry_problem(names, spec)
        if problem:
            raise ValueError(f"symmetry: {problem}")
        self.count = 2 ** len(spec)
        self.parity = {names.index(name): (-1.0 if kind == "odd" else 1.0) for name, kind in spec.items()}
        """Coordinate index → s_j (−1 odd, +1 even) of the named coordinates."""
        self._bounds_sum = {j: float(pde.lower[j]) + float(pde.upper[j]) for j in self.parity}
        # image `mask` reflects the named coordinates whose bit is set: x * flip + shift, sign s
        self.signs = torch.ones(self.count, dtype=torch.float64)
        self._flip = torch.ones(self.count, len(names), dtype=torch.float64)
        self._shift = torch.zeros(self.count, len(names), dtype=torch.float64)
        for mask in range(self.count):
            for bit, (name, kind) in enumerate(spec.items()):
                if mask >> bit & 1:
                    j = names.index(name)
                    self._flip[mask, j], self._shift[mask, j] = -1.0, self._bounds_sum[j]
                    if kind == "odd":
                        self.signs[mask] = -self.signs[mask]

    def images(self, x: Tensor) -> Tensor:
        """x [M, d] → its 2^k images [2^k·M, d], image-major (image 0 is x itself)."""
        flip, shift = self._flip.to(x), self._shift.to(x)
        return (x.unsqueeze(0) * flip.unsqueeze(1) + shift.unsqueeze(1)).reshape(-1, x.shape[-1])

    def axis_images(self, j: int, v: Tensor) -> tuple[Tensor, Tensor]:
        """Values v [...] of coordinate j alone → (signs [I], images [I, ...]): v with sign 1 and,
        when j is named, its reflection lower_j + upper_j − v with sign s_j (I = 2), else v
        alone (I = 1). A separable model's factor of j projects as Σ_i signs_i G(images_i) / I."""
        if j not in self.parity:
            return torch.ones(1, dtype=torch.float64), v[None]
        return torch.tensor([1.0, self.parity[j]], dtype=torch.float64), torch.stack([v, self._bounds_sum[j] - v])

    def combine(self, values: Tensor) -> Tensor:
        """values [..., 2^k·M] of the images → NN_sym [..., M]."""
        v = values.reshape(*values.shape[:-1], self.count, values.shape[-1] // self.count)  # (no -1: P may be 0)
        return (v * self.signs.to(v).unsqueeze(-1)).sum(-2) / self.count


class InputWarp:
    """A stretched input coordinate (module docstring) for ``pde``: ``spec`` maps coordinate
    names of ``pde.names`` to a width w (the feature at the box's middle) or to {width: w,
    center: c} (c inside the box). Coordinates not named pass unchanged."""

    def __init__(self, pde, spec: dict) -> None:
        names = tuple(pde.names)
        problem = warp_problem(names, spec)
        if problem:
            raise ValueError(f"input_warp: {problem}")
        self.axes: dict[int, tuple[float, float, float, float]] = {}
        """Coordinate index → (w, c, lower, upper) of the warped coordinates."""
        for name, value in spec.items():
            j = names.index(name)
            lo, hi = float(pde.lower[j]), float(pde.upper[j])
            width = float(value["width"] if isinstance(value, dict) else value)
            center = float(value.get("center", (lo + hi) / 2) if isinstance(value, dict) else (lo + hi) / 2)
            if not lo <= center <= hi:
                raise ValueError(f"input_warp: {name}.center {center:g} is outside the box "
                                 f"(allowed: {lo:g} .. {hi:g})")
            self.axes[j] = (width, center, lo, hi)

    def axis(self, j: int, v: Tensor) -> Tensor:
        """Values v [...] of coordinate j → ξ_j(v) (v itself when j is not warped)."""
        if j not in self.axes:
            return v
        w, c, lo, hi = self.axes[j]
        a_lo, a_hi = math.asinh((lo - c) / w), math.asinh((hi - c) / w)
        return lo + (hi - lo) * (torch.asinh((v - c) / w) - a_lo) / (a_hi - a_lo)

    def __call__(self, x: Tensor) -> Tensor:
        """Points x [M, d] → the warped points [M, d]."""
        return torch.stack([self.axis(j, x[..., j]) for j in range(x.shape[-1])], -1)


class Separable:
    """A separable (rank-R, CP) model of d coordinates on ONE network (module docstring):
    NN(x) = Σ_{r<R} Π_{j<d} F(ψ_j(z))_r, with F the chip's network 2d → R and ψ_j(z) =
    [z_j e_j, e_j] the modulator row of coordinate j alone (its encoded value in slot j, a tag
    1 in slot d + j). ``rows_of`` and ``combine`` are the chip rows of M points and their
    products and sum; ``distinct`` the rows a chip call needs (each distinct row read once)."""

    def __init__(self, dim: int, rank: int) -> None:
        if isinstance(rank, bool) or int(rank) != rank or not 1 <= rank <= MAX_SEPARABLE_RANK:
            raise ValueError(f"separable: {rank!r} is out of range (allowed: an integer rank in "
                             f"1 .. {MAX_SEPARABLE_RANK})")
        if int(dim) != dim or dim < 1:
            raise ValueError(f"separable: need a PDE of >= 1 coordinates, got {dim!r}")
        self.dim, self.rank = int(dim), int(rank)
        self.rows = self.dim  # chip rows per point
        self.width = 2 * self.dim  # network inputs

    def rows_of(self, z: Tensor) -> Tensor:
        """Encoded points z [M, d] → the factor rows [d·M, 2d], coordinate-major (row j·M + m
        is ψ_j(z_m))."""
        m, d = z.shape[-2], self.dim
        if z.shape[-1] != d:
            raise ValueError(f"separable: points need {d} coordinates, got {z.shape[-1]}")
        eye = torch.eye(d, dtype=z.dtype, device=z.device)
        values = z.transpose(-1, -2).unsqueeze(-1) * eye.unsqueeze(1)  # [d, M, d]: z_j in slot j
        return torch.cat([values, eye.unsqueeze(1).expand(d, m, d)], -1).reshape(d * m, 2 * d)

    @staticmethod
    def distinct(rows: Tensor) -> tuple[Tensor, Tensor]:
        """(the distinct rows [U, 2d], index [d·M] of each row among them). The points of one
        call share coordinates (a derivative stencil moves one coordinate at a time, a mirror
        image only the mirrored one), so their factor rows repeat: a chip call reads each
        distinct row once and the readings are gathered back (for finite differences in (x, t)
        with x mirrored, 9 rows per point instead of 20). Not for rows that carry autograd
        derivatives in x (two points with equal coordinates would share one point's graph)."""
        uniq, index = torch.unique(rows, dim=0, return_inverse=True)
        return uniq, index

    def combine(self, out: Tensor) -> Tensor:
        """Readings [..., d·M, R] of ``rows_of``'s rows → NN [..., M]: the product over the
        coordinates' factors, summed over the rank."""
        if out.shape[-1] != self.rank or out.shape[-2] % self.dim:
            raise ValueError(f"separable: readings need [..., {self.dim}*M, {self.rank}], got {tuple(out.shape)}")
        f = out.reshape(*out.shape[:-2], self.dim, out.shape[-2] // self.dim, self.rank)
        return f.prod(-3).sum(-1)

    def axis_rows(self, j: int, z: Tensor) -> Tensor:
        """The factor rows ψ_j [m, 2d] of m encoded values z [m] of coordinate j alone."""
        rows = torch.zeros(z.shape[0], self.width, dtype=z.dtype, device=z.device)
        rows[:, j], rows[:, self.dim + j] = z, 1.0
        return rows

    @staticmethod
    def grid_products(factors: list[Tensor]) -> Tensor:
        """Factor readings of a tensor-product grid, one [..., n_j, R] per coordinate (in the
        coordinates' order) → Σ_r Π_j F_j [..., Π_j n_j], the grid points in C order (the last
        coordinate fastest, as :func:`grid_points`). Costs Π n_j · R per leading element
        instead of d · Π n_j · R factor reads: the separable form's point on a grid."""
        acc = factors[0]
        for f in factors[1:-1]:
            acc = (acc.unsqueeze(-2) * f.unsqueeze(-3)).flatten(-3, -2)
        if len(factors) == 1:
            return acc.sum(-1)
        return torch.einsum("...mr,...nr->...mn", acc, factors[-1]).flatten(-2)


class SigmaSchedule:
    """Geometric Stein-width schedule σ(t) from ``start`` to ``end`` over ``steps`` steps (module
    docstring); ``end`` ≤ ``start``, both > 0, PDE coordinates. Either may be one width per
    coordinate (a sequence; the other is broadcast): each coordinate then shrinks geometrically
    on its own, σ_j(t) = σ₀_j (σ₁_j/σ₀_j)^{min(t/T, 1)}, and σ(t) is a float64 tensor [d]
    (a float when both are single numbers)."""

    def __init__(self, start, end, steps: int):
        scalar = all(isinstance(v, (int, float)) for v in (start, end))
        a = torch.as_tensor(start, dtype=torch.float64).reshape(-1)
        b = torch.as_tensor(end, dtype=torch.float64).reshape(-1)
        if not bool((torch.isfinite(a) & (a > 0)).all()) or a.numel() < 1:
            raise ValueError("sigma: must be finite numbers > 0")
        if a.numel() != b.numel() and 1 not in (a.numel(), b.numel()):
            raise ValueError("sigma_final: need one width or as many as sigma has")
        a, b = torch.broadcast_tensors(a, b)
        if not bool((torch.isfinite(b) & (b > 0) & (b <= a)).all()):
            raise ValueError("sigma_final: must be > 0 and <= sigma")
        if int(steps) != steps or steps < 1:
            raise ValueError("sigma_decay_steps: must be an integer >= 1")
        self.start, self.end = (float(start), float(end)) if scalar else (a.clone(), b.clone())
        self.steps = int(steps)

    def __call__(self, step: int):
        frac = min(max(step, 0) / self.steps, 1.0)
        return self.start * (self.end / self.start) ** frac


class ResidualSampler:
    """Residual-based adaptive collocation sampling (RAD, module docstring) over a pool of
    ``pool`` points drawn uniformly in the PDE box by ``pde.sample_interior``.

    ``draw(n, generator)`` returns [n, d] points and remembers their pool indices;
    ``record(r2)`` stores the squared residuals [n] measured at the last drawn points.
    """

    def __init__(self, pde, pool: int, k: float = 1.0, c: float = 1.0, refresh_every: int = 0):
        if int(pool) != pool or pool < 1:
            raise ValueError("resample_pool: must be an integer >= 1")
        if not (math.isfinite(k) and k >= 0):
            raise ValueError("resample_k: must be a finite number >= 0")
        if not (math.isfinite(c) and c >= 0):
            raise ValueError("resample_c: must be a finite number >= 0")
        if int(refresh_every) != refresh_every or refresh_every < 0:
            raise ValueError("resample_refresh: must be an integer >= 0")
        self.pde, self.pool_size, self.k, self.c = pde, int(pool), float(k), float(c)
        self.refresh_every = int(refresh_every)
        self.pool: Tensor | None = None
        self.scores: Tensor | None = None  # NaN: not measured yet
        self.last_index: Tensor | None = None
        self.draws = 0

    def _refresh(self, generator: torch.Generator) -> None:
        self.pool = self.pde.sample_interior(self.pool_size, generator)
        self.scores = torch.full((self.pool_size,), float("nan"), dtype=torch.float64, device=self.pool.device)

    def probabilities(self) -> Tensor:
        """p [pool]: s^k/mean(s^k) + c, normalised (uniform while nothing is measured)."""
        s = self.scores
        known = ~torch.isnan(s)
        if not bool(known.any()):
            return torch.full_like(s, 1.0 / s.numel())
        s = torch.where(known, s, s[known].max()).clamp_min(0.0) ** self.k
        mean = s.mean()
        p = (s / mean if mean > 0 else torch.ones_like(s)) + self.c
        return p / p.sum()

    def draw(self, n: int, generator: torch.Generator) -> Tensor:
        if self.pool is None or (self.refresh_every and self.draws % self.refresh_every == 0 and self.draws):
            self._refresh(generator)
        self.draws += 1
        p = self.probabilities().to(generator.device)
        self.last_index = torch.multinomial(p, n, replacement=True, generator=generator).to(self.pool.device)
        return self.pool[self.last_index]

    def record(self, r2: Tensor) -> None:
        if self.last_index is not None:
            self.scores[self.last_index] = r2.detach().to(self.scores)

    def state_dict(self) -> dict:
        """The pool, its scores (finite: ``measured`` marks the known ones), the last drawn
        indices and the draw count: plain data, so a resumed run draws the same points."""
        if self.pool is None:
            return {"draws": self.draws}
        measured = ~torch.isnan(self.scores)
        return {"draws": self.draws, "pool": self.pool.clone(), "measured": measured,
                "scores": torch.where(measured, self.scores, torch.zeros_like(self.scores)),
                "last_index": None if self.last_index is None else self.last_index.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.draws = int(state["draws"])
        if "pool" not in state:
            self.pool = self.scores = self.last_index = None
            return
        self.pool = state["pool"].clone()
        self.scores = torch.where(state["measured"], state["scores"].to(torch.float64),
                                  torch.full_like(state["scores"], float("nan"), dtype=torch.float64))
        index = state["last_index"]
        self.last_index = None if index is None else index.to(self.pool.device)


def causal_weights(t: Tensor, r2: Tensor, eps: float, bins: int, lower: float, upper: float) -> Tensor:
    """Per-point loss weights [N] of causal training (module docstring) for times t [N] in
    [lower, upper] and squared residuals r2 [..., N] (a leading batch is averaged for the
    weights): point n in slice k gets w_k / (K · |slice k|) (0 for empty slices), so that
    Σ_n weight_n r2_n = Σ_k w_k L_k / K."""
    k = ((t - lower) / (upper - lower) * bins).floor().clamp(0, bins - 1).long()  # [N]
    r2m = r2.detach().reshape(-1, r2.shape[-1]).mean(0)  # [N]
    count = torch.zeros(bins, dtype=r2m.dtype, device=r2m.device).index_add_(0, k, torch.ones_like(r2m))
    total = torch.zeros(bins, dtype=r2m.dtype, device=r2m.device).index_add_(0, k, r2m)
    mean = torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))  # L_k
    before = torch.cumsum(mean, 0) - mean  # Σ_{j<k} L_j
    w = torch.exp(-eps * before)
    return (w / (bins * count.clamp_min(1)))[k]


class FourierFeatures:
    """Fourier-feature encoding φ of normalised coordinates ẑ [M, d] (module docstring):
    ``count`` m frequencies, ``scale`` s (one number ≥ 0 or one per coordinate, not all 0),
    ``seed`` of the frequency draw, ``include_input`` (ẑ itself first, times ``gain``).
    ``width`` is the encoded input width; ``B`` [m, d] the frequencies (float64)."""

    def __init__(self, dim: int, count: int, scale, seed: int = 0, include_input: bool = True,
                 gain: Tensor | None = None, device: torch.device | str = "cpu"):
        if isinstance(count, bool) or int(count) != count or not 1 <= count <= 4096:
            raise ValueError("fourier_features.count: must be an integer in 1 .. 4096")
        s = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
        if s.numel() not in (1, dim) or not bool((torch.isfinite(s) & (s >= 0)).all()) or not bool((s > 0).any()):
            raise ValueError(f"fourier_features.scale: need one number > 0 or {dim} numbers >= 0 (not all 0)")
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise ValueError("fourier_features.seed: must be an integer >= 0")
        gen = torch.Generator().manual_seed(int(seed))
        self.B = (torch.randn(int(count), dim, generator=gen, dtype=torch.float64) * s).to(device)
        self.include_input = bool(include_input)
        self.gain = None if gain is None else torch.as_tensor(gain, dtype=torch.float64).to(device)
        self.width = dim * self.include_input + 2 * int(count)

    def __call__(self, z: Tensor) -> Tensor:
        """φ(ẑ) [M, width] in the dtype of ẑ (differentiable)."""
        arg = 2 * math.pi * (z @ self.B.to(z.dtype).T)
        parts = [torch.sin(arg), torch.cos(arg)]
        if self.include_input:
            parts.insert(0, z if self.gain is None else z * self.gain.to(z.dtype))
        return torch.cat(parts, dim=-1)


def sobol_points(n: int, lower, upper, generator: torch.Generator, dtype=torch.float64) -> Tensor:
    """``n`` scrambled-Sobol points in the box [lower, upper] (module docstring), [n, d] in
    ``dtype`` on the CPU: one integer drawn from ``generator`` seeds a fresh scramble
    (``torch.quasirandom.SobolEngine(d, scramble=True, seed=...)``), of which the first ``n``
    points are taken. Each point is uniform on the box; together they have low discrepancy
    (for n = 2^m, every dyadic box of volume 2^-m holds exactly one point in 2-d)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    lo = torch.tensor(lower, dtype=dtype)
    hi = torch.tensor(upper, dtype=dtype)
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
    unit = torch.quasirandom.SobolEngine(lo.numel(), scramble=True, seed=seed).draw(n, dtype=dtype)
    return lo + (hi - lo) * unit


def grid_points(axes: list[Tensor]) -> Tensor:
    """The tensor-product grid of one value list per coordinate, ``axes[j]`` of n_j values, as points
    [Π n_j, d] in C order (the last coordinate fastest)."""
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


def grid_axes(x: Tensor, n: int) -> list[Tensor] | None:
    """The axes of x [N, d] when x is :func:`grid_points` of d axes of n values each (N = n^d),
    else None. Exact comparison: x as built there, not a grid up to rounding."""
    d = x.shape[-1]
    if x.dim() != 2 or n < 1 or x.shape[0] != n ** d:
        return None
    g = x.reshape(*([n] * d), d)
    axes = []
    for j in range(d):
        axis = g[(0,) * j + (slice(None),) + (0,) * (d - j - 1) + (j,)]
        shape = [1] * d
        shape[j] = n
        if not bool((g[..., j] == axis.reshape(shape)).all()):
            return None
        axes.append(axis)
    return axes


def midpoint_grid(lower, upper, g: int, *, dtype=torch.float64, device=None) -> Tensor:
    """The G^d midpoints x_i of the box Π_j [lower_j, upper_j] (:func:`dual_norm_sq`), [G^d, d],
    in C order (the last coordinate fastest)."""
    t = (torch.arange(g, dtype=dtype, device=device) + 0.5) / g
    return grid_points([lo + (hi - lo) * t for lo, hi in zip(lower, upper)])


def dual_norm_sq(r: Tensor, lower, upper, order: int) -> float:
    """‖r‖²_{H^{-order}} (module docstring) of the residual r at the G^d midpoints of
    :func:`midpoint_grid` (r [G^d] in its order, or [G, …, G]); ``order`` ≥ 1."""
    d = len(lower)
    g = round(r.numel() ** (1.0 / d))
    if g ** d != r.numel() or order < 1:
        raise ValueError(f"dual_norm_sq: need G^{d} residuals and order >= 1, got {r.numel()} and {order}")
    k = torch.arange(1, g + 1, dtype=torch.float64, device=r.device)
    t = (torch.arange(g, dtype=torch.float64, device=r.device) + 0.5) / g
    basis = math.sqrt(2.0) * torch.sin(math.pi * k[:, None] * t[None, :]) / g  # [k, i]: φ_k(t_i) / G
    coef = r.to(torch.float64).reshape((g,) * d)
    for axis in range(d):  # r̂ = Π_j (basis along axis j) r: one matrix product per axis
        coef = torch.tensordot(basis, coef, dims=([1], [axis])).movedim(0, axis)
    lengths = [float(hi - lo) for lo, hi in zip(lower, upper)]
    lam = sum(((k * math.pi / length) ** 2).reshape([-1 if j == i else 1 for j in range(d)])
              for i, length in enumerate(lengths))
    volume = math.prod(lengths)
    return volume * float((coef ** 2 / lam ** order).sum())
