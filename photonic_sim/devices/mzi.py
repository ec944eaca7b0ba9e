"""Mach-Zehnder interferometer transfer matrices (the project-wide convention).

Convention (DESIGN §2), light enters on the right of the product:

    T(θ, φ) = B(κ₂) · diag(e^{iθ}, 1) · B(κ₁) · diag(e^{iφ}, 1) · a

with the directional coupler

    B(κ) = [[√(1-κ), i√κ],
            [i√κ,    √(1-κ)]],     κ = 0.5 ideal (50:50), κ = 0.5 + δκ imbalanced.

* φ (external) sits on the TOP arm before the first coupler, θ (internal) on the TOP arm
  between the couplers. Port 0 is the top waveguide, port 1 the bottom one.
* Phases are in radians; meshes keep them in [0, 2π).
* Insertion loss IL (dB, whole MZI) multiplies the matrix by the amplitude 10^(-IL/20).

For ideal couplers T(θ, φ) = i e^{iθ/2} [[e^{iφ} sin(θ/2), cos(θ/2)],
                                       [e^{iφ} cos(θ/2), -sin(θ/2)]],
so θ = 0 is the full cross state and θ = π the bar state.

Everything is batched over any leading dimensions and differentiable by autograd.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def coupler_matrix(kappa: Tensor | float, *, dtype: torch.dtype = torch.complex128) -> Tensor:
    """Directional coupler B(κ) → [..., 2, 2] complex; κ is the power coupling ratio."""
    kappa = torch.as_tensor(kappa, dtype=_real_dtype(dtype))
    t = torch.sqrt(1.0 - kappa).to(dtype)
    k = (1j * torch.sqrt(kappa)).to(dtype)
    return torch.stack((torch.stack((t, k), -1), torch.stack((k, t), -1)), -2)


def mzi_matrix(
    theta: Tensor,
    phi: Tensor,
    *,
    kappa1: Tensor | float = 0.5,
    kappa2: Tensor | float = 0.5,
    loss_db: Tensor | float = 0.0,
    dtype: torch.dtype = torch.complex128,
) -> Tensor:
    """Batched MZI transfer matrix T(θ, φ) → [..., 2, 2] (see module docstring).

    ``kappa1`` is the input-side coupler, ``kappa2`` the output-side one; both broadcast
    against ``theta``/``phi``. ``loss_db`` is the whole-MZI insertion loss in dB.
    """
    rdt = _real_dtype(dtype)
    theta = torch.as_tensor(theta, dtype=rdt)
    phi = torch.as_tensor(phi, dtype=rdt)
    kappa1 = torch.as_tensor(kappa1, dtype=rdt)
    kappa2 = torch.as_tensor(kappa2, dtype=rdt)
    shape = torch.broadcast_shapes(theta.shape, phi.shape, kappa1.shape, kappa2.shape)
    b1 = coupler_matrix(kappa1.expand(shape), dtype=dtype)
    b2 = coupler_matrix(kappa2.expand(shape), dtype=dtype)
    et = torch.polar(torch.ones_like(theta), theta).to(dtype).expand(shape)
    ep = torch.polar(torch.ones_like(phi), phi).to(dtype).expand(shape)
    # B2 · diag(e^{iθ},1) scales column 0 of B2; B1 · diag(e^{iφ},1) scales column 0 of B1.
    left = torch.stack((b2[..., :, 0] * et[..., None], b2[..., :, 1]), -1)
    right = torch.stack((b1[..., :, 0] * ep[..., None], b1[..., :, 1]), -1)
    out = left @ right
    loss_db = torch.as_tensor(loss_db, dtype=rdt)
    if loss_db.numel() > 1 or float(loss_db) != 0.0:
        out = out * (10.0 ** (-loss_db / 20.0)).to(dtype)[..., None, None]
    return out


def db_to_amplitude(loss_db: float | Tensor) -> float | Tensor:
    """Insertion loss in dB → field amplitude transmission 10^(-IL/20)."""
    if isinstance(loss_db, Tensor):
        return 10.0 ** (-loss_db / 20.0)
    return math.pow(10.0, -float(loss_db) / 20.0)


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype == torch.complex64 else torch.float64
