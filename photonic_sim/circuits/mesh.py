"""Universal MZI meshes (Clements rectangular, Reck triangular) built column by column.

MZI convention (photonic_sim.devices.mzi, DESIGN §2): an MZI on modes (i, i+1) acts as

    T(θ, φ) = B(κ₂) · diag(e^{iθ}, 1) · B(κ₁) · diag(e^{iφ}, 1)

on the field pair (a_i, a_{i+1}); θ (internal) and φ (external) both sit on the TOP arm
(mode i), mode 0 is the top waveguide. Phases are in radians, in [0, 2π).

Layout. A mesh is a sequence of columns in light order. Column c holds MZIs on the pairs
(i, i+1) with i ≡ c (mod 2); the pairs of a column are contiguous, starting at mode
``offset = c % 2``, so a column acts on the contiguous mode slice [offset, offset + 2k)
(k = its number of MZIs) and leaves the other modes untouched.

* ClementsMesh(n): n columns; column c holds every pair (i, i+1) with i ≡ c (mod 2),
  i + 1 < n.
* ReckMesh(n): 2n − 3 columns; column c holds the pairs (i, i+1) with i ≡ c (mod 2) and
  i ≤ min(c, 2n − 4 − c). This is the Reck triangle: diagonal r (r = 0 … n−2) holds the
  pairs (k, k+1), k = 0 … n−2−r, at columns k + 2r. Mode 0 crosses n − 1 MZIs, mode
  j ∈ [1, n−2] crosses 2n − 1 − 2j, mode n − 1 crosses one (at column n − 2).

Both hold M = n(n−1)/2 MZIs. MZI index order: column by column (light order), top to bottom
within a column, so the MZIs of a column have contiguous indices.

Phase vector (last dim, length n(n−1) + n):
    phases[..., 0:M]      θ of every MZI,
    phases[..., M:2M]     φ of every MZI,
    phases[..., 2M:2M+n]  output phase screen α, one per mode, applied last.
The unitary is U = diag(e^{iα}) · C_last ··· C_1 · C_0 with C_c the block-diagonal
matrix of column c.

Fields are row vectors in the last dim: ``apply`` maps x[..., B, n] to x @ Uᵀ, i.e. every
row x[..., b, :] to U x[..., b, :].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from photonic_sim.devices.mzi import mzi_matrix

Tensor = torch.Tensor
TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class Column:
    """One mesh column: ``count`` MZIs on pairs (offset + 2j, offset + 2j + 1), j < count,
    whose MZI indices are start … start + count − 1."""

    offset: int
    start: int
    count: int

    @property
    def mzis(self) -> range:
        return range(self.start, self.start + self.count)

    @property
    def modes(self) -> slice:
        return slice(self.offset, self.offset + 2 * self.count)


class Mesh:
    """A mesh of MZI columns plus an output phase screen (see module docstring).

    The base class has no columns: ``Mesh(n)`` is the bare phase screen diag(e^{iα}),
    n ≥ 1 (used for the one-mode side of an SVD block); subclasses give the layout.
    """

    name = "mesh"
    min_modes = 1

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < self.min_modes:
            raise ValueError(f"{type(self).__name__}: n (modes) must be an integer >= {self.min_modes}, got {n!r}")
        self.n = n
        columns, start = [], 0
        for offset, count in self._layout(n):
            columns.append(Column(offset, start, count))
            start += count
        self.columns: tuple[Column, ...] = tuple(columns)
        self.num_columns = len(columns)
        self.num_mzis = start
        self.num_phases = 2 * start + n
        # (column, top mode) of every MZI, in index order.
        self.mzis: tuple[tuple[int, int], ...] = tuple(
            (c, col.offset + 2 * j) for c, col in enumerate(columns) for j in range(col.count)
        )

    @staticmethod
    def _layout(n: int) -> list[tuple[int, int]]:
        """(offset, count) of every column in light order."""
        return []

    # ------------------------------------------------------------------ geometry
    def positions(self) -> Tensor:
        """Physical (x, y) of every phase shifter, float64 [num_phases, 2], in MZI pitches.

        θ of an MZI in column c on modes (i, i+1): (c, i + 0.5); its φ (before the first
        coupler): (c − 0.5, i + 0.5); output phase α_j: (num_columns, j).
        """
        pos = torch.zeros(self.num_phases, 2, dtype=torch.float64)
        if self.num_mzis:
            cols, tops = torch.tensor(self.mzis, dtype=torch.float64).unbind(-1)
            m = self.num_mzis
            pos[:m, 0], pos[:m, 1] = cols, tops + 0.5
            pos[m : 2 * m, 0], pos[m : 2 * m, 1] = cols - 0.5, tops + 0.5
        pos[2 * self.num_mzis :, 0] = float(self.num_columns)
        pos[2 * self.num_mzis :, 1] = torch.arange(self.n, dtype=torch.float64)
        return pos

    def phase_periods(self) -> Tensor:
        """Period of every phase, float64 [num_phases]: 2π (phases live in [0, 2π))."""
        return torch.full((self.num_phases,), TWO_PI, dtype=torch.float64)

    # ------------------------------------------------------------------ physics
    def unitary(
        self,
        phases: Tensor,
        *,
        kappa: Tensor | float | None = None,
        loss_db: Tensor | float | None = None,
        dtype: torch.dtype = torch.complex128,
    ) -> Tensor:
        """Transfer matrix [..., n, n] of the mesh for ``phases[..., num_phases]``.

        ``kappa`` broadcastable to [..., M, 2] (κ₁ input-side, κ₂ output-side coupler of
        every MZI; default 0.5), ``loss_db`` broadcastable to [..., M] (insertion loss of
        every MZI in dB; default 0). Built by the same column code as ``apply``; with loss
        the matrix is no longer unitary. Differentiable with respect to all tensors.
        """
        if dtype not in (torch.complex64, torch.complex128):
            raise ValueError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")
        eye = torch.eye(self.n, dtype=dtype, device=torch.as_tensor(phases).device)
        # Rows of eye are the unit vectors e_b; apply gives rows U e_b = columns of U.
        return self.apply(phases, eye, kappa=kappa, loss_db=loss_db).transpose(-1, -2)

    def apply(
        self,
        phases: Tensor,
        x: Tensor,
        *,
        kappa: Tensor | float | None = None,
        loss_db: Tensor | float | None = None,
    ) -> Tensor:
        """Propagate fields x[..., B, n] (B input vectors as rows) → x @ Uᵀ, [..., B, n].

        ``phases[..., num_phases]`` broadcasts against the leading dims of x without B:
        phases [P, num_phases] with x [P, B, n] or [B, n] gives [P, B, n]. The complex
        dtype follows x (a real float32/float64 x is promoted to complex64/complex128).
        ``kappa``/``loss_db`` as in ``unitary``. U is never formed.
        """
        x = torch.as_tensor(x)
        if x.ndim < 2 or x.shape[-1] != self.n:
            raise ValueError(f"x must have shape [..., B, {self.n}] (fields in the last dim), got {tuple(x.shape)}")
        cdtype = _complex_dtype(x.dtype)
        x = x.to(cdtype)
        phases = self._check_phases(phases, cdtype, x.device)
        m = self.num_mzis
        out = x
        if m:
            t = self._mzi_matrices(phases, kappa, loss_db, cdtype)[..., None, :, :, :]  # [..., 1, M, 2, 2]
            for col in self.columns:
                if not col.count:  # Clements n = 2: the second column is empty
                    continue
                tc = t[..., col.start : col.start + col.count, :, :]
                out = _apply_column(out, tc, col)
        alpha = torch.polar(torch.ones_like(phases[..., 2 * m :]), phases[..., 2 * m :]).to(cdtype)
        return out * alpha[..., None, :]

    # ------------------------------------------------------------------ helpers
    def _check_phases(self, phases: Tensor, cdtype: torch.dtype, device: torch.device) -> Tensor:
        phases = torch.as_tensor(phases, device=device)
        if not phases.is_floating_point():
            raise ValueError(f"phases must be a real tensor, got dtype {phases.dtype}")
        if phases.ndim < 1 or phases.shape[-1] != self.num_phases:
            raise ValueError(
                f"phases must have shape [..., {self.num_phases}] for {type(self).__name__}({self.n}), "
                f"got {tuple(phases.shape)}"
            )
        return phases.to(_real_dtype(cdtype))

    def _mzi_matrices(self, phases: Tensor, kappa, loss_db, cdtype: torch.dtype) -> Tensor:
        """[..., M, 2, 2] transfer matrices of every MZI."""
        m = self.num_mzis
        rdt = _real_dtype(cdtype)
        kappa1 = kappa2 = 0.5
        if kappa is not None:
            k = torch.as_tensor(kappa, dtype=rdt, device=phases.device)
            try:
                k = k.expand(torch.broadcast_shapes(k.shape, (m, 2)))
            except RuntimeError:
                msg = f"kappa must broadcast to [..., {m}, 2] (M = num_mzis), got {tuple(k.shape)}"
                raise ValueError(msg) from None
            if bool(((k < 0) | (k > 1) | torch.isnan(k)).any()):
                raise ValueError("kappa (coupler power ratio) must lie in [0, 1]")
            kappa1, kappa2 = k[..., 0], k[..., 1]
        loss = 0.0
        if loss_db is not None:
            loss = torch.as_tensor(loss_db, dtype=rdt, device=phases.device)
            try:
                torch.broadcast_shapes(loss.shape, (m,))
            except RuntimeError:
                msg = f"loss_db must broadcast to [..., {m}] (M = num_mzis), got {tuple(loss.shape)}"
                raise ValueError(msg) from None
            if bool(((loss < 0) | torch.isnan(loss)).any()):
                raise ValueError("loss_db (insertion loss per MZI, dB) must be >= 0")
        theta, phi = phases[..., :m], phases[..., m : 2 * m]
        return mzi_matrix(theta, phi, kappa1=kappa1, kappa2=kappa2, loss_db=loss, dtype=cdtype)


class ClementsMesh(Mesh):
    """Rectangular (Clements 2016) mesh on n ≥ 2 modes: n columns, n(n−1)/2 MZIs."""

    name = "clements"
    min_modes = 2

    @staticmethod
    def _layout(n: int) -> list[tuple[int, int]]:
        return [(c % 2, (n - c % 2) // 2) for c in range(n)]


class ReckMesh(Mesh):
    """Triangular (Reck 1994) mesh on n ≥ 2 modes: 2n − 3 columns, n(n−1)/2 MZIs."""

    name = "reck"
    min_modes = 2

    @staticmethod
    def _layout(n: int) -> list[tuple[int, int]]:
        # pairs i ≡ c (mod 2), 0 ≤ i ≤ min(c, 2n−4−c): i = c%2, c%2 + 2, …
        return [(c % 2, (min(c, 2 * n - 4 - c) - c % 2) // 2 + 1) for c in range(2 * n - 3)]


def _apply_column(x: Tensor, t: Tensor, col: Column) -> Tensor:
    """Apply one column's 2×2 blocks t[..., 1, k, 2, 2] to the mode slice of x[..., B, n]."""
    n = x.shape[-1]
    s = col.modes
    pairs = x[..., s].unflatten(-1, (col.count, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    y0 = t[..., 0, 0] * a + t[..., 0, 1] * b
    y1 = t[..., 1, 0] * a + t[..., 1, 1] * b
    y = torch.stack((y0, y1), -1).flatten(-2)
    if s.start == 0 and s.stop == n:
        return y
    parts = [x[..., : s.start].expand(*y.shape[:-1], s.start)] if s.start else []
    parts.append(y)
    if s.stop < n:
        parts.append(x[..., s.stop :].expand(*y.shape[:-1], n - s.stop))
    return torch.cat(parts, -1)


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype in (torch.complex64, torch.float32, torch.float16, torch.bfloat16):
        return torch.complex64
    return torch.complex128


def _real_dtype(cdtype: torch.dtype) -> torch.dtype:
    return torch.float32 if cdtype == torch.complex64 else torch.float64
