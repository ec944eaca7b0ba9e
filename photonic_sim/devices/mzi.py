"""Mach-Zehnder interferometer transfer matrices (the project-wide convention).

Convention (docs/physics.md#conventions), light enters on the right of the product:

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


def mzi_coefficients(
    theta: Tensor,
    phi: Tensor,
    *,
    kappa1: Tensor | float = 0.5,
    kappa2: Tensor | float = 0.5,
    loss_db: Tensor | float = 0.0,
    dtype: torch.dtype = torch.complex128,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four entries (T00, T01, T10, T11) of T(θ, φ), each [...] complex, in closed form.

    With B(κ) = [[t, ik], [ik, t]], t = √(1-κ), k = √κ (κ₁ input side, κ₂ output side):

        T00 = e^{iφ} (t₂t₁ e^{iθ} − k₂k₁)     T01 = i (t₂k₁ e^{iθ} + k₂t₁)
        T10 = i e^{iφ} (k₂t₁ e^{iθ} + t₂k₁)    T11 = t₂t₁ − k₂k₁ e^{iθ}

    which for κ₁ = κ₂ = 1/2 is T00 = e^{iφ}(e^{iθ} − 1)/2, T01 = i(e^{iθ} + 1)/2,
    T10 = e^{iφ}·T01, T11 = (1 − e^{iθ})/2 (the module docstring's form). All times the
    amplitude 10^(-IL/20). Arguments as in :func:`mzi_matrix`; differentiable.
    """
    rdt = _real_dtype(dtype)
    theta = torch.as_tensor(theta, dtype=rdt)
    phi = torch.as_tensor(phi, dtype=rdt, device=theta.device)
    e_theta = torch.complex(torch.cos(theta), torch.sin(theta)).to(dtype)
    e_phi = torch.complex(torch.cos(phi), torch.sin(phi)).to(dtype)
    return mzi_coefficients_from_phasors(e_theta, e_phi, kappa1=kappa1, kappa2=kappa2, loss_db=loss_db)


def mzi_coefficients_from_phasors(
    e_theta: Tensor,
    e_phi: Tensor,
    *,
    kappa1: Tensor | float = 0.5,
    kappa2: Tensor | float = 0.5,
    loss_db: Tensor | float = 0.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`mzi_coefficients` from the phasors e^{iθ}, e^{iφ} (complex, same dtype), for
    callers that already hold them (a mesh takes cos and sin of all its phases at once).
    Same formulas, same results bit for bit; differentiable."""
    dtype, rdt = e_theta.dtype, _real_dtype(e_theta.dtype)
    shape = torch.broadcast_shapes(e_theta.shape, e_phi.shape)
    if _is_half(kappa1) and _is_half(kappa2):
        t11 = (1.0 - e_theta) * 0.5
        t01 = (1.0 + e_theta) * 0.5j
        t00 = -e_phi * t11
        t10 = e_phi * t01
    else:
        kappa1 = torch.as_tensor(kappa1, dtype=rdt, device=e_theta.device)
        kappa2 = torch.as_tensor(kappa2, dtype=rdt, device=e_theta.device)
        shape = torch.broadcast_shapes(shape, kappa1.shape, kappa2.shape)
        t1, k1 = torch.sqrt(1.0 - kappa1), torch.sqrt(kappa1)
        t2, k2 = torch.sqrt(1.0 - kappa2), torch.sqrt(kappa2)
        t00 = e_phi * (t2 * t1 * e_theta - k2 * k1)
        t01 = 1j * (t2 * k1 * e_theta + k2 * t1)
        t10 = 1j * e_phi * (k2 * t1 * e_theta + t2 * k1)
        t11 = t2 * t1 - k2 * k1 * e_theta
    if isinstance(loss_db, (int, float)) and loss_db == 0.0:
        return tuple(t.to(dtype).expand(shape) for t in (t00, t01, t10, t11))
    loss_db = torch.as_tensor(loss_db, dtype=rdt, device=e_theta.device)
    if loss_db.numel() > 1 or loss_db.requires_grad or float(loss_db) != 0.0:
        amp = 10.0 ** (-loss_db / 20.0)
        shape = torch.broadcast_shapes(shape, amp.shape)
        t00, t01, t10, t11 = (t * amp for t in (t00, t01, t10, t11))
    return tuple(t.to(dtype).expand(shape) for t in (t00, t01, t10, t11))


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
    against ``theta``/``phi``. ``loss_db`` is the whole-MZI insertion loss in dB. Built from
    the closed form of :func:`mzi_coefficients` (equal to the product B₂·D(θ)·B₁·D(φ)).
    """
    t00, t01, t10, t11 = mzi_coefficients(theta, phi, kappa1=kappa1, kappa2=kappa2, loss_db=loss_db, dtype=dtype)
    return torch.stack((torch.stack((t00, t01), -1), torch.stack((t10, t11), -1)), -2)


def db_to_amplitude(loss_db: float | Tensor) -> float | Tensor:
    """Insertion loss in dB → field amplitude transmission 10^(-IL/20)."""
    if isinstance(loss_db, Tensor):
        return 10.0 ** (-loss_db / 20.0)
    return math.pow(10.0, -float(loss_db) / 20.0)


def _is_half(kappa: Tensor | float) -> bool:
    """True for the plain number 0.5 (ideal coupler): the cheaper closed form applies."""
    return isinstance(kappa, (int, float)) and float(kappa) == 0.5


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype == torch.complex64 else torch.float64
