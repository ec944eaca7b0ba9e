"""Thermal crosstalk between phase shifters, as a phase-domain matrix K: Δφ = K·φ.

Positions are heater centres in metres ([N, 2]); the result is φ + φ·Kᵀ per device.

* ``kernel`` (DESIGN §3, the seed paper / torchonn model): K_ij = factor for nearest
  neighbours (0 < d_ij ≤ 1.01·pitch), 0 otherwise.
* ``distance`` (physical): the heater j dissipates P_j = P_π·φ_j/π and shifts device i by
  Δφ_i = Σ_j C_ij P_j with C_ij = (factor·π/P_π)·exp(−(d_ij − pitch)/decay_length) rad/W for
  d_ij > 0. In the phase domain K_ij = C_ij·P_π/π = factor·exp(−(d_ij − pitch)/decay_length):
  a neighbour at one pitch couples with ``factor``, farther ones decay with distance.

As decay_length → 0, exp(−(d − pitch)/L) → 1 at d = pitch and → 0 for d > pitch, so on a
layout whose closest spacing is the pitch the distance model becomes the kernel model.
factor = 0 gives K = 0 exactly (no crosstalk). K has a zero diagonal (self-heating is the
intended phase).
"""

from __future__ import annotations

import math

import torch

from photonic_sim.devices.cards import DeviceCard

Tensor = torch.Tensor
_NEIGHBOUR_TOL = 1.01


def crosstalk_matrix(
    positions: Tensor,
    *,
    model: str = "kernel",
    factor: float = 0.005,
    decay_length: float = 20e-6,
    pitch: float = 50e-6,
    p_pi: float = 0.03,
) -> Tensor:
    """Phase-domain crosstalk matrix K [N, N] (float64, zero diagonal); see module docstring."""
    if model not in ("kernel", "distance"):
        raise ValueError(f"model: {model!r} is not supported (allowed: kernel, distance)")
    if not factor >= 0:
        raise ValueError(f"factor: {factor!r} is out of range (allowed: >= 0)")
    if not pitch > 0:
        raise ValueError(f"pitch: {pitch!r} is out of range (allowed: > 0 m)")
    pos = torch.as_tensor(positions, dtype=torch.float64)
    if pos.ndim != 2 or pos.shape[-1] != 2:
        raise ValueError(f"positions: shape {tuple(pos.shape)} is invalid (allowed: [N, 2] in metres)")
    d = torch.cdist(pos, pos, compute_mode="donot_use_mm_for_euclid_dist")  # exact distances
    off = d > 0
    if model == "kernel":
        return (off & (d <= _NEIGHBOUR_TOL * pitch)).to(torch.float64) * factor
    if not decay_length > 0:
        raise ValueError(f"decay_length: {decay_length!r} is out of range (allowed: > 0 m)")
    if not p_pi > 0:
        raise ValueError(f"p_pi: {p_pi!r} is out of range (allowed: > 0 W for the distance model)")
    coupling = (factor * math.pi / p_pi) * torch.exp(-(d - pitch) / decay_length)  # C_ij, rad/W
    return torch.where(off, coupling * (p_pi / math.pi), torch.zeros_like(d))


def apply_crosstalk(phi: Tensor, k: Tensor) -> Tensor:
    """Phases with crosstalk, φ + φ·Kᵀ, for ``phi`` [..., N] and K [N, N]."""
    return phi + phi @ k.to(phi.dtype).T


def crosstalk_from_card(positions: Tensor, card: DeviceCard) -> Tensor:
    """:func:`crosstalk_matrix` with model, factor, decay length, pitch and P_π from a device card."""
    return crosstalk_matrix(
        positions, model=card.crosstalk.model, factor=card.crosstalk.factor,
        decay_length=card.crosstalk.decay_length, pitch=card.waveguide.mzi_pitch,
        p_pi=card.phase_shifter.p_pi,
    )
