"""Light source and input encoding: laser (link budget, wall-plug efficiency) and modulator + DAC.

Signed amplitude encoding: an input x ∈ [−1, 1] drives a push-pull Mach-Zehnder modulator
biased at null, whose output field is real and ∝ sin(Δφ/2); the drive is pre-distorted so the
field amplitude is x itself (negative x = field with phase π). The DAC has b bits over
[−1, 1] with the 2^b − 1 symmetric levels k/(2^(b−1) − 1), |k| ≤ 2^(b−1) − 1 (one code of the
2^b unused, as in a sign-magnitude DAC) so that 0 and ±1 are exact. The field leaving the
modulator is x_q · 10^(−IL/20), in units of the laser's field per channel (power |x_q|² times
the per-channel laser power, less IL).

Link budget (docs/physics.md#cost-model): P_laser[dBm] = PD sensitivity[dBm] + total insertion loss on the
critical path[dB] + 10·log10(fan-out); electrical power = optical power / wall-plug efficiency.
"""

from __future__ import annotations

import math

import torch

from photonic_sim.devices.cards import DeviceCard
from photonic_sim.devices.mzi import db_to_amplitude

Tensor = torch.Tensor


def dbm_to_watt(dbm: float) -> float:
    """Optical power in dBm → W."""
    return 1e-3 * 10.0 ** (dbm / 10.0)


def watt_to_dbm(watt: float) -> float:
    """Optical power in W (> 0) → dBm."""
    return 10.0 * math.log10(watt / 1e-3)


class Laser:
    """CW laser: wall-plug efficiency (0, 1] and maximum optical output (W)."""

    def __init__(self, wall_plug_efficiency: float = 0.2, max_power: float = 0.1) -> None:
        if not 0.0 < wall_plug_efficiency <= 1.0:
            raise ValueError(f"wall_plug_efficiency: {wall_plug_efficiency!r} is out of range (allowed: (0, 1])")
        if not max_power > 0.0:
            raise ValueError(f"max_power: {max_power!r} is out of range (allowed: > 0 W)")
        self.wall_plug_efficiency = float(wall_plug_efficiency)
        self.max_power = float(max_power)

    @classmethod
    def from_card(cls, card: DeviceCard) -> Laser:
        return cls(card.laser.wall_plug_efficiency, card.laser.max_power)

    def electrical_power(self, optical_power: Tensor | float) -> Tensor | float:
        """Electrical power (W) drawn to emit ``optical_power`` (W): P_opt / WPE."""
        return optical_power / self.wall_plug_efficiency

    @staticmethod
    def required_power_dbm(sensitivity_dbm: float, loss_db: float, fanout: int) -> float:
        """Optical laser power (dBm) so each of ``fanout`` detectors gets its sensitivity after ``loss_db``."""
        if fanout < 1:
            raise ValueError(f"fanout: {fanout!r} is out of range (allowed: integer >= 1)")
        if loss_db < 0:
            raise ValueError(f"loss_db: {loss_db!r} is out of range (allowed: >= 0 dB)")
        return sensitivity_dbm + loss_db + 10.0 * math.log10(fanout)

    def required_electrical_power(self, sensitivity_dbm: float, loss_db: float, fanout: int) -> float:
        """Wall-plug power (W) for :meth:`required_power_dbm`."""
        return dbm_to_watt(self.required_power_dbm(sensitivity_dbm, loss_db, fanout)) / self.wall_plug_efficiency


class Modulator:
    """Input encoder: DAC (b bits, symmetric levels) driving a push-pull MZM (see module doc)."""

    def __init__(self, bits: int = 8, insertion_loss: float = 3.0, energy_per_symbol: float = 450e-15,
                 amplitude_noise_std: float = 0.0) -> None:
        if int(bits) != bits or bits < 2:
            raise ValueError(f"bits: {bits!r} is out of range (allowed: integer >= 2)")
        if not insertion_loss >= 0:
            raise ValueError(f"insertion_loss: {insertion_loss!r} is out of range (allowed: >= 0 dB)")
        if not energy_per_symbol >= 0:
            raise ValueError(f"energy_per_symbol: {energy_per_symbol!r} is out of range (allowed: >= 0 J)")
        if not amplitude_noise_std >= 0:
            raise ValueError(f"amplitude_noise_std: {amplitude_noise_std!r} is out of range (allowed: >= 0)")
        self.bits = int(bits)
        self.insertion_loss = float(insertion_loss)
        self.energy_per_symbol = float(energy_per_symbol)
        self.amplitude_noise_std = float(amplitude_noise_std)

    @classmethod
    def from_card(cls, card: DeviceCard) -> Modulator:
        return cls(bits=card.dac.bits, insertion_loss=card.modulator.insertion_loss,
                   energy_per_symbol=card.modulator.energy_per_symbol)

    @property
    def levels(self) -> int:
        """Number of DAC levels actually used, 2^b − 1."""
        return 2**self.bits - 1

    @property
    def half_levels(self) -> int:
        """DAC code of full scale +1, 2^(b−1) − 1 (codes −half … +half)."""
        return 2 ** (self.bits - 1) - 1

    def quantize(self, x: Tensor) -> Tensor:
        """DAC: clip to [−1, 1] and round (half to even) to the nearest level k/(2^(b−1) − 1)."""
        half = self.half_levels
        return torch.round(torch.as_tensor(x).clamp(-1.0, 1.0) * half) / half

    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Real signed field amplitudes for inputs ``x`` ∈ [−1, 1] (clipped): DAC, IL, optional noise.

        With ``amplitude_noise_std`` σ > 0 each amplitude gets N(0, σ²) added before the IL
        (a ``generator`` is then required).
        """
        xq = self.quantize(x)
        if self.amplitude_noise_std > 0:
            if generator is None:
                raise ValueError("generator: required when amplitude_noise_std > 0 (allowed: a torch.Generator)")
            xq = xq + self.amplitude_noise_std * torch.randn(
                xq.shape, generator=generator, dtype=xq.dtype, device=xq.device)
        return xq * db_to_amplitude(self.insertion_loss)

    def energy(self, num_symbols: int) -> float:
        """Modulator drive energy (J) for ``num_symbols`` symbols (DAC energy is counted separately)."""
        return num_symbols * self.energy_per_symbol
