"""Phase shifter: φ = γ·V², with quantization, static γ-noise, fixed bias and dynamic noise.

Model (docs/physics.md#non-idealities):

* drive law φ = γ V², γ = π / V_π² (thermo-optic heaters; electrostatic MEMS follow the same
  quadratic law since the force ∝ V²). Voltages are clamped to [0, V_max]: a phase needing
  V > V_max is clipped to γ V_max². With the default card V_max²/V_π² = (10.8/4.36)² ≈ 6.14,
  so γ V_max² ≈ 6.14 π > 2π and the whole range [0, 2π) is reachable.
* static power P = P_π · φ / π (W) per shifter holding phase φ (φ in [0, 2π)).
* quantization: b bits uniform over [0, period): levels k·period/2^b, k = 0 … 2^b − 1, round to
  nearest and wrap (period → 0). Default period 2π (docs/physics.md#conventions).
* static errors, drawn once per device: γ → γ(1 + ε), ε ~ N(0, σ_γ²) truncated at ±3σ_γ, and a
  fixed bias β ~ U(−b, b) rad added to the produced phase.
* dynamic noise: N(0, σ²) rad added per query (σ = 0 by default).
* optional time dependence (the chip applies it, ``photonic_sim.chip``): a first-order thermal
  response with time constant τ (:func:`settle`) and a slow bias drift (:class:`Drift`).

:meth:`PhaseShifter.realize` chains these: quantize → voltage → γ(1+ε)V² → + β → + noise.
The result is not wrapped (phases enter the circuit as e^{iφ}). Everything is batched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from photonic_sim.devices.cards import DeviceCard

Tensor = torch.Tensor
TWO_PI = 2.0 * math.pi
_TRUNCATE = 3.0  # γ-noise truncated at ±3 std


@dataclass(frozen=True)
class StaticErrors:
    """Per-device static errors: ``gamma_scale`` = 1 + ε (dimensionless), ``bias`` (rad)."""

    gamma_scale: Tensor
    bias: Tensor


@dataclass(frozen=True)
class Drift:
    """Slow bias drift of the U/V shifters (docs/physics.md#drift-and-thermal-settling):
    ``kind`` "random_walk" (independent per shifter, variance ``diffusion``·t, rad²/s) or
    "ramp" (every U/V phase + ``rate``·t, rad/s)."""

    kind: str
    rate: float = 0.0
    diffusion: float = 0.0

    def __post_init__(self) -> None:
        _check("kind", self.kind, self.kind in ("random_walk", "ramp"), "random_walk, ramp")
        _check("diffusion", self.diffusion, self.diffusion >= 0, ">= 0 rad^2/s")


def settle(previous: Tensor, target: Tensor, elapsed: float, time_constant: float) -> Tensor:
    """First-order thermal response: the phase ``elapsed`` s after the drive stepped from a
    heater at ``previous`` towards ``target`` (rad), target + (previous − target)·e^(−t/τ).
    ``time_constant`` τ = 0 is an instantaneous heater (returns ``target``)."""
    if time_constant <= 0:
        return target
    return target + (previous - target) * math.exp(-elapsed / time_constant)


class PhaseShifter:
    """One phase-shifter technology (see module docstring); SI units (V, W, s, rad, dB)."""

    def __init__(
        self,
        v_pi: float = 4.36,
        v_max: float = 10.8,
        p_pi: float = 0.03,
        bits: int = 8,
        gamma_noise_std: float = 0.002,
        bias_range: float = 1.0,
        dynamic_noise_std: float = 0.0,
        settle_time: float = 10e-6,
        insertion_loss: float = 0.25,
        thermal_time_constant: float = 0.0,
        query_time: float = 1e-7,
        drift: Drift | None = None,
    ) -> None:
        _check("v_pi", v_pi, v_pi > 0, "> 0 V")
        _check("v_max", v_max, v_max > 0, "> 0 V")
        _check("p_pi", p_pi, p_pi >= 0, ">= 0 W")
        _check("bits", bits, int(bits) == bits and bits >= 1, "integer >= 1")
        _check("gamma_noise_std", gamma_noise_std, 0 <= gamma_noise_std < 1 / _TRUNCATE, "[0, 1/3)")
        _check("bias_range", bias_range, bias_range >= 0, ">= 0 rad")
        _check("dynamic_noise_std", dynamic_noise_std, dynamic_noise_std >= 0, ">= 0 rad")
        _check("settle_time", settle_time, settle_time >= 0, ">= 0 s")
        _check("insertion_loss", insertion_loss, insertion_loss >= 0, ">= 0 dB")
        _check("thermal_time_constant", thermal_time_constant, thermal_time_constant >= 0, ">= 0 s")
        _check("query_time", query_time, query_time >= 0, ">= 0 s")
        self.v_pi = float(v_pi)
        self.v_max = float(v_max)
        self.p_pi = float(p_pi)
        self.bits = int(bits)
        self.gamma_noise_std = float(gamma_noise_std)
        self.bias_range = float(bias_range)
        self.dynamic_noise_std = float(dynamic_noise_std)
        self.settle_time = float(settle_time)
        self.insertion_loss = float(insertion_loss)
        self.thermal_time_constant = float(thermal_time_constant)
        self.query_time = float(query_time)  # s a query holds its setting besides the settle wait
        self.drift = drift

    @classmethod
    def from_card(cls, card: DeviceCard) -> PhaseShifter:
        ps = card.phase_shifter
        return cls(
            v_pi=ps.v_pi, v_max=ps.v_max, p_pi=ps.p_pi, bits=ps.bits,
            gamma_noise_std=ps.gamma_noise_std, bias_range=ps.bias_range,
            dynamic_noise_std=ps.dynamic_noise_std, settle_time=ps.settle_time,
            insertion_loss=ps.insertion_loss, thermal_time_constant=ps.thermal_time_constant,
            query_time=ps.query_time,
            drift=None if ps.drift is None else Drift(ps.drift.kind, ps.drift.rate, ps.drift.diffusion),
        )

    @property
    def gamma(self) -> float:
        """γ = π / V_π² (rad/V²)."""
        return math.pi / self.v_pi**2

    @property
    def max_phase(self) -> float:
        """Largest nominal phase, γ V_max² (rad)."""
        return self.gamma * self.v_max**2

    def voltage(self, phi: Tensor) -> Tensor:
        """Drive voltage √(φ/γ) for the nominal γ, clamped to [0, V_max] (φ < 0 → 0 V)."""
        return torch.sqrt(torch.as_tensor(phi).clamp_min(0.0) / self.gamma).clamp_max(self.v_max)

    def phase(self, voltage: Tensor, gamma_scale: Tensor | float = 1.0) -> Tensor:
        """Phase γ·gamma_scale·V² (rad) produced by ``voltage`` (V)."""
        return self.gamma * gamma_scale * torch.as_tensor(voltage) ** 2

    def power(self, phi: Tensor) -> Tensor:
        """Static heater power P_π·φ/π (W) for holding phase ``phi`` (rad, in [0, 2π))."""
        return self.p_pi * torch.as_tensor(phi) / math.pi

    def quantize(self, phi: Tensor, period: float = TWO_PI) -> Tensor:
        """Nearest of the 2^b levels k·period/2^b in [0, period), wrapping (see module doc)."""
        levels = 2**self.bits
        step = period / levels
        k = torch.round(torch.remainder(torch.as_tensor(phi), period) / step)
        return torch.remainder(k, levels) * step

    def quantize_attenuator(self, theta: Tensor) -> Tensor:
        """Σ-attenuator quantization: b bits over the closed range [0, π] (docs/physics.md#conventions).

        The push-pull attenuator transmits σ = sin(θ/2), symmetric about π, so a target θ is
        first folded into [0, π] (θ mod 2π, then 2π − θ above π: same σ), then rounded to
        the nearest of the 2^b levels k·π/(2^b − 1), k = 0 … 2^b − 1 (both ends exact).
        """
        t = torch.remainder(torch.as_tensor(theta), TWO_PI)
        t = torch.where(t > math.pi, TWO_PI - t, t)
        step = math.pi / (2**self.bits - 1)
        return torch.round(t / step) * step

    def quantize_mixed(self, phi: Tensor, attenuator: Tensor) -> Tensor:
        """``quantize`` (2π period) where ``attenuator`` (bool, broadcast to ``phi``) is False,
        ``quantize_attenuator`` where it is True: the same values bit for bit, with one
        ``remainder`` pass shared by both (the level index k ∈ [0, 2^b] of ``quantize`` wraps
        by one subtraction instead of a second ``remainder``)."""
        phi = torch.as_tensor(phi)
        levels = 2**self.bits
        r = remainder(phi, TWO_PI)
        k = torch.round(r / (TWO_PI / levels))
        mesh = torch.where(k >= levels, k - levels, k) * (TWO_PI / levels)
        step = math.pi / (levels - 1)
        folded = torch.where(r > math.pi, TWO_PI - r, r)
        return torch.where(attenuator, torch.round(folded / step) * step, mesh)

    def draw_static(
        self,
        shape: tuple[int, ...] | torch.Size,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float64,
    ) -> StaticErrors:
        """Draw per-device static errors for ``shape`` devices (γ scale 1+ε, bias ~ U(−b, b))."""
        dev = generator.device
        # truncated normal by inverse CDF: u ~ U(Φ(−3), Φ(3)), ε = σ Φ⁻¹(u)
        lo = 0.5 * math.erfc(_TRUNCATE / math.sqrt(2.0))
        u = lo + (1.0 - 2.0 * lo) * torch.rand(shape, generator=generator, dtype=torch.float64, device=dev)
        eps = self.gamma_noise_std * torch.special.ndtri(u)
        v = torch.rand(shape, generator=generator, dtype=torch.float64, device=dev)
        bias = self.bias_range * (2.0 * v - 1.0)
        return StaticErrors(gamma_scale=(1.0 + eps).to(dtype), bias=bias.to(dtype))

    def realize(
        self,
        phi_target: Tensor,
        static: StaticErrors | None = None,
        generator: torch.Generator | None = None,
        period: float = TWO_PI,
    ) -> Tensor:
        """Phase (rad) the device actually produces when asked for ``phi_target``.

        quantize(period) → voltage (clamped to V_max) → γ(1+ε)V² → + bias → + N(0, σ²).
        ``static=None`` means an ideal device (no γ error, no bias). A generator is required
        when the dynamic noise σ > 0.
        """
        phi = self.phase(self.voltage(self.quantize(phi_target, period)),
                         1.0 if static is None else static.gamma_scale)
        if static is not None:
            phi = phi + static.bias
        if self.dynamic_noise_std > 0:
            if generator is None:
                raise ValueError("generator: required when dynamic_noise_std > 0 (allowed: a torch.Generator)")
            noise = torch.randn(phi.shape, generator=generator, dtype=phi.dtype, device=phi.device)
            phi = phi + self.dynamic_noise_std * noise
        return phi


def remainder(x: Tensor, period: Tensor | float) -> Tensor:
    """``torch.remainder(x, period)`` (period > 0, a number or a tensor broadcast to x),
    bit for bit, computed only where x is outside [0, period): there it is x itself. Phase
    vectors mostly lie in range already (an estimator wraps its rows), and ``remainder``
    costs ~15× a plain elementwise pass. May return ``x`` itself (do not modify the result
    in place)."""
    inside = (x >= 0) & (x < period)
    if bool(inside.all()):
        return x
    out = x.clone()
    out_of_range = ~inside
    p = period.expand_as(x)[out_of_range] if isinstance(period, Tensor) else period
    out[out_of_range] = torch.remainder(x[out_of_range], p)
    return out


def _check(name: str, value: object, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{name}: {value!r} is out of range (allowed: {allowed})")
