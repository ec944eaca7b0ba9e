"""THE BLACK BOX: a photonic chip that takes phases in and gives detector readings out.

Training code talks to a :class:`Chip` through two doors only:

* ``set_phases(phases)`` / the ``phases`` argument of ``measure``: the control vector
  (target phases in rad, plus the electronic biases; see ``controls``);
* ``measure(inputs, phases=None) -> readings``: inputs are encoded by the modulators, run
  through the optical network, and read by photodetectors after noise and ADC quantization.

Weights, realised phases and static device errors stay inside. Every query is counted in the
:class:`Ledger`, which the cost model turns into joules and seconds.

Physics of one query (all batched over P phase settings and B inputs):

1. **Phase shifters** (``PhaseShifter``): target → b-bit quantization (U/V mesh phases
   over [0, 2π); Σ attenuator phases folded into [0, π] — σ = sin(θ/2) is symmetric about
   π, so the controller sees period 2π for them too — and quantized over the closed
   [0, π], DESIGN §2) → drive voltage → γ(1+ε)V² with
   the static γ-error ε of that device → thermal crosstalk Δφ = K·φ from the heater phases of
   the same block (blocks are thermally isolated from each other; K from the card's kernel or
   distance model, block-local) → + the fixed manufacturing bias β ~ U(−b, b) on U/V phases
   (the Σ attenuators get none, DESIGN §3) → + dynamic noise N(0, σ²) per query.
   Time-multiplexed blocks that share hardware share its static errors.
2. **Couplers**: static κ = 0.5 + δκ per coupler (``coupler.imbalance_std``), drawn once.
   Uniform insertion loss is an overall attenuation that the laser link budget pays for
   (the cost model charges it); it is simulated only with ``insertion_loss=True``.
3. **Modulators** (E/O): real signed amplitudes in [−1, 1] with DAC quantization. Each
   vector is scaled digitally to the DAC range before conversion and scaled back after
   detection (block floating point, done by the electronic controller; exact for a linear
   optical pass).
4. **Detectors** (O/E), in normalized units where a full-scale input carries the channel
   power ``P_ch``: *coherent* readout = balanced homodyne against a reference of power
   P_ch: P± = P_ch|y ± 1|²/2, ΔI = 2R·P_ch·Re(y), bipolar ADC, reading = V/(2·G·R·P_ch);
   *intensity* readout = one photodiode, P = P_ch|y|², unipolar ADC, reading =
   (V/G − I_d)/(R·P_ch). Intermediates (TT core chain, partial sums of blocks) are always
   read coherently because they are signed; the final readout follows the card
   (``photodetector.readout``) unless overridden. Shot + thermal noise follow
   σ² = 2q(I + I_d)B + 4kTB/R_L per diode. ``P_ch`` is chosen so that the ADC full scale
   corresponds to a normalized amplitude ``full_scale_amplitude`` (default 1; block floating point keeps DAC inputs within [−1, 1], so block outputs rarely exceed it).

The chip is seeded: the same ``seed`` gives the same static errors and, for the same
sequence of calls, bit-identical readings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from scipy.constants import elementary_charge

from photonic_sim.cores._fused_read import Readout
from photonic_sim.devices import (
    MZI,
    DeviceCard,
    DirectionalCoupler,
    Modulator,
    PhaseShifter,
    Photodetector,
    crosstalk_from_card,
)

Tensor = torch.Tensor
READOUTS = ("intensity", "coherent")


@dataclass
class Ledger:
    """Counts of everything the chip was asked to do (plain integers).

    * ``calls``: ``measure`` invocations;
    * ``queries``: (phase setting, input batch) pairs measured — one query is one
      ``measure`` of one phase setting over one input batch (DESIGN §6);
    * ``phase_settings``: times a new phase vector was programmed (each costs a settle);
    * ``samples``: input vectors pushed through the network, summed over queries;
    * ``dac_conversions`` / ``adc_conversions``: E/O and O/E conversions performed
      (balanced coherent detection counts one ADC conversion per output);
    * ``clipped``: ADC samples that hit the end of the code range.
    """

    calls: int = 0
    queries: int = 0
    phase_settings: int = 0
    samples: int = 0
    dac_conversions: int = 0
    adc_conversions: int = 0
    clipped: int = 0

    def totals(self) -> dict[str, int]:
        return asdict(self)

    def load(self, totals: dict[str, int]) -> None:
        for key, value in totals.items():
            setattr(self, key, int(value))


class Chip:
    """A photonic network (``photonic_sim.cores`` TONN / DenseONN) on real devices.

    Parameters: ``network`` (a ``PhotonicNetwork``), ``card`` (a loaded ``DeviceCard``),
    ``seed`` (per-query noise), ``static_seed`` (manufacturing draws; default = ``seed``),
    ``readout`` (final readout, default the card's), ``ideal`` (no quantization, no
    noise, no static errors, no crosstalk, no ADC/DAC: the exact network), ``exact_readout``
    (the phase-domain non-idealities of step 1 stay, but E/O and O/E conversion are exact:
    no DAC/ADC quantization, no detector noise — the seed paper's noise model), ``dtype``
    (signals: float32 → complex64 fields, float64 → complex128; phases, device errors and
    the mesh matrices are always computed in float64 and cast), ``device`` (where the simulation
    runs, e.g. "cuda"; static errors are drawn on the CPU and moved there, so a seed gives the
    same chip on every device; the per-query noise generator lives on ``device``).
    """

    def __init__(
        self,
        network,
        card: DeviceCard,
        *,
        seed: int = 0,
        static_seed: int | None = None,
        readout: str | None = None,
        ideal: bool = False,
        exact_readout: bool = False,
        insertion_loss: bool = False,
        full_scale_amplitude: float = 1.0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        readout = readout or getattr(card.photodetector, "readout", "intensity")
        if readout not in READOUTS:
            raise ValueError(f"readout: {readout!r} is not one of {READOUTS}")
        if not full_scale_amplitude > 0:
            raise ValueError(f"full_scale_amplitude: {full_scale_amplitude} is out of range (allowed: > 0)")
        self._net = network
        self._card = card
        self.readout = readout
        self.ideal = bool(ideal)
        self.exact_readout = self.ideal or bool(exact_readout)
        self.dtype = dtype
        self.device = torch.device(device)
        self.ledger = Ledger()
        self._gen = torch.Generator(device=self.device).manual_seed(int(seed))
        self._shifter = PhaseShifter.from_card(card)
        self._detector = Photodetector.from_card(card)
        self._modulator = Modulator.from_card(card)
        r, g, fs = self._detector.responsivity, self._detector.tia_gain, self._detector.full_scale
        # channel power so that the ADC full scale is `full_scale_amplitude` (coherent, bipolar)
        self.channel_power = fs / (2.0 * g * r * full_scale_amplitude)
        self._programmed: Tensor | None = None
        self._current: Tensor | None = None
        self._build_static(int(seed if static_seed is None else static_seed), insertion_loss)

    # ------------------------------------------------------------------ controls
    @property
    def num_phases(self) -> int:
        """Length of the control vector."""
        return self._net.num_phases

    @property
    def in_features(self) -> int:
        return self._net.in_features

    @property
    def out_features(self) -> int:
        return self._net.out_features

    def controls(self) -> dict:
        """What a controller may know about the control vector (no weights, no errors):
        ``slices`` (name → slice), ``periods`` (2π for every phase, NaN for electronic biases),
        ``is_phase``, and masks ``S``, ``U``, ``V``, ``tt``, ``dense``, ``bias``."""
        net = self._net
        masks = {kind: net.mask(kind) for kind in ("U", "S", "V", "tt", "dense", "bias", "phase")}
        periods = torch.where(net.is_phase, 2.0 * math.pi, math.nan).to(torch.float64)
        return {"slices": net.slices(), "periods": periods, "is_phase": net.is_phase.clone(), "masks": masks}

    def init_phases(self, generator: torch.Generator) -> Tensor:
        """A random starting control vector (a random network mapped to phases, float64)."""
        return self._net.init_phases(generator)

    def set_phases(self, phases: Tensor) -> None:
        """Program the chip with ``phases[num_phases]`` (used when ``measure`` gets none)."""
        phases = torch.as_tensor(phases, dtype=torch.float64)
        if phases.shape != (self.num_phases,):
            raise ValueError(f"phases: need shape [{self.num_phases}], got {tuple(phases.shape)}")
        self._current = phases.clone()

    # ------------------------------------------------------------------ measure
    def measure(self, inputs: Tensor, phases: Tensor | None = None, *, differentiable: bool = False) -> Tensor:
        """Detector readings for ``inputs[B, in_features]`` (values in [0, 1] or [−1, 1]).

        ``phases`` [P, num_phases] → readings [P, B, out_features] in ONE batched pass;
        [num_phases] or None (the programmed phases) → [B, out_features]. Each of the P
        settings is one query and one phase programming (a repeated measurement of the
        already programmed vector costs no new settle). ``differentiable=True`` is for the
        first-order baseline only: quantizers pass gradients straight through and the
        readings keep the autograd graph.
        """
        if phases is None:
            if self._current is None:
                raise ValueError("phases: none given and none programmed (call set_phases first)")
            phases = self._current
        single = phases.ndim == 1
        ph = phases[None] if single else phases
        if ph.ndim != 2 or ph.shape[-1] != self.num_phases:
            raise ValueError(f"phases: need shape [P, {self.num_phases}] or [{self.num_phases}], got {tuple(phases.shape)}")
        x = torch.as_tensor(inputs)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"inputs: need shape [B, {self.in_features}], got {tuple(x.shape)}")
        self._account(ph.detach(), x.shape[0])
        grad = torch.enable_grad() if differentiable else torch.no_grad()
        with grad:
            realised = self._realise(ph.to(self.device, torch.float64), differentiable)
            out = self._net.forward(
                x.to(self.device, self.dtype), realised,
                encode=_Encode(self, differentiable),
                detect=_Detect(self, differentiable),
                kappa=self._kappa, loss_db=self._loss_db,
                normalize=not self.exact_readout, final_intensity=self.readout == "intensity", dtype=self.dtype,
            )
        return out[0] if single else out

    def state_dict(self) -> dict:
        """Noise generator state, programmed phases and ledger (for checkpoints)."""
        return {"generator": self._gen.get_state(), "ledger": self.ledger.totals(),
                "current": None if self._current is None else self._current.clone(),
                "programmed": None if self._programmed is None else self._programmed.clone()}

    def load_state_dict(self, state: dict) -> None:
        self._gen.set_state(state["generator"])
        self.ledger.load(state["ledger"])
        self._current = state["current"]
        self._programmed = state["programmed"]

    # ------------------------------------------------------------------ internals
    def _account(self, ph: Tensor, batch: int) -> None:
        led = self.ledger
        p = ph.shape[0]
        led.calls += 1
        led.queries += p
        led.samples += p * batch
        if p == 1 and self._programmed is not None and torch.equal(ph[0], self._programmed):
            return
        led.phase_settings += p
        self._programmed = ph[-1].clone()

    def _build_static(self, seed: int, insertion_loss: bool) -> None:
        net, card = self._net, self._card
        gen = torch.Generator().manual_seed(seed + 0x5EED)
        nb, nhw, bp = net.num_blocks, net.num_hw_blocks, net.block.num_phases
        self._block_span = nb * bp  # phases of blocks come first in the control vector
        s_part = torch.zeros(bp, dtype=torch.bool)
        s_part[net.block.slices["S"]] = True
        self._is_sigma = s_part.repeat(nb).to(self.device)
        static = self._shifter.draw_static((nhw, bp), gen)
        uv = ~s_part
        hw = net.hw_block
        self._gamma = static.gamma_scale[hw].reshape(-1).to(self.device, torch.float64)
        self._bias = (static.bias * uv).reshape(nhw, bp)[hw].reshape(-1).to(self.device, torch.float64)
        pos = net.block.positions() * card.waveguide.mzi_pitch
        self._xtalk = crosstalk_from_card(pos, card).to(self.device, torch.float64)  # block-local [bp, bp]
        coupler = DirectionalCoupler.from_card(card)
        m = net.block.num_mzis
        self._kappa = None
        if coupler.imbalance_std > 0 or coupler.kappa != 0.5:
            self._kappa = coupler.draw_kappas((nhw, m, 2), gen).to(self.device, torch.float64)
        self._loss_db = None
        if insertion_loss:
            self._loss_db = MZI.from_card(card).insertion_loss
        if self.ideal:
            self._kappa = self._loss_db = None

    def _realise(self, ph: Tensor, differentiable: bool) -> Tensor:
        """Target control vectors [P, N] → phases the devices produce (module docstring, 1)."""
        if self.ideal:
            return ph
        span = self._block_span
        target = ph[:, :span]
        ps = self._shifter
        quant = torch.where(self._is_sigma, ps.quantize_attenuator(target), ps.quantize(target))
        if differentiable:  # straight-through: the FO baseline sees the quantizer as identity
            quant = target + (quant - target).detach()
        if differentiable:  # FO baseline: γ(1+ε)·φ, the drive law without the V_max clamp
            heater = quant * self._gamma
        else:
            heater = ps.phase(ps.voltage(quant), self._gamma)
        p, nb = ph.shape[0], self._net.num_blocks
        blocks = heater.reshape(p, nb, -1)
        blocks = blocks + blocks @ self._xtalk.T
        out = blocks.reshape(p, span) + self._bias
        if ps.dynamic_noise_std > 0:
            out = out + ps.dynamic_noise_std * torch.randn(out.shape, generator=self._gen, dtype=out.dtype,
                                                           device=out.device)
        return torch.cat((out, ph[:, span:]), 1)

    def _encode(self, v: Tensor, differentiable: bool) -> Tensor:
        cdt = torch.complex64 if v.dtype == torch.float32 else torch.complex128
        self.ledger.dac_conversions += v.numel()
        if self.exact_readout:
            return v.to(cdt)
        # DAC quantization only: the modulator's insertion loss is a uniform attenuation paid
        # by the laser link budget (cost model), like the mesh insertion loss.
        q = self._modulator.quantize(v)
        if differentiable:
            q = v + (q - v).detach()
        return q.to(cdt)

    def _detect(self, field: Tensor, final: bool, differentiable: bool) -> Tensor:
        """O/E conversion of block outputs ``field`` [..., k] (module docstring, 4)."""
        coherent = not final or self.readout == "coherent"
        self.ledger.adc_conversions += field.numel()
        if self.exact_readout:
            return field.real if coherent else field.real.square() + field.imag.square()
        det, pch = self._detector, self.channel_power
        g, r = det.tia_gain, det.responsivity
        if coherent:
            exact = field.real
            # balanced homodyne, P± = P_ch|y ± 1|²/2 (Photodetector.homodyne_read)
            volts, clipped = det.homodyne_read(field.detach(), pch, self._gen)
            reading = volts.mul_(1.0 / (2.0 * g * r * pch))
        else:
            exact = field.real.square() + field.imag.square()  # |y|² without the complex abs' sqrt
            volts, clipped = det.read((pch * exact).detach(), self._gen)
            reading = (volts / g - det.dark_current) / (r * pch)
        self.ledger.clipped += clipped
        reading = reading.to(exact.dtype)
        if differentiable:
            reading = exact + (reading - exact).detach()
        return reading

    def _readout(self, final: bool) -> Readout:
        """``_detect``'s chain as plain numbers for the fused kernel (``cores._fused_read``):
        the same constants, in the same order, as ``Photodetector.homodyne_read`` / ``read`` /
        ``adc`` and the conversion to reading units above; exact readout: noise and ADC off."""
        coherent = not final or self.readout == "coherent"
        if self.exact_readout:
            return Readout(coherent, False, False, amp=1.0, responsivity=1.0, dark_current=0.0, shot=0.0,
                           bandwidth=0.0, floor=0.0, tia_gain=1.0, lsb=1.0, kmin=0.0, kmax=0.0, back=1.0)
        det, pch = self._detector, self.channel_power
        g, r = det.tia_gain, det.responsivity
        lsb, kmin, kmax = det.adc_grid(bipolar=coherent)
        if coherent:
            scale, floor = det.homodyne_noise(pch)
            return Readout(True, True, True, amp=2.0 * r * pch, responsivity=r, dark_current=det.dark_current,
                           shot=scale, bandwidth=det.bandwidth, floor=floor, tia_gain=g, lsb=lsb, kmin=kmin,
                           kmax=kmax, back=1.0 / (2.0 * g * r * pch), generator=self._gen)
        return Readout(False, True, True, amp=pch, responsivity=r, dark_current=det.dark_current,
                       shot=2.0 * elementary_charge, bandwidth=det.bandwidth, floor=det.thermal_variance,
                       tia_gain=g, lsb=lsb, kmin=kmin, kmax=kmax, back=r * pch, generator=self._gen)


class _Encode:
    """The chip's E/O conversion as the network sees it (``PhotonicNetwork.forward``): called
    on real vectors (torch path), or described by ``dac_levels()`` for the fused kernel, which
    reports its conversions back through ``tally`` (same ledger count as calling it).
    ``differentiable``: no description, so the straight-through torch path always runs."""

    def __init__(self, chip: Chip, differentiable: bool) -> None:
        self._chip, self._differentiable = chip, differentiable

    def __call__(self, v: Tensor) -> Tensor:
        return self._chip._encode(v, self._differentiable)

    def dac_levels(self) -> int | None:
        """``Modulator.half_levels`` of the DAC, 0 for no quantization (exact readout), None
        when only the torch path may run (differentiable)."""
        if self._differentiable:
            return None
        return 0 if self._chip.exact_readout else self._chip._modulator.half_levels

    def tally(self, conversions: int) -> None:
        self._chip.ledger.dac_conversions += int(conversions)


class _Detect:
    """The chip's O/E conversion as the network sees it (``PhotonicNetwork.forward``):
    called on block output fields (torch path), or described by ``readout(final)`` as plain
    numbers for the fused kernel, which reports its conversions and clipped samples back
    through ``tally`` (same ledger counts as calling it). ``differentiable``: no record, so
    the straight-through torch path always runs."""

    def __init__(self, chip: Chip, differentiable: bool) -> None:
        self._chip, self._differentiable = chip, differentiable

    def __call__(self, field: Tensor, final: bool) -> Tensor:
        return self._chip._detect(field, final, self._differentiable)

    def readout(self, final: bool) -> Readout | None:
        return None if self._differentiable else self._chip._readout(final)

    def tally(self, conversions: int, clipped: int) -> None:
        self._chip.ledger.adc_conversions += int(conversions)
        self._chip.ledger.clipped += int(clipped)
