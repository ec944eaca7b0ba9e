"""A fabricated MZI: two phase shifters (θ internal, φ external, both on the top arm) and two
directional couplers, with their static errors, composed with :func:`mzi_matrix` (docs/physics.md#conventions).

Light crosses, on either arm, one external phase shifter, a coupler, one internal phase
shifter and a second coupler (the bottom arm carries loss-matched dummy sections), so the
whole-MZI insertion loss is 2·IL_ps + 2·IL_coupler (dB).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from photonic_sim.devices.cards import DeviceCard
from photonic_sim.devices.coupler import DirectionalCoupler
from photonic_sim.devices.mzi import mzi_matrix
from photonic_sim.devices.phase_shifter import TWO_PI, PhaseShifter, StaticErrors

Tensor = torch.Tensor


@dataclass(frozen=True)
class MZIStatic:
    """Static errors of a batch of MZIs: phase-shifter errors and the two couplers' κ."""

    theta: StaticErrors
    phi: StaticErrors
    kappa1: Tensor
    kappa2: Tensor


class MZI:
    """MZI made of ``phase_shifter`` and ``coupler`` devices; batched over leading dims."""

    def __init__(self, phase_shifter: PhaseShifter, coupler: DirectionalCoupler) -> None:
        self.phase_shifter = phase_shifter
        self.coupler = coupler

    @classmethod
    def from_card(cls, card: DeviceCard) -> MZI:
        return cls(PhaseShifter.from_card(card), DirectionalCoupler.from_card(card))

    @property
    def insertion_loss(self) -> float:
        """Whole-MZI insertion loss (dB): 2·IL_ps + 2·IL_coupler."""
        return 2.0 * self.phase_shifter.insertion_loss + 2.0 * self.coupler.insertion_loss

    def draw_static(self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator) -> MZIStatic:
        """Draw, in this order, θ-shifter, φ-shifter, input-coupler and output-coupler errors."""
        theta = self.phase_shifter.draw_static(shape, generator)
        phi = self.phase_shifter.draw_static(shape, generator)
        kappa1 = self.coupler.draw_kappas(shape, generator)
        kappa2 = self.coupler.draw_kappas(shape, generator)
        return MZIStatic(theta, phi, kappa1, kappa2)

    def matrix(
        self,
        theta: Tensor,
        phi: Tensor,
        static: MZIStatic | None = None,
        generator: torch.Generator | None = None,
        *,
        lossy: bool = True,
        period: float = TWO_PI,
    ) -> Tensor:
        """Transfer matrix [..., 2, 2] of the MZI asked for (θ, φ): phases realized by the
        shifters (quantization, γ error, bias, dynamic noise), couplers at their drawn κ
        (nominal κ when ``static`` is None) and, if ``lossy``, the insertion loss."""
        ps = self.phase_shifter
        th = ps.realize(theta, None if static is None else static.theta, generator, period)
        ph = ps.realize(phi, None if static is None else static.phi, generator, period)
        k1 = self.coupler.kappa if static is None else static.kappa1
        k2 = self.coupler.kappa if static is None else static.kappa2
        return mzi_matrix(th, ph, kappa1=k1, kappa2=k2, loss_db=self.insertion_loss if lossy else 0.0)
