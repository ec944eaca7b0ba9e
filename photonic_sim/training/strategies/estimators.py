"""Zeroth-order gradient estimators: pure functions over a batched loss closure.

Conventions (shared by every function here)
-------------------------------------------
* ``closure(batch: Tensor[P, d]) -> Tensor[P]`` returns the loss of each row; one row is one
  chip query (one phase setting). Each estimator builds its whole ``[P, d]`` batch first and
  calls the closure exactly ONCE; nothing but the closure's outputs is read.
* ``theta`` is the 1-D control vector (phases, rad). ``mask`` (bool ``[d]``) restricts
  perturbations to a subset of coordinates: rows never change entries outside it and the
  returned gradient estimate is exactly 0 there (an estimate of the masked gradient).
* ``periods`` (``[d]``, rad): rows are wrapped modulo their period before the closure sees
  them (entries with period 0 or NaN are left as they are). The loss of a phase is periodic,
  so wrapping changes no difference quotient.
* ``mu`` is the smoothing radius (rad), ``q`` the number of random directions.
* ``nnz`` (RGE only): each direction perturbs ``nnz`` coordinates drawn at random (the others
  stay), by ``mu``·u_j with u_j from ``dist``; ĝ is rescaled by m/nnz (m perturbable
  coordinates) so E[ĝ] is unchanged. On a quantized chip, Rademacher directions with ``mu``
  equal to the phase LSB move every perturbed shifter to exactly its neighbouring code, so a
  two-sided difference is a central difference at the realised lattice point: unbiased for
  the loss the chip realises, which Gaussian smoothing off the lattice is not (docs/pinn.md,
  eighth session). Fewer coordinates per direction keep the perturbation (norm μ√nnz) small,
  so the higher-order terms of a curved loss stay out of the difference.

Statistics on a quadratic L(θ) = ½(θ−θ*)ᵀA(θ−θ*) with gradient g (tests pin these):
* two-sided RGE: E ĝ = g exactly; E‖ĝ−g‖² = (d+1)‖g‖²/q (Gaussian) and (d−1)‖g‖²/q
  (Rademacher and sphere, where ‖u‖² = d), with d the number of perturbed coordinates.
  Sparse Rademacher (``nnz`` = k < d): still E ĝ = g and E‖ĝ−g‖² = (d−1)‖g‖²/q, for any k.
* one-sided RGE: each sample carries an extra (μ/2)(uᵀAu)u, O(μ) per sample but zero-mean
  for the symmetric distributions used here, so E ĝ = ∇L_μ (the μ-smoothed gradient), whose
  bias is O(μ²) for smooth L (e.g. e^{−μ²/2}·∇L for a sum of cosines, Gaussian u).
* forward CGE: ĝ_i = g_i + (μ/2)A_ii; central CGE: exact to rounding.
* SPSA: E ĝ = g, E‖ĝ−g‖² = (d−1)‖g‖²/q.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor

from photonic_sim.circuits import _fused

Closure = Callable[[Tensor], Tensor]

DISTRIBUTIONS = ("gaussian", "rademacher", "sphere")


class Estimate(NamedTuple):
    """A gradient estimate ``grad`` ([d], 0 outside the mask) and a 0-d ``loss``: L(θ) when the
    batch holds the unperturbed row, else the mean of all rows (an O(μ²)-biased proxy)."""

    grad: Tensor
    loss: Tensor


class Search(NamedTuple):
    """Result of a sparse coordinate search: ``move`` ([d], values in {−1, 0, +1}: the accepted
    step sign per coordinate) and ``loss`` = L(θ) at the unperturbed row."""

    move: Tensor
    loss: Tensor


def wrap(x: Tensor, periods: Tensor | None) -> Tensor:
    """x modulo ``periods`` along the last dim (into [0, p)); entries with period 0/NaN kept."""
    if periods is None:
        return x
    if (x.ndim == 2 and x.dtype == periods.dtype == torch.float64 and x.device.type == periods.device.type == "cpu"
            and not (torch.is_grad_enabled() and x.requires_grad) and _fused.realise_kernel() is not None):
        return _fused.wrap(x, periods)  # the lines below in one C pass, the same bits
    valid = torch.isfinite(periods) & (periods > 0)
    safe = torch.where(valid, periods, torch.ones_like(periods))
    r = torch.remainder(x, safe)
    r = torch.where(r >= safe, r - safe, r)  # remainder(−tiny, p) rounds up to p
    return torch.where(valid, r, x)


def evaluate(closure: Closure, batch: Tensor) -> Tensor:
    """One closure call on ``batch`` [P, d]; returns the P losses in ``batch``'s dtype."""
    out = closure(batch)
    if not isinstance(out, Tensor) or tuple(out.shape) != (batch.shape[0],):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"closure must return a Tensor of shape [P]=({batch.shape[0]},), got {got}")
    return out.detach().to(batch.dtype)


def support(theta: Tensor, mask: Tensor | None) -> Tensor:
    """Indices of the coordinates that may be perturbed (all when ``mask`` is None)."""
    if mask is None:
        return torch.arange(theta.shape[-1], device=theta.device)
    if mask.dtype != torch.bool or tuple(mask.shape) != tuple(theta.shape):
        raise ValueError(f"mask must be a bool tensor of shape {tuple(theta.shape)}")
    idx = torch.nonzero(mask).flatten().to(theta.device)
    if idx.numel() == 0:
        raise ValueError("mask must select at least one coordinate (all False given)")
    return idx


def _check_q_mu(q: int, mu: float) -> None:
    if int(q) != q or q < 1:
        raise ValueError(f"q must be an integer >= 1, got {q}")
    if not mu > 0:
        raise ValueError(f"mu must be > 0 (rad), got {mu}")


def draw_generator(generator: torch.Generator, device: torch.device | str | None) -> torch.Generator:
    """The generator to draw directions for ``device`` from: ``generator`` itself, except for a
    CUDA ``device`` and a CPU ``generator``: then a generator on that device, seeded by ONE
    draw of ``generator``. So ``generator`` stays the only state a checkpoint needs, and the
    q × m directions of a step are drawn where they are used (for the 1.74 M controls of the
    dense MNIST ONN, drawing on the CPU was 97 % of a GPU step). Draws on a GPU are not the
    CPU's draws; a CPU run draws exactly as before."""
    if device is None or torch.device(device).type != "cuda" or generator.device.type == "cuda":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def sample_directions(q: int, m: int, *, dist: str, generator: torch.Generator,
                      dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> Tensor:
    """q random directions in R^m with E[uuᵀ] = I: standard Gaussian, Rademacher (±1), or
    uniform on the sphere of radius √m; on ``device`` (default: the generator's), drawn as
    :func:`draw_generator` says."""
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {DISTRIBUTIONS}, got {dist!r}")
    generator = draw_generator(generator, device)
    dev = generator.device
    if dist == "gaussian":
        return torch.randn(q, m, generator=generator, dtype=dtype, device=dev)
    if dist == "rademacher":
        bits = torch.randint(0, 2, (q, m), generator=generator, device=dev)
        return (2 * bits - 1).to(dtype)
    z = torch.randn(q, m, generator=generator, dtype=dtype, device=dev)
    return z / z.norm(dim=1, keepdim=True) * m**0.5


def random_coords(idx: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k distinct entries of the coordinate indices ``idx`` (e.g. :func:`support`), drawn at
    random from ``generator``."""
    return idx[torch.randperm(idx.numel(), generator=generator)[:k].to(idx.device)]


def _coordinate_steps(theta: Tensor, coords: Tensor, size: float) -> Tensor:
    """[k, d] rows, row i = size·e_{coords[i]} (θ's dtype and device)."""
    k = coords.numel()
    steps = theta.new_zeros(k, theta.shape[-1])
    steps[torch.arange(k, device=theta.device), coords] = size
    return steps


def _scatter(u_sub: Tensor, idx: Tensor, d: int) -> Tensor:
    """[q, m] directions on the support ``idx`` → [q, d] (zeros elsewhere), on idx's device."""
    if idx.numel() == d:  # the whole vector (support's indices are distinct and sorted): u_sub itself
        return u_sub.to(idx.device)
    u = torch.zeros(u_sub.shape[0], d, dtype=u_sub.dtype, device=idx.device)
    u[:, idx] = u_sub.to(idx.device)
    return u


def sparse_directions(q: int, m: int, nnz: int, *, dist: str, generator: torch.Generator,
                      dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> Tensor:
    """q directions in R^m, each with ``nnz`` non-zero entries at random distinct positions
    (values from ``dist`` over those nnz coordinates); E[uuᵀ] = (nnz/m)·I; ``device`` as in
    :func:`sample_directions`."""
    if int(nnz) != nnz or not 1 <= nnz <= m:
        raise ValueError(f"nnz must be an integer in [1, {m}] (the perturbable coordinates), got {nnz!r}")
    generator = draw_generator(generator, device)
    values = sample_directions(q, int(nnz), dist=dist, generator=generator, dtype=dtype)
    if nnz == m:
        return values
    pos = torch.rand(q, m, generator=generator, device=generator.device).topk(int(nnz), dim=1).indices
    return torch.zeros(q, m, dtype=dtype, device=generator.device).scatter_(1, pos, values)


def _rows(theta: Tensor, step: Tensor, two_sided: bool) -> Tensor:
    """``rge``'s query rows: [θ + s_1..q, θ − s_1..q] (two-sided) or [θ, θ + s_1..q], written in
    place into one buffer (the values ``cat`` gives, without its copy); with autograd on θ, the
    ``cat`` itself (``out=`` refuses it)."""
    if torch.is_grad_enabled() and theta.requires_grad:
        return torch.cat([theta + step, theta - step] if two_sided else [theta[None], theta + step])
    q = step.shape[0]
    out = torch.empty(2 * q if two_sided else q + 1, theta.shape[-1], dtype=theta.dtype, device=theta.device)
    if two_sided:
        torch.add(theta, step, out=out[:q])
        torch.sub(theta, step, out=out[q:])
    else:
        out[0] = theta
        torch.add(theta, step, out=out[1:])
    return out


def rge(closure: Closure, theta: Tensor, *, q: int, mu: float, generator: torch.Generator,
        dist: str = "gaussian", two_sided: bool = False, mask: Tensor | None = None,
        periods: Tensor | None = None, nnz: int | None = None) -> Estimate:
    """Randomized gradient estimate.

    one-sided: rows [θ, θ+μu_1, …, θ+μu_q] (q+1 queries), ĝ = (1/q) Σ [L(θ+μu_i) − L(θ)]/μ · u_i.
    two-sided: rows [θ+μu_1..q, θ−μu_1..q] (2q queries), ĝ = (1/q) Σ [L(θ+μu_i) − L(θ−μu_i)]/(2μ) · u_i.
    ``nnz``: sparse directions (:func:`sparse_directions`), ĝ scaled by m/nnz; None = all m.
    """
    _check_q_mu(q, mu)
    idx = support(theta, mask)
    d, m = theta.shape[-1], idx.numel()
    k = m if nnz is None else nnz
    u = _scatter(sparse_directions(q, m, k, dist=dist, generator=generator, dtype=theta.dtype,
                                   device=theta.device), idx, d)

    def estimate(coef: Tensor) -> Tensor:
        g = coef @ u / q
        return g if k == m else g * (m / k)  # sparse: E[uuᵀ] = (k/m)·I

    step = mu * u  # once for both signs
    if two_sided:
        batch = _rows(theta, step, True)
        losses = evaluate(closure, wrap(batch, periods))
        coef = (losses[:q] - losses[q:]) / (2 * mu)
        return Estimate(estimate(coef), losses.mean())
    batch = _rows(theta, step, False)
    losses = evaluate(closure, wrap(batch, periods))
    coef = (losses[1:] - losses[0]) / mu
    return Estimate(estimate(coef), losses[0])


def gaussian_forward(closure: Closure, theta: Tensor, *, q: int, mu: float,
                     generator: torch.Generator, mask: Tensor | None = None,
                     periods: Tensor | None = None) -> Estimate:
    """FLOPS-style estimate (Gu et al., DAC 2020): forward differences along q Gaussian samples
    of standard deviation μ, ĝ = (1/q) Σ [L(θ+μu_i) − L(θ)]/μ · u_i, q+1 queries. FLOPS relies on
    many samples (q ~ 20–60) and on shrinking μ as training proceeds (done by the strategy)."""
    return rge(closure, theta, q=q, mu=mu, generator=generator, dist="gaussian",
               two_sided=False, mask=mask, periods=periods)


def cge(closure: Closure, theta: Tensor, *, mu: float, central: bool = False,
        coords: Tensor | None = None, mask: Tensor | None = None,
        periods: Tensor | None = None) -> Estimate:
    """Coordinate gradient estimate over ``coords`` (default: every coordinate in ``mask``).

    forward: rows [θ, θ+μe_c…] (k+1 queries), ĝ_c = [L(θ+μe_c) − L(θ)]/μ.
    central: rows [θ, θ+μe_c…, θ−μe_c…] (2k+1 queries), ĝ_c = [L(θ+μe_c) − L(θ−μe_c)]/(2μ).
    Coordinates not in ``coords`` get ĝ = 0 (no rescaling: a coordinate-descent estimate).
    """
    _check_q_mu(1, mu)
    idx = support(theta, mask) if coords is None else coords.flatten().to(theta.device)
    k = idx.numel()
    steps = _coordinate_steps(theta, idx, mu)
    parts = [theta[None], theta + steps] + ([theta - steps] if central else [])
    losses = evaluate(closure, wrap(torch.cat(parts), periods))
    grad = torch.zeros_like(theta)
    if central:
        grad[idx] = (losses[1:k + 1] - losses[k + 1:]) / (2 * mu)
    else:
        grad[idx] = (losses[1:] - losses[0]) / mu
    return Estimate(grad, losses[0])


def spsa(closure: Closure, theta: Tensor, *, q: int, mu: float, generator: torch.Generator,
         mask: Tensor | None = None, periods: Tensor | None = None) -> Estimate:
    """Simultaneous-perturbation estimate (Spall) averaged over q Rademacher draws Δ:
    rows [θ+μΔ_1..q, θ−μΔ_1..q] (2q queries), ĝ_i = (1/q) Σ [L(θ+μΔ) − L(θ−μΔ)]/(2μΔ_i)."""
    _check_q_mu(q, mu)
    idx = support(theta, mask)
    delta = sample_directions(q, idx.numel(), dist="rademacher", generator=generator,
                              dtype=theta.dtype, device=theta.device)
    full = _scatter(delta, idx, theta.shape[-1])
    losses = evaluate(closure, wrap(torch.cat([theta + mu * full, theta - mu * full]), periods))
    diff = (losses[:q] - losses[q:]) / (2 * mu)
    grad = torch.zeros_like(theta)
    grad[idx] = (diff[:, None] / delta.to(theta.device)).mean(0)
    return Estimate(grad, losses.mean())


def sparse_coordinate_search(closure: Closure, theta: Tensor, *, k: int, step: float,
                             generator: torch.Generator, mask: Tensor | None = None,
                             periods: Tensor | None = None, min_gain: float = 0.0) -> Search:
    """MixedTrain-style sparse coordinate search (after Gu et al., AAAI 2021).

    Draws k distinct coordinates of the mask at random, tries θ ± step·e_c for each of them
    (rows [θ, θ+step·e_c…, θ−step·e_c…], 2k+1 queries in one call) and, per coordinate, keeps
    the better of the two trial moves only if it lowers the loss below L(θ) − min_gain;
    otherwise that coordinate stays (move 0). The caller applies θ += step · move.
    """
    if not step > 0:
        raise ValueError(f"step must be > 0 (rad), got {step}")
    idx = support(theta, mask)
    if int(k) != k or not 1 <= k <= idx.numel():
        raise ValueError(f"k must be an integer in [1, {idx.numel()}], got {k}")
    chosen = random_coords(idx, k, generator)
    steps = _coordinate_steps(theta, chosen, step)
    losses = evaluate(closure, wrap(torch.cat([theta[None], theta + steps, theta - steps]), periods))
    base, plus, minus = losses[0], losses[1:k + 1], losses[k + 1:]
    up = (plus <= minus) & (plus < base - min_gain)
    down = (minus < plus) & (minus < base - min_gain)
    move = torch.zeros_like(theta)
    move[chosen] = up.to(theta.dtype) - down.to(theta.dtype)
    return Search(move, base)


# ---------------------------------------------------------------- quantized and group-relative ZO
ROUNDINGS = ("stochastic", "nearest")
GROUP_NORMALIZATIONS = ("none", "center", "standardize")


def on_lattice(step: Tensor | None) -> Tensor | None:
    """Bool [d]: coordinates with a lattice (step finite and > 0); None when ``step`` is None."""
    return None if step is None else torch.isfinite(step) & (step > 0)


def round_to_lattice(x: Tensor, step: Tensor | None, *, rounding: str = "stochastic",
                     generator: torch.Generator | None = None, uniform: Tensor | None = None) -> Tensor:
    """x [..., d] onto the lattice {k·step} (integer k, offset 0; ``step`` [d] in rad, NaN or
    0: no lattice, entry kept; the lattice of ``Chip.controls()["lattice"]``).

    "nearest": the nearest lattice point (what the chip's own quantizer does to a target).
    "stochastic": the lower neighbour k·step with probability 1 − f and the upper (k+1)·step
    with probability f, f = x/step − k the fractional part, so E[SR(x)] = x exactly and E[L(SR(x))]
    is the multilinear interpolant of L between lattice points. The uniforms come from
    ``generator``, or from ``uniform`` (same shape as x, in [0, 1); x rounds up where
    uniform < f: the same uniforms for two rows make them round alike, see :func:`quantized_rge`)."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    valid = on_lattice(step)
    if valid is None or not bool(valid.any()):
        return x
    safe = torch.where(valid, step, torch.ones_like(step)).to(x)
    scaled = x / safe
    if rounding == "nearest":
        k = torch.round(scaled)
    else:
        low = torch.floor(scaled)
        if uniform is None:
            uniform = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        k = low + (uniform < scaled - low).to(x.dtype)
    return torch.where(valid.to(x.device), k * safe, x)


def quantized_rge(closure: Closure, theta: Tensor, *, q: int, mu: float, generator: torch.Generator,
                  lattice: Tensor | None, rounding: str = "stochastic", dist: str = "rademacher",
                  two_sided: bool = True, mask: Tensor | None = None,
                  periods: Tensor | None = None) -> Estimate:
    """:func:`rge` whose rows are rounded onto the DAC ``lattice`` ([d] step, rad) before the
    chip sees them, so the controller, not the chip's round-to-nearest, decides the codes.

    "stochastic" (QuZO): every row is SR(θ ± μu) (:func:`round_to_lattice`), its uniforms from
    ``generator``; a two-sided pair shares them (common random numbers: SR(x) = h·⌊x/h + 1 − r⌋
    with the same r), so a coordinate rounds differently in the two rows only when a code
    boundary lies between θ_i − μu_i and θ_i + μu_i (probability 2μ|u_i|/h for μ|u_i| ≤ h/2),
    wherever θ sits in its cell: the rounding of the unperturbed coordinates adds nothing to
    the difference.
    Each row is marginally SR, so E ĝ is the gradient estimate of the multilinear interpolant
    L̃ of the chip's loss: with θ on the lattice and L quadratic, E ĝ = ∇L(θ) exactly, for
    any μ, including μ below one LSB h. "nearest": rows are rounded to the nearest code (the
    deterministic baseline); with θ on the lattice, Rademacher u and μ < h/2 every row rounds
    back to θ and ĝ = 0. Rows are wrapped by ``periods`` after rounding (the lattice is
    periodic with the phase)."""
    if two_sided and rounding == "stochastic":  # one r per pair: see above
        def rounded(batch: Tensor) -> Tensor:
            r = torch.rand((q, batch.shape[-1]), generator=generator, dtype=batch.dtype).to(batch.device)
            return round_to_lattice(batch, lattice, rounding=rounding, uniform=torch.cat([r, r]))
    else:
        def rounded(batch: Tensor) -> Tensor:
            return round_to_lattice(batch, lattice, rounding=rounding, generator=generator)

    return rge(lambda batch: closure(wrap(rounded(batch), periods)), theta, q=q, mu=mu, generator=generator,
               dist=dist, two_sided=two_sided, mask=mask, periods=periods)


def group_relative(closure: Closure, theta: Tensor, *, group: int, mu: float, generator: torch.Generator,
                   dist: str = "gaussian", two_sided: bool = True, normalize: str = "center",
                   mask: Tensor | None = None, periods: Tensor | None = None) -> Estimate:
    """Group-relative ZO (GRZO): one random direction u_p per example, ``group`` G examples.

    ``closure`` is a PER-EXAMPLE black box (``ClassificationTask.closure(kind="per-example")``):
    rows [..., G, d] → losses [..., G], row p measured on example p (mod the batch size) only.
    one-sided: rows θ+μu_p (G queries, G samples), v_p = ℓ_p(θ+μu_p)/μ.
    two-sided: rows [2, G, d] = θ±μu_p on example p (2G queries, 2G samples),
    v_p = [ℓ_p(θ+μu_p) − ℓ_p(θ−μu_p)]/(2μ).
    ``normalize`` (within the group): "none" ĝ = (1/G) Σ v_p u_p; "center" ĝ = 1/(G−1) Σ
    (v_p − v̄) u_p — unbiased for the batch-mean gradient ḡ, since E[(v_p − v̄)u_p] = (1−1/G)
    E[v_p u_p] (the group mean is the baseline that removes the example's own loss level
    in the one-sided form); "standardize" divides the centred v by their standard deviation
    (ddof 1): a dimensionless direction (lr sets the step) whose scale no longer follows the
    loss. Statistics on quadratics f_p(θ) = ½(θ−θ_p)ᵀA(θ−θ_p) with gradients g_p, Gaussian u,
    two-sided, "none": E ĝ = ḡ, E‖ĝ−ḡ‖² = (d+1)·mean_p‖g_p‖²/G, so the variance falls
    as 1/G at the cost of G (2G) phase settings per step (tests pin these).
    ``loss`` is the mean of all rows (an O(μ²)-biased proxy of the batch loss)."""
    _check_q_mu(group, mu)
    if normalize not in GROUP_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {GROUP_NORMALIZATIONS}, got {normalize!r}")
    if normalize != "none" and group < 2:
        raise ValueError(f"group must be >= 2 with normalize {normalize!r}, got {group}")
    idx = support(theta, mask)
    u = _scatter(sample_directions(group, idx.numel(), dist=dist, generator=generator, dtype=theta.dtype,
                                   device=theta.device), idx, theta.shape[-1])
    batch = torch.stack([theta + mu * u, theta - mu * u]) if two_sided else theta + mu * u
    out = closure(wrap(batch, periods))
    if not isinstance(out, Tensor) or tuple(out.shape) != tuple(batch.shape[:-1]):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"closure must return a Tensor of shape {tuple(batch.shape[:-1])}, got {got}")
    losses = out.detach().to(theta.dtype)
    v = (losses[0] - losses[1]) / (2 * mu) if two_sided else losses / mu
    if normalize == "none":
        return Estimate(v @ u / group, losses.mean())
    v = v - v.mean()
    if normalize == "standardize":
        v = v / v.std().clamp_min(torch.finfo(v.dtype).tiny)
    return Estimate(v @ u / (group - 1), losses.mean())
