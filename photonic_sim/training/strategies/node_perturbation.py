"""Node perturbation: zeroth-order estimates of dL/d(node values) turned into phase updates by
the layer-local in-situ adjoint — estimator :class:`NodePerturbation`, strategy
``node-perturbation``."""
from __future__ import annotations

from .adjoint import ADJOINT_HARDWARE, InSituAdjoint
from .base import Strategy
from .options import integer, positive


class NodePerturbation(InSituAdjoint):
    """Node perturbation (closure kind "adjoint", ``Chip.adjoint_gradient(node_q=q)``).

    Instead of perturbing phases, the controller perturbs the detected node values of each
    hidden layer (its pre-activation outputs, an electronic signal): for each example b it
    adds ±μ·u_b (u_b ~ N(0, I) over the layer's w nodes, ``q`` antithetic pairs, drawn from
    the strategy's generator), runs the downstream layers on the chip, and estimates
    dℓ_b/dz_b ≈ (1/q) Σ (ℓ_b(z+μu) − ℓ_b(z−μu))/(2μ)·u_b. The search dimension is the
    layer width w (64 on the quickstart TONN), not the number of phases (thousands). The
    output layer's error is exact and digital (the loss is a function of its readings). Each
    layer's phases then get the LAYER-LOCAL adjoint of its estimated error (the adjoint and
    interference passes of that layer only): no backward path through other layers or the
    activation functions — the controller needs no model of them.

    Hardware: the adjoint taps of :data:`ADJOINT_HARDWARE` (the layer-local passes) plus
    digital injection of the perturbed node values. Queries per step: 3 + 2q per hidden
    layer (forward, adjoint, interference; 2q downstream runs per hidden layer), all booked
    in the ledger.

    Bias and variance (per example, layer width w, smooth loss): central differences are
    unbiased for a loss quadratic in z (else O(μ²) bias); the estimate of the node error g
    has covariance (|g|² I + g gᵀ)/q (Gaussian u), i.e. relative variance (w + 1)/q, which
    the layer-local adjoint maps linearly onto the phases. The layer-local adjoint shares the
    in-situ adjoint's bias on a chip with path-dependent insertion loss and is exact (up to
    noise) on a loss-balanced one (:class:`~.adjoint.InSituAdjoint`). Options: q (pairs), mu
    (node perturbation in reading units).
    """

    options = {
        "q": integer(8, doc="antithetic node perturbations per hidden layer"),
        "mu": positive(0.05, doc="node perturbation radius (reading units)"),
    }

    def queries(self, n: int) -> int:
        return 3 + 2 * self.q

    def _closure_options(self) -> dict:
        return {"node_q": self.q, "node_mu": self.mu, "generator": self.generator}


class NodePerturbationStrategy(Strategy):
    """Node perturbation (:class:`NodePerturbation`) + the common optimizer and schedule."""

    name = "node-perturbation"
    estimator_class = NodePerturbation
    closure_kind = "adjoint"
    needs_hardware = ADJOINT_HARDWARE
