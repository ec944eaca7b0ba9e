"""Black–Scholes European call (docs/physics.md#bp-free-pinns), in scaled variables.

    V_t + ½σ²S²V_SS + rSV_S − rV = 0,   V(S, T) = max(S − K, 0),   V(0, t) = 0,

σ = 0.2, r = 0.05, K = 100, T = 1, S ∈ [0, S_max], S_max = 200.  Inputs (s, t) with
s = S / S_max ∈ [0, 1], t ∈ [0, T]; unknown u = V / S_max (so u is O(1) and relative errors
are unchanged).  The equation is invariant under this scaling:
    u_t + ½σ²s²u_ss + r s u_s − r u = 0,   u(s, T) = max(s − k, 0),  k = K / S_max.

Transform (terminal payoff and the s = 0 boundary built in exactly):
    u = g̃(s, t) + (T − t)·s·NN(s, t),   g̃(s, t) = g(s, t) − (1 − s)·g(0, t),
    g(s, t) = (s − k)Φ(z) + εφ(z),   z = (s − k)/ε,   ε(t) = σ k √(T − t),
i.e. the payoff smoothed by a Gaussian of the Black–Scholes width at the strike (the Bachelier
price).  g → max(s − k, 0) as t → T, and g̃(0, t) = 0, so u(s, T) = payoff and u(0, t) = 0 for
any NN; g̃ differs from the true price by O(T − t) near the strike, so the network only learns a
bounded, smooth correction (a plain payoff + (T−t)·NN transform would force NN to cancel the
payoff's kink at s = k for all t).  Analytic derivatives of g (used by ``u_derivatives``):
    g_s = Φ(z),   g_ss = φ(z)/ε,   g_t = −φ(z)·σk / (2√(T − t)).
They blow up as t → T near the strike (at t = T exactly the payoff's a.e. derivatives are
used); collocation points have t < T.  No condition is imposed at
s = 1 (truncated far field).  Reference: the analytic call price S Φ(d₁) − K e^{−r(T−t)} Φ(d₂).
"""

from __future__ import annotations

import math

import torch

from ..names import PDE_COORDINATES
from .base import PDE


def _ndtr(z: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtr(z)


def _npdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


class BlackScholes(PDE):
    """European call under Black–Scholes in scaled variables (s = S/S_max, t), inputs (s, t),
    σ = 0.2, r = 0.05, K = 100, T = 1, S_max = 200; payoff and s = 0 boundary built in (module
    docstring); reference: the analytic call price."""

    dim = 2
    names = PDE_COORDINATES["black_scholes"]
    space_dims = (0,)

    def __init__(
        self,
        vol: float = 0.2,
        rate: float = 0.05,
        strike: float = 100.0,
        maturity: float = 1.0,
        s_max: float = 200.0,
    ):
        for name, v in (("vol", vol), ("strike", strike), ("maturity", maturity), ("s_max", s_max)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0, got {v!r}")
        if not 0 < strike < s_max:
            raise ValueError(f"strike must be in (0, s_max={s_max}), got {strike!r}")
        self.vol, self.rate, self.maturity = float(vol), float(rate), float(maturity)
        self.strike, self.s_max = float(strike), float(s_max)
        self.k = self.strike / self.s_max
        self.lower = (0.0, 0.0)
        self.upper = (1.0, self.maturity)

    def _g(self, s: torch.Tensor, tau: torch.Tensor):
        """Smoothed payoff g, g_s, g_ss, g_t at scaled price s and time to maturity tau.

        At tau = 0 (t = T) g is the payoff itself, with its a.e. derivatives (H(s−k), 0, 0).
        """
        live = tau > 0
        root = torch.where(live, tau, torch.ones_like(tau)).sqrt()
        eps = self.vol * self.k * root
        z = (s - self.k) / eps
        phi = _npdf(z)
        g = (s - self.k) * _ndtr(z) + eps * phi
        zero = torch.zeros_like(s)
        return (
            torch.where(live, g, (s - self.k).clamp_min(0)),
            torch.where(live, _ndtr(z), (s > self.k).to(s.dtype)),
            torch.where(live, phi / eps, zero),
            torch.where(live, -phi * self.vol * self.k / (2 * root), zero),
        )

    def _parts(self, x: torch.Tensor):
        self._check_x(x)
        s, tau = x[:, 0], self.maturity - x[:, 1]
        g, g_s, g_ss, g_t = self._g(s, tau)
        b, _, _, b_t = self._g(torch.zeros_like(s), tau)
        return s, tau, g - (1 - s) * b, g_s + b, g_ss, g_t - (1 - s) * b_t

    def transform(self, x, net_out):
        s, tau, gt, *_ = self._parts(x)
        return gt + tau * s * net_out

    def u_derivatives(self, x, nn_derivs):
        s, tau, gt, gt_s, gt_ss, gt_t = self._parts(x)
        nn, g, d2 = nn_derivs["u"], nn_derivs["grad"], nn_derivs["diag2"]
        u_s = gt_s + tau * (nn + s * g[..., 0])
        u_t = gt_t - s * nn + tau * s * g[..., 1]
        return {
            "u": gt + tau * s * nn,
            "grad": torch.stack([u_s, u_t], dim=-1),
            "lap": gt_ss + tau * (2 * g[..., 0] + s * d2[..., 0]),
        }

    def residual(self, x, derivs):
        s = x[:, 0]
        u, g = derivs["u"], derivs["grad"]
        return (
            g[..., 1]
            + 0.5 * self.vol**2 * s**2 * derivs["lap"]
            + self.rate * s * g[..., 0]
            - self.rate * u
        )

    def reference(self, x):
        """Analytic call price / S_max at (s, t); the payoff at t = T, 0 at s = 0."""
        self._check_x(x)
        s, tau = x[:, 0], self.maturity - x[:, 1]
        live = (tau > 0) & (s > 0)
        tau_l = torch.where(live, tau, torch.ones_like(tau))
        s_l = torch.where(live, s, torch.ones_like(s))
        sd = self.vol * tau_l.sqrt()
        d1 = (torch.log(s_l / self.k) + (self.rate + 0.5 * self.vol**2) * tau_l) / sd
        price = s_l * _ndtr(d1) - self.k * torch.exp(-self.rate * tau_l) * _ndtr(d1 - sd)
        return torch.where(live, price, (s - self.k).clamp_min(0))
