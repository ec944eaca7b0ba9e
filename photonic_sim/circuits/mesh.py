"""Universal MZI meshes (Clements rectangular, Reck triangular) built column by column.

MZI convention (photonic_sim.devices.mzi, docs/physics.md#conventions): an MZI on modes (i, i+1) acts as

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

Algorithms (same results to rounding; tests pin them against each other and numpy):

* Column sweep (``_sweep``): rows x pass the columns one by one, out of place, as
  y = x·d + x[perm]·o (d, o: per-mode MZI entries of the column). Used whenever autograd
  must track phases / kappa / loss_db / x (the FO baseline), and by ``apply`` for few rows.
* Fused build (``_build`` on CPU, no autograd; ``photonic_sim.circuits._fused``): one call
  of a small C kernel (compiled on first use with the system C compiler, < 1 s, cached)
  takes the 2×2s (for ideal couplers straight from e^{iθ}, e^{iφ}), sweeps every MZI into U
  from the identity in light order — the loop over MZIs runs inside C, over each row pair's
  nonzero range only — and applies the output screen. 64 modes: ~0.08 ms per unitary on one
  thread, against ~0.45 ms for the pure-torch build below (~60 small ops of dispatch).
* Pure-torch fast build (``_build_torch``: CUDA, or CPU without a C compiler or with
  ``PHOTONIC_SIM_NO_FUSED=1``): the columns are cut into g groups of L consecutive
  columns; for Clements (L even) step s of every group is a column of the same parity, so
  all groups — and all P phase vectors of a batch — are swept at once from the identity.
  After s steps from the identity a row i is nonzero only in columns [i − s, i + s], so only
  that band of each group's (zero-padded, dense) matrix is reset and updated in place on two
  strided row views (a = top rows, b = bottom rows of the step's pairs; work ∝ n²·L per
  group, not n³); all views and buffers are built once per (dtype, batch) and reused. The g
  group matrices are then multiplied by a product tree ((g − 1) products, later @ earlier);
  when the bands are narrow next to n (one unitary: L = 8, n = 64) the tree's first level
  multiplies bands by 8-row blocks (rows [r, r + 8) need only 8 + 2L columns of the later
  matrix and 8 + 4L of the earlier: ~4× fewer multiply-adds than dense n³). The output
  screen diag(e^{iα}) is applied last; e^{iφ} of every phase (θ, φ, α) is taken in one
  cos/sin pass. L = 8 for one unitary, 16 for up to 8, 32 beyond (the tree's dense matmul
  work then dominates); a layout whose groups would not line up (Reck) runs as one group.
* ``apply`` builds U and does one matmul when no autograd is needed and the build pays:
  with the fused kernel for any B up to n = 256 (sweeping costs 3 ops a column even for
  one row); with the pure-torch build from B ≥ n/4 rows on (sweeping B rows costs ~n·B·n
  per column, the build ~n²·L elementwise plus (g − 1)·n³ in BLAS).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch

from photonic_sim.circuits import _fused
from photonic_sim.devices.mzi import mzi_coefficients_from_phasors

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
        self._cache: dict = {}  # index maps of the two algorithms, built on first use

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
        every MZI in dB; default 0). With loss the matrix is no longer unitary.
        Differentiable with respect to all tensors.

        Algorithms, same result (to rounding): when autograd must track phases, kappa or
        loss_db, the out-of-place column sweep of ``apply`` runs on the identity; otherwise
        the fused C kernel (CPU) or the pure-torch grouped band sweep (module docstring).
        """
        if dtype not in (torch.complex64, torch.complex128):
            raise ValueError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")
        phases = self._check_phases(phases, dtype, torch.as_tensor(phases).device)
        if not _tracks_grad(phases, kappa, loss_db):
            return self._build(phases, kappa, loss_db, dtype)
        coefs, alpha = self._coefficients(phases, kappa, loss_db, dtype)
        eye = torch.eye(self.n, dtype=dtype, device=phases.device)
        # Rows of eye are the unit vectors e_b; the sweep gives rows U e_b = columns of U.
        return self._sweep(coefs, alpha, eye).transpose(-1, -2)

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
        ``kappa``/``loss_db`` as in ``unitary``.

        Algorithm (same result to rounding): without autograd and when building pays
        (``_build_pays``: the fused kernel and n ≤ 256, or B ≥ n/4 input rows), U is built
        (``unitary``'s fast path) and applied as one batched matmul; otherwise the fields
        are swept column by column (out of place, differentiable) and U is never formed.
        """
        x = torch.as_tensor(x)
        if x.ndim < 2 or x.shape[-1] != self.n:
            raise ValueError(f"x must have shape [..., B, {self.n}] (fields in the last dim), got {tuple(x.shape)}")
        cdtype = _complex_dtype(x.dtype)
        x = x.to(cdtype)
        phases = self._check_phases(phases, cdtype, x.device)
        if not _tracks_grad(phases, kappa, loss_db, x) and self._build_pays(x.shape[-2], x.device):
            return x @ self._build(phases, kappa, loss_db, cdtype).transpose(-1, -2)
        return self._sweep(*self._coefficients(phases, kappa, loss_db, cdtype), x)

    # ------------------------------------------------------------------ algorithms
    def _sweep(self, coefs: tuple[Tensor, ...] | None, alpha: Tensor, x: Tensor) -> Tensor:
        """Out-of-place column sweep of rows x[..., B, n]: per column y = x·d + x[perm]·o.

        d[i] is the MZI entry that keeps mode i on its own arm (T00 top, T11 bottom, 1 if
        mode i has no MZI in the column), o[i] the one that brings in its partner perm[i]
        (T01 top, T10 bottom, 0). Three tensor ops a column; autograd-safe.
        """
        out = x
        if coefs is not None:
            t00, t01, t10, t11 = coefs
            one = torch.ones_like(t00[..., :1])
            idx_d, idx_o, perm = (t.to(x.device) for t in self._sweep_maps())
            d = torch.cat((t00, t11, one), -1)[..., idx_d]  # [..., C, n]
            o = torch.cat((t01, t10, one * 0), -1)[..., idx_o]
            for c, col in enumerate(self.columns):
                if col.count:
                    out = torch.addcmul(out * d[..., None, c, :], out.index_select(-1, perm[c]), o[..., None, c, :])
        return out * alpha[..., None, :]

    def _build(self, phases: Tensor, kappa, loss_db, cdtype: torch.dtype) -> Tensor:
        """U [..., n, n] without autograd (checked phases, ``unitary``'s kappa / loss_db).

        CPU with the fused kernel available (``photonic_sim.circuits._fused``): one C call
        sweeps every MZI into U; with ideal couplers it also takes the 2×2 entries from e^{iφ}
        itself, and scales them by the MZIs' loss amplitudes 10^(−IL/20) when ``loss_db``
        broadcasts into the phases' batch (the products of ``mzi_coefficients_from_phasors`` and
        ``t * amp`` as torch's vectorised loops round them, tests/test_fast_paths.py; torch's
        scalar tail loop, compiled with fused multiply-add, may differ by an ulp where M is not
        a multiple of its vector width, e.g. k = 4: M = 6). Otherwise (CUDA, no C compiler) the pure-torch grouped
        band sweep ``_build_torch``. Same matrix to rounding (tests pin them together)."""
        if self.num_mzis and phases.device.type == "cpu" and _fused.kernel() is not None:
            n, lead = self.n, phases.shape[:-1]
            amp = None
            if kappa is None and loss_db is not None:  # ideal couplers with loss: the kernel scales
                amp = self._amplitudes(loss_db, _real_dtype(cdtype), phases.device, lead)
            if kappa is None and (loss_db is None or amp is not None):
                e = _unit_phasor(phases, cdtype).reshape(-1, self.num_phases)
                return _fused.build_ideal(self._tops(), e, n, amp).reshape(*lead, n, n)
            coefs, alpha = self._coefficients(phases, kappa, loss_db, cdtype)
            lead = coefs[0].shape[:-1]  # kappa / loss_db may broadcast it
            batch = math.prod(lead)
            flat = tuple(t.reshape(batch, self.num_mzis) for t in coefs)
            return _fused.build(self._tops(), flat, alpha.expand(*lead, n).reshape(batch, n), n).reshape(*lead, n, n)
        coefs, alpha = self._coefficients(phases, kappa, loss_db, cdtype)
        if coefs is None:  # bare phase screen
            return torch.diag_embed(alpha)
        return self._build_torch(coefs, alpha)

    def _build_torch(self, coefs: tuple[Tensor, ...], alpha: Tensor) -> Tensor:
        """U [..., n, n] by the grouped band sweep and a product tree (no autograd)."""
        n, m = self.n, self.num_mzis
        lead = coefs[0].shape[:-1]
        batch = math.prod(lead)
        work = self._workspace(coefs[0].dtype, coefs[0].device, batch)
        for dst, t in zip(work["raw"], coefs):
            dst[:m].copy_(t.reshape(batch, m).T)
        work["band"].zero_()
        work["diag"].fill_(1)
        for a, b, t00, t01, t10, t11, top in work["steps"]:
            torch.mul(a, t00, out=top).addcmul_(b, t01)
            b.mul_(t11).addcmul_(a, t10)
            a.copy_(top)
        if work["to_mats"] is not None:  # batch > 1: sweep layout (batch innermost) → matrices
            work["to_mats"][0].copy_(work["to_mats"][1])
        mats = work["mats"]  # [batch, groups, n, n] views of the group matrices, light order
        if work["blocks"] is not None:  # first tree level on the bands (row blocks, see _workspace)
            later, earlier, prod, dest, dense, rest = work["blocks"]
            dest.copy_(torch.matmul(later, earlier, out=prod))
            mats = dense if rest is None else torch.cat((dense, rest), 1)
        while mats.shape[1] > 1:
            odd = mats.shape[1] % 2
            pairs = mats[:, 1::2] @ mats[:, 0 : mats.shape[1] - odd : 2]  # later @ earlier
            mats = torch.cat((pairs, mats[:, -1:]), 1) if odd else pairs
        u = mats[:, 0] * alpha.expand(*lead, n).reshape(batch, n, 1)  # fresh: never a workspace view
        return u.reshape(*lead, n, n)

    def _workspace(self, cdtype: torch.dtype, device: torch.device, batch: int) -> dict:
        """Buffers and prebuilt views of ``_build`` for (dtype, device, batch), kept between
        calls by the calling thread (up to ``_KEEP_WORKSPACES`` sets, e.g. a forward and a
        zeroth-order batch taking turns). Reusing them spares the page faults
        of fresh multi-MB buffers (glibc hands freed heap tops back to the OS) and the ~20
        view ops a step would otherwise cost per call. Nothing returned aliases them.

        Layout. ``raw`` [4, g·K, batch] holds (T00, T01, T10, T11) of every MZI (K MZIs per
        group; a partial last group is padded with identities), so step s of group j, pair q
        reads MZI start_s + j·K + q: a strided view, no gather. The g group matrices live
        dense and zero-padded in ``sweep`` [g, R, S, batch] (entry (i, c) of group j at
        sweep[j, top + i, left + c], batch innermost for the elementwise sweep). After the
        sweep row i of a group is nonzero only in columns [i − pad, i + pad] (pad = h_max +
        1), so only that band is reset (to the identity) and swept; it is the strided view
        with row stride S + 1 columns. The margins stay zero. The matrices are read as
        ``dense`` [batch, g, R, S] (sweep permuted: a view for one unitary, else a copy).
        When the groups are narrow next to n (``_banded``), the first tree level multiplies
        pairs of bands by row blocks of ``_BLOCK`` rows: rows [r, r + blk) of later @
        earlier need columns [r − pad, r + blk + pad) of the later and those rows of the
        earlier, whose nonzeros lie in [r − 2·pad, r + blk + 2·pad): one batched matmul of
        small dense blocks (strided views), written into the zero-padded ``pairs`` buffer.
        """
        key = (threading.get_ident(), cdtype, device, batch, _group_length(batch))
        held = self._cache.setdefault("work", {})
        if key in held:
            return held[key]
        n, m = self.n, self.num_mzis
        groups, length, steps, per_group = self._plan(key[-1])
        pad = min(length - 1, n - 1) + 1
        banded = groups > 1 and _banded(n, pad)
        nb, blk = -(-n // _BLOCK), _BLOCK
        extra = nb * blk - n if banded else 0
        top, left = (pad, 2 * pad) if banded else (0, pad)
        rows, cols = top + n + extra + (pad if banded else 0), left + n + extra + left
        new = {"dtype": cdtype, "device": device}
        raw = torch.empty(4, groups * per_group, batch, **new)
        raw[:, m:] = torch.tensor([1, 0, 0, 1], **new).view(4, 1, 1)  # identities of a partial last group
        sweep = torch.zeros(groups, rows, cols, batch, **new)
        cs, rs, gs = batch, cols * batch, rows * cols * batch  # column, row and group strides
        corner = top * rs + left * cs  # entry (0, 0) of group 0
        band = sweep.as_strided((groups, n, 2 * pad + 1, batch), (gs, rs + cs, cs, 1), corner - pad * cs)
        scratch = torch.empty(groups * max(c for _, c, _ in steps) * 2 * pad * batch, **new)
        views = []
        for s, (offset, count, start) in enumerate(steps):
            if not count:
                continue
            h = min(s, pad - 1)
            shape, strides = (groups, count, 2 * h + 2, batch), (gs, 2 * (rs + cs), cs, 1)
            a = sweep.as_strided(shape, strides, corner + offset * (rs + cs) - h * cs)
            b = sweep.as_strided(shape, strides, corner + (offset + 1) * (rs + cs) - (h + 1) * cs)
            coef = raw.as_strided((4, groups, count, 1, batch), (raw.stride(0), per_group * batch, batch, 0, 1),
                                  start * batch).unbind(0)
            views.append((a, b, *coef, scratch[: a.numel()].view(shape)))
        to_mats = None
        if batch == 1:
            dense = sweep.permute(3, 0, 1, 2)
        else:
            dense = torch.zeros(batch, groups, rows, cols, **new)
            inner = (slice(None), slice(None), slice(top, top + n), slice(left, left + n))
            to_mats = (dense[inner], sweep.permute(3, 0, 1, 2)[inner])
        ds = dense.stride()  # [batch, g, R, S] strides; the last is 1
        d_corner = top * ds[2] + left
        mats = dense.as_strided((batch, groups, n, n), ds, d_corner)
        blocks = None
        if banded:
            half, wide = groups // 2, blk + 4 * pad
            step = (ds[0], 2 * ds[1], blk * (ds[2] + 1), ds[2], 1)
            later = dense.as_strided((batch, half, nb, blk, blk + 2 * pad), step, ds[1] + d_corner - pad)
            earlier = dense.as_strided((batch, half, nb, blk + 2 * pad, wide), step, d_corner - pad * ds[2] - 2 * pad)
            pairs = torch.zeros(batch, half, nb * blk, 4 * pad + nb * blk, **new)
            ps = pairs.stride()
            dest = pairs.as_strided((batch, half, nb, blk, wide), (ps[0], ps[1], blk * (ps[2] + 1), ps[2], 1))
            rest = mats[:, -1:] if groups % 2 else None
            blocks = (later, earlier, torch.empty(dest.shape, **new), dest, pairs[:, :, :n, 2 * pad : 2 * pad + n], rest)
        work = {"raw": raw, "band": band, "diag": band[..., pad, :], "steps": views, "to_mats": to_mats,
                "mats": mats, "blocks": blocks}
        if len(held) >= _KEEP_WORKSPACES:
            held.clear()
        held[key] = work
        return work

    def _plan(self, length: int) -> tuple[int, int, list[tuple[int, int, int]], int]:
        """Schedule of the grouped band sweep for groups of ``length`` columns (cached).

        Returns (groups, length, steps, K): step s applies column j·length + s of every
        group j at once; all those columns must share (offset, count), else (and for
        length ≥ num_columns) one group of every column is used. K is the number of MZIs of
        a group and steps[s] = (offset, count, start): the MZIs of column j·length + s are
        start + j·K + q, q < count (MZI indices ≥ num_mzis: identities of a partial group).
        """
        key = ("plan", length)
        if key in self._cache:
            return self._cache[key]
        cols, nc = self.columns, self.num_columns
        length = max(1, min(length, nc))
        groups = -(-nc // length)
        sig = [(c.offset, c.count) for c in cols]
        if groups > 1 and any(sig[j * length + s] != sig[s] for j in range(groups) for s in range(length)
                              if j * length + s < nc):
            groups, length = 1, nc
        steps = [(cols[s].offset, cols[s].count, cols[s].start) for s in range(length)]
        plan = (groups, length, steps, sum(cols[s].count for s in range(length)))
        self._cache[key] = plan
        return plan

    def _build_pays(self, rows: int, device: torch.device) -> bool:
        """Whether ``apply`` builds U for ``rows`` input rows rather than sweeping them: with
        the fused kernel up to n = 256 always (one CPU thread, one row: n = 64 builds in 0.13
        ms vs a 0.7 ms sweep, n = 256 in 5.3 vs 5.5 ms), else from rows ≥ n/4 on (module
        docstring)."""
        fused = device.type == "cpu" and self.n <= 256 and _fused.kernel() is not None
        return fused or 4 * rows >= self.n

    def _tops(self) -> Tensor:
        """Top mode of every MZI, int64 [M], index (light) order (cached; fused kernel)."""
        if "tops" not in self._cache:
            self._cache["tops"] = torch.tensor([top for _, top in self.mzis], dtype=torch.long)
        return self._cache["tops"]

    def _sweep_maps(self) -> tuple[Tensor, Tensor, Tensor]:
        """Index maps of ``_sweep`` (cached): idx_d, idx_o [C, n] into cat(T00, T11, 1) and
        cat(T01, T10, 0), and the partner modes perm [C, n]."""
        if "sweep" not in self._cache:
            m, n = self.num_mzis, self.n
            idx_d = torch.full((self.num_columns, n), 2 * m, dtype=torch.long)
            idx_o = idx_d.clone()
            perm = torch.arange(n).repeat(self.num_columns, 1)
            for c, col in enumerate(self.columns):
                for j, k in enumerate(col.mzis):
                    top = col.offset + 2 * j
                    idx_d[c, top], idx_d[c, top + 1] = k, m + k
                    idx_o[c, top], idx_o[c, top + 1] = k, m + k
                    perm[c, top], perm[c, top + 1] = top + 1, top
            self._cache["sweep"] = (idx_d, idx_o, perm)
        return self._cache["sweep"]

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

    def _coefficients(self, phases: Tensor, kappa, loss_db, cdtype: torch.dtype) -> tuple[tuple[Tensor, ...] | None, Tensor]:
        """((T00, T01, T10, T11) of every MZI, each [..., M], or None when the mesh has no
        MZI; the output screen e^{iα} [..., n]). e^{iφ} of all phases is taken at once."""
        m = self.num_mzis
        e = _unit_phasor(phases, cdtype)
        if not m:
            return None, e
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
        loss = 0.0 if loss_db is None else self._loss_tensor(loss_db, rdt, phases.device)
        coefs = mzi_coefficients_from_phasors(e[..., :m], e[..., m : 2 * m], kappa1=kappa1, kappa2=kappa2, loss_db=loss)
        return coefs, e[..., 2 * m :]


    def _amplitudes(self, loss_db, rdt: torch.dtype, device: torch.device, lead: tuple) -> Tensor | None:
        """The MZIs' loss amplitudes 10^(−IL/20) of ``loss_db`` for ``_build``'s kernel, [rows, M]
        for phases of batch shape ``lead`` (one row when every setting shares them), or None when
        ``loss_db`` widens the batch. A chip passes the same static loss tensor on every call:
        the checks and the power are done once per tensor (``_static``), not once per call."""
        def compute():
            loss = self._loss_tensor(loss_db, rdt, device)
            if torch.broadcast_shapes(loss.shape[:-1], lead) != lead:  # loss_db widens the batch
                return None
            amp = (10.0 ** (-loss / 20.0)).expand(*lead, self.num_mzis).reshape(-1, self.num_mzis)
            return amp[:1] if amp.stride(0) == 0 else amp  # one row shared by every setting

        return _static(("mesh amplitudes", self.num_mzis, tuple(lead)), loss_db, rdt, device, compute)

    def _loss_tensor(self, loss_db, rdt: torch.dtype, device: torch.device) -> Tensor:
        """``loss_db`` (dB per MZI) as a checked ``rdt`` tensor broadcastable to [..., M]."""
        m = self.num_mzis
        loss = torch.as_tensor(loss_db, dtype=rdt, device=device)
        try:
            torch.broadcast_shapes(loss.shape, (m,))
        except RuntimeError:
            msg = f"loss_db must broadcast to [..., {m}] (M = num_mzis), got {tuple(loss.shape)}"
            raise ValueError(msg) from None
        if bool(((loss < 0) | torch.isnan(loss)).any()):
            raise ValueError("loss_db (insertion loss per MZI, dB) must be >= 0")
        return loss


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


def _group_length(batch: int) -> int:
    """Columns per group of the fast build (module docstring): short groups for one
    unitary (few Python steps; the product tree is cheap next to them), longer ones for a
    batch (the tree's (g − 1)·n³ matmul work then dominates)."""
    return 8 if batch == 1 else 16 if batch <= 8 else 32


_BLOCK = 8  # rows per block of the banded first tree level
_KEEP_WORKSPACES = 4  # (thread, dtype, device, batch) workspaces kept per mesh


def _banded(n: int, pad: int) -> bool:
    """Whether the first tree level runs on row blocks of the bands (``_workspace``): when
    the blocks' multiply-adds stay under half of a dense n³ product."""
    nb = -(-n // _BLOCK)
    return 2 * nb * _BLOCK * (_BLOCK + 2 * pad) * (_BLOCK + 4 * pad) <= n**3


def _tracks_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in tensors)


_STATIC: dict = {}


def _static(what, source, dtype: torch.dtype, device, compute):
    """``compute()``, kept while the same ``source`` tensor (e.g. a chip's static loss, the same
    object on every call) comes back unchanged (same ``_version``) with the same dtype and
    device; None ``source``: kept per (what, dtype, device). A float source or one that needs
    autograd is computed every time."""
    if source is not None and (not isinstance(source, Tensor) or source.requires_grad):
        return compute()
    key = (what, id(source), dtype, str(device))
    version = None if source is None else source._version
    held = _STATIC.get(key)
    if held is not None and held[0] is source and held[1] == version:
        return held[2]
    value = compute()
    if len(_STATIC) >= 64:  # a bound: sources that come and go do not accumulate
        _STATIC.clear()
    _STATIC[key] = (source, version, value)
    return value


def _unit_phasor(phases: Tensor, cdtype: torch.dtype) -> Tensor:
    """e^{iφ} as cdtype (cos + i·sin: cheaper than torch.polar on CPU)."""
    return torch.complex(torch.cos(phases), torch.sin(phases)).to(cdtype)


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype in (torch.complex64, torch.float32, torch.float16, torch.bfloat16):
        return torch.complex64
    return torch.complex128


def _real_dtype(cdtype: torch.dtype) -> torch.dtype:
    return torch.float32 if cdtype == torch.complex64 else torch.float64
