"""In-situ backpropagation with the adjoint method: estimator :class:`InSituAdjoint` and the
strategy ``adjoint`` (Hughes et al., "Training of photonic neural networks through in situ
backpropagation and gradient measurement", Optica 5, 864 (2018))."""
from __future__ import annotations

import torch

from .base import Estimator, Strategy
from .estimators import Estimate

ADJOINT_HARDWARE = (
    "a monitor tap (photodiode + ADC) at every phase shifter, read in each of the three passes",
    "I/Q modulators at the mesh outputs to inject the adjoint source",
    "I/Q coherent receivers at the mesh inputs (the adjoint field leaving them), and at the outputs "
    "when the card reads intensity",
    "I/Q modulators at the mesh inputs for the time-reversed interference pass",
    "access to the spare ports of the Σ attenuators (spare inputs read and re-injected)",
)
"""Optical hardware the in-situ adjoint assumes beyond an inference chip."""


class InSituAdjoint(Estimator):
    """dL/dθ measured with the in-situ adjoint (closure kind "adjoint", ``Chip.adjoint_gradient``).

    Hardware: :data:`ADJOINT_HARDWARE` (monitor taps at every phase shifter, I/Q injection and
    readout at both ends of every mesh, the Σ attenuators' spare ports). One step: the
    forward pass of the batch lights the taps; the controller computes the error of the
    readings digitally and propagates it back through every electronic step (activation
    derivative at the measured node values, biases, block gains, TT reshapes); each optical
    pass's error is sent back through the optics (adjoint pass) and interfered with the
    forward input (time-reversed pass); dL/dθ = (I_int − I_fwd − I_adj)/2 at each shifter
    (``photonic_sim.circuits.adjoint``).

    Queries: 3 per step (forward, adjoint and interference passes of the batch at one phase
    setting; the ledger books 3 queries, 3·B samples, 1 phase setting, and every tap reading
    and I/Q read / injection as ADC / DAC conversions).

    Bias and variance: on an ideal chip the estimate is the exact gradient (tests: equal to
    autograd to 1e-8 in float64). On a real chip it is the gradient with respect to the
    REALISED phases, applied to the targets: the drive law's γ-error, crosstalk and phase
    quantization are not in it (a bias, small while the Jacobian of realised on target
    phases is near the identity); tap, receiver and ADC/DAC noise add variance. Insertion
    loss that differs between paths (the default lossy chip: a Clements mesh's edge modes
    skip every other column) breaks the time-reversal step (biased; cosine 0.22 with the true
    gradient on the quickstart); on a loss-balanced chip (``chip.loss_balanced``: every column
    attenuates all modes alike) the controller's known per-cut correction makes it exact
    again (``photonic_sim.circuits.adjoint``, "Loss-balanced circuits"). No options: nothing
    is random.
    """

    options = {}

    def queries(self, n: int) -> int:
        return 3

    def estimate(self, closure, theta, *, mask=None, periods=None):
        loss, grad = closure(theta, **self._closure_options())
        grad = grad.detach().to(theta.dtype)
        if mask is not None:
            grad = torch.where(mask, grad, torch.zeros_like(grad))
        return Estimate(grad, torch.as_tensor(loss, dtype=torch.float64).detach())

    def _closure_options(self) -> dict:
        return {}


class Adjoint(Strategy):
    """In-situ adjoint backpropagation (:class:`InSituAdjoint`) + the common optimizer and
    schedule. Needs the extra optical hardware in ``needs_hardware`` (the cost model should
    charge it)."""

    name = "adjoint"
    estimator_class = InSituAdjoint
    closure_kind = "adjoint"
    needs_hardware = ADJOINT_HARDWARE
