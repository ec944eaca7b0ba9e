"""The readout chain of a chip: E/O (DAC + modulator) and O/E (photodetector, TIA, ADC).

A :class:`ReadoutChain` is a device-level object a chip owns. The network
(``photonic_sim.cores.photonic.PhotonicNetwork.forward``) converts every electronic →
optical and optical → electronic step through it; nothing in the network reaches the chip.

E/O (``encode``): a real amplitude vector, already scaled into [−1, 1] by the electronic
controller's block floating point, is quantized by the DAC (``Modulator.quantize``); the
modulator's insertion loss is a uniform attenuation paid by the laser link budget (cost
model), so it is not simulated here. ``exact`` conversion skips the DAC.

O/E (``detect``), in normalized units where a full-scale input carries the channel power
``P_ch`` (``channel_power``: the ADC full scale corresponds to a normalized amplitude
``full_scale_amplitude``, P_ch = FS / (2·G·R·full_scale_amplitude)):

* *coherent* = balanced homodyne against a reference of power P_ch: P± = P_ch|y ± 1|²/2,
  ΔI = 2R·P_ch·Re(y), bipolar ADC, reading = V / (2·G·R·P_ch)
  (``Photodetector.homodyne_read``);
* *intensity* = one photodiode, P = P_ch|y|², unipolar ADC, reading = (V/G − I_d) / (R·P_ch)
  (``Photodetector.read``).

``gain`` (default 1) is the controller's digital gain on every reading (after the ADC: noise
and resolution are those of the light that arrived): coherent readings × gain, intensity
readings × gain². A chip with insertion loss sets it to undo the mean loss of its meshes'
path-dependent columns (``accelerators.cost.mean_loss_db``).

Intermediate passes (a TT core chain, partial sums) are always read coherently because they
are signed; the final pass follows ``final_readout``. ``exact`` conversion: coherent reads
Re y, intensity reads |y|², no noise, no ADC.

``kernel_readout(final)`` describes the same O/E chain as plain numbers (:class:`Readout`) for
the fused CPU kernel (``photonic_sim.cores._fused_read``), ``dac_levels()`` the DAC; the kernel
reports what it converted back through ``tally``. The chain counts its conversions
(``dac_conversions``, ``adc_conversions``, ``clipped``) until its owner collects them with
``take_counts``. Its detector noise is drawn from ``generator`` — the owner's per-query noise
generator, shared with the owner's other per-query draws so that one seed gives one stream
(the chip saves its state in ``Chip.state_dict``).

``differentiable=True`` (the first-order baseline only): the DAC and the detector pass
gradients straight through (the readings keep the autograd graph of their exact values).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.constants import elementary_charge

from photonic_sim.devices.cards import DeviceCard
from photonic_sim.devices.detector import Photodetector
from photonic_sim.devices.source import Modulator

Tensor = torch.Tensor
READOUTS = ("intensity", "coherent")
COUNTS = ("dac_conversions", "adc_conversions", "clipped")


@dataclass(frozen=True)
class Readout:
    """The O/E chain of one optical pass as plain numbers (SI units), as the fused readout
    kernel (``photonic_sim.cores._fused_read``) reads it.

    ``coherent``: balanced homodyne (True) or intensity (False) readout; ``noisy``: add
    σ·z with z ~ N(0, 1) (the kernel's Philox normals, keyed by a draw from ``generator``);
    ``quantize``: apply the ADC. ``amp`` a: A per
    unit Re y (coherent: 2R·P_ch) or W per unit |y|² (intensity: P_ch); ``responsivity``
    R (A/W, intensity); ``dark_current`` I_d (A, intensity); ``shot``: coherent s (A² per
    unit |y|²), intensity 2q (C); ``bandwidth`` B (Hz, intensity); ``floor`` f (A²: noise
    variance not proportional to the signal); ``tia_gain`` G (V/A); ``lsb`` (V), ``kmin``,
    ``kmax`` (ADC code range); ``back``: coherent reading = V·back, intensity reading =
    (V/G − I_d)/back.
    """

    coherent: bool
    noisy: bool
    quantize: bool
    amp: float
    responsivity: float
    dark_current: float
    shot: float
    bandwidth: float
    floor: float
    tia_gain: float
    lsb: float
    kmin: float
    kmax: float
    back: float
    generator: torch.Generator | None = None

    def params(self) -> tuple[float, ...]:
        return (float(self.coherent), float(self.quantize), self.amp, self.responsivity, self.dark_current,
                self.shot, self.bandwidth, self.floor, self.tia_gain, self.lsb, self.kmin, self.kmax, self.back)


def full_scale_power(detector: Photodetector, full_scale_amplitude: float = 1.0) -> float:
    """P_ch (W): the optical power a detector receives from a channel of normalized amplitude
    1 when the ADC full scale corresponds to ``full_scale_amplitude`` (balanced homodyne
    against a reference of the same power: 2·G·R·P_ch·a_fs = FS), P_ch = FS / (2·G·R·a_fs).
    This is the detector power the chip simulates and the power the cost model's link budget
    buys from the laser (``photonic_sim.accelerators.cost.link_budget``)."""
    if not full_scale_amplitude > 0:
        raise ValueError(f"full_scale_amplitude: {full_scale_amplitude} is out of range (allowed: > 0)")
    return detector.full_scale / (2.0 * detector.tia_gain * detector.responsivity * full_scale_amplitude)


class ReadoutChain:
    """DAC + modulator and photodetector + TIA + ADC of a chip (module docstring).

    Parameters: ``modulator`` (its DAC), ``detector`` (diode, TIA, ADC), ``generator`` (the
    per-query noise generator the detector noise is drawn from; required unless ``exact``),
    ``final_readout`` ('intensity' or 'coherent': how the network's last pass is read),
    ``exact`` (no DAC/ADC quantization, no detector noise), ``full_scale_amplitude``
    (normalized amplitude at the ADC full scale, > 0).
    """

    def __init__(self, modulator: Modulator, detector: Photodetector, *, generator: torch.Generator | None = None,
                 final_readout: str = "intensity", exact: bool = False, full_scale_amplitude: float = 1.0) -> None:
        if final_readout not in READOUTS:
            raise ValueError(f"readout: {final_readout!r} is not one of {READOUTS}")
        if not full_scale_amplitude > 0:
            raise ValueError(f"full_scale_amplitude: {full_scale_amplitude} is out of range (allowed: > 0)")
        if generator is None and not exact:
            raise ValueError("generator: required unless exact=True (allowed: a torch.Generator)")
        self.modulator = modulator
        self.detector = detector
        self.generator = generator
        self.final_readout = final_readout
        self.exact = bool(exact)
        # channel power so that the ADC full scale is `full_scale_amplitude` (coherent, bipolar)
        self.channel_power = full_scale_power(detector, full_scale_amplitude)
        self.gain = 1.0  # the controller's digital gain on every reading (``detect``)
        self.dac_conversions = self.adc_conversions = self.clipped = 0

    @classmethod
    def from_card(cls, card: DeviceCard, *, generator: torch.Generator | None = None, readout: str | None = None,
                  exact: bool = False, full_scale_amplitude: float = 1.0) -> ReadoutChain:
        """The chain of a device card; ``readout`` defaults to the card's
        ``photodetector.readout`` (else 'intensity')."""
        readout = readout or getattr(card.photodetector, "readout", "intensity")
        return cls(Modulator.from_card(card), Photodetector.from_card(card), generator=generator,
                   final_readout=readout, exact=exact, full_scale_amplitude=full_scale_amplitude)

    # ------------------------------------------------------------------ counters
    def tally(self, dac: int = 0, adc: int = 0, clipped: int = 0) -> None:
        """Count conversions done elsewhere on this chain's behalf (the fused kernel)."""
        self.dac_conversions += int(dac)
        self.adc_conversions += int(adc)
        self.clipped += int(clipped)

    def take_counts(self) -> dict[str, int]:
        """The conversions counted since the last call (``COUNTS``), and reset them to 0."""
        out = {key: getattr(self, key) for key in COUNTS}
        self.dac_conversions = self.adc_conversions = self.clipped = 0
        return out

    # ------------------------------------------------------------------ E/O
    def encode(self, v: Tensor, differentiable: bool = False) -> Tensor:
        """Real amplitudes v [..., C] in [−1, 1] → the complex fields the modulators launch."""
        cdt = torch.complex64 if v.dtype == torch.float32 else torch.complex128
        self.dac_conversions += v.numel()
        if self.exact:
            return v.to(cdt)
        q = self.modulator.quantize(v)
        if differentiable:
            q = v + (q - v).detach()
        return q.to(cdt)

    def dac_levels(self) -> int:
        """``Modulator.half_levels`` of the DAC, 0 for no quantization (exact conversion)."""
        return 0 if self.exact else self.modulator.half_levels

    # ------------------------------------------------------------------ O/E
    def coherent(self, final: bool) -> bool:
        """True when a pass is read by balanced homodyne (every intermediate pass; the
        final one when ``final_readout`` is 'coherent')."""
        return not final or self.final_readout == "coherent"

    def detect(self, field: Tensor, final: bool, differentiable: bool = False) -> Tensor:
        """Block output fields [..., k] (normalized amplitudes y) → readings (module docstring)."""
        coherent = self.coherent(final)
        self.adc_conversions += field.numel()
        if self.exact:
            out = field.real if coherent else field.real.square() + field.imag.square()
            return out if self.gain == 1.0 else out * (self.gain if coherent else self.gain**2)
        det, pch = self.detector, self.channel_power
        g, r = det.tia_gain, det.responsivity
        if coherent:
            exact = field.real
            volts, clipped = det.homodyne_read(field.detach(), pch, self.generator)
            reading = volts.mul_(1.0 / (2.0 * g * r * pch))
        else:
            exact = field.real.square() + field.imag.square()  # |y|² without the complex abs' sqrt
            volts, clipped = det.read((pch * exact).detach(), self.generator)
            reading = (volts / g - det.dark_current) / (r * pch)
        self.clipped += clipped
        reading = reading.to(exact.dtype)
        if self.gain != 1.0:
            g = self.gain if coherent else self.gain**2
            exact, reading = exact * g, reading * g
        if differentiable:
            reading = exact + (reading - exact).detach()
        return reading

    def kernel_readout(self, final: bool) -> Readout:
        """``detect``'s chain as plain numbers for the fused kernel: the same constants, in the
        same order, as ``Photodetector.homodyne_read`` / ``read`` / ``adc`` and the conversion
        to reading units in ``detect``; exact conversion: noise and ADC off."""
        coherent = self.coherent(final)
        if self.exact:
            g = self.gain if coherent else self.gain**2
            return Readout(coherent, False, False, amp=g if coherent else 1.0, responsivity=1.0, dark_current=0.0,
                           shot=0.0, bandwidth=0.0, floor=0.0, tia_gain=1.0, lsb=1.0, kmin=0.0, kmax=0.0,
                           back=1.0 if coherent else 1.0 / g)
        det, pch = self.detector, self.channel_power
        g, r = det.tia_gain, det.responsivity
        lsb, kmin, kmax = det.adc_grid(bipolar=coherent)
        if coherent:
            scale, floor = det.homodyne_noise(pch)
            return Readout(True, True, True, amp=2.0 * r * pch, responsivity=r, dark_current=det.dark_current,
                           shot=scale, bandwidth=det.bandwidth, floor=floor, tia_gain=g, lsb=lsb, kmin=kmin,
                           kmax=kmax, back=self.gain / (2.0 * g * r * pch), generator=self.generator)
        return Readout(False, True, True, amp=pch, responsivity=r, dark_current=det.dark_current,
                       shot=2.0 * elementary_charge, bandwidth=det.bandwidth, floor=det.thermal_variance,
                       tia_gain=g, lsb=lsb, kmin=kmin, kmax=kmax, back=r * pch / self.gain**2,
                       generator=self.generator)
