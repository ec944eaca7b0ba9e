"""Gauss–Hermite quadrature and Smolyak sparse grids for the standard normal.

All rules integrate against the standard normal density N(0, I): the weights sum to 1 and
E[g(z)] ≈ Σ_i w_i g(z_i).

1-D rules come from ``scipy.special.roots_hermitenorm`` (probabilists' Hermite roots), weights
divided by √(2π).  The sparse grid is the Smolyak combination

    A(ℓ, d) = Σ_{ℓ ≤ |i| ≤ ℓ+d−1} (−1)^{ℓ+d−1−|i|} C(d−1, |i|−ℓ) ⊗_k Q_{i_k},   i_k ≥ 1,

with the 1-D rule Q_i having n = i Gauss–Hermite points (1, 2, 3, … points at levels 1, 2, 3,
…; the Heiss–Winschel "GQN" growth).  Q_i is exact to degree 2i−1 and A(ℓ, d) is exact for all
polynomials of total degree ≤ 2ℓ−1.  This growth gives the counts the design pins: level 3 has
2d² + 2d + 1 nodes (925 in d = 21, 13 in d = 2).  The odd-only growth n = 2i−1 (1, 3, 5 points)
would give 2d² + 4d + 1 (967 in d = 21, 17 in d = 2), because its ±√3 axis nodes keep a
non-zero weight.
"""

from __future__ import annotations

import functools
from math import comb

import numpy as np
from scipy.special import roots_hermitenorm

_KEY_DECIMALS = 12  # nodes equal to ~1e-12 are merged
_ZERO_WEIGHT = 1e-14  # merged weights below this (in absolute value) are dropped


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.setflags(write=False)
    return arrays


@functools.lru_cache(maxsize=None)
def gauss_hermite_1d(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n-point Gauss–Hermite rule for N(0, 1): (nodes [n], weights [n]), float64, read-only.

    Exact for polynomials of degree ≤ 2n−1; weights sum to 1; nodes ascending and symmetric.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    x, w = roots_hermitenorm(int(n))
    w = w / np.sqrt(2.0 * np.pi)
    return _read_only(np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64))


def _excess_vectors(d: int, budget: int):
    """Sparse list of all e ∈ N^d with |e| ≤ budget, each as ((dim, e_dim), ...) over nonzeros."""
    out = [()]
    frontier = [((), 0, 0)]  # (nonzeros, |e|, first dim allowed for the next nonzero)
    while frontier:
        nxt = []
        for nz, total, start in frontier:
            for k in range(start, d):
                for v in range(1, budget - total + 1):
                    item = (nz + ((k, v),), total + v, k + 1)
                    out.append(item[0])
                    nxt.append(item)
        frontier = nxt
    return out


@functools.lru_cache(maxsize=None)
def smolyak_gauss_hermite(d: int, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Smolyak sparse grid for N(0, I_d): (nodes [N, d], weights [N]), float64, read-only.

    ``level`` ℓ ≥ 1; exact for total degree ≤ 2ℓ−1 (level 3 → degree 5, 2d²+2d+1 nodes).
    Duplicate nodes (equal after rounding to 1e-12) are merged with summed weights and nodes
    whose merged weight vanishes (|w| < 1e-14) are dropped.  Weights may be negative; they
    sum to 1.  Only the multi-indices of the combination formula are enumerated
    (C(d+ℓ−1, ℓ−1) of them), so d = 21, ℓ = 3 takes milliseconds.
    """
    if not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"d must be an integer >= 1, got {d!r}")
    if not isinstance(level, (int, np.integer)) or level < 1:
        raise ValueError(f"level must be an integer >= 1, got {level!r}")
    d, level = int(d), int(level)
    blocks_x, blocks_w = [], []
    for nz in _excess_vectors(d, level - 1):
        excess = sum(v for _, v in nz)
        if excess < level - d:
            continue
        coeff = (-1) ** (level - 1 - excess) * comb(d - 1, level - 1 - excess)
        # Tensor product over the non-trivial dims; level-1 dims contribute node 0, weight 1.
        rules = [gauss_hermite_1d(v + 1) for _, v in nz]
        grids = np.meshgrid(*[r[0] for r in rules], indexing="ij")
        wgrid = functools.reduce(
            np.multiply, np.meshgrid(*[r[1] for r in rules], indexing="ij"), np.ones(())
        )
        nodes = np.zeros((wgrid.size, d))
        for (k, _), g in zip(nz, grids):
            nodes[:, k] = g.ravel()
        blocks_x.append(nodes)
        blocks_w.append(coeff * wgrid.ravel())
    nodes = np.concatenate(blocks_x)
    weights = np.concatenate(blocks_w)
    keys = np.round(nodes, _KEY_DECIMALS) + 0.0  # + 0.0 folds −0.0 into 0.0
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    merged = np.bincount(inverse.ravel(), weights=weights, minlength=len(first))
    keep = np.abs(merged) >= _ZERO_WEIGHT
    return _read_only(np.ascontiguousarray(nodes[first[keep]]), merged[keep])
