"""Directional coupler: power coupling κ, static imbalance δκ, insertion loss.

Transfer matrix B(κ) = [[√(1−κ), i√κ], [i√κ, √(1−κ)]] (docs/physics.md#conventions, :func:`coupler_matrix`);
κ = 0.5 is the ideal 50:50 coupler. A fabricated coupler has κ + δκ with δκ ~ N(0, σ²) drawn
once per device and clipped to [0, 1]. Insertion loss IL (dB) is the field amplitude
10^(−IL/20).
"""

from __future__ import annotations

import torch

from photonic_sim.devices.cards import DeviceCard
from photonic_sim.devices.mzi import coupler_matrix, db_to_amplitude

Tensor = torch.Tensor


def kappa_at(card: DeviceCard, wavelength: float) -> float:
    """κ(λ) = κ + s·Δλ + c·Δλ²/2, Δλ = λ − λ_d (m; λ_d the card's design ``wavelength``, s / c
    ``coupler.kappa_slope`` / ``kappa_curvature``), clipped to [0, 1] (docs/physics.md#wavelength)."""
    c, d = card.coupler, wavelength - card.wavelength
    return min(1.0, max(0.0, c.kappa + c.kappa_slope * d + 0.5 * c.kappa_curvature * d * d))


def operating_wavelength(card: DeviceCard) -> float:
    """The laser's wavelength (m): ``laser.wavelength``, or the design wavelength when it is 0."""
    return card.laser.wavelength or card.wavelength


class DirectionalCoupler:
    """A 2×2 directional coupler technology (κ dimensionless, IL in dB)."""

    def __init__(self, kappa: float = 0.5, imbalance_std: float = 0.0, insertion_loss: float = 0.0) -> None:
        if not 0.0 <= kappa <= 1.0:
            raise ValueError(f"kappa: {kappa!r} is out of range (allowed: [0, 1])")
        if not imbalance_std >= 0.0:
            raise ValueError(f"imbalance_std: {imbalance_std!r} is out of range (allowed: >= 0)")
        if not insertion_loss >= 0.0:
            raise ValueError(f"insertion_loss: {insertion_loss!r} is out of range (allowed: >= 0 dB)")
        self.kappa = float(kappa)
        self.imbalance_std = float(imbalance_std)
        self.insertion_loss = float(insertion_loss)

    @classmethod
    def from_card(cls, card: DeviceCard, wavelength: float | None = None) -> DirectionalCoupler:
        """The card's coupler at ``wavelength`` (m; None: the design wavelength, κ as written)."""
        c = card.coupler
        kappa = c.kappa if wavelength is None else kappa_at(card, wavelength)
        return cls(kappa=kappa, imbalance_std=c.imbalance_std, insertion_loss=c.insertion_loss)

    @property
    def amplitude(self) -> float:
        """Field amplitude transmission 10^(−IL/20)."""
        return db_to_amplitude(self.insertion_loss)

    def draw_kappas(
        self,
        shape: tuple[int, ...] | torch.Size,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """Static κ + δκ, δκ ~ N(0, imbalance_std²), clipped to [0, 1], for ``shape`` devices."""
        noise = torch.randn(shape, generator=generator, dtype=dtype, device=generator.device)
        return (self.kappa + self.imbalance_std * noise).clamp(0.0, 1.0)

    def matrix(self, kappa: Tensor | float | None = None, *, lossy: bool = False,
               dtype: torch.dtype = torch.complex128) -> Tensor:
        """B(κ) → [..., 2, 2] (κ defaults to the nominal one); ``lossy`` multiplies by the IL amplitude."""
        b = coupler_matrix(self.kappa if kappa is None else kappa, dtype=dtype)
        return b * self.amplitude if lossy else b
