"""PINN task: a physics-informed loss measured through the photonic chip (docs/physics.md#bp-free-pinns).

The network NN: R^d → R is the chip itself. A PDE point x (coordinates in the order of
``pde.names``, inside the box [lower, upper]) is fed to the modulators through the affine map

    z = a ⊙ x + b,   a_j = 2 / (upper_j − lower_j),   b_j = −(upper_j + lower_j) / (upper_j − lower_j),

which sends the box onto [−1, 1]^d (the modulators' signed range; points pushed slightly
outside by the derivative stencils are handled by the chip's block floating point). The chip's
coherent (signed) reading is NN(x) = chip(z(x)). The map is applied *inside* the model
function handed to the derivative estimator, so every estimate is of the composite x ↦ NN(x):
the chain rule ∂NN/∂x_j = a_j ∂g/∂z_j, ∂²NN/∂x_j² = a_j² ∂²g/∂z_j² (g the chip as a function
of z) is folded in exactly, and a Stein smoothing of width σ in x is one of width a_j·σ in z.

Loss of a batch of N collocation points x (for each of P phase settings):

    L = mean_n r(x_n)²,   r = pde.nn_residual(x, estimator.estimate(f, x, need=pde.need))

where f(x[M, d]) = chip.measure(z(x), phases[P, N])[..., 0] → [P, M]. The estimator stacks
all its shifted copies of all N points into one [M, d] input (M = N·K for the K-node
sparse grid, whose nodes come in ± pairs with the origin among them; N·(2K+1) for K
Monte-Carlo draws), so one closure call is ONE ``chip.measure`` of P·M rows. Estimators:
``sparse_grid`` (Smolyak Gauss–Hermite Stein, default σ = 0.1, level 3), ``monte_carlo``
(Stein with fresh normal draws), ``finite_difference`` (central, step h) and ``autograd``
(exact derivatives by reverse mode through ``measure(..., differentiable=True)``: the
first-order baseline only, not in situ).

Evaluation (``evaluate``) on ``test_points`` fixed uniform points: the prediction is the
smoothed model u_σ (the estimator's "u": the Stein average, or f itself for finite
differences / autograd) transformed by ``pde.transform``; metric = relative L2 against
``pde.reference``; also the MSE of u, and the mean squared residual (the loss) on the first
``residual_points`` test points. With ``eval_loss`` ``h_minus_1`` / ``h_minus_2`` the
evaluation's loss is instead the squared dual norm ‖r‖²_{H^{-s}} of the residual from a
``eval_grid``^d midpoint grid (``pinn_remedies.dual_norm_sq``: on Darcy, ‖r‖_{H^{-2}} is the L2
error without the reference), the mean square staying in ``residual_rms``: the score that
``TrainConfig.keep = "lowest_eval_loss"`` selects by. All evaluation queries go through the
chip in chunks of at most ``eval_rows`` input rows (the Trainer books them in its separate
evaluation ledger).
"""

from __future__ import annotations

import math

import torch

from photonic_sim.training.names import ESTIMATORS, EVAL_LOSSES, MAX_GRID_COLLOCATION, SAMPLINGS, max_eval_grid
from photonic_sim.training.pde import PDE, BlackScholes, Burgers, Darcy, HJB
from photonic_sim.training.pinn_remedies import (FourierFeatures, InputWarp, ResidualSampler, Separable,
                                                  SigmaSchedule, Symmetry, causal_weights, dual_norm_sq,
                                                  grid_axes, grid_points, midpoint_grid, sobol_points)
from photonic_sim.training.stein import Autograd, FiniteDifference, MonteCarloStein, SparseGridStein

Tensor = torch.Tensor
PDES = {"hjb20": HJB, "black_scholes": BlackScholes, "burgers": Burgers, "darcy": Darcy}


def make_pde(name: str) -> PDE:
    """A PDE of the library by scenario name (``PDES``), default parameters."""
    if name not in PDES:
        raise ValueError(f"pde: {name!r} is not one of {sorted(PDES)}")
    return PDES[name]()


class PINNTask:
    """Physics-informed training task on a chip (module docstring).

    Parameters: ``pde`` (a ``PDE`` or a name of ``PDES``), ``estimator`` (one of
    ``ESTIMATORS``), ``sigma`` (Stein smoothing, in PDE coordinates: one width, or a list of
    ``pde.dim`` widths, one per coordinate of ``pde.names``), ``level`` (sparse grid),
    ``mc_samples`` (Monte-Carlo Stein draws per estimate), ``fd_step`` (finite-difference step
    h, PDE coordinates: one, or a list of ``pde.dim`` steps, one per coordinate),
    ``collocation`` (points per training batch), ``test_points`` (metric
    points, uniform, drawn once on the CPU from ``test_seed``), ``residual_points`` (test points on which
    the evaluation residual is computed; ≤ test_points), ``eval_rows`` (most chip input rows
    per evaluation call), ``eval_level`` (sparse-grid level of the evaluation's smoothed
    prediction; default ``level``), ``seed`` (Monte-Carlo draws), ``device`` (where points
    live; the chip must be on the same device).

    Remedies (``photonic_sim.training.pinn_remedies``; off by default): ``sigma_final`` and
    ``sigma_decay_steps`` (Stein width shrinking geometrically from ``sigma`` to
    ``sigma_final`` over that many training batches; either may be per coordinate),
    ``resample_pool`` (> 0: residual-based
    adaptive sampling from a pool of that many points, with ``resample_k``, ``resample_c``,
    ``resample_refresh``), ``causal_eps`` (> 0: causal weights over ``causal_bins`` time slices;
    the PDE needs a coordinate named "t"), ``input_gain`` (g, a number or one per coordinate:
    the modulators get z = g ⊙ (a ⊙ x + b), in [−g, g]; the chip's block floating point
    rescales each input vector, so g > 1 acts as g× larger first-layer weights — higher
    frequencies in the sine features, for a sharp front), ``fourier_features`` (a dict with
    ``count`` m, ``scale`` (one or per coordinate), optional ``seed`` (0) and ``include_input``
    (true): the modulators get the Fourier-feature vector φ(a ⊙ x + b) of
    :class:`~photonic_sim.training.pinn_remedies.FourierFeatures`, width ``input_width`` =
    d·include_input + 2m, the gain applying to the included coordinates). ``eval_loss`` (one
    of ``EVAL_LOSSES``) and ``eval_grid`` (G, the dual norms' midpoints per coordinate; G^d ≤
    ``names.MAX_EVAL_GRID_POINTS``): the evaluation's loss (module docstring). ``sampling`` (one of
    ``SAMPLINGS``): each step's collocation points uniform (``"uniform"``, the default), as
    freshly scrambled Sobol points (``"sobol"``, :func:`~photonic_sim.training.pinn_remedies.sobol_points`:
    uniform marginals, low discrepancy; not with ``resample_pool``) or as the grid of
    ``collocation`` fresh uniform values per coordinate (``"grid"``, ``collocation``^d ≤
    ``names.MAX_GRID_COLLOCATION`` points; with ``separable`` and ``finite_difference`` the
    residuals come from :meth:`_grid_derivatives`). ``symmetry`` (a mapping of
    coordinate names to "odd" / "even"): the model is the network's symmetric projection
    (:class:`~photonic_sim.training.pinn_remedies.Symmetry`; 2^k chip rows per point). ``separable``
    (a rank R in 1 .. ``MAX_SEPARABLE_RANK``): the model is Σ_r Π_j F(coordinate j alone)_r of
    a network 2d → R (:class:`~photonic_sim.training.pinn_remedies.Separable`; d chip rows per
    point, times the symmetry's images, fewer where points share a coordinate: each distinct
    row is read once; not with ``fourier_features``). ``input_warp`` (a mapping of coordinate
    names to a width w, or to ``{"width": w, "center": c}``): the coordinate is stretched about c
    before it is encoded (:class:`~photonic_sim.training.pinn_remedies.InputWarp`; a sharp
    feature at c gets more of the input's range). The training step is counted by
    ``sample_batch`` (one call per step); ``state_dict`` carries it, the sampler's pool and the
    Monte-Carlo draws into the Trainer's checkpoint, so a resumed run continues them.
    """

    kind = "pde"
    metric_name = "relative_l2"
    higher_is_better = False
    eval_loss_label_free = True  # the evaluation loss is the PDE residual: TrainConfig.keep may select by it
    closure_kinds = ("batch", "evaluation", "residuals")
    """Kinds of black box :meth:`closure` builds (``Strategy.closure_kind``)."""

    def __init__(self, pde: PDE | str, *, estimator: str = "sparse_grid", sigma: float | tuple[float, ...] = 0.1,
                 level: int = 3,
                 mc_samples: int = 1024, fd_step: float | tuple[float, ...] = 1e-2, collocation: int = 100,
                 test_points: int = 10000, residual_points: int = 1000, eval_rows: int = 200_000,
                 eval_level: int | None = None, test_seed: int = 0, seed: int = 0,
                 device: torch.device | str = "cpu", sigma_final: float | tuple[float, ...] | None = None,
                 sigma_decay_steps: int | None = None, resample_pool: int = 0, resample_k: float = 1.0,
                 resample_c: float = 1.0, resample_refresh: int = 0, causal_eps: float = 0.0,
                 causal_bins: int = 10, input_gain: float | tuple[float, ...] | None = None,
                 fourier_features: dict | None = None, eval_loss: str = "mean_square", eval_grid: int = 64,
                 sampling: str = "uniform", symmetry: dict | None = None, separable: int | None = None,
                 input_warp: dict | None = None) -> None:
        self.pde = make_pde(pde) if isinstance(pde, str) else pde
        if not isinstance(self.pde, PDE):
            raise ValueError(f"pde: need a PDE or one of {sorted(PDES)}, got {type(pde).__name__}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator: {estimator!r} is not one of {ESTIMATORS}")
        for name, value in (("collocation", collocation), ("test_points", test_points),
                            ("residual_points", residual_points), ("eval_rows", eval_rows)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name}: {value!r} is out of range (allowed: integer >= 1)")
        if residual_points > test_points:
            raise ValueError(f"residual_points: {residual_points} is out of range "
                             f"(allowed: <= test_points={test_points})")
        self.device = torch.device(device)
        self.estimator_name = estimator
        self.collocation = int(collocation)
        self.eval_rows = int(eval_rows)
        self.residual_points = int(residual_points)
        d = self.pde.dim
        sigma = self._check_width("sigma", sigma)
        if sigma_final is not None:
            sigma_final = self._check_width("sigma_final", sigma_final)
        self.estimator = self._make_estimator(estimator, sigma, level, mc_samples, fd_step, seed)
        self.eval_estimator = self.estimator
        if eval_level is not None and eval_level != level:
            if estimator != "sparse_grid":
                raise ValueError("eval_level: only for estimator='sparse_grid'")
            self.eval_estimator = SparseGridStein(d, sigma, int(eval_level))
        lo = torch.tensor(self.pde.lower, dtype=torch.float64, device=self.device)
        hi = torch.tensor(self.pde.upper, dtype=torch.float64, device=self.device)
        self.scale = 2.0 / (hi - lo)  # a
        self.shift = -(hi + lo) / (hi - lo)  # b
        self.norm_scale, self.norm_shift = self.scale, self.shift  # a, b without the input gain
        gen = torch.Generator().manual_seed(int(test_seed))  # CPU draws: same points on every device
        self.test_x = self.pde.test_points(int(test_points), gen).to(self.device)
        self.test_ref = self.pde.reference(self.test_x)
        self.shard_hook = None
        """``hook(measure, P) -> r [P, N]`` or None: how :meth:`residuals` of P ≥ 2 phase settings
        without autograd is measured. ``measure()`` computes the residuals of the settings the
        chip's current ``Chip.shard`` reads (all P without one); the hook returns those of all P
        (cast to the points' dtype and device).
        ``photonic_sim.scenarios.distributed`` splits the settings between replicas this way:
        the causal weights and the adaptive sampler then see every row, as in one process."""
        self._init_remedies(sigma, sigma_final, sigma_decay_steps, resample_pool, resample_k, resample_c,
                            resample_refresh, causal_eps, causal_bins)
        if input_gain is not None:
            gain = torch.as_tensor(input_gain, dtype=torch.float64, device=self.device).reshape(-1)
            if gain.numel() not in (1, d) or not bool(torch.isfinite(gain).all() and (gain > 0).all()):
                raise ValueError(f"input_gain: need one number > 0 or {d} of them")
            self.scale, self.shift = self.scale * gain, self.shift * gain
        self._init_eval_loss(eval_loss, eval_grid)
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling: {sampling!r} is not one of {SAMPLINGS}")
        if sampling != "uniform" and self.sampler is not None:
            raise ValueError(f"sampling: {sampling!r} draws each step's points itself; with resample_pool the "
                             "adaptive sampler draws them (allowed: 'uniform')")
        if sampling == "grid" and self.collocation ** d > MAX_GRID_COLLOCATION:
            raise ValueError(f"collocation: {self.collocation} values per coordinate make {self.collocation}^{d} "
                             f"grid points (allowed with sampling 'grid': at most {MAX_GRID_COLLOCATION})")
        self.sampling = sampling
        self.features, self.input_width = None, d
        if fourier_features is not None:
            keys = ("count", "scale", "seed", "include_input")
            if not isinstance(fourier_features, dict) or "count" not in fourier_features or \
                    "scale" not in fourier_features or set(fourier_features) - set(keys):
                raise ValueError(f"fourier_features: need a dict with count and scale (keys: {', '.join(keys)})")
            self.features = FourierFeatures(d, **fourier_features, gain=None if input_gain is None else gain,
                                            device=self.device)
            self.input_width = self.features.width
        self.symmetry = None if symmetry is None else Symmetry(self.pde, symmetry)
        self.warp = None if input_warp is None else InputWarp(self.pde, input_warp)
        self.images_per_point = 1 if self.symmetry is None else self.symmetry.count  # chip rows per model point
        self.separable, self.out_width = None, 1
        if separable is not None:
            if self.features is not None:
                raise ValueError("separable: not with fourier_features (allowed: one of the two)")
            self.separable = Separable(d, separable)  # checks the rank
            self.input_width, self.out_width = self.separable.width, self.separable.rank
            self.images_per_point *= self.separable.rows

    def _check_width(self, key: str, value):
        """A Stein width: one number > 0 (a float) or one per coordinate (a tuple of d floats)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = (float(value),)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            values = tuple(float(v) for v in value)
        else:
            values = ()
        names = ", ".join(self.pde.names)
        if len(values) not in (1, self.pde.dim) or not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"{key}: need one width > 0 or {self.pde.dim} of them (one per coordinate {names})")
        return values[0] if isinstance(value, (int, float)) else values

    def _init_eval_loss(self, eval_loss: str, eval_grid: int) -> None:
        """``eval_loss`` and, for the dual norms, the midpoint grid (checked, one line)."""
        if eval_loss not in EVAL_LOSSES:
            raise ValueError(f"eval_loss: {eval_loss!r} is not one of {EVAL_LOSSES}")
        self.eval_loss = eval_loss
        self.eval_grid_x = None
        if eval_loss == "mean_square":
            return
        d = self.pde.dim
        if isinstance(eval_grid, bool) or int(eval_grid) != eval_grid or not 2 <= eval_grid <= max_eval_grid(d):
            raise ValueError(f"eval_grid: {eval_grid!r} is out of range for a PDE of {d} coordinates "
                             f"(allowed: an integer in 2 .. {max_eval_grid(d)})")
        self.eval_grid_x = midpoint_grid(self.pde.lower, self.pde.upper, int(eval_grid), device=self.device)

    def _init_remedies(self, sigma, sigma_final, decay_steps, pool, k, c, refresh, causal_eps, causal_bins):
        """The optional remedies (class docstring); checked here, one line naming the key."""
        self.batches = 0  # sample_batch calls = training steps done
        self.sigma_schedule = None
        if sigma_final is not None:
            if self.estimator_name not in ("sparse_grid", "monte_carlo"):
                raise ValueError("sigma_final: only for a Stein estimator (sparse_grid, monte_carlo)")
            self.sigma_schedule = SigmaSchedule(sigma, sigma_final, decay_steps or 1)
        self.sampler = ResidualSampler(self.pde, pool, k, c, refresh) if pool else None
        if not (math.isfinite(causal_eps) and causal_eps >= 0):
            raise ValueError("causal_eps: must be a finite number >= 0")
        if int(causal_bins) != causal_bins or causal_bins < 1:
            raise ValueError("causal_bins: must be an integer >= 1")
        if causal_eps and "t" not in self.pde.names:
            raise ValueError("causal_eps: the PDE has no time coordinate 't'")
        self.causal_eps, self.causal_bins = float(causal_eps), int(causal_bins)

    def state_dict(self) -> dict:
        """What a resumed run needs to go on bit-identically (plain data; the Trainer keeps it
        in its checkpoint): the training steps done (the Stein width schedule's position), the
        adaptive sampler's pool and scores, the Monte-Carlo Stein generator."""
        state: dict = {"batches": self.batches}
        if self.sampler is not None:
            state["sampler"] = self.sampler.state_dict()
        if isinstance(self.estimator, MonteCarloStein):
            state["mc_generator"] = self.estimator.generator.get_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`; the Stein width is set to the one the last step used."""
        self.batches = int(state["batches"])
        if self.sigma_schedule is not None:
            self.set_sigma(self.sigma_schedule(max(self.batches - 1, 0)))
        if self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])
        if isinstance(self.estimator, MonteCarloStein):
            self.estimator.generator.set_state(state["mc_generator"])

    def set_sigma(self, sigma) -> None:
        """Stein width of the loss and evaluation estimators (PDE coordinates): one number or
        one per coordinate (a sequence or tensor of ``pde.dim`` widths)."""
        for est in (self.estimator, self.eval_estimator):
            est.sigma = sigma

    def train_losses(self, chip, x: Tensor, phases: Tensor, differentiable: bool = False) -> Tensor:
        """The training loss [P]: ``losses`` with the remedies applied (causal weights; the
        squared residuals recorded for the adaptive sampler). Evaluation keeps plain ``losses``."""
        if not (self.sampler or self.causal_eps):
            return self.losses(chip, x, phases, differentiable)
        r2 = self.residuals(chip, x, phases, differentiable) ** 2  # [P, N]
        w = self._point_weights(x, r2)
        return r2.mean(-1) if w is None else (r2 * w).sum(-1)

    def train_residuals(self, chip, x: Tensor, phases: Tensor, differentiable: bool = False) -> Tensor:
        """The training loss as a residual vector ρ [P, N] (float64) with Σ_n ρ_n² equal to
        :meth:`train_losses`: r·√w with the causal weights w (computed from this call's
        residuals, the same for every row of it), else r/√N; the sampler records as there."""
        r = self.residuals(chip, x, phases, differentiable)
        w = self._point_weights(x, r**2)
        return (r / math.sqrt(r.shape[-1]) if w is None else r * w.sqrt()).to(torch.float64)

    def _point_weights(self, x: Tensor, r2: Tensor) -> Tensor | None:
        """Record the squared residuals r2 [P, N] for the adaptive sampler (if any); return the
        causal weights [N] of the points x (None without causal training: the plain mean)."""
        if self.sampler is not None:
            self.sampler.record(r2.detach().reshape(-1, r2.shape[-1]).mean(0))
        if not self.causal_eps:
            return None
        j = self.pde.names.index("t")
        return causal_weights(x[:, j], r2, self.causal_eps, self.causal_bins, self.pde.lower[j], self.pde.upper[j])

    def _make_estimator(self, name, sigma, level, mc_samples, fd_step, seed):
        d = self.pde.dim
        if name == "sparse_grid":
            return SparseGridStein(d, sigma, int(level))
        if name == "monte_carlo":
            gen = torch.Generator(device=self.device).manual_seed(int(seed))
            return MonteCarloStein(d, sigma, int(mc_samples), gen)
        if name == "finite_difference":
            try:
                return FiniteDifference(d, fd_step)
            except ValueError:
                raise ValueError(f"fd_step: need one finite step > 0 or {d} of them (one per coordinate "
                                 f"{', '.join(self.pde.names)})") from None
        return Autograd()

    # ------------------------------------------------------------------ protocol
    @property
    def differentiable_estimator(self) -> bool:
        """True for ``autograd``: the chip must be measured with ``differentiable=True``."""
        return self.estimator_name == "autograd"

    def evaluations_per_point(self, estimator=None) -> int:
        """Chip input rows one collocation point costs per phase setting (loss)."""
        return (estimator or self.estimator).num_evaluations(1, self.pde.need) * self.images_per_point

    def encode(self, x: Tensor) -> Tensor:
        """PDE coordinates x [M, d] → modulator inputs z = g ⊙ (a ⊙ x + b) (module docstring),
        or with ``fourier_features`` φ(a ⊙ x + b) [M, input_width]; with ``input_warp``, of
        ξ(x) instead of x."""
        if self.warp is not None:
            x = self.warp(x)
        if self.features is None:
            return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
        return self.features(x * self.norm_scale.to(x.dtype) + self.norm_shift.to(x.dtype))

    def model(self, chip, phases: Tensor, differentiable: bool = False):
        """f: x [M, d] → NN [P, M] (float64) through ONE ``chip.measure`` per call."""
        if chip.readout != "coherent":
            raise ValueError(f"chip readout: {chip.readout!r}; a PINN needs 'coherent' (signed outputs)")
        if chip.out_features != self.out_width or chip.in_features != self.input_width:
            ff = " (fourier_features: d*include_input + 2*count)" if self.features is not None else \
                " (separable: 2*d -> rank)" if self.separable is not None else ""
            raise ValueError(f"chip: network must map {self.input_width} -> {self.out_width}{ff}, "
                             f"got {chip.in_features} -> {chip.out_features}")
        sep = self.separable

        def f(x: Tensor) -> Tensor:
            if sep is None:
                return chip.measure(self.encode(x), phases, differentiable=differentiable)[..., 0].to(x.dtype)
            rows, index = sep.rows_of(self.encode(x)), None
            if not rows.requires_grad:  # (autograd derivatives in x: every point keeps its own rows)
                rows, index = sep.distinct(rows)  # each distinct factor row read once
            out = chip.measure(rows, phases, differentiable=differentiable)
            return sep.combine(out if index is None else out[..., index, :]).to(x.dtype)

        if self.symmetry is None:
            return f
        sym = self.symmetry

        def f_sym(x: Tensor) -> Tensor:  # the images of every point in the same chip call
            return sym.combine(f(sym.images(x)))

        return f_sym

    def sample_batch(self, generator: torch.Generator) -> Tensor:
        """``collocation`` points uniform in the PDE box, [N, d] float64 (on ``device``); with
        the remedies: the Stein width of this step, points from the adaptive sampler or
        scrambled Sobol points (``sampling``)."""
        if self.sigma_schedule is not None:
            self.set_sigma(self.sigma_schedule(self.batches))
        self.batches += 1
        if self.sampler is not None:
            return self.sampler.draw(self.collocation, generator).to(self.device)
        if self.sampling == "sobol":
            return sobol_points(self.collocation, self.pde.lower, self.pde.upper, generator).to(self.device)
        if self.sampling == "grid":  # the columns of n uniform points: n uniform values per coordinate
            return grid_points(list(self.pde.sample_interior(self.collocation, generator).T)).to(self.device)
        return self.pde.sample_interior(self.collocation, generator).to(self.device)

    def residuals(self, chip, x: Tensor, phases: Tensor, differentiable: bool = False) -> Tensor:
        """PDE residual r [P, N] of phase settings [P, n] at points x [N, d] (one chip call;
        with ``shard_hook``, settings of a multi-setting call without autograd go through it)."""
        diff = differentiable or self.differentiable_estimator

        axes = self._grid_axes(x)

        def measure() -> Tensor:
            if axes is not None:
                return self.pde.nn_residual(x, self._grid_derivatives(chip, phases, axes, diff))
            derivs = self.estimator.estimate(self.model(chip, phases, diff), x, need=self.pde.need)
            return self.pde.nn_residual(x, derivs)

        if self.shard_hook is None or diff or phases.dim() != 2 or phases.shape[0] < 2:
            return measure()
        return self.shard_hook(measure, phases.shape[0]).to(dtype=x.dtype, device=x.device)

    def _grid_axes(self, x: Tensor) -> list[Tensor] | None:
        """The axes of x when the separable finite-difference fast path applies (``sampling``
        "grid", ``separable``, ``finite_difference``, x a grid of ``collocation`` values per
        coordinate), else None."""
        if self.sampling != "grid" or self.separable is None or self.estimator_name != "finite_difference":
            return None
        return grid_axes(x, self.collocation)

    def _grid_derivatives(self, chip, phases: Tensor, axes: list[Tensor],
                          differentiable: bool = False) -> dict[str, Tensor]:
        """``pde.need`` of the separable model on the grid of ``axes`` (one list of n_j values per
        coordinate): the finite differences of ``estimator`` taken on each coordinate's factor,

            NN = Σ_r Π_j G_j,r,   ∂_j NN = Σ_r ∂_j G_j,r Π_{i≠j} G_i,r,   ∂²_jj likewise,

        G_j the factor of coordinate j (symmetrised on its own when ``symmetry`` names j: the
        projection of a product onto the reflections' parities is the product of the factors'
        projections). Central differences are linear, so each equals the generic path's
        difference of the products (up to rounding). ONE ``chip.measure`` of Σ_j 3·n_j·(2 if
        mirrored) rows, against d·(2d+1)·Π n_j generic rows before de-duplication; the products
        cost Π n_j · R per setting (:meth:`Separable.grid_products`)."""
        need, sep, fd = tuple(self.pde.need), self.separable, self.estimator
        hs = fd.steps
        deriv = any(n != "u" for n in need)
        rows, parts = [], []  # parts[j]: (images' signs [I], stencil size S, n_j)
        for j, v in enumerate(axes):
            stencil = torch.stack([v, v + hs[j], v - hs[j]]) if deriv else v[None]  # [S, n]
            signs, images = (torch.ones(1, dtype=torch.float64), stencil[None]) if self.symmetry is None \
                else self.symmetry.axis_images(j, stencil)  # the factor's projection: Σ_i s_i G(R_i v) / I
            z = images.reshape(-1) if self.warp is None else self.warp.axis(j, images.reshape(-1))
            z = z * self.scale[j].to(v.dtype) + self.shift[j].to(v.dtype)
            rows.append(sep.axis_rows(j, z))
            parts.append((signs, stencil.shape[0], v.shape[0]))
        out = chip.measure(torch.cat(rows), phases, differentiable=differentiable).to(torch.float64)  # [..., M, R]
        factors, start = [], 0  # factors[j]: [..., S, n_j, R], symmetrised
        for signs, size, n in parts:
            count = signs.numel() * size * n
            f = out[..., start : start + count, :].reshape(*out.shape[:-2], signs.numel(), size, n, sep.rank)
            factors.append((f * signs.to(f).reshape(-1, 1, 1, 1)).sum(-4) / signs.numel())
            start += count
        g0 = [f[..., 0, :, :] for f in factors]
        result = {"u": sep.grid_products(g0)}
        if deriv:
            first, second = [], []
            for j, (f, h) in enumerate(zip(factors, hs)):
                d1 = fd.first(f[..., 1, :, :], f[..., 2, :, :], h)
                d2 = fd.second(f[..., 0, :, :], f[..., 1, :, :], f[..., 2, :, :], h)
                first.append(sep.grid_products(g0[:j] + [d1] + g0[j + 1 :]))
                second.append(sep.grid_products(g0[:j] + [d2] + g0[j + 1 :]))
            result["grad"] = torch.stack(first, -1)
            diag2 = torch.stack(second, -1)
            if "diag2" in need:
                result["diag2"] = diag2
            if "lap" in need:
                result["lap"] = diag2.sum(-1)
        return {k: v for k, v in result.items() if k in need}

    def losses(self, chip, x: Tensor, phases: Tensor, differentiable: bool = False) -> Tensor:
        """Mean squared residual [P] of phase settings [P, N] at points x [N, d] (one chip call)."""
        return (self.residuals(chip, x, phases, differentiable) ** 2).mean(-1)

    def closure(self, chip, batch: Tensor, *, differentiable: bool = False, kind: str = "batch"):
        """The black box of one batch (``photonic_sim.chip.ChipClosure``): params [P, N] →
        losses [P] (float64), ONE chip call per closure call. ``kind`` (:attr:`closure_kinds`):
        "batch", the training loss on ``batch``; "residuals", params [P, N] → ρ [P, M], its
        residual vector on ``batch`` (:meth:`train_residuals`, Σ ρ² = the loss; ``zo-gn``);
        "evaluation", the evaluation loss of
        :meth:`eval_losses` (label-free, the same points every call; ``batch`` is not used), for
        a stage that optimises the score ``keep: lowest_eval_loss`` selects by."""
        if kind not in self.closure_kinds:
            raise ValueError(f"kind: {kind!r} is not one of {self.closure_kinds}")
        if kind == "evaluation":
            return chip.closure(lambda params: self.eval_losses(chip, params))
        if self.differentiable_estimator and not differentiable:
            raise ValueError("estimator 'autograd' is the first-order baseline only (needs differentiable=True)")

        def loss(params: Tensor) -> Tensor:
            return self.train_losses(chip, batch, params, differentiable).to(torch.float64)

        def residual_vector(params: Tensor) -> Tensor:
            return self.train_residuals(chip, batch, params, differentiable)

        return chip.closure(residual_vector if kind == "residuals" else loss)

    def eval_losses(self, chip, phases: Tensor) -> Tensor:
        """The evaluation loss [P] (float64) of phase settings [P, n]: the mean squared residual
        on the first ``residual_points`` test points, or with ``eval_loss`` a dual norm of the
        residual on the ``eval_grid`` midpoint grid. Label-free and deterministic in the
        points (the chip's own noise aside). Chunks of about ``eval_rows`` chip rows."""
        phases = phases.detach()
        if self.eval_grid_x is None:
            return self._mean_square(chip, phases)
        xg, step = self.eval_grid_x, self._eval_chunk(phases.shape[0])
        r = torch.cat([self.residuals(chip, xg[start : start + step], phases).detach()
                       for start in range(0, xg.shape[0], step)], dim=-1)
        order = int(self.eval_loss[-1])
        return torch.tensor([dual_norm_sq(row, self.pde.lower, self.pde.upper, order) for row in r],
                            dtype=torch.float64)

    def _eval_chunk(self, settings: int) -> int:
        """Points per evaluation chunk for ``settings`` phase settings (about ``eval_rows`` rows)."""
        return max(1, self.eval_rows // (self.evaluations_per_point() * settings))

    def _mean_square(self, chip, phases: Tensor) -> Tensor:
        """Mean squared residual [P] on the first ``residual_points`` test points."""
        xr, step = self.test_x[: self.residual_points], self._eval_chunk(phases.shape[0])
        total = torch.zeros(phases.shape[0], dtype=torch.float64)
        for start in range(0, xr.shape[0], step):
            xc = xr[start : start + step]
            total += self.losses(chip, xc, phases).detach().to(torch.float64).cpu() * xc.shape[0]
        return total / xr.shape[0]

    def predict(self, chip, phases: Tensor, x: Tensor) -> Tensor:
        """u at x [n, d] (smoothed model when a Stein estimator is used), in chunks."""
        est = self.eval_estimator
        f = self.model(chip, phases[None])  # values only: no autograd graph needed
        step = max(1, self.eval_rows // (est.num_evaluations(1, ("u",)) * self.images_per_point))
        parts = []
        for start in range(0, x.shape[0], step):
            xc = x[start : start + step]
            with torch.no_grad():
                parts.append(est.estimate(f, xc, need=("u",))["u"][0].detach())
        return self.pde.transform(x, torch.cat(parts))

    def evaluate(self, chip, phases: Tensor) -> dict[str, float]:
        """relative L2 ("metric"), MSE of u, the mean squared residual's root ("residual_rms")
        and the evaluation loss ("loss": that mean square, or with ``eval_loss`` a dual norm,
        also under its own name)."""
        phases = phases.detach()
        u = self.predict(chip, phases, self.test_x)
        err = u - self.test_ref
        rel = float(torch.linalg.vector_norm(err) / torch.linalg.vector_norm(self.test_ref))
        residual = float(self._mean_square(chip, phases[None])[0])
        result = {"metric": rel, "loss": residual, "relative_l2": rel, "mse": float((err**2).mean()),
                  "residual_rms": math.sqrt(residual)}
        if self.eval_grid_x is not None:
            result["loss"] = result[self.eval_loss] = float(self.eval_losses(chip, phases[None])[0])
        return result
