"""Base class for PINN problems with the boundary/initial/terminal conditions built in.

A network NN: R^dim → R is wrapped by ``transform(x, NN(x)) -> u`` so that u meets the
conditions exactly for any network output.  Training needs the derivatives of u; the
estimators of ``photonic_sim.training.stein`` give those of NN (or of its Gaussian smoothing),
and ``u_derivatives`` combines them analytically with the derivatives of the transform.

Derivative dicts:
- network side (``nn_derivs``, from ``DerivativeEstimator.estimate(..., need=PDE.need)`` with
  the default dims = all): "u" [..., N], "grad" [..., N, dim], "diag2" [..., N, dim];
- solution side (``u_derivatives`` output, ``residual`` input): "u" [..., N], "grad"
  [..., N, dim], "lap" [..., N] = Σ_{j ∈ space_dims} ∂²u/∂x_j² (the spatial Laplacian only).
x is always [N, dim]; a leading batch (phase settings) on the network side broadcasts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

NN_NEED = ("u", "grad", "diag2")


class PDE(ABC):
    """A PDE on the box [lower, upper] ⊂ R^dim; coordinates listed in ``names``."""

    dim: int
    names: tuple[str, ...]
    space_dims: tuple[int, ...]  # coordinates entering the Laplacian
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    need = NN_NEED

    def sample_interior(
        self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """n points uniform in the box, [n, dim], on the generator's device."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        r = torch.rand(n, self.dim, generator=generator, dtype=dtype, device=generator.device)
        lo = torch.tensor(self.lower, dtype=dtype, device=r.device)
        hi = torch.tensor(self.upper, dtype=dtype, device=r.device)
        return lo + (hi - lo) * r

    def test_points(
        self, n: int = 10000, generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> torch.Tensor:
        """Evaluation points for the relative-L2 metric (uniform; seed 0 unless a generator)."""
        return self.sample_interior(n, generator or torch.Generator().manual_seed(0), dtype)

    @abstractmethod
    def transform(self, x: torch.Tensor, net_out: torch.Tensor) -> torch.Tensor:
        """u [..., N] from the network output [..., N] at x [N, dim]."""

    @abstractmethod
    def u_derivatives(
        self, x: torch.Tensor, nn_derivs: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """{"u", "grad", "lap"} of u = transform(x, NN) from NN's {"u", "grad", "diag2"}."""

    @abstractmethod
    def residual(self, x: torch.Tensor, derivs: dict[str, torch.Tensor]) -> torch.Tensor:
        """PDE residual [..., N] from u's {"u", "grad", "lap"}."""

    @abstractmethod
    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """Exact or reference solution u [N] at x [N, dim] (x's dtype and device)."""

    def nn_residual(self, x: torch.Tensor, nn_derivs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Residual of u = transform(x, NN) from the network derivatives."""
        return self.residual(x, self.u_derivatives(x, nn_derivs))

    def relative_l2(self, u_pred: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """‖u_pred − u_ref‖₂ / ‖u_ref‖₂ over the last (point) dim; shape [...]."""
        ref = self.reference(x).to(u_pred)
        return torch.linalg.vector_norm(u_pred - ref, dim=-1) / torch.linalg.vector_norm(ref)

    def _check_x(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape [N, {self.dim}], got {tuple(x.shape)}")
