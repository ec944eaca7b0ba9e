"""SVD block: an arbitrary n_out × n_in matrix W = U · Σ · V† on two meshes and attenuators.

Light order: V mesh (ClementsMesh(n_in); its ``unitary()`` IS V†, so it realises V† directly),
then the Σ column (one attenuator on each of the modes 0 … r−1, r = min(n_out, n_in); modes
≥ r of the V output are dropped, and modes ≥ r of the U input get no light, i.e. zero
padding), then the U mesh (ClementsMesh(n_out), its ``unitary()`` is U). A side of one mode
uses a bare one-phase screen ``Mesh(1)`` instead of a mesh.

Attenuator convention: a push-pull MZI, +θ/2 on the top arm and −θ/2 on the bottom arm
between its couplers, read at the bar port (top in → top out):

    t(θ) = [B(κ₂) · diag(e^{iθ/2}, e^{-iθ/2}) · B(κ₁)]₀₀ = e^{-iθ/2} · T(θ, 0)₀₀,

which is i·sin(θ/2) for ideal couplers. The constant factor i is one global phase of the
whole block, absorbed into the coherent-detection reference, so Σ_jj = t(θ_j)/i = sin(θ_j/2)
with θ_j ∈ [0, π] ⇒ σ ∈ [0, 1]. With imbalanced couplers or loss t is computed from
``mzi_matrix`` and divided by the same i (σ may then be complex).

Phase vector (last dim): [U mesh phases | r attenuator θ | V mesh phases], see ``slices``.
Periods: 2π for U and V, π for Σ.

Non-ideal parameters (``kappa``, ``loss_db``) are given either as a dict with any of the keys
"U", "S", "V" (each as for ``Mesh.unitary``: kappa [..., M_part, 2], loss [..., M_part]; a
missing key means ideal), or as one tensor over all MZIs of the block in the order U, Σ, V
(kappa [..., num_mzis, 2], loss [..., num_mzis]; see ``mzi_slices``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from photonic_sim.circuits.decompose import decompose
from photonic_sim.circuits.mesh import ClementsMesh, Mesh, _complex_dtype, _real_dtype, _static
from photonic_sim.devices.mzi import mzi_matrix

Tensor = torch.Tensor
PARTS = ("U", "S", "V")


def attenuator_transmission(
    theta: Tensor,
    *,
    kappa: Tensor | float | None = None,
    loss_db: Tensor | float | None = None,
    dtype: torch.dtype = torch.complex128,
) -> Tensor:
    """Σ value t(θ)/i of push-pull attenuators θ[...]; kappa broadcastable to [..., 2] = (κ₁, κ₂),
    loss_db (dB) broadcastable to θ. Ideal: sin(θ/2)."""
    rdt = _real_dtype(dtype)
    theta = torch.as_tensor(theta, dtype=rdt)
    if kappa is None and loss_db is None and not theta.requires_grad:
        # ideal couplers, no loss: t(θ)/i = (e^{iθ/2} − e^{−iθ/2})/(2i) = sin(θ/2) in closed form
        # (the general path below equals it to rounding, ~1e-16, at ~4× the cost)
        return torch.sin(0.5 * theta).to(dtype)
    kappa1 = kappa2 = 0.5
    if kappa is not None:
        k = torch.as_tensor(kappa, dtype=rdt, device=theta.device)
        try:
            k = k.expand(torch.broadcast_shapes(k.shape, (2,)))
        except RuntimeError:
            raise ValueError(f"kappa must broadcast to [..., 2] (κ1, κ2), got {tuple(k.shape)}") from None
        if bool(((k < 0) | (k > 1) | torch.isnan(k)).any()):
            raise ValueError("kappa (coupler power ratio) must lie in [0, 1]")
        kappa1, kappa2 = k[..., 0], k[..., 1]
    if kappa is None and loss_db is not None and not (torch.is_grad_enabled() and theta.requires_grad):
        # ideal couplers with loss, no autograd: the T00 of the general path below without the
        # other three entries, by the same ops on the same tensors (e^{iφ} = 1 + 0i for φ = 0, so
        # −e^{iφ}·T11 is T11 × (−1 − 0i): the same products) then × 10^(−IL/20): the same bits at a
        # third of the ops. T00 is then held, like mzi_matrix's [..., 0, 0], as a view with stride
        # 4: torch multiplies it by push_pull below in its scalar loop (fused multiply-add), not
        # the vector one. A chip's static loss tensor is checked and raised to its amplitude once
        # (``_static``), not on every call.
        amp = _static("attenuator amplitude", loss_db, rdt, theta.device,
                      lambda: 10.0 ** (-_checked_loss(loss_db, rdt, theta.device) / 20.0))
        e = torch.complex(torch.cos(theta), torch.sin(theta)).to(dtype)
        t00 = (1.0 - e) * 0.5 * _static("-1-0i", None, dtype, theta.device,
                                       lambda: torch.tensor(complex(-1.0, -0.0), dtype=dtype, device=theta.device))
        t00 = t00 * amp
        held = torch.empty(*t00.shape, 4, dtype=dtype, device=theta.device)
        held[..., 0] = t00
        t00 = held[..., 0]
    else:
        loss = 0.0 if loss_db is None else _checked_loss(loss_db, rdt, theta.device)
        t00 = mzi_matrix(theta, torch.zeros_like(theta), kappa1=kappa1, kappa2=kappa2, loss_db=loss,
                         dtype=dtype)[..., 0, 0]
    # diag(e^{iθ/2}, e^{-iθ/2}) = e^{-iθ/2} · diag(e^{iθ}, 1)
    push_pull = torch.polar(torch.ones_like(theta), -0.5 * theta).to(dtype)
    return t00 * push_pull / 1j


def _checked_loss(loss_db, rdt: torch.dtype, device) -> Tensor:
    loss = torch.as_tensor(loss_db, dtype=rdt, device=device)
    if bool(((loss < 0) | torch.isnan(loss)).any()):
        raise ValueError("loss_db (insertion loss per attenuator, dB) must be >= 0")
    return loss


class SVDBlock:
    """W = U · Σ · V† (n_out × n_in) on ClementsMesh(n_out), r attenuators, ClementsMesh(n_in)."""

    def __init__(self, n_out: int, n_in: int) -> None:
        for name, v in (("n_out", n_out), ("n_in", n_in)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SVDBlock: {name} must be an integer >= 1, got {v!r}")
        self.n_out, self.n_in = n_out, n_in
        self.rank = min(n_out, n_in)
        self.u: Mesh = ClementsMesh(n_out) if n_out >= 2 else Mesh(1)
        self.v: Mesh = ClementsMesh(n_in) if n_in >= 2 else Mesh(1)
        pu, r, pv = self.u.num_phases, self.rank, self.v.num_phases
        self.num_phases = pu + r + pv
        self.slices = {"U": slice(0, pu), "S": slice(pu, pu + r), "V": slice(pu + r, pu + r + pv)}
        mu, mv = self.u.num_mzis, self.v.num_mzis
        self.num_mzis = mu + r + mv
        self.mzi_slices = {"U": slice(0, mu), "S": slice(mu, mu + r), "V": slice(mu + r, mu + r + mv)}

    def phase_periods(self) -> Tensor:
        """Period of every phase, float64 [num_phases]: 2π for U/V, π for Σ."""
        return torch.cat(
            (self.u.phase_periods(), torch.full((self.rank,), math.pi, dtype=torch.float64), self.v.phase_periods())
        )

    def positions(self) -> Tensor:
        """(x, y) of every phase shifter [num_phases, 2], in MZI pitches, in phase-vector order.

        Light runs left to right: V mesh at its own positions (x ∈ [−0.5, n_in]), the Σ
        column at x = v.num_columns + 1 (attenuator j at y = j), the U mesh shifted by
        x + v.num_columns + 2.
        """
        xs = float(self.v.num_columns + 1)
        y = torch.arange(self.rank, dtype=torch.float64)
        s = torch.stack((torch.full_like(y, xs), y), -1)
        u = self.u.positions() + torch.tensor([xs + 1.0, 0.0], dtype=torch.float64)
        return torch.cat((u, s, self.v.positions()))

    def sigma(self, phases: Tensor, *, kappa=None, loss_db=None, dtype: torch.dtype = torch.complex128) -> Tensor:
        """Σ diagonal [..., r] (complex) of the block for ``phases[..., num_phases]``."""
        phases = self._check_phases(phases)
        k, loss = self._part(kappa, "kappa", "S"), self._part(loss_db, "loss_db", "S")
        return attenuator_transmission(phases[..., self.slices["S"]], kappa=k, loss_db=loss, dtype=dtype)

    def matrix(self, phases: Tensor, *, kappa=None, loss_db=None, dtype: torch.dtype = torch.complex128) -> Tensor:
        """W = U[:, :r] · diag(σ) · V†[:r, :] → [..., n_out, n_in] (differentiable)."""
        phases = self._check_phases(phases)
        r = self.rank
        u = self.u.unitary(phases[..., self.slices["U"]], kappa=self._part(kappa, "kappa", "U"),
                           loss_db=self._part(loss_db, "loss_db", "U"), dtype=dtype)
        vh = self.v.unitary(phases[..., self.slices["V"]], kappa=self._part(kappa, "kappa", "V"),
                            loss_db=self._part(loss_db, "loss_db", "V"), dtype=dtype)
        s = self.sigma(phases, kappa=kappa, loss_db=loss_db, dtype=dtype)
        return (u[..., :, :r] * s[..., None, :]) @ vh[..., :r, :]

    def apply(self, phases: Tensor, x: Tensor, *, kappa=None, loss_db=None) -> Tensor:
        """y[..., B, n_out] = x @ Wᵀ for fields x[..., B, n_in], without forming W.

        Broadcasting and dtype as ``Mesh.apply`` (phases [P, num_phases] with x [P, B, n_in]
        or [B, n_in] → [P, B, n_out]).
        """
        x = torch.as_tensor(x)
        if x.ndim < 2 or x.shape[-1] != self.n_in:
            raise ValueError(f"x must have shape [..., B, {self.n_in}], got {tuple(x.shape)}")
        cdtype = _complex_dtype(x.dtype)
        phases = self._check_phases(phases)
        z = self.v.apply(phases[..., self.slices["V"]], x, kappa=self._part(kappa, "kappa", "V"),
                         loss_db=self._part(loss_db, "loss_db", "V"))
        s = self.sigma(phases, kappa=kappa, loss_db=loss_db, dtype=cdtype)
        z = z[..., : self.rank] * s[..., None, :]
        if self.n_out > self.rank:
            z = torch.cat((z, z.new_zeros(*z.shape[:-1], self.n_out - self.rank)), -1)
        return self.u.apply(phases[..., self.slices["U"]], z, kappa=self._part(kappa, "kappa", "U"),
                            loss_db=self._part(loss_db, "loss_db", "U"))

    def from_matrix(self, W) -> tuple[np.ndarray, float | np.ndarray]:
        """Phases (float64 [..., num_phases]) and scale with ``matrix(phases) * scale == W``.

        W: real or complex [..., n_out, n_in] (numpy or torch). numpy SVD W = U S V†;
        scale = largest singular value (1 for the zero matrix) so that σ = S/scale ∈ [0, 1],
        θ_Σ = 2 arcsin σ; U and V† go through ``decompose`` (Clements). scale is a float for
        one matrix and an array [...] for a batch.
        """
        W = W.detach().cpu().numpy() if hasattr(W, "detach") else np.asarray(W)
        if W.ndim < 2 or W.shape[-2:] != (self.n_out, self.n_in):
            raise ValueError(f"W must have shape [..., {self.n_out}, {self.n_in}], got {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ValueError("W must be finite (no NaN/inf entries)")
        uw, sv, vh = np.linalg.svd(W.astype(np.complex128))
        scale = sv[..., 0].copy()
        scale[scale == 0.0] = 1.0
        theta_s = 2.0 * np.arcsin(np.clip(sv / scale[..., None], 0.0, 1.0))
        out = np.concatenate((self._mesh_phases(uw, self.u), theta_s, self._mesh_phases(vh, self.v)), -1)
        return out, (float(scale) if W.ndim == 2 else scale)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _mesh_phases(unitary: np.ndarray, mesh: Mesh) -> np.ndarray:
        if mesh.n == 1:
            return np.mod(np.angle(unitary[..., 0]), 2.0 * math.pi)
        return decompose(unitary, "clements")

    def _check_phases(self, phases: Tensor) -> Tensor:
        phases = torch.as_tensor(phases)
        if not phases.is_floating_point() or phases.ndim < 1 or phases.shape[-1] != self.num_phases:
            raise ValueError(
                f"phases must be a real tensor [..., {self.num_phases}] for SVDBlock({self.n_out}, {self.n_in}), "
                f"got {phases.dtype} {tuple(phases.shape)}"
            )
        return phases

    def _part(self, value, name: str, part: str):
        """The U/S/V share of a non-ideal parameter given as a dict or a whole-block tensor."""
        if value is None:
            return None
        if isinstance(value, Mapping):
            unknown = set(value) - set(PARTS)
            if unknown:
                raise ValueError(f"{name}: keys must be among {PARTS}, got {sorted(unknown)}")
            return value.get(part)
        v = torch.as_tensor(value)
        if v.ndim == 0:
            return v
        axis = -2 if name == "kappa" else -1
        if v.ndim < -axis or v.shape[axis] != self.num_mzis:
            raise ValueError(
                f"{name}: a tensor must cover all {self.num_mzis} MZIs of the block (U, Σ, V order), "
                f"got {tuple(v.shape)}"
            )
        sl = self.mzi_slices[part]
        return v[..., sl, :] if axis == -2 else v[..., sl]
