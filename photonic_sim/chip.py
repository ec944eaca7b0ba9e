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
   [0, π], docs/physics.md#conventions) → drive voltage → γ(1+ε)V² with
   the static γ-error ε of that device → thermal crosstalk Δφ = K·φ from the heater phases of
   the same block (K from the card's kernel or distance model; blocks are thermally isolated
   from each other unless a ``layout`` places them on the die, then one K acts across blocks
   by distance, docs/physics.md#layout) → + the fixed manufacturing bias β ~ U(−b, b) on U/V
   phases (the Σ attenuators get none, docs/physics.md#non-idealities) → + bias drift
   (``phase_shifter.drift``) → first-order thermal settling towards the new phases
   (``thermal_time_constant``; docs/physics.md#drift-and-thermal-settling) → + dynamic noise
   N(0, σ²) per query. At a laser wavelength λ off the design wavelength λ_d every phase
   scales by λ_d/λ (docs/physics.md#wavelength). Time-multiplexed blocks that share hardware
   share its static errors.
2. **Couplers**: static κ(λ) + δκ per coupler (``coupler.kappa`` and its wavelength
   polynomial at ``laser.wavelength``, ``coupler.imbalance_std``), drawn once.
   Insertion loss (``insertion_loss=True``; docs/physics.md#insertion-loss-and-the-link-budget):
   IL_MZI = 2·IL_ps + 2·IL_coupler on the MZIs of the mesh columns that leave some modes
   untouched, so paths lose different amounts; the loss every path shares (full columns,
   modulator, screens, waveguide) is a scalar the laser pays for, the link budget setting it so
   a full-scale channel still reaches the detectors at ``P_ch`` (``accelerators.cost``).
3. **Modulators** (E/O; steps 3 and 4 are the chip's readout chain, a device-level object
   it owns: ``photonic_sim.devices.ReadoutChain``): real signed amplitudes in [−1, 1] with DAC quantization. Each
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
sequence of calls, bit-identical readings. ``state_dict`` holds all the state that is not
drawn again from the seeds (noise generator, ledger, programmed vector, block gains).

Strategies never get the chip: a task hands them ``chip.closure(loss)``, a :class:`ChipClosure`
that can only be called and counted (see its docstring for what "not reachable" covers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from photonic_sim.devices import (
    DeviceCard,
    DirectionalCoupler,
    PhaseShifter,
    ReadoutChain,
    apply_crosstalk,
    crosstalk_from_card,
)
from photonic_sim.devices.coupler import operating_wavelength
from photonic_sim.devices.phase_shifter import settle
from photonic_sim.circuits import _fused
from photonic_sim.cores import _fused_read
from photonic_sim.devices.readout import READOUTS  # noqa: F401 — chip.READOUTS, as before

Tensor = torch.Tensor


@dataclass
class Ledger:
    """Counts of everything the chip was asked to do (plain integers).

    * ``calls``: ``measure`` invocations;
    * ``queries``: (phase setting, input batch) pairs measured — one query is one
      ``measure`` of one phase setting over one input batch (docs/physics.md#zeroth-order-estimators);
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
    same chip on every device; the per-query noise generator lives on ``device``), ``layout``
    (block origins [num_blocks, 2] in m on the die, e.g. ``accelerators.layout.block_origins``:
    thermal crosstalk then acts across blocks by distance instead of within each block;
    space-multiplexed networks only; default None: thermally isolated blocks),
    ``insertion_loss`` (simulate the meshes' path-dependent per-MZI loss, module docstring 2;
    default False here, True in scenarios and ``Experiment``), ``loss_balanced`` (with
    ``insertion_loss``: a loss-balanced mesh, a dummy element matched to one MZI at every
    position a column leaves unpaired, docs/physics.md#loss-balanced-meshes: no path-dependent
    loss is simulated and the laser pays the whole critical path: only a shortfall of it, on
    the Σ column, with the readout gain undoing it (else 0 dB); ValueError without
    ``insertion_loss``).
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
        loss_balanced: bool = False,
        full_scale_amplitude: float = 1.0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        layout: Tensor | None = None,
    ) -> None:
        self.ideal = bool(ideal)
        self.exact_readout = self.ideal or bool(exact_readout)
        self.device = torch.device(device)
        # ONE per-query noise generator: dynamic phase noise here, detector noise in the readout chain
        self._gen = torch.Generator(device=self.device).manual_seed(int(seed))
        # E/O and O/E conversion (module docstring, 3-4); checks readout and full_scale_amplitude
        self._readout_chain = ReadoutChain.from_card(card, generator=self._gen, readout=readout,
                                                     exact=self.exact_readout,
                                                     full_scale_amplitude=full_scale_amplitude)
        self._net = network
        self._card = card
        self.readout = self._readout_chain.final_readout
        self.dtype = dtype
        self.ledger = Ledger()
        self._shifter = PhaseShifter.from_card(card)
        self._programmed: Tensor | None = None
        self._current: Tensor | None = None
        self._shard: tuple[int, int, dict[str, int]] | None = None  # ``shard``: rows a..b, their counts
        if loss_balanced and not insertion_loss:
            raise ValueError("loss_balanced: needs insertion_loss=True (a lossless chip has no loss to balance)")
        self.loss_balanced = bool(loss_balanced)
        self._build_static(int(seed if static_seed is None else static_seed), insertion_loss,
                           None if layout is None else torch.as_tensor(layout, dtype=torch.float64))

    # ------------------------------------------------------------------ controls
    @property
    def channel_power(self) -> float:
        """P_ch (W): the optical power of a full-scale channel (module docstring, 4)."""
        return self._readout_chain.channel_power

    @property
    def _detector(self):
        """The readout chain's photodetector (``Photodetector``: diode, TIA, ADC)."""
        return self._readout_chain.detector

    @property
    def num_phases(self) -> int:
        """Length of the control vector."""
        return self._net.num_phases

    @property
    def clock(self) -> float:
        """Chip time (s) since power-on, at the end of the last read. It runs only on a chip with
        time dependence (a card with ``phase_shifter.thermal_time_constant`` > 0 or a ``drift``;
        otherwise it stays 0): each setting read advances it by the settle wait and the query
        time, and the thermal state and the bias drift are functions of it. Saved and restored
        with ``state_dict``."""
        return self._clock

    @property
    def in_features(self) -> int:
        return self._net.in_features

    @property
    def out_features(self) -> int:
        return self._net.out_features

    def controls(self) -> dict:
        """What a controller may know about the control vector (no weights, no errors):
        ``slices`` (name → slice), ``periods`` (2π for every phase, NaN for electronic biases),
        ``is_phase``, masks ``S``, ``U``, ``V``, ``tt``, ``dense``, ``bias``, and ``lattice``
        ([N] float64, rad): the DAC code step of each control — the chip realises a target θ
        as the nearest lattice point k·step (offset 0; integer k): 2π/2^b for U/V phases,
        π/(2^b − 1) for Σ attenuator phases (2π/step is an integer for both, so the lattice is
        periodic with the phase), NaN where there is no lattice (electronic biases; every
        control of an ``ideal`` chip)."""
        net = self._net
        masks = {kind: net.mask(kind) for kind in ("U", "S", "V", "tt", "dense", "bias", "phase")}
        periods = torch.where(net.is_phase, 2.0 * math.pi, math.nan).to(torch.float64)
        levels = 2**self._shifter.bits
        lattice = torch.where(masks["S"], math.pi / (levels - 1), 2.0 * math.pi / levels).to(torch.float64)
        lattice = torch.where(net.is_phase & (not self.ideal), lattice, math.nan)
        return {"slices": net.slices(), "periods": periods, "is_phase": net.is_phase.clone(), "masks": masks,
                "lattice": lattice}

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
        already programmed vector costs no new settle). Per-setting inputs: ``inputs``
        [P, B, in_features] with ``phases`` [P, num_phases] measures setting p on its own
        inputs[p] only (P queries, P·B samples; e.g. one example per setting for
        group-relative ZO). ``differentiable=True`` is for the
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
        per_setting = x.ndim == 3 and not single and x.shape[0] == ph.shape[0]
        if not (x.ndim == 2 or per_setting) or x.shape[-1] != self.in_features:
            raise ValueError(f"inputs: need shape [B, {self.in_features}] (or [P, B, {self.in_features}] with "
                             f"phases [P, {self.num_phases}]), got {tuple(x.shape)}")
        shard = self._shard
        if shard is not None and (single or differentiable or not shard[1] <= ph.shape[0]):
            raise ValueError(f"shard: rows {shard[0]}..{shard[1]} need phases [P >= {shard[1]}, N] without autograd")
        self._account(ph.detach(), x.shape[-2])
        chain = self._readout_chain
        grad = torch.enable_grad() if differentiable else torch.no_grad()
        books = shard is None or shard[0] == 0  # whether this call's conversions are counted here
        try:
            with grad:
                realised = self._realise(ph.to(self.device, torch.float64), differentiable)
                x = x.to(self.device, self.dtype)
                kw = dict(readout=chain, differentiable=differentiable, kappa=self._kappa, loss_db=self._loss_db,
                          normalize=not self.exact_readout, final_intensity=self.readout == "intensity",
                          dtype=self.dtype)
                if shard is None:
                    out = self._net.forward(x, realised, **kw)
                elif _fused_read.usable(realised, x):  # noise streams by global setting index: rows a..b only
                    a, b, books = shard[0], shard[1], True
                    out = self._net.forward(x[a:b] if per_setting else x, realised[a:b], p0=a, **kw)
                else:  # the torch path draws its noise in sequence: measure all, keep rows a..b
                    out = self._net.forward(x, realised, **kw)[shard[0]:shard[1]]
        finally:  # the chain's E/O and O/E conversions of this call land in the ledger (a shard's: its counts)
            counts = self.ledger.__dict__ if shard is None else shard[2]
            for key, value in chain.take_counts().items():
                if books:  # torch path: the shard starting at 0 books the whole call's
                    counts[key] = counts.get(key, 0) + value
        return out[0] if single else out

    @contextmanager
    def shard(self, start: int, stop: int) -> Iterator[dict[str, int]]:
        """Measure only settings ``start .. stop`` (0 <= start <= stop) of each ``measure``
        call in this block, as one replica of a chip split over workers
        (``photonic_sim.scenarios.distributed``): a call with ``phases`` [P, N] (P >= stop)
        returns readings [stop − start, B, C] equal to rows start..stop of the full call bit
        for bit, and leaves the noise generator, ``calls``/``queries``/``phase_settings``/
        ``samples`` of the ledger and the programmed vector exactly as the full call would
        (the phase noise of all P settings and every matrix's readout key are drawn; the
        kernel numbers noise streams by global setting index). The shard's E/O, O/E and
        clipping counts (``dac_conversions``, ``adc_conversions``, ``clipped``) go to the
        yielded dict instead of the ledger: the caller adds the sum over shards that cover
        0..P to ``ledger``. On the torch path (GPU, no C kernel) every shard measures the
        whole call and keeps its rows (same bits, no saving) and the shard starting at 0
        books the call's counts. An empty shard (start == stop) only advances the state. Not with
        ``differentiable`` or a single setting (ValueError)."""
        if isinstance(start, bool) or isinstance(stop, bool) or not 0 <= int(start) <= int(stop):
            raise ValueError(f"shard: need 0 <= start <= stop, got {start!r}, {stop!r}")
        if self._shard is not None:
            raise ValueError("shard: already measuring a shard (no nesting)")
        counts: dict[str, int] = {}
        self._shard = (int(start), int(stop), counts)
        try:
            yield counts
        finally:
            self._shard = None

    def closure(self, loss: Callable[[Tensor], Tensor]) -> ChipClosure:
        """``loss`` (phases [P, N] → losses [P], measured on this chip) as the black box a
        strategy receives (:class:`ChipClosure`): calling it and its query counters only."""
        return ChipClosure(loss, self.ledger)

    def state_dict(self) -> dict:
        """Everything a chip built with the same arguments needs to continue bit for bit
        (checkpoints): ``generator`` (the per-query noise generator: dynamic phase noise and
        the readout chain's detector noise), ``ledger`` (totals), ``current`` / ``programmed``
        (the vector ``set_phases`` gave / the last one programmed, or None), ``block_scales``
        (the network's electronic block gains s_b, set when weights are mapped),
        ``num_phases`` (checked on load) and ``device`` (the kind of device the chip ran on,
        "cpu" or "cuda": its noise generator's state fits only that kind). Static device
        errors are not stored: they are drawn again from ``static_seed``. With a thermal time
        constant or drift on the card, ``dynamics`` holds the clock, the last target and read
        phases, the random walk and the drift generator (``_dynamics``); None otherwise.
        Tensors, ints, strings and None only, so ``torch.load(..., weights_only=True)`` reads a
        saved one."""
        dynamics = None
        if self._dyn_on:
            thermal = self._thermal or (None, None)
            dynamics = {"clock": torch.tensor(self._clock, dtype=torch.float64),
                        "target": None if thermal[0] is None else thermal[0].cpu().clone(),
                        "phase": None if thermal[1] is None else thermal[1].cpu().clone(),
                        "walk": self._walk.clone(), "generator": self._drift_gen.get_state()}
        return {"generator": self._gen.get_state(), "ledger": self.ledger.totals(),
                "current": None if self._current is None else self._current.clone(),
                "programmed": None if self._programmed is None else self._programmed.clone(),
                "block_scales": self._net.block_scales.clone(), "num_phases": self.num_phases,
                "dynamics": dynamics, "device": self.device.type}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` (``block_scales`` / ``num_phases`` optional, for
        checkpoints written before they were saved)."""
        n = state.get("num_phases", self.num_phases)
        scales = state.get("block_scales")
        if n != self.num_phases or (scales is not None and tuple(scales.shape) != (self._net.num_blocks,)):
            raise ValueError(f"state: saved for another network (num_phases {n}, this chip has {self.num_phases})")
        self._gen.set_state(state["generator"])
        self.ledger.load(state["ledger"])
        self._current = state["current"]
        self._programmed = state["programmed"]
        if scales is not None:
            self._net.block_scales = scales.to(torch.float64).clone()
        dyn = state.get("dynamics")
        if dyn is not None and self._dyn_on:
            self._clock = float(dyn["clock"])
            self._thermal = None if dyn["target"] is None else (dyn["target"].to(self.device),
                                                                dyn["phase"].to(self.device))
            self._walk = dyn["walk"].clone()
            self._drift_gen.set_state(dyn["generator"])

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

    def _build_static(self, seed: int, insertion_loss: bool, origins: Tensor | None = None) -> None:
        """Static device errors and constants. ``origins`` [num_blocks, 2] (m): block positions on
        the die (``accelerators.layout.block_origins``); then crosstalk acts across blocks by
        distance (``layout_crosstalk``, one K over all heaters) instead of within each block.
        Only for space-multiplexed networks (every block its own hardware)."""
        net, card = self._net, self._card
        gen = torch.Generator().manual_seed(seed + 0x5EED)
        nb, nhw, bp = net.num_blocks, net.num_hw_blocks, net.block.num_phases
        self._block_span = nb * bp  # phases of blocks come first in the control vector
        s_part = torch.zeros(bp, dtype=torch.bool)
        s_part[net.block.slices["S"]] = True
        self._is_sigma = s_part.repeat(nb).to(self.device)
        self._sigma_block = s_part
        ps, levels = self._shifter, 2**self._shifter.bits
        self._realise_consts = (2 * math.pi, math.pi, float(levels), 2 * math.pi / levels, math.pi / (levels - 1),
                                ps.gamma, ps.v_max)
        static = self._shifter.draw_static((nhw, bp), gen)
        uv = ~s_part
        hw = net.hw_block
        self._gamma = static.gamma_scale[hw].reshape(-1).to(self.device, torch.float64)
        self._bias = (static.bias * uv).reshape(nhw, bp)[hw].reshape(-1).to(self.device, torch.float64)
        # wavelength (docs/physics.md#wavelength): phases ∝ λ_d/λ at the laser's λ (heaters, crosstalk, bias)
        lam = operating_wavelength(card)
        if lam != card.wavelength:
            self._gamma = self._gamma * (card.wavelength / lam)
            self._bias = self._bias * (card.wavelength / lam)
        pos = net.block.positions() * card.waveguide.mzi_pitch
        self._xtalk = crosstalk_from_card(pos, card).to(self.device, torch.float64)  # block-local [bp, bp]
        if int((self._xtalk != 0).sum()) * 8 < self._xtalk.numel():  # kernel model: ~1 % nonzero, sparse pays
            self._xtalk = self._xtalk.to_sparse_coo().coalesce()
        self._xtalk_groups = nb  # K acts on each block's phases (block-local)
        if origins is not None:  # a floorplan: one sparse K over every heater of every block
            from photonic_sim.accelerators.layout import layout_crosstalk
            if nhw != nb or tuple(origins.shape) != (nb, 2):
                raise ValueError(f"origins: need [{nb}, 2] block positions of a space-multiplexed network")
            self._xtalk = layout_crosstalk(pos, origins.to(torch.float64), card).to(self.device)
            self._xtalk_groups = 1
        coupler = DirectionalCoupler.from_card(card, None if lam == card.wavelength else lam)
        m = net.block.num_mzis
        self._kappa = None
        if coupler.imbalance_std > 0 or coupler.kappa != 0.5:
            self._kappa = coupler.draw_kappas((nhw, m, 2), gen).to(self.device, torch.float64)
        # insertion loss (docs/physics.md#insertion-loss-and-the-link-budget): the per-MZI loss of the
        # path-dependent mesh columns; the loss every path pays is the laser's (link budget); the
        # controller's digital readout gain restores the mean path's scale (``mean_loss_db``).
        # A loss-balanced mesh has no path-dependent column: nothing simulated but a laser
        # shortfall (a scalar on the Σ column, the gain undoing it), else readout gain 0 dB
        self._loss_db = None
        balanced = self.loss_balanced
        if insertion_loss and not self.ideal:
            from photonic_sim.accelerators.cost import mean_loss_db, simulated_loss_db
            from photonic_sim.devices.readout import full_scale_power

            fsa = full_scale_power(self._detector) / self.channel_power  # the chain's full_scale_amplitude
            loss = simulated_loss_db(card, net.block_size, fsa, loss_balanced=balanced)
            if not balanced or any(bool(v.any()) for v in loss.values()):  # balanced: a shortfall only
                self._readout_chain.gain = 10.0 ** (mean_loss_db(net.block, loss) / 20.0)
                self._loss_db = {part: value.to(self.device) for part, value in loss.items()}
        if self.ideal:
            self._kappa = self._loss_db = None
        # time dependence (``_dynamics``): off unless the card gives τ or a drift
        self._dyn_on = (ps.thermal_time_constant > 0 or ps.drift is not None) and not self.ideal
        self._clock = 0.0  # s: the time of the last read since power-on
        self._thermal: tuple[Tensor, Tensor] | None = None  # (target, phase read) of the last query
        self._walk = torch.zeros(nhw * bp, dtype=torch.float64)  # random-walk drift per hardware shifter
        self._drift_gen = torch.Generator().manual_seed(seed + 0xD21F7)

    def _realise(self, ph: Tensor, differentiable: bool) -> Tensor:
        """Target control vectors [P, N] → phases the devices produce (module docstring, 1).
        Quantization by ``PhaseShifter.quantize_mixed`` (U/V and Σ rules in one pass), crosstalk
        by ``apply_crosstalk`` (a sparse K when under 1/8 of it is nonzero), dynamic noise drawn
        as float32 normals from the chip's generator and cast to float64 (``_with_noise``). With
        a sparse K, on the CPU and without autograd, the steps before the noise run as one C
        pass (``circuits._fused.realise``: the same operations, the same bits)."""
        if self.ideal:
            return ph
        span = self._block_span
        target = ph[:, :span]
        ps = self._shifter
        p, nb = ph.shape[0], self._net.num_blocks
        if (not differentiable and self._xtalk.layout == torch.sparse_coo and ph.device.type == "cpu"
                and self._xtalk_groups == nb
                and _fused.realise_kernel() is not None):  # the ops below in one C pass, same bits
            whole = not self._dyn_on  # no dynamics between: the noise and _with_noise's cat in the same pass
            std = self._shifter.dynamic_noise_std
            noise = self._noise_draws((p, span)) if whole and std > 0 else None
            out = _fused.realise(target, self._sigma_block, self._gamma, self._bias, self._xtalk,
                                 self._realise_consts, noise, std, ph[:, span:] if whole else None)
            return out if whole else self._with_noise(self._dynamics(out), ph)
        quant = ps.quantize_mixed(target, self._is_sigma)
        if differentiable:  # straight-through: the FO baseline sees the quantizer as identity
            quant = target + (quant - target).detach()
        if differentiable:  # FO baseline: γ(1+ε)·φ, the drive law without the V_max clamp
            heater = quant * self._gamma
        else:
            heater = ps.phase(ps.voltage(quant), self._gamma)
        blocks = apply_crosstalk(heater.reshape(p, self._xtalk_groups, -1), self._xtalk)  # K of _build_static
        out = blocks.reshape(p, self._block_span) + self._bias
        return self._with_noise(self._dynamics(out) if self._dyn_on else out, ph)

    def _dynamics(self, out: Tensor) -> Tensor:
        """Thermal settling and bias drift (docs/physics.md#drift-and-thermal-settling) on the
        settled phases ``out`` [P, span] of P queries issued one after the other.

        Clock: query i is read ``settle_time`` after its programming (the controller's wait;
        none when it repeats the setting measured last) and then takes ``phase_shifter.query_time``.
        Settling (τ > 0): before query i's read the heaters relax for the rest of the previous
        query towards the previous target, then for the settle wait towards the new one
        (``devices.phase_shifter.settle``); K and the bias are linear and time-invariant, so
        relaxing the realised phases is relaxing the heaters. At power-on the heaters are off
        (phases = the static bias). Drift: + rate·t on every U/V phase (ramp) or each hardware
        shifter's random walk, increments N(0, diffusion·Δt) from the chip's drift generator
        (seeded from the static seed)."""
        ps = self._shifter
        tau, drift, q = ps.thermal_time_constant, ps.drift, ps.query_time
        p = out.shape[0]
        started = self._thermal is not None
        prev_target, h = self._thermal if started else (self._bias, self._bias)
        repeat = p == 1 and started and torch.equal(out[0].detach(), prev_target)
        wait = 0.0 if repeat else ps.settle_time
        tails = [q if i or started else 0.0 for i in range(p)]  # the previous query's rest
        if tau > 0:
            rows = []
            for i in range(p):
                target = out[i]
                if repeat:  # the same setting: relaxes on for one query time
                    h = settle(h, target, q, tau)
                else:  # the rest of the previous query, then the settle wait
                    h = settle(settle(h, prev_target, tails[i], tau), target, wait, tau)
                rows.append(h)
                prev_target, h = target.detach(), h.detach()
            out = torch.stack(rows)
        else:
            prev_target = out[-1].detach()
        self._thermal = (prev_target.clone(), h.detach().clone())
        gaps = torch.tensor([t + wait for t in tails], dtype=torch.float64)
        times = self._clock + gaps.cumsum(0)
        self._clock = float(times[-1])
        if drift is None:
            return out
        uv = ~self._is_sigma
        if drift.kind == "ramp":
            return out + (drift.rate * times.to(out.device))[:, None] * uv
        steps = torch.randn((p, self._walk.numel()), generator=self._drift_gen, dtype=torch.float64)
        walk = self._walk + (steps * (drift.diffusion * gaps).sqrt()[:, None]).cumsum(0)
        self._walk = walk[-1].clone()
        net = self._net
        per_block = walk.reshape(p, net.num_hw_blocks, -1)[:, net.hw_block].reshape(p, -1)
        return out + per_block.to(out.device) * uv

    def _with_noise(self, out: Tensor, ph: Tensor) -> Tensor:
        """Realised block phases ``out`` [P, span] + the dynamic noise, then the controls past the
        blocks (biases) of ``ph``. The noise: float32 normals from the chip's generator (torch
        draws them ~8× faster than float64), cast to float64."""
        std = self._shifter.dynamic_noise_std
        if std > 0:
            out = out + std * self._noise_draws(out.shape).to(out.dtype)
        return torch.cat((out, ph[:, self._block_span:]), 1)

    def _noise_draws(self, shape: tuple[int, ...]) -> Tensor:
        """Standard normals of the dynamic phase noise (float32, from the chip's generator)."""
        return torch.randn(shape, generator=self._gen, dtype=torch.float32, device=self.device)


    # ------------------------------------------------------------------ in-situ taps
    # Appended for the adjoint, node-perturbation and forward-forward strategies (extra optical
    # hardware: monitor taps, I/Q injection and readout; see ``adjoint_gradient``).
    def _tap_read(self, intensity: Tensor, power: Tensor) -> Tensor:
        """Monitor-tap photodiodes: intensities [..., R] → readings with the card's detector
        noise and unipolar ADC. The tap gain is set from the pass's input power ``power``
        [..., 1] (an upper bound of every tap: the circuit is passive), so a full tap reads
        |y|² = 1 in the chain's normalized units. One ADC conversion per tap reading."""
        chain = self._readout_chain
        chain.tally(adc=intensity.numel())
        if self.exact_readout:
            return intensity
        det, pch = self._detector, chain.channel_power
        scale = power.clamp_min(torch.finfo(power.dtype).tiny)
        volts, clipped = det.read((pch * intensity / scale).detach(), self._gen)
        chain.tally(clipped=clipped)
        return ((volts / det.tia_gain - det.dark_current) / (det.responsivity * pch)).to(intensity.dtype) * scale

    def _tapped(self, inputs: Tensor, phases: Tensor, passes: int) -> tuple[Tensor, Tensor]:
        """Checked (inputs [B, in] float64, realised phases [1, N]); books one query of the
        batch plus ``passes`` - 1 extra optical passes of it at the same phase setting."""
        ph = torch.as_tensor(phases, dtype=torch.float64)
        ph = ph[None] if ph.ndim == 1 else ph
        if ph.ndim != 2 or ph.shape[-1] != self.num_phases:
            raise ValueError(f"phases: need shape [P, {self.num_phases}] or [{self.num_phases}], got {tuple(ph.shape)}")
        x = torch.as_tensor(inputs)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"inputs: need shape [B, {self.in_features}], got {tuple(x.shape)}")
        self._account(ph.detach(), x.shape[0])
        self.ledger.queries += (passes - 1) * ph.shape[0]
        self.ledger.samples += (passes - 1) * ph.shape[0] * x.shape[0]
        return x.to(self.device, torch.float64), self._realise(ph.to(self.device), False)

    def _collect_counts(self) -> None:
        for key, value in self._readout_chain.take_counts().items():
            setattr(self.ledger, key, getattr(self.ledger, key) + value)

    def measure_layers(self, inputs: Tensor, phases: Tensor) -> list[Tensor]:
        """Readings of EVERY layer's output (after its bias and activation; the last one is
        what ``measure`` returns) for ``inputs[B, in_features]`` and ``phases`` [P, N] →
        [P, B, out_l] per layer (float64). Costs what ``measure`` costs: the intermediate
        node values are detected anyway (between optical passes the state is electronic);
        this only hands them out, as a forward-forward controller needs."""
        try:
            with torch.no_grad():
                x, realised = self._tapped(inputs, phases, 1)
                net = self._net
                run = net.chip_pass(realised, readout=self._readout_chain, kappa=self._kappa, loss_db=self._loss_db,
                                    normalize=not self.exact_readout,
                                    final_intensity=self.readout == "intensity", dtype=torch.float64)
                nodes, _ = net.run_layers(x.expand(realised.shape[0], *x.shape), realised, run)
                return [net.activate(li, z) for li, z in enumerate(nodes)]
        finally:
            self._collect_counts()

    def adjoint_gradient(self, inputs: Tensor, phases: Tensor, example_loss: Callable[[Tensor], Tensor], *,
                         node_q: int = 0, node_mu: float = 0.1,
                         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(loss, dL/dθ [N]) of the batch ``inputs[B, in]`` at ``phases`` [N] measured with the
        in-situ adjoint (Hughes et al. 2018; ``photonic_sim.circuits.adjoint``). L = mean over
        the batch of ``example_loss(readings [..., B, C]) -> [..., B]`` (the controller's
        digital loss; differentiable torch).

        ``node_q`` = 0: in-situ backpropagation. The forward pass lights the taps; the
        controller computes dL/d(readings) digitally and back-propagates it through every
        electronic step (activation derivative at the measured node values, biases, gains,
        TT reshapes); each optical pass's error goes back through the optics by the adjoint
        and interference passes (``PhotonicNetwork.adjoint_pass``). The phase gradient is
        dL/d(realised phase) — the controller applies it to its targets (quantization,
        γ-error and crosstalk of the drive law are not in it). Bias entries get the exact
        digital dL/d(bias).

        ``node_q`` > 0: node perturbation. The forward is run with layer-local graphs; for
        every hidden layer the controller adds ±``node_mu``·u (u ~ N(0, I) per example,
        ``node_q`` pairs, drawn from ``generator``) to the detected node values and runs the
        downstream layers on the chip; (ℓ(z + μu) − ℓ(z − μu))/(2μ)·u averaged over the pairs
        estimates each example's dℓ/dz. The output layer's error is digital (the loss is a
        function of its readings). Each layer's phases then get the layer-local adjoint of
        that error — no backward path through other layers or activations is needed.

        Ledger: one query and one phase setting for the forward; +2 queries (adjoint and
        interference passes of the batch, samples +2B) for the backward; +2·node_q queries
        (samples +2·node_q·B) per hidden layer for node perturbation. Tap readings, I/Q
        reads and I/Q injections are counted as ADC / DAC conversions.
        """
        net = self._net
        try:
            layers = len(net.spec.layers)
            passes = 3 + (2 * node_q * (layers - 1) if node_q else 0)
            with torch.no_grad():
                x, realised = self._tapped(inputs, phases, passes)
            final_intensity = self.readout == "intensity"
            leaf, run = net.adjoint_pass(realised[0], readout=self._readout_chain, tap=self._tap_read,
                                         kappa=self._kappa, loss_db=self._loss_db, normalize=not self.exact_readout,
                                         final_intensity=final_intensity)
            with torch.enable_grad():
                nodes, out = net.run_layers(x, leaf, run, local=node_q > 0)
                losses = example_loss(out)
                loss = losses.mean()
                if not node_q:
                    loss.backward()
                    return loss.detach(), leaf.grad.detach()
                if generator is None:
                    raise ValueError("generator: node perturbation needs a torch.Generator")
                grads = list(torch.autograd.grad(loss, [nodes[-1]], retain_graph=True))
            b = x.shape[0]
            with torch.no_grad():
                chip_run = net.chip_pass(realised, readout=self._readout_chain, kappa=self._kappa,
                                         loss_db=self._loss_db, normalize=not self.exact_readout,
                                         final_intensity=final_intensity, dtype=torch.float64)
                est = []
                for li, z in enumerate(nodes[:-1]):
                    u = torch.randn((node_q, *z.shape), generator=generator, dtype=torch.float64).to(self.device)
                    given = torch.cat((z.detach() + node_mu * u, z.detach() - node_mu * u))
                    _, out_pm = net.run_layers(None, realised, chip_run, start=li, given=given)
                    lp, lm = example_loss(out_pm).reshape(2, node_q, b).unbind(0)
                    est.append((((lp - lm) / (2.0 * node_mu))[..., None] * u).mean(0) / b)
            torch.autograd.backward(nodes[:-1] + nodes[-1:], est + grads)
            return loss.detach(), leaf.grad.detach()
        finally:
            self._collect_counts()

    def adjoint_closure(self, inputs: Tensor, example_loss: Callable[[Tensor], Tensor]) -> AdjointClosure:
        """The black box of the in-situ adjoint for one batch (:class:`AdjointClosure`):
        ``closure(phases [N], node_q=0, node_mu=0.1, generator=None) -> (loss, grad [N])``,
        i.e. :meth:`adjoint_gradient` on ``inputs`` with ``example_loss``."""
        return AdjointClosure(lambda phases, **kw: self.adjoint_gradient(inputs, phases, example_loss, **kw),
                              self.ledger)

    # ------------------------------------------------------------------ calibration access
    # Appended for photonic_sim.calibration: one block driven and read on its own.
    def measure_block(self, block: int, inputs: Tensor, phases: Tensor) -> Tensor:
        """I/Q readings of ONE block's output detectors: block ``block`` (control-vector order;
        its hardware block is the one calibrated) programmed with ``phases`` [P, bp] (the
        block's own U, Σ, V targets, rad; ``bp`` = phases per block), its input modulators
        driven with ``inputs`` [B, k] (real amplitudes in [−1, 1], k = block size) → complex
        readings [P, B, k] (float64 parts): Re from the balanced homodyne pair, Im from a
        second homodyne read against the reference shifted by π/2, each with the card's
        detector noise and ADC, in the units of ``measure`` (a full-scale field reads 1).

        Assumption (calibration hardware): every block's input modulators and output
        detectors can be reached on their own (the per-block detectors exist, since block
        outputs are read one by one) and the reference phase can be stepped by π/2, as for
        the adjoint's I/Q reads. Blocks are thermally isolated, so the other blocks' phases
        do not matter. The readings include everything ``measure`` has up to detection:
        quantization, γ error, crosstalk, bias, dynamic noise, couplers, loss, DAC.

        Ledger: one call; P queries, P phase settings (each programs the block: a settle),
        P·B samples, P·B·k DAC and 2·P·B·k ADC conversions (I and Q). The next ``measure``
        counts a settle of its own (the block's shifters were reprogrammed)."""
        net = self._net
        nb, bp, k = net.num_blocks, net.block.num_phases, net.block_size
        if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < nb:
            raise ValueError(f"block: need an integer in [0, {nb}), got {block!r}")
        ph = torch.as_tensor(phases, dtype=torch.float64)
        ph = ph[None] if ph.ndim == 1 else ph
        if ph.ndim != 2 or ph.shape[-1] != bp:
            raise ValueError(f"phases: need shape [P, {bp}] (one block's phases), got {tuple(ph.shape)}")
        x = torch.as_tensor(inputs, dtype=torch.float64)
        if x.ndim != 2 or x.shape[-1] != k or not bool((x.abs() <= 1.0).all()):
            raise ValueError(f"inputs: need shape [B, {k}] with values in [-1, 1], got {tuple(x.shape)}")
        p, chain = ph.shape[0], self._readout_chain
        led = self.ledger
        led.calls += 1
        led.queries += p
        led.phase_settings += p
        led.samples += p * x.shape[0]
        self._programmed = None
        full = torch.zeros(p, self.num_phases, dtype=torch.float64)
        full[:, block * bp:(block + 1) * bp] = ph
        try:
            with torch.no_grad():
                realised = self._realise(full.to(self.device), False)[:, block * bp:(block + 1) * bp]
                hw = int(net.hw_block[block])
                kappa = None if self._kappa is None else self._kappa[hw]
                mat = net.block.matrix(realised, kappa=kappa, loss_db=self._loss_db, dtype=torch.complex128)
                field = chain.encode(x.to(self.device)).to(torch.complex128)  # [B, k]
                chain.tally(dac=(p - 1) * x.numel())  # the inputs are driven again for every setting
                y = field @ mat.transpose(-1, -2)  # [P, B, k]
                re = chain.detect(y, False).to(torch.float64)
                im = chain.detect(-1j * y, False).to(torch.float64)
                return torch.complex(re, im).cpu()
        finally:
            self._collect_counts()

# ---------------------------------------------------------------------- the black box
class _ClosureState:
    """What a :class:`ChipClosure` does and has counted (held only in ``_CLOSURES``)."""

    __slots__ = ("loss", "ledger", "calls", "queries", "phase_settings")

    def __init__(self, loss: Callable[[Tensor], Tensor], ledger: Ledger) -> None:
        self.loss, self.ledger = loss, ledger
        self.calls = self.queries = self.phase_settings = 0


# id(closure) → its state; an entry lives exactly as long as its closure (``ChipClosure.__del__``).
_CLOSURES: dict[int, _ClosureState] = {}


def _counted_call(closure, phases: Tensor, **options):
    """Call a black box's loss (``_CLOSURES[id(closure)]``) and count what it spent on the
    chip's ledger into the closure's own counters (also when the call raises)."""
    state = _CLOSURES[id(closure)]
    ledger = state.ledger
    queries, settings = ledger.queries, ledger.phase_settings
    try:
        return state.loss(phases, **options)
    finally:
        state.calls += 1
        state.queries += ledger.queries - queries
        state.phase_settings += ledger.phase_settings - settings


class ChipClosure:
    """The loss closure a strategy receives: ``losses = f(phases[P, N])``, and its counters.

    Calling it is the only thing it does: one call measures all P settings on the chip (the
    task's loss of one batch) and returns losses [P] (float64; with the autograd graph when
    the task built it ``differentiable`` for the first-order baseline). Read-only counters of
    the queries spent through THIS closure: ``calls``, ``queries`` (settings measured, the
    chip ledger's count) and ``phase_settings`` (phase vectors programmed).

    The chip is not reachable from it by ordinary access: the instance has no attributes
    (``__slots__ = ()``: no ``__dict__``, no weak references), its class's methods have no
    closure cells, defaults or bound objects that lead to the chip, and it refuses to be
    pickled or copied. Its loss function and the chip's ledger live in a module-private
    table keyed by the instance's id, dropped with the instance. What this does NOT cover —
    Python has no private memory, and these routes reach anything in the process, not just
    this closure's chip: the ``gc`` module, frames (``sys._getframe``, a traceback's
    ``tb_frame.f_locals`` after an exception raised inside a call), module namespaces
    (``__globals__``, ``sys.modules``, ``inspect.getclosurevars(...).globals``: what any code
    can ``import``) and ``ctypes``. tests/test_blackbox.py walks the ordinary routes.
    """

    __slots__ = ()

    def __new__(cls, loss: Callable[[Tensor], Tensor], ledger: Ledger) -> ChipClosure:
        if not callable(loss):
            raise TypeError(f"loss: need a callable phases [P, N] -> losses [P], got {type(loss).__name__}")
        self = super().__new__(cls)
        _CLOSURES[id(self)] = _ClosureState(loss, ledger)
        return self

    def __del__(self) -> None:
        try:
            _CLOSURES.pop(id(self), None)
        except (NameError, TypeError, AttributeError):  # interpreter shutdown: the table is gone
            pass

    def __call__(self, phases: Tensor) -> Tensor:
        return _counted_call(self, phases)

    @property
    def calls(self) -> int:
        """Times this closure was called."""
        return _CLOSURES[id(self)].calls

    @property
    def queries(self) -> int:
        """Queries (phase setting × input batch) measured through this closure."""
        return _CLOSURES[id(self)].queries

    @property
    def phase_settings(self) -> int:
        """Phase vectors programmed through this closure (each costs a settle)."""
        return _CLOSURES[id(self)].phase_settings

    def __repr__(self) -> str:
        return f"<ChipClosure: {self.calls} calls, {self.queries} queries, {self.phase_settings} phase settings>"

    def __reduce_ex__(self, protocol=None):
        raise TypeError("ChipClosure: a chip closure cannot be pickled or copied (it is the chip's black box)")

    __reduce__ = __reduce_ex__

    def __init_subclass__(cls, **kwargs):
        raise TypeError("ChipClosure: cannot be subclassed")


class AdjointClosure:
    """The black box of the in-situ adjoint and node-perturbation strategies: ``loss, grad =
    f(phases [N], node_q=0, node_mu=0.1, generator=None)`` (``Chip.adjoint_gradient``: the
    batch's loss and dL/dθ measured with the adjoint taps) and the read-only counters
    ``calls``, ``queries``, ``phase_settings`` of :class:`ChipClosure`.

    Same protections as :class:`ChipClosure` (its docstring says what they cover): no
    instance attributes, state in the module-private table keyed by id, no pickling, copying
    or subclassing.
    """

    __slots__ = ()
    __del__ = ChipClosure.__del__
    calls, queries, phase_settings = ChipClosure.calls, ChipClosure.queries, ChipClosure.phase_settings

    def __new__(cls, loss: Callable[..., tuple[Tensor, Tensor]], ledger: Ledger) -> AdjointClosure:
        if not callable(loss):
            raise TypeError(f"loss: need a callable phases [N] -> (loss, grad), got {type(loss).__name__}")
        self = super().__new__(cls)
        _CLOSURES[id(self)] = _ClosureState(loss, ledger)
        return self

    def __call__(self, phases: Tensor, **options) -> tuple[Tensor, Tensor]:
        return _counted_call(self, phases, **options)

    def __repr__(self) -> str:
        return f"<AdjointClosure: {self.calls} calls, {self.queries} queries, {self.phase_settings} phase settings>"

    def __reduce_ex__(self, protocol=None):
        raise TypeError("AdjointClosure: a chip closure cannot be pickled or copied (it is the chip's black box)")

    __reduce__ = __reduce_ex__

    def __init_subclass__(cls, **kwargs):
        raise TypeError("AdjointClosure: cannot be subclassed")
