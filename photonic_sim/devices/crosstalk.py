"""Thermal crosstalk between phase shifters, as a phase-domain matrix K: Δφ = K·φ.

Positions are heater centres in metres ([N, 2]); the result is φ + φ·Kᵀ per device.

* ``kernel`` (docs/physics.md#non-idealities, the seed paper / torchonn model): K_ij = factor for nearest
  neighbours (0 < d_ij ≤ 1.01·pitch), 0 otherwise.
* ``distance`` (physical): the heater j dissipates P_j = P_π·φ_j/π and shifts device i by
  Δφ_i = Σ_j C_ij P_j with C_ij = (factor·π/P_π)·exp(−(d_ij − pitch)/decay_length) rad/W for
  d_ij > 0. In the phase domain K_ij = C_ij·P_π/π = factor·exp(−(d_ij − pitch)/decay_length):
  a neighbour at one pitch couples with ``factor``, farther ones decay with distance.

As decay_length → 0, exp(−(d − pitch)/L) → 1 at d = pitch and → 0 for d > pitch, so on a
layout whose closest spacing is the pitch the distance model becomes the kernel model.
factor = 0 gives K = 0 exactly (no crosstalk). K has a zero diagonal (self-heating is the
intended phase).

Dense or sparse. ``sparse=False`` (default) returns a dense [N, N] tensor: right for small
layouts such as one SVD block (136 phases). ``sparse=True`` returns the same matrix as a
coalesced torch COO tensor holding only its nonzero entries, built row block by row block
(never N×N at once): right for large meshes, where the kernel model has about one
neighbour per phase (a 64-mode Clements mesh: 4096 phases, ~4200 nonzeros).
``apply_crosstalk`` takes either form (a sparse CSR K is converted to COO) and gives the
same result to rounding; the sparse product is a gather, a multiply and an ``index_add``.
The distance model has no zero off the diagonal, so its sparse form holds N(N−1) entries.
"""

from __future__ import annotations

import math

import torch

from photonic_sim.devices.cards import DeviceCard

Tensor = torch.Tensor
_NEIGHBOUR_TOL = 1.01
_ROW_BLOCK = 1024  # rows of the distance matrix formed at once by the sparse build


def crosstalk_matrix(
    positions: Tensor,
    *,
    model: str = "kernel",
    factor: float = 0.005,
    decay_length: float = 20e-6,
    pitch: float = 50e-6,
    p_pi: float = 0.03,
    sparse: bool = False,
    cutoff: float = 0.0,
) -> Tensor:
    """Phase-domain crosstalk matrix K [N, N] (float64, zero diagonal); see module docstring.

    ``sparse=True`` returns the same K as a coalesced sparse COO tensor. ``cutoff`` (>= 0):
    distance-model entries below cutoff·factor are dropped (0 keeps all; e.g. 1e-6 drops
    heaters farther than pitch + 13.8·decay_length, so a large layout stays sparse).
    """
    if model not in ("kernel", "distance"):
        raise ValueError(f"model: {model!r} is not supported (allowed: kernel, distance)")
    if not factor >= 0:
        raise ValueError(f"factor: {factor!r} is out of range (allowed: >= 0)")
    if not pitch > 0:
        raise ValueError(f"pitch: {pitch!r} is out of range (allowed: > 0 m)")
    if not cutoff >= 0:
        raise ValueError(f"cutoff: {cutoff!r} is out of range (allowed: >= 0)")
    if model == "distance":
        if not decay_length > 0:
            raise ValueError(f"decay_length: {decay_length!r} is out of range (allowed: > 0 m)")
        if not p_pi > 0:
            raise ValueError(f"p_pi: {p_pi!r} is out of range (allowed: > 0 W for the distance model)")
    pos = torch.as_tensor(positions, dtype=torch.float64)
    if pos.ndim != 2 or pos.shape[-1] != 2:
        raise ValueError(f"positions: shape {tuple(pos.shape)} is invalid (allowed: [N, 2] in metres)")

    def rows(lo: int, hi: int) -> Tensor:
        """Rows lo…hi−1 of K, dense [hi − lo, N]."""
        d = torch.cdist(pos[lo:hi], pos, compute_mode="donot_use_mm_for_euclid_dist")  # exact distances
        off = d > 0
        if model == "kernel":
            return (off & (d <= _NEIGHBOUR_TOL * pitch)).to(torch.float64) * factor
        coupling = (factor * math.pi / p_pi) * torch.exp(-(d - pitch) / decay_length)  # C_ij, rad/W
        k = coupling * (p_pi / math.pi)
        return torch.where(off & (k >= cutoff * factor), k, torch.zeros_like(d))

    n = pos.shape[0]
    if not sparse:
        return rows(0, n)
    index, values = [], []
    for lo in range(0, n, _ROW_BLOCK):
        block = rows(lo, min(lo + _ROW_BLOCK, n))
        r, c = torch.nonzero(block, as_tuple=True)
        index.append(torch.stack((r + lo, c)))
        values.append(block[r, c])
    return torch.sparse_coo_tensor(
        torch.cat(index, 1) if index else torch.zeros(2, 0, dtype=torch.long),
        torch.cat(values) if values else torch.zeros(0, dtype=torch.float64),
        (n, n), is_coalesced=True, check_invariants=True,
    )


def apply_crosstalk(phi: Tensor, k: Tensor) -> Tensor:
    """Phases with crosstalk, φ + φ·Kᵀ, for ``phi`` [..., N] and K [N, N] dense or sparse.

    Sparse K (COO, or CSR converted to COO): Δφ_i = Σ_j K_ij φ_j as a gather of φ at the
    column indices, a multiply by the values and an ``index_add`` into the rows: cost
    ∝ nnz instead of N². Differentiable with respect to ``phi`` in both forms.
    """
    if k.layout == torch.strided:
        return phi + phi @ k.to(phi.dtype).T
    if k.layout != torch.sparse_coo:
        k = k.to_sparse_coo()
    k = k.coalesce()
    r, c = k.indices()
    return phi.index_add(-1, r, phi.index_select(-1, c) * k.values().to(phi.dtype))


def crosstalk_from_card(positions: Tensor, card: DeviceCard, *, sparse: bool = False,
                        cutoff: float = 0.0) -> Tensor:
    """:func:`crosstalk_matrix` with model, factor, decay length, pitch and P_π from a device card."""
    return crosstalk_matrix(
        positions, model=card.crosstalk.model, factor=card.crosstalk.factor,
        decay_length=card.crosstalk.decay_length, pitch=card.waveguide.mzi_pitch,
        p_pi=card.phase_shifter.p_pi, sparse=sparse, cutoff=cutoff,
    )
