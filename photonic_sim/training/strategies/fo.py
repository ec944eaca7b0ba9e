"""First-order baseline ``fo`` — NOT in situ.

It backpropagates through the closure, which only a simulator can do (a real chip gives no
gradients). It exists as the upper reference for the ZO strategies; ``in_situ = False`` marks it.
"""
from __future__ import annotations

import torch

from .base import Strategy


class FirstOrder(Strategy):
    """Gradient descent with autograd through a differentiable closure (default "adam").

    ``step(closure)`` calls the closure once on params[None] (one row, requires_grad) and uses
    the exact gradient; ``mask``/``periods``/schedule behave as for the ZO strategies.
    """

    name = "fo"
    in_situ = False
    defaults = dict(optimizer="adam")

    def __init__(self, params, lr, *, generator=None, mask=None, periods=None, **cfg):
        super().__init__(params, lr=lr, generator=generator, mask=mask, periods=periods, **cfg)

    @property
    def queries_per_step(self) -> int:
        return 1

    def step(self, closure) -> float:
        grad, loss = closure_gradient(closure, self.params)
        with torch.no_grad():
            self._apply(self.updater.delta(grad.to(self.params.dtype), self.current_lr()))
        self.step_count += 1
        return float(loss)


def closure_gradient(closure, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dθ [d], L) at one control vector ``theta`` through a differentiable closure, called
    once on theta[None]; the gradient ``fo`` steps along (and the yardstick of
    ``training.diagnostics``)."""
    x = theta.detach().clone()[None].requires_grad_(True)
    with torch.enable_grad():
        out = closure(x)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1,) or not out.requires_grad:
        raise ValueError("fo needs a differentiable closure returning a Tensor of shape [1] "
                         "with grad (it is a NOT-in-situ baseline)")
    (grad,) = torch.autograd.grad(out.sum(), x)
    return grad[0], out.detach()[0]
