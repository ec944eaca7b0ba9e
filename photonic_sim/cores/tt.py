"""Tensor-train (TT) matrices in torch: W (∏m_k × ∏n_k, out × in) held as cores.

Layout (shared with :mod:`photonic_sim.cores.spec` and docs/physics.md#tensorized-onn-tonn)
-----------------------------------------------------------------
Core k is a tensor G_k of shape (r_{k-1}, m_k, n_k, r_k), ranks r_0 = r_d = 1, and

    W[(i_1..i_d), (j_1..j_d)] = Σ_{a} G_1[1, i_1, j_1, a_1] G_2[a_1, i_2, j_2, a_2] ··· G_d[a_{d-1}, i_d, j_d, 1]

where the row index of W is the row-major (C order) flattening of (i_1, ..., i_d), i_1
slowest, and likewise the column index over (j_1, ..., j_d). This is the layout tensorly
uses (``tensorly.decomposition.tensor_train_matrix`` of ``W.reshape(out_modes + in_modes)``
returns cores in exactly this shape and order), so no conversion is needed.

Hardware matrices
-----------------
Core k runs on photonic hardware as the (r_{k-1}·m_k) × (n_k·r_k) matrix

    M_k[(a, i), (j, b)] = G_k[a, i, j, b],    row = a·m_k + i  (a slow),  col = j·r_k + b  (j slow),

i.e. ``G_k.reshape(r_{k-1}·m_k, n_k·r_k)``. With this order the product y = W x is the chain
of matrix-vector products of :func:`contract`: cores are applied from the last (k = d) to
the first, and between two of them the state only needs an electronic transpose, never a
permutation of the TT indices (see :func:`contract`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

Tensor = torch.Tensor


def _modes(name: str, modes: Sequence[int]) -> tuple[int, ...]:
    modes = tuple(int(m) for m in modes)
    if len(modes) < 1 or any(m < 1 for m in modes):
        raise ValueError(f"{name}: need at least one mode, each >= 1 (got {modes})")
    return modes


def contract(
    x: Tensor,
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    ranks: Sequence[int],
    apply_core: Callable[[int, Tensor], Tensor],
) -> Tensor:
    """y = W x by sequential core contraction, x[..., ∏n_k] → y[..., ∏m_k].

    ``apply_core(k, v)`` must map v[..., n_k·r_k] to v @ M_kᵀ of shape [..., r_{k-1}·m_k]
    (M_k the hardware matrix of core k, module docstring); it receives every vector of the
    step at once, v of shape [..., J_k, I_k, n_k·r_k] with J_k = ∏_{l<k} n_l and
    I_k = ∏_{l>k} m_l. Cores are applied k = d, d-1, ..., 1. The state before core k is
    indexed (j_1..j_{k-1}, j_k, a_k, i_{k+1}..i_d) in C order, so its middle (j_k, a_k)
    is a contiguous axis of length n_k·r_k; the output (a_{k-1}, i_k) takes its place and
    merges with the next middle axis (j_{k-1}, a_{k-1}) by a plain reshape.
    """
    d = len(in_modes)
    lead = x.shape[:-1]
    state = x.reshape(*lead, math.prod(in_modes), 1)
    for k in reversed(range(d)):
        j, i = math.prod(in_modes[:k]), math.prod(out_modes[k + 1 :])
        v = state.reshape(*lead, j, in_modes[k] * ranks[k + 1], i).transpose(-1, -2)
        state = apply_core(k, v).transpose(-1, -2)
    return state.reshape(*lead, math.prod(out_modes))


class TTMatrix:
    """A TT matrix W (∏m_k × ∏n_k) from cores G_k [r_{k-1}, m_k, n_k, r_k] (module docstring).

    Works in any real or complex dtype; all cores must share dtype and device.
    """

    def __init__(self, cores: Sequence[Tensor]) -> None:
        cores = list(cores)
        if not cores:
            raise ValueError("cores: need at least one TT core")
        for k, g in enumerate(cores):
            if g.ndim != 4:
                raise ValueError(f"cores[{k}]: must be 4-d (r_prev, m, n, r_next), got shape {tuple(g.shape)}")
            if k and g.shape[0] != cores[k - 1].shape[3]:
                raise ValueError(f"cores[{k}]: left rank {g.shape[0]} != right rank {cores[k - 1].shape[3]} of cores[{k - 1}]")
        if cores[0].shape[0] != 1 or cores[-1].shape[3] != 1:
            raise ValueError("cores: boundary ranks r_0 and r_d must be 1")
        self.cores = cores

    @property
    def out_modes(self) -> tuple[int, ...]:
        return tuple(g.shape[1] for g in self.cores)

    @property
    def in_modes(self) -> tuple[int, ...]:
        return tuple(g.shape[2] for g in self.cores)

    @property
    def ranks(self) -> tuple[int, ...]:
        return (1,) + tuple(g.shape[3] for g in self.cores)

    @property
    def shape(self) -> tuple[int, int]:
        return math.prod(self.out_modes), math.prod(self.in_modes)

    def num_params(self) -> int:
        """Σ_k r_{k-1}·m_k·n_k·r_k."""
        return sum(g.numel() for g in self.cores)

    def to_dense(self) -> Tensor:
        """The full matrix W [∏m_k, ∏n_k]."""
        d = len(self.cores)
        t = self.cores[0][0]  # [m1, n1, r1]
        for g in self.cores[1:]:
            t = torch.tensordot(t, g, dims=([-1], [0]))  # [m1, n1, ..., m_k, n_k, r_k]
        t = t[..., 0].permute(*range(0, 2 * d, 2), *range(1, 2 * d, 2))
        return t.reshape(self.shape)

    def matvec(self, x: Tensor) -> Tensor:
        """y = W x for x[..., ∏n_k] → [..., ∏m_k], one core at a time (W never formed)."""
        if x.shape[-1] != self.shape[1]:
            raise ValueError(f"x: last dimension must be {self.shape[1]} (= prod(in_modes)), got {x.shape[-1]}")
        mats = self.core_matrices()
        return contract(x, self.in_modes, self.out_modes, self.ranks, lambda k, v: v @ mats[k].transpose(0, 1))

    def core_matrices(self) -> list[Tensor]:
        """Hardware matrices M_k = G_k.reshape(r_{k-1}·m_k, n_k·r_k) (module docstring)."""
        return [g.reshape(g.shape[0] * g.shape[1], g.shape[2] * g.shape[3]) for g in self.cores]

    @classmethod
    def from_core_matrices(
        cls, matrices: Sequence[Tensor], in_modes: Sequence[int], out_modes: Sequence[int]
    ) -> TTMatrix:
        """Inverse of :meth:`core_matrices`; ranks follow from the matrix shapes."""
        in_modes, out_modes = _modes("in_modes", in_modes), _modes("out_modes", out_modes)
        if len(matrices) != len(in_modes) or len(out_modes) != len(in_modes):
            raise ValueError("matrices: need one matrix per mode, and len(in_modes) == len(out_modes)")
        cores, r_prev = [], 1
        for k, (mat, m, n) in enumerate(zip(matrices, out_modes, in_modes)):
            rows, cols = mat.shape
            if rows != r_prev * m or cols % n:
                raise ValueError(
                    f"matrices[{k}]: shape {tuple(mat.shape)} is not (r_prev*m, n*r) with r_prev={r_prev}, m={m}, n={n}"
                )
            cores.append(mat.reshape(r_prev, m, n, cols // n))
            r_prev = cols // n
        return cls(cores)

    @classmethod
    def from_dense(
        cls,
        w: Tensor,
        in_modes: Sequence[int],
        out_modes: Sequence[int],
        ranks: Sequence[int] | None = None,
        max_rank: int | None = None,
    ) -> TTMatrix:
        """TT-SVD of a dense real W [∏out_modes, ∏in_modes] (tensorly ``tensor_train_matrix``).

        Give exactly one of ``ranks`` (the full list [1, r_1, ..., r_{d-1}, 1]; where an
        unfolding has lower rank the core is zero-padded, so the result has exactly these
        ranks) or ``max_rank`` (every internal rank truncated to min(max_rank, unfolding
        rank)). Exact when the ranks are at least the TT ranks of W; otherwise the usual
        quasi-optimal TT-SVD truncation. Runs in float64 numpy, returns w's dtype/device.
        """
        in_modes, out_modes = _modes("in_modes", in_modes), _modes("out_modes", out_modes)
        d = len(in_modes)
        if len(out_modes) != d:
            raise ValueError("out_modes: must have the same length as in_modes")
        if tuple(w.shape) != (math.prod(out_modes), math.prod(in_modes)):
            raise ValueError(f"w: shape {tuple(w.shape)} != (prod(out_modes), prod(in_modes))")
        if (ranks is None) == (max_rank is None):
            raise ValueError("from_dense: give exactly one of ranks, max_rank")
        if ranks is not None:
            ranks = tuple(int(r) for r in ranks)
            if len(ranks) != d + 1 or ranks[0] != 1 or ranks[-1] != 1 or min(ranks) < 1:
                raise ValueError(f"ranks: need length {d + 1}, entries >= 1, first and last 1 (got {ranks})")
            target = list(ranks)
        else:
            if max_rank < 1:
                raise ValueError(f"max_rank: must be >= 1 (got {max_rank})")
            target = [1] + [int(max_rank)] * (d - 1) + [1]
        from tensorly.decomposition import tensor_train_matrix

        arr = w.detach().cpu().to(torch.float64).numpy().reshape(out_modes + in_modes)
        factors = list(tensor_train_matrix(arr, rank=list(target)).factors)
        cores = [torch.as_tensor(np.ascontiguousarray(f), dtype=w.dtype, device=w.device) for f in factors]
        if ranks is not None:
            cores = [
                torch.nn.functional.pad(g, (0, ranks[k + 1] - g.shape[3], 0, 0, 0, 0, 0, ranks[k] - g.shape[0]))
                for k, g in enumerate(cores)
            ]
        return cls(cores)

    @classmethod
    def random(
        cls,
        in_modes: Sequence[int],
        out_modes: Sequence[int],
        ranks: Sequence[int],
        generator: torch.Generator,
        std: float | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> TTMatrix:
        """I.i.d. Gaussian cores scaled so the dense W has entry variance ``std``².

        An entry of W is a sum of ∏_{k=1}^{d-1} r_k products of d core entries, so with
        core entries ~ N(0, σ²), Var W_ij = σ^{2d} ∏ r_k; σ = (std² / ∏ r_k)^{1/(2d)}.
        Default std = √(2 / (fan_in + fan_out)) (Glorot), so ‖W‖₂ = O(1).
        """
        in_modes, out_modes = _modes("in_modes", in_modes), _modes("out_modes", out_modes)
        d = len(in_modes)
        ranks = tuple(int(r) for r in ranks)
        if len(out_modes) != d or len(ranks) != d + 1 or ranks[0] != 1 or ranks[-1] != 1 or min(ranks) < 1:
            raise ValueError(f"ranks: need length {d + 1}, entries >= 1, first and last 1 (got {ranks})")
        if std is None:
            std = math.sqrt(2.0 / (math.prod(in_modes) + math.prod(out_modes)))
        if std <= 0:
            raise ValueError(f"std: must be > 0 (got {std})")
        sigma = (std**2 / math.prod(ranks)) ** (1.0 / (2 * d))
        return cls([
            sigma * torch.randn((ranks[k], out_modes[k], in_modes[k], ranks[k + 1]), generator=generator, dtype=dtype)
            for k in range(d)
        ])
