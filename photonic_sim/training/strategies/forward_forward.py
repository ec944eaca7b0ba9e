"""Model-free forward-forward training of the physical network: estimator
:class:`LocalGoodness` and strategy ``forward-forward``."""
from __future__ import annotations

import torch

from .base import Estimator, Strategy
from .estimators import Estimate, _check_q_mu, sample_directions, support, wrap
from .options import integer, positive


class LocalGoodness(Estimator):
    """Layer-local two-sided randomized estimates of forward-forward losses (closure kind
    "forward-forward": rows [P, N] → local losses [P, N], entry i the loss of the layer
    that control i belongs to; ``training.tasks.forward_forward_closure``).

    Forward-forward (Hinton 2022, here its symmetric contrastive form): each layer l should
    have a high *goodness* G_l (its mean squared reading, normalized over the batch) for
    positive inputs (the true label embedded in the input) and a low one for negative inputs
    (a wrong label); its local loss is mean softplus(−α(G⁺_l − G⁻_l)). Each layer is trained
    from readings of its OWN outputs only, so the controller needs no model of the optics
    and no backward pass: this estimator perturbs all phases at once along q Gaussian
    directions u (2q rows θ ± μu) and gives coordinate i the estimate
    (1/q) Σ (L_l(i)(θ+μu) − L_l(i)(θ−μu))/(2μ)·u_i, i.e. an RGE of its own layer's loss. The
    other layers' simultaneous perturbations are independent of u_i, so they add variance
    and no first-order bias (O(μ²) bias as any two-sided RGE); the variance of a layer's
    block is that of a q-direction RGE in the dimension of all perturbed phases.

    Prediction: the label with the highest total goodness (``training.tasks.
    evaluate_forward_forward``; C chip queries per evaluated batch). Hardware: readings of
    every layer's output (detected anyway between optical passes) — no extra optics.
    Queries: 2q per step (each row one query of the positive and negative batch).
    Options: q, mu (rad).
    """

    options = {
        "q": integer(16, doc="random directions (2q queries per step)"),
        "mu": positive(0.05, doc="phase perturbation radius (rad)"),
    }

    def queries(self, n: int) -> int:
        return 2 * self.q

    def estimate(self, closure, theta, *, mask=None, periods=None):
        _check_q_mu(self.q, self.mu)
        idx = support(theta, mask)
        u = torch.zeros(self.q, theta.shape[-1], dtype=theta.dtype, device=theta.device)
        u[:, idx] = sample_directions(self.q, idx.numel(), dist="gaussian", generator=self.generator,
                                      dtype=theta.dtype).to(theta.device)
        rows = wrap(torch.cat((theta + self.mu * u, theta - self.mu * u)), periods)
        local = closure(rows)
        if not isinstance(local, torch.Tensor) or tuple(local.shape) != (2 * self.q, theta.shape[-1]):
            raise ValueError("closure: a forward-forward closure returns local losses [P, N]")
        local = local.detach().to(theta.dtype)
        grad = ((local[: self.q] - local[self.q :]) * u).sum(0) / (2.0 * self.mu * self.q)
        return Estimate(grad, local.mean())


class ForwardForward(Strategy):
    """Forward-forward (:class:`LocalGoodness`) + the common optimizer and schedule; evaluated
    by the forward-forward prediction rule (``evaluation``)."""

    name = "forward-forward"
    estimator_class = LocalGoodness
    closure_kind = "forward-forward"
    evaluation = "forward-forward"
