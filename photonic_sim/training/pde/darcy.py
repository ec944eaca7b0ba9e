"""Darcy-type Poisson problem (docs/physics.md#bp-free-pinns).

    1 + c (u_xx + u_yy) = 0  on (0, 1)²,   u = 0 on the boundary,

i.e. −Δu = 1/c (constant-permeability Darcy flow / torsion of a square bar).  Default c = 1,
for which u peaks at u(½, ½) ≈ 0.0737; u scales as 1/c.  Inputs (x, y), dim 2.

Transform (zero boundary built in): u = B(x, y)·NN(x, y), B = x y (x − 1)(y − 1) = p(x) p(y),
p(s) = s(s − 1), p' = 2s − 1, p'' = 2.

Reference: second-order 5-point finite differences on uniform grids with h = 1/128 and 1/64,
solved with a sparse direct solver, each interpolated by a bicubic spline (scipy
RectBivariateSpline, cached in memory per c) and Richardson-combined at the query points
(4·u_h − u_2h)/3.  Against the exact Fourier series the relative L2 error is ~4e-7 (tested).
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp
import torch
from scipy.interpolate import RectBivariateSpline
from scipy.sparse.linalg import spsolve

from ..names import PDE_COORDINATES
from .base import PDE


def _fd_solve(n: int, rhs: float) -> np.ndarray:
    """−Δu = rhs, u = 0 on ∂(0,1)², 5-point stencil, h = 1/n; returns u on the (n+1)² grid."""
    h = 1.0 / n
    m = n - 1
    lap1 = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1]) / h**2
    eye = sp.identity(m)
    a = (sp.kron(lap1, eye) + sp.kron(eye, lap1)).tocsc()
    u = np.zeros((n + 1, n + 1))
    u[1:-1, 1:-1] = spsolve(a, np.full(m * m, rhs)).reshape(m, m)
    return u


@functools.lru_cache(maxsize=8)
def _splines(c: float, n: int) -> tuple[RectBivariateSpline, RectBivariateSpline]:
    out = []
    for m in (n, n // 2):
        grid = np.linspace(0.0, 1.0, m + 1)
        out.append(RectBivariateSpline(grid, grid, _fd_solve(m, 1.0 / c), kx=3, ky=3))
    return tuple(out)


def darcy_reference(x: np.ndarray, y: np.ndarray, c: float = 1.0, n: int = 128) -> np.ndarray:
    """Reference u(x, y) for 1 + cΔu = 0: (4·u_n − u_{n/2}) / 3 from the bicubic splines of the
    finite-difference solutions with h = 1/n and 2/n (Richardson; ~4e-7 relative for n = 128)."""
    if not isinstance(n, int) or n < 4 or n % 2:
        raise ValueError(f"n must be an even integer >= 4, got {n!r}")
    fine, coarse = _splines(float(c), n)
    return (4 * fine(x, y, grid=False) - coarse(x, y, grid=False)) / 3


class Darcy(PDE):
    """Darcy-type Poisson problem 1 + c Δu = 0 on (0, 1)² (default c = 1), inputs (x, y);
    zero boundary built in; reference: Richardson-combined finite differences."""

    dim = 2
    names = PDE_COORDINATES["darcy"]
    space_dims = (0, 1)
    lower = (0.0, 0.0)
    upper = (1.0, 1.0)

    def __init__(self, c: float = 1.0):
        if not c > 0:
            raise ValueError(f"c must be > 0, got {c!r}")
        self.c = float(c)

    def transform(self, x, net_out):
        self._check_x(x)
        return x[:, 0] * x[:, 1] * (x[:, 0] - 1) * (x[:, 1] - 1) * net_out

    def u_derivatives(self, x, nn_derivs):
        self._check_x(x)
        px, py = x[:, 0] * (x[:, 0] - 1), x[:, 1] * (x[:, 1] - 1)
        dpx, dpy = 2 * x[:, 0] - 1, 2 * x[:, 1] - 1
        nn, g, d2 = nn_derivs["u"], nn_derivs["grad"], nn_derivs["diag2"]
        b = px * py
        u_x = dpx * py * nn + b * g[..., 0]
        u_y = px * dpy * nn + b * g[..., 1]
        u_xx = 2 * py * nn + 2 * dpx * py * g[..., 0] + b * d2[..., 0]
        u_yy = 2 * px * nn + 2 * px * dpy * g[..., 1] + b * d2[..., 1]
        return {"u": b * nn, "grad": torch.stack([u_x, u_y], dim=-1), "lap": u_xx + u_yy}

    def residual(self, x, derivs):
        return 1 + self.c * derivs["lap"]

    def reference(self, x):
        """Finite-difference reference (see module docstring) at x [N, 2]."""
        self._check_x(x)
        xn = x.detach().cpu().to(torch.float64).numpy()
        return torch.as_tensor(darcy_reference(xn[:, 0], xn[:, 1], self.c)).to(x)
