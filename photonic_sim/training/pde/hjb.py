"""20-dimensional Hamilton–Jacobi–Bellman equation (docs/physics.md#bp-free-pinns).

    u_t + Δ_x u − 0.05 ‖∇_x u‖² + 2 = 0,   x ∈ [0,1]^20, t ∈ [0,1],   u(x, 1) = Σ x_i.

Exact solution u = Σ x_i + 1 − t.  Input order (x_1, …, x_20, t), dim 21.  Terminal condition
built in: u = Σ x_i + (1−t)·NN(x, t), so
    ∇_x u = 1 + (1−t)∇_x NN,   u_t = −NN + (1−t) NN_t,   Δ_x u = (1−t) Δ_x NN.
"""

from __future__ import annotations

import torch

from ..names import PDE_COORDINATES
from .base import PDE


class HJB(PDE):
    """HJB-20 with the terminal condition built in (no parameters: the exact solution needs
    the coefficient 0.05, the source 2 and 20 space dimensions together)."""

    n_space = 20
    coef = 0.05
    source = 2.0
    dim = n_space + 1
    names = PDE_COORDINATES["hjb20"]  # x1 … x20, t
    space_dims = tuple(range(n_space))
    lower = (0.0,) * dim
    upper = (1.0,) * dim

    def transform(self, x, net_out):
        self._check_x(x)
        return x[:, :-1].sum(-1) + (1 - x[:, -1]) * net_out

    def u_derivatives(self, x, nn_derivs):
        self._check_x(x)
        tau = 1 - x[:, -1]  # [N]
        nn, g, d2 = nn_derivs["u"], nn_derivs["grad"], nn_derivs["diag2"]
        grad_x = 1 + tau.unsqueeze(-1) * g[..., :-1]
        u_t = -nn + tau * g[..., -1]
        return {
            "u": self.transform(x, nn),
            "grad": torch.cat([grad_x, u_t.unsqueeze(-1)], dim=-1),
            "lap": tau * d2[..., :-1].sum(-1),
        }

    def residual(self, x, derivs):
        g = derivs["grad"]
        return g[..., -1] + derivs["lap"] - self.coef * (g[..., :-1] ** 2).sum(-1) + self.source

    def reference(self, x):
        self._check_x(x)
        return x[:, :-1].sum(-1) + 1 - x[:, -1]
