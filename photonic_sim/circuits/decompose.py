"""Unitary → mesh phases (Clements 2016 and Reck 1994 nulling, in this project's MZI convention).

With ideal couplers (s = sin(θ/2), c = cos(θ/2)):

    T(θ, φ) = i e^{iθ/2} [[e^{iφ} s,  c],
                          [e^{iφ} c, -s]].

Nulling from the right (acts on columns m, m+1 of U): (U T†)[r, m] = 0 with a = U[r, m],
b = U[r, m+1] reads conj(T₀₀) a + conj(T₀₁) b ∝ e^{-iφ} s a + c b = 0, solved by

    θ = 2 atan2(|b|, |a|),   φ = arg a − arg b − π.

Nulling from the left (acts on rows m, m+1): (T U)[m+1, j] = 0 with a = U[m, j],
b = U[m+1, j] reads T₁₀ a + T₁₁ b ∝ e^{iφ} c a − s b = 0, solved by

    θ = 2 atan2(|a|, |b|),   φ = arg b − arg a.

Clements: diagonals i = 0 … n−2 of the lower triangle are nulled alternately from the right
(i even: U[n−1−j, i−j] with the pair (i−j, i−j+1)) and from the left (i odd:
U[n−1−i+j, j] with the pair (n−2−i+j, n−1−i+j)), j = 0 … i, leaving
T_K ··· T_1 · U · R₁† ··· R_L† = D diagonal. Hence U = T₁† ··· T_K† · D · R_L ··· R₁, and
the left factors are moved through D one by one (innermost T_K first) with the identity

    T†(θ, φ) · diag(e^{iα₁}, e^{iα₂}) = diag(e^{iα₁'}, e^{iα₂'}) · T(θ, φ'),
    φ' = α₁ − α₂,  α₁' = π − θ − φ + α₂,  α₂' = π − θ + α₂

(check entrywise with T† = −i e^{−iθ/2} [[e^{−iφ} s, e^{−iφ} c], [c, −s]]), giving
U = D' · T₁' ··· T_K' · R_L ··· R₁: in light order R₁ … R_L, T_K' … T₁', then the screen D'.

Reck: rows r = n−1 … 1 are nulled from the right, U[r, m] with the pair (m, m+1),
m = 0 … r−1, so U · R₁† ··· R_L† = D and U = D · R_L ··· R₁ (light order R₁ first).

Each MZI of the light-ordered sequence is placed in the earliest column of matching parity
after the last MZI touching either of its modes; for both algorithms this reproduces the
mesh layout exactly (checked, not assumed). Phases are wrapped into [0, 2π).
"""

from __future__ import annotations

import math

import numpy as np

from photonic_sim.circuits.mesh import ClementsMesh, Mesh, ReckMesh

MESHES = {"clements": ClementsMesh, "reck": ReckMesh}
UNITARY_TOL = 1e-8


def decompose(U, mesh: str = "clements") -> np.ndarray:
    """Phases (float64 [..., num_phases], in [0, 2π)) such that ``Mesh(n).unitary(phases) == U``.

    ``U``: unitary [..., n, n] (numpy or torch, n ≥ 2); ``mesh``: "clements" or "reck".
    Raises ValueError for a non-square, too small or non-unitary (max |U U† − I| > 1e-8) input.
    """
    if mesh not in MESHES:
        raise ValueError(f"mesh must be one of {sorted(MESHES)}, got {mesh!r}")
    U = _as_numpy(U)
    if U.ndim < 2 or U.shape[-1] != U.shape[-2]:
        raise ValueError(f"U must be square [..., n, n], got shape {U.shape}")
    n = U.shape[-1]
    if n < 2:
        raise ValueError(f"U must be at least 2×2 for a mesh, got n = {n}")
    U = U.astype(np.complex128)
    err = np.abs(U @ np.conj(np.swapaxes(U, -1, -2)) - np.eye(n)).max()
    if not err <= UNITARY_TOL:
        raise ValueError(f"U is not unitary: max |U U^† - I| = {err:.3g} > {UNITARY_TOL}")
    target = MESHES[mesh](n)
    flat = U.reshape(-1, n, n)
    out = np.stack([_decompose_one(u, target) for u in flat])
    return out.reshape(*U.shape[:-2], target.num_phases)


def _decompose_one(U: np.ndarray, mesh: Mesh) -> np.ndarray:
    if mesh.name == "clements":
        seq, alpha = _clements(U.copy())
    else:
        seq, alpha = _reck(U.copy())
    return _place(seq, alpha, mesh)


def _null_right(U: np.ndarray, r: int, m: int) -> tuple[float, float]:
    """Null U[r, m] by U ← U · T†(θ, φ) on columns (m, m+1); return (θ, φ)."""
    a, b = U[r, m], U[r, m + 1]
    theta = 2.0 * math.atan2(abs(b), abs(a))
    phi = np.angle(a) - np.angle(b) - math.pi
    t00, t01, t10, t11 = _mzi(theta, phi)
    ca, cb = U[:, m].copy(), U[:, m + 1]
    U[:, m] = ca * np.conj(t00) + cb * np.conj(t01)
    U[:, m + 1] = ca * np.conj(t10) + cb * np.conj(t11)
    return theta, phi


def _null_left(U: np.ndarray, m: int, j: int) -> tuple[float, float]:
    """Null U[m+1, j] by U ← T(θ, φ) · U on rows (m, m+1); return (θ, φ)."""
    a, b = U[m, j], U[m + 1, j]
    theta = 2.0 * math.atan2(abs(a), abs(b))
    phi = np.angle(b) - np.angle(a)
    t00, t01, t10, t11 = _mzi(theta, phi)
    ra, rb = U[m].copy(), U[m + 1]
    U[m] = t00 * ra + t01 * rb
    U[m + 1] = t10 * ra + t11 * rb
    return theta, phi


def _clements(U: np.ndarray):
    n = U.shape[0]
    right, left = [], []
    for i in range(n - 1):
        for j in range(i + 1):
            if i % 2 == 0:
                m = i - j
                right.append((m, *_null_right(U, n - 1 - j, m)))
            else:
                m = n - 2 - i + j
                left.append((m, *_null_left(U, m, j)))
    alpha = np.angle(np.diag(U)).copy()
    moved = []
    for m, theta, phi in reversed(left):
        a1, a2 = alpha[m], alpha[m + 1]
        moved.append((m, theta, a1 - a2))
        alpha[m] = math.pi - theta - phi + a2
        alpha[m + 1] = math.pi - theta + a2
    return right + moved, alpha


def _reck(U: np.ndarray):
    n = U.shape[0]
    seq = [(m, *_null_right(U, r, m)) for r in range(n - 1, 0, -1) for m in range(r)]
    return seq, np.angle(np.diag(U)).copy()


def _place(seq, alpha: np.ndarray, mesh: Mesh) -> np.ndarray:
    """Put a light-ordered list of (top mode, θ, φ) into the mesh's phase vector."""
    index = {cm: k for k, cm in enumerate(mesh.mzis)}
    free = np.zeros(mesh.n, dtype=np.int64)  # first column free on every mode
    M = mesh.num_mzis
    out = np.empty(mesh.num_phases)
    for m, theta, phi in seq:
        c = max(free[m], free[m + 1])
        c += (c - m) % 2
        free[m] = free[m + 1] = c + 1
        k = index.get((int(c), m))
        if k is None:
            raise RuntimeError(
                f"decompose: MZI on modes ({m}, {m + 1}) landed at column {c}, not in the {mesh.name} layout"
            )
        out[k], out[M + k] = theta, phi
    out[2 * M :] = alpha
    out = np.mod(out, 2.0 * math.pi)
    out[out >= 2.0 * math.pi] = 0.0
    return out


def _mzi(theta: float, phi: float):
    """Ideal T(θ, φ) entries (t00, t01, t10, t11)."""
    g = 1j * np.exp(0.5j * theta)
    s, c, e = math.sin(0.5 * theta), math.cos(0.5 * theta), np.exp(1j * phi)
    return g * e * s, g * c, g * e * c, -g * s


def _as_numpy(U) -> np.ndarray:
    if hasattr(U, "detach"):
        U = U.detach().cpu().numpy()
    return np.asarray(U)
