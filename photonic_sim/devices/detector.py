"""Photodetector → TIA → ADC readout chain (docs/physics.md#non-idealities).

* photocurrent I = R·P + I_d (A), P the optical power (W, ≥ 0) on the diode;
* noise: Gaussian with variance σ² = 2q·|I|·B + 4kTB/R_L, where I already contains the dark
  current (i.e. 2q(I_signal + I_d)B, shot, plus the thermal noise of the load R_L);
* TIA: V = G·I (G in V/A);
* ADC, b bits, codes k·LSB, rounded to the nearest code then clipped to the code range:
  unipolar (intensity readout) k = 0 … 2^b − 1, LSB = FS/2^b, range [0, FS − LSB];
  bipolar (balanced/coherent readout) k = −2^(b−1) … 2^(b−1) − 1, LSB = FS/2^(b−1),
  range [−FS, FS − LSB] (two's complement). A sample is *clipped* when its nearest code lies
  outside the code range.

Readout modes: ``read`` is intensity detection (one diode reads |y|²). ``balanced_read`` is
balanced detection: two diodes on the outputs of a 50:50 coupler mixing the signal y with a
reference field r read P± = |y ± r|²/2, and I₊ − I₋ = 2R·Re(y r*) is signed, which is how a
coherent (signed) output is recovered; the dark currents cancel on average, their noises add.

A chip reads its network through ``photonic_sim.devices.readout.ReadoutChain``, which
combines this detector with the modulator's DAC and the chip's channel power.
"""

from __future__ import annotations

import torch
from scipy.constants import Boltzmann, elementary_charge

from photonic_sim.devices.cards import DeviceCard

Tensor = torch.Tensor


class Photodetector:
    """Photodiode with its TIA and ADC; SI units (A/W, A, Hz, Ohm, K, V/A, V)."""

    def __init__(
        self,
        responsivity: float = 1.1,
        dark_current: float = 25e-9,
        bandwidth: float = 27e9,
        load_resistance: float = 5e3,
        temperature: float = 300.0,
        tia_gain: float = 5e3,
        adc_bits: int = 8,
        full_scale: float = 1.0,
    ) -> None:
        for name, value in (("responsivity", responsivity), ("bandwidth", bandwidth),
                            ("load_resistance", load_resistance), ("temperature", temperature),
                            ("tia_gain", tia_gain), ("full_scale", full_scale)):
            if not value > 0:
                raise ValueError(f"{name}: {value!r} is out of range (allowed: > 0)")
        if not dark_current >= 0:
            raise ValueError(f"dark_current: {dark_current!r} is out of range (allowed: >= 0 A)")
        if int(adc_bits) != adc_bits or adc_bits < 1:
            raise ValueError(f"adc_bits: {adc_bits!r} is out of range (allowed: integer >= 1)")
        self.responsivity = float(responsivity)
        self.dark_current = float(dark_current)
        self.bandwidth = float(bandwidth)
        self.load_resistance = float(load_resistance)
        self.temperature = float(temperature)
        self.tia_gain = float(tia_gain)
        self.adc_bits = int(adc_bits)
        self.full_scale = float(full_scale)

    @classmethod
    def from_card(cls, card: DeviceCard) -> Photodetector:
        pd = card.photodetector
        return cls(
            responsivity=pd.responsivity, dark_current=pd.dark_current, bandwidth=pd.bandwidth,
            load_resistance=pd.load_resistance, temperature=pd.temperature,
            tia_gain=card.tia.gain, adc_bits=card.adc.bits, full_scale=card.adc.full_scale,
        )

    def photocurrent(self, power: Tensor) -> Tensor:
        """Mean current R·P + I_d (A) for optical power ``power`` (W)."""
        return self.responsivity * torch.as_tensor(power) + self.dark_current

    @property
    def thermal_variance(self) -> float:
        """4kTB/R_L (A²): the load's thermal (Johnson) noise, the same for every diode."""
        return 4.0 * Boltzmann * self.temperature * self.bandwidth / self.load_resistance

    def noise_variance(self, current: Tensor) -> Tensor:
        """σ² = 2q|I|B + 4kTB/R_L (A²); ``current`` includes the dark current."""
        shot = 2.0 * elementary_charge * torch.as_tensor(current).abs() * self.bandwidth
        return shot + self.thermal_variance

    @staticmethod
    def _standard_normal(like: Tensor, generator: torch.Generator | None) -> Tensor:
        """The N(0, 1) draws of a noisy read, one ``torch.randn`` shaped like ``like`` from
        ``generator`` (required for noisy reads). The fused readout kernel
        (``cores._fused_read``) draws its own (Philox) normals instead."""
        if generator is None:
            raise ValueError("generator: required when noisy=True (allowed: a torch.Generator)")
        return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)

    def homodyne_noise(self, channel_power: float) -> tuple[float, float]:
        """Balanced homodyne noise variance σ² = s·|y|² + f (A²) against a reference of channel
        power P_ch: (s, f) = (2qB·R·P_ch, 2qB·(R·P_ch + 2I_d) + 2·4kTB/R_L), i.e.
        2qB(I₊ + I₋) + 2·4kTB/R_L with I₊ + I₋ = R·P_ch(|y|² + 1) + 2I_d."""
        shot = 2.0 * elementary_charge * self.bandwidth
        return (shot * self.responsivity * channel_power,
                shot * (self.responsivity * channel_power + 2.0 * self.dark_current) + 2.0 * self.thermal_variance)

    def detect(self, power: Tensor, generator: torch.Generator | None = None, noisy: bool = True) -> Tensor:
        """Photocurrent (A) with Gaussian shot + thermal noise (``noisy``; needs ``generator``)."""
        current = self.photocurrent(power)
        if not noisy:
            return current
        z = self._standard_normal(current, generator)
        return current + torch.sqrt(self.noise_variance(current)) * z

    def tia(self, current: Tensor) -> Tensor:
        """TIA output voltage G·I (V)."""
        return self.tia_gain * current

    def adc_grid(self, bipolar: bool = False) -> tuple[float, int, int]:
        """The ADC's code grid: (LSB in volts, lowest code, highest code); bipolar codes are
        symmetric around 0 V, unipolar codes start at 0 V."""
        if bipolar:
            return self.full_scale / 2 ** (self.adc_bits - 1), -(2 ** (self.adc_bits - 1)), 2 ** (self.adc_bits - 1) - 1
        return self.full_scale / 2**self.adc_bits, 0, 2**self.adc_bits - 1

    def adc(self, volts: Tensor, bipolar: bool = False) -> tuple[Tensor, int]:
        """Quantize ``volts`` to the ADC codes (see module doc) → (volts on the code grid, clipped count)."""
        lsb, kmin, kmax = self.adc_grid(bipolar)
        k = torch.round(torch.as_tensor(volts) / lsb)
        kept = k.clamp(kmin, kmax)
        clipped = int(torch.count_nonzero(kept != k))
        return kept.mul_(lsb), clipped

    def read(self, power: Tensor, generator: torch.Generator | None = None,
             noisy: bool = True) -> tuple[Tensor, int]:
        """Intensity readout: power (W) → diode → TIA → unipolar ADC → (volts, clipped count)."""
        return self.adc(self.tia(self.detect(power, generator, noisy)), bipolar=False)

    def balanced_read(self, p_plus: Tensor, p_minus: Tensor, generator: torch.Generator | None = None,
                      noisy: bool = True) -> tuple[Tensor, int]:
        """Balanced readout: I(p_plus) − I(p_minus) → TIA → bipolar ADC → (volts, clipped count).

        The two diodes' noises are independent Gaussians, so their difference is drawn as ONE
        Gaussian of variance σ²(I₊) + σ²(I₋) = 2qB(|I₊| + |I₋|) + 2·4kTB/R_L around the mean
        R(P₊ − P₋) (the dark currents cancel): the same distribution as two ``detect`` calls,
        with half the random draws."""
        current = self.responsivity * (torch.as_tensor(p_plus) - torch.as_tensor(p_minus))
        if noisy:
            z = self._standard_normal(current, generator)
            both = self.photocurrent(p_plus).abs_() + self.photocurrent(p_minus).abs_()
            std = both.mul_(2.0 * elementary_charge * self.bandwidth).add_(2.0 * self.thermal_variance).sqrt_()
            current = current + std * z
        return self.adc(self.tia(current), bipolar=True)

    def homodyne_read(self, field: Tensor, channel_power: float, generator: torch.Generator | None = None,
                      noisy: bool = True) -> tuple[Tensor, int]:
        """Balanced homodyne of complex amplitudes ``field`` (y, dimensionless) against a
        reference of the same channel power P_ch: P± = P_ch|y ± 1|²/2, i.e. ``balanced_read``
        of those powers (same mean R(P₊ − P₋) = 2R·P_ch·Re y, same noise variance
        2qB(I₊ + I₋) + 2·4kTB/R_L with I₊ + I₋ = R·P_ch(|y|² + 1) + 2I_d), computed in a few
        fused passes over the amplitudes instead of forming P₊ and P₋.
        Returns (volts on the bipolar ADC grid, clipped count)."""
        re, im = field.real, field.imag
        current = re * (2.0 * self.responsivity * channel_power)
        if noisy:
            z = self._standard_normal(current, generator)
            scale, floor = self.homodyne_noise(channel_power)
            std = torch.addcmul(re * re, im, im).mul_(scale).add_(floor).sqrt_()
            current.addcmul_(std, z)
        return self.adc(current.mul_(self.tia_gain), bipolar=True)
