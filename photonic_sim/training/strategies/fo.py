"""First-order baseline: estimator :class:`Autograd` and strategy ``fo`` — NOT in situ.

It backpropagates through the closure, which only a simulator can do (a real chip gives no
gradients). It exists as the upper reference for the ZO strategies; ``in_situ = False`` marks it.
"""
from __future__ import annotations

import torch

from .base import Estimator, Strategy
from .estimators import Estimate


def closure_gradient(closure, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dθ [d], L) at one control vector ``theta`` through a differentiable closure, called
    once on theta[None]; the gradient ``fo`` steps along (and the yardstick of
    ``training.diagnostics``)."""
    with torch.enable_grad():  # also when called under no_grad (Estimator.estimate_)
        x = theta.detach().clone()[None].requires_grad_(True)
        out = closure(x)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1,) or not out.requires_grad:
        raise ValueError("fo needs a differentiable closure returning a Tensor of shape [1] "
                         "with grad (it is a NOT-in-situ baseline)")
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(out.sum(), x)
    return grad[0], out.detach()[0]


class Autograd(Estimator):
    """The exact gradient by autograd through a differentiable closure (one row, θ itself);
    0 outside ``mask``. Not in situ."""

    in_situ = False

    def queries(self, n: int) -> int:
        return 1

    def estimate(self, closure, theta, *, mask=None, periods=None):
        grad, loss = closure_gradient(closure, theta)
        if mask is not None:
            grad = torch.where(mask, grad, torch.zeros_like(grad))
        return Estimate(grad, loss)


class FirstOrder(Strategy):
    """:class:`Autograd` + the common optimizer/schedule (default Adam); no generator needed."""

    name = "fo"
    in_situ = False
    estimator_class = Autograd
    overrides = {"optimizer": "adam"}

    def __init__(self, params, lr, *, generator=None, mask=None, periods=None, **cfg):
        super().__init__(params, lr=lr, generator=generator or torch.Generator(), mask=mask,
                         periods=periods, **cfg)
