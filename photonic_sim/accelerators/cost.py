"""Cost model: device counts, area, energy and latency of a network on an accelerator.

``estimate(architecture, model, devices)`` returns a :class:`CostReport` for one inference
(one input vector through the whole network, batch of 1); ``training_cost(..., ledger)``
prices a whole training run from the chip's query ledger. Counts and the schedule come from
:mod:`photonic_sim.accelerators.mapping`; the device figures from the device card (SI).

Symbols (k block size, H physical blocks, stages s with ``passes`` n_s, ``blocks`` b_s,
``rows`` R_s, ``col_blocks`` c_s):

* symbol rate f = min(clock, dac.sample_rate, adc.sample_rate) (converters cannot run faster
  than rated; the report shows f);
* symbol periods per inference T and programs per inference G from ``mapping.schedule``;
  optical (streaming) time per inference t_opt = T / f.

Link budget (docs/physics.md#insertion-loss-and-the-link-budget, :func:`link_budget`). One
optical pass crosses one k×k block U·Σ·V† (two Clements meshes and the Σ column); every MZI
(mesh MZI or Σ attenuator) costs IL_MZI = 2·IL_ps + 2·IL_coupler on either arm. A column that
pairs every mode (in a k-mode Clements mesh with k even: k/2 of the k columns; the Σ column of
a square block) multiplies the block by one scalar; the other columns leave the edge modes
untouched, so paths cross different numbers of MZIs (``block_loss``: u columns common to every
path, c MZIs on the critical path; k = 8: u = 9, c = 17). The chip simulates the per-MZI loss
of the path-dependent columns (and its controller's digital readout gain undoes their mean,
``mean_loss_db``); the part every path pays is paid by the laser:

    IL_uniform = IL_mod + 2·IL_ps (output screens) + (2k+1)·mzi_pitch·waveguide_loss + u·IL_MZI
    IL_critical = IL_uniform + (c − u)·IL_MZI                                          [dB]
    P_fs = FS / (2·G·R)  (the readout chain's full-scale channel power, ``full_scale_power``)
    P_channel[dBm] = min(P_fs + IL_uniform, laser.max_power)   (one channel, one laser at most)
    detector: P_fs − shortfall at full scale, P_det = that − (c − u)·IL_MZI on the critical path
              (must be >= photodetector.sensitivity; checked when a scenario loads)
    fan-out F = H·k (one optical channel per block input; ×2 for coherent: a local-oscillator
                 channel per output)
    P_laser[dBm] = P_channel + 10·log10(F);   P_opt = 1 mW · 10^(P_laser/10)
    P_laser,el = P_opt / wall_plug_efficiency;  lasers = max(1, ⌈P_opt / max_power⌉)

Loss-balanced mesh (``loss_balanced=True``; docs/physics.md#loss-balanced-meshes): every
position where a mesh column leaves a mode unpaired gets a dummy element matched to one MZI's
insertion loss (``dummy_elements``: Σ over the columns of both meshes of n − 2·(MZIs in the
column); k = 3: 6, k = 4: 8, k = 8: 16 per block; the Σ column of a square block pairs every
mode with its spare port and needs none). Every column then attenuates all modes alike, every
path crosses c elements, the block is a scalar times a unitary: u = c, no path-dependent loss
(the chip simulates none, its readout gain is 0 dB) and the laser pays the whole critical
path, IL_uniform + (c − u_unbalanced)·IL_MZI more than the unbalanced mesh's. Assumed dummy:
a dummy MZI (two couplers and two phase-shifter sections whose heaters are never driven, the
unused port terminated), so its loss matches IL_MZI by construction; it is passive (no static
power, no DAC) and its footprint is one MZI's, 2·(phase_shifter.area + coupler.area), counted
as ``dummy_elements`` in the counts and the area (with a ``layout`` floorplan none is added:
the dummies fill the empty edge slots of the Clements columns, inside each block's footprint).

Powers and energies per inference:

* phase shifters (static, held during the whole latency): N_ps · P_π · φ̄/π · t, with φ̄ the
  mean of the programmed phases wrapped to [0, 2π) (the heater power law P = P_π·φ/π of
  ``PhaseShifter.power``): the ``phases`` given, else those of the model's photonic layers
  (``photonic_phases``), else π (an untrained / random chip, or plain nn.Linear layers);
* laser and TIAs are on while light streams: P_laser,el · t_opt and N_tia · P_tia · t_opt
  (idle stages are not power gated: conservative);
* DAC, ADC: event driven; energy per conversion E = FOM_W · 2^bits when the card gives
  ``fom`` (Walden figure of merit, J per conversion step: 8 → 6 bits divides E by 4), else
  power / sample_rate of the card's part; conversions per inference = Σ_s n_s · b_s · k each
  (every block input / output channel, padding included);
* modulators: energy_per_symbol · Σ_s n_s · b_s · k;
* digital ops: energy_per_op · [Σ_s n_s · R_s · (c_s − 1) partial-sum adds
  + Σ_layers out_features · (bias + activation)];
* SRAM: sram_energy_per_byte · bytes, ⌈adc.bits/8⌉ bytes per value; ``tonn_time`` writes
  every stage's outputs (n_s·R_s values) and reads its inputs (n_s·C_s) since the next stage
  runs in a later program; ``tonn_space`` only the intermediates between the cores of a TT
  layer (reshape / permute between cores); ``dense_onn`` streams layer to layer (none).

Latency of Q queries, S settings, N samples (one inference: Q = 1, S = 0, N = 1):

    settles = S                if G = 0 (every block has its own hardware; phases stay)
            = Q · G            for time multiplexing (programming only stores the phases;
                               each query loads the G programs in turn)
    latency = settles · settle_time + N · t_opt + Q · control_overhead
    energy  = N_ps·P_π·φ̄/π · latency + N · (laser + TIA + DAC + ADC + modulator + digital + SRAM)

In-situ gradient hardware (strategies with ``needs_hardware``: the in-situ adjoint, node
perturbation; docs/in-situ-gradients.md#what-it-costs). Every pass of an input vector through a
k×k block lights 2k² + 2k monitor taps, one ADC conversion each, and the adjoint and
interference passes inject and read I/Q fields at the block's ports; the chip books all of
them in its ledger (``adc_conversions`` / ``dac_conversions``). ``training_cost(...,
in_situ_hardware=True)`` prices the conversions beyond the schedule's per-sample ones at the
ADC / DAC energy per conversion (no latency: every tap and port has its own converter, which
converts during the pass already charged); ``estimate(..., in_situ_hardware=True)`` adds the
taps (photodiode, TIA, ADC each) and an I/Q transceiver per block port (``in_situ_counts``) to
the counts and the area.

Area: Σ count · footprint per device type (phase shifters, couplers, modulators, detectors,
TIAs, ADCs, DACs, lasers), each × area_overhead; m² inside, mm² in ``to_dict``. A converter
with ``fom`` has the footprint area · 2^(bits − area_bits) · sample_rate / area_rate (its
card's part measured at area_bits, area_rate; assumed first-order scaling: the SAR capacitor
array or DAC current-cell array ∝ 2^bits, interleaved channels ∝ sample rate). With a
``layout`` on the accelerator card the phase shifters and couplers are replaced by
``blocks_floorplan``, the floorplan's area (``accelerators.layout.floorplan_area``).

``model`` may also be a user's ``torch.nn.Module`` (``nn.Linear`` layers and/or
``photonic_sim.nn`` layers, read by duck typing in ``mapping.spec_from_module``); the
accelerator card's block size k and architecture decide the placement, as for a preset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from photonic_sim.accelerators.cards import AcceleratorCard, load_accelerator_card
from photonic_sim.accelerators.layout import floorplan_area
from photonic_sim.accelerators.mapping import (
    Stage, hardware_counts, is_module, module_phases, schedule, spec_from_module, stages,
)
from photonic_sim.circuits.svd import SVDBlock
from photonic_sim.cores.spec import NetworkSpec, preset
from photonic_sim.devices.cards import DeviceCard, load_device_card
from photonic_sim.devices.detector import Photodetector
from photonic_sim.devices.readout import full_scale_power

Tensor = torch.Tensor

PRICED_KEYS = ("queries", "phase_settings", "samples")
# chip.Ledger totals that are echoed but not priced (conversions follow from the schedule)
INFO_KEYS = ("calls", "dac_conversions", "adc_conversions", "clipped")
_DYNAMIC = ("laser", "tia", "dac", "adc", "modulator", "digital_ops", "sram")


@dataclass(frozen=True)
class _Rates:
    """What one inference / one ledger entry costs (SI)."""

    heater_power: float  # W, all phase shifters together
    settle_time: float  # s per program load
    control_overhead: float  # s per query
    programs: int  # G: program loads per query (0: phases stay put)
    t_opt: float  # s of streaming per sample
    per_sample: dict[str, float]  # J per sample, keys _DYNAMIC
    channel_symbols: int = 0  # DAC / ADC conversions per sample the schedule prices
    conversion_energy: tuple[float, float] = (0.0, 0.0)  # J per (ADC, DAC) conversion


@dataclass(frozen=True)
class CostReport:
    """Cost of one network on one accelerator with one device technology (SI inside)."""

    accelerator: str
    architecture: str
    model: str
    devices: str
    readout: str
    block_size: int
    counts: dict[str, int]
    area_m2: dict[str, float]  # per device type, area_overhead included
    inference: dict[str, Any]  # energy_j, latency_s, breakdown{energy_j, latency_s}
    link: dict[str, float]  # link budget
    schedule: dict[str, Any]  # symbol rate, periods, programs, stages
    _rates: _Rates = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; areas in mm² (``area_mm2``), everything else SI."""
        area = {k: v * 1e6 for k, v in self.area_m2.items()}
        return {
            "accelerator": self.accelerator,
            "architecture": self.architecture,
            "model": self.model,
            "devices": self.devices,
            "readout": self.readout,
            "block_size": self.block_size,
            "counts": dict(self.counts),
            "area_mm2": {"total": sum(area.values()), "breakdown": area},
            "inference": self.inference,
            "link": dict(self.link),
            "schedule": dict(self.schedule),
        }


def estimate(architecture: str | Path | AcceleratorCard, model: Any,
             devices: str | Path | DeviceCard = "silicon_thermo_optic", phases: Any = None, *,
             in_situ_hardware: bool = False, loss_balanced: bool = False) -> CostReport:
    """Counts, area and one inference's energy / latency (formulas: module docstring).

    ``architecture``: accelerator card name, path or loaded card; ``model``: NetworkSpec,
    preset name, or a ``torch.nn.Module`` (module docstring); ``devices``: device card name,
    path or loaded card; ``phases``: optional array (or list of arrays) of the programmed
    phase-shifter phases (rad) whose mean sets the heater power (default: the model's
    photonic layers' phases, else mean π); ``in_situ_hardware``: add the devices of the
    in-situ adjoint / node-perturbation strategies (``needs_hardware``) to the counts and the
    area (module docstring, "In-situ gradient hardware"); ``loss_balanced``: a loss-balanced
    mesh (module docstring): the link budget pays the whole critical path and the dummy
    elements are counted (``dummy_elements``) and priced in the area.
    """
    acc = architecture if isinstance(architecture, AcceleratorCard) else load_accelerator_card(architecture)
    dev = devices if isinstance(devices, DeviceCard) else load_device_card(devices)
    if is_module(model):
        net = spec_from_module(model)
        phases = module_phases(model) if phases is None else phases
    else:
        net = model if isinstance(model, NetworkSpec) else preset(model)
    k, arch = acc.block_size, acc.architecture
    readout = acc.readout or dev.photodetector.readout
    st = stages(net, arch, k)
    counts = hardware_counts(st, arch, k, acc.num_cores, readout)
    programs, periods = schedule(st, arch, acc.num_cores)
    rate = min(acc.clock, dev.dac.sample_rate, dev.adc.sample_rate)

    link = link_budget(dev, k, counts["blocks"] * k * (2 if readout == "coherent" else 1),
                       loss_balanced=loss_balanced)
    counts["lasers"] = max(1, math.ceil(link["laser_optical_w"] / dev.laser.max_power))

    t_opt = periods / rate
    channel_symbols = sum(s.passes * s.blocks for s in st) * k
    per_sample = {
        "laser": link["laser_electrical_w"] * t_opt,
        "tia": counts["tias"] * dev.tia.power * t_opt,
        "dac": channel_symbols * conversion_energy(dev.dac),
        "adc": channel_symbols * conversion_energy(dev.adc),
        "modulator": channel_symbols * dev.modulator.energy_per_symbol,
        "digital_ops": _digital_ops(net, st) * acc.digital.energy_per_op,
        "sram": _sram_values(st, arch) * math.ceil(dev.adc.bits / 8) * acc.digital.sram_energy_per_byte,
    }
    mean_phase = _mean_phase(phases)
    rates = _Rates(
        heater_power=counts["phase_shifters"] * dev.phase_shifter.p_pi * mean_phase / math.pi,
        settle_time=dev.phase_shifter.settle_time,
        control_overhead=acc.digital.control_overhead,
        programs=programs,
        t_opt=t_opt,
        per_sample=per_sample,
        channel_symbols=channel_symbols,
        conversion_energy=(conversion_energy(dev.adc), conversion_energy(dev.dac)),
    )
    link["heater_power_w"] = rates.heater_power
    link["heater_mean_phase_rad"] = mean_phase
    link["adc_energy_per_conversion_j"] = conversion_energy(dev.adc)
    link["dac_energy_per_conversion_j"] = conversion_energy(dev.dac)
    footprints = {
        "phase_shifters": dev.phase_shifter.area, "couplers": dev.coupler.area,
        "modulators": dev.modulator.area, "detectors": dev.photodetector.area, "tias": dev.tia.area,
        "adcs": converter_area(dev.adc), "dacs": converter_area(dev.dac), "lasers": dev.laser.area,
    }
    if in_situ_hardware:
        extra = in_situ_counts(k, counts["blocks"])
        counts.update(extra)
        footprints |= {"tap_detectors": dev.photodetector.area, "tap_tias": dev.tia.area,
                       "tap_adcs": converter_area(dev.adc), "iq_modulators": dev.modulator.area,
                       "iq_dacs": converter_area(dev.dac), "iq_detectors": dev.photodetector.area,
                       "iq_tias": dev.tia.area, "iq_adcs": converter_area(dev.adc)}
    if loss_balanced:  # passive dummy MZIs, one MZI's footprint each (module docstring)
        counts["dummy_elements"] = counts["blocks"] * int(link["dummy_elements_per_block"])
        if acc.layout is None:
            footprints["dummy_elements"] = 2.0 * (dev.phase_shifter.area + dev.coupler.area)
    area = {name: counts[name] * a * acc.area_overhead for name, a in footprints.items()}
    if acc.layout is not None:  # the meshes' area is the floorplan's (accelerators.layout)
        del area["phase_shifters"], area["couplers"]
        area["blocks_floorplan"] = floorplan_area(acc, counts["blocks"])
    sched = {
        "symbol_rate_hz": rate,
        "symbol_periods": periods,
        "programs_per_inference": programs,
        "stages": [s.__dict__.copy() for s in st],
    }
    return CostReport(
        accelerator=acc.name, architecture=arch, model=net.name, devices=dev.name, readout=readout,
        block_size=k, counts=counts, area_m2=area,
        inference=_price(rates, queries=1, phase_settings=0, samples=1),
        link=link, schedule=sched, _rates=rates,
    )


def training_cost(architecture: str | Path | AcceleratorCard, model: Any,
                  devices: str | Path | DeviceCard, ledger: dict[str, float], phases: Any = None, *,
                  in_situ_hardware: bool = False, loss_balanced: bool = False) -> dict[str, Any]:
    """Energy (J) and latency (s) of a training run from the chip ledger totals.

    ``ledger`` (e.g. ``chip.ledger.totals()``): ``queries`` (phase settings × input batches
    measured), ``phase_settings`` (times phases were programmed), ``samples`` (input vectors
    pushed through, summed over queries); optional ``calls``, ``dac_conversions``,
    ``adc_conversions``, ``clipped`` are echoed, not priced (control overhead is charged per
    query; conversions per sample follow from the schedule). Linear in the ledger. ``model``
    and ``phases`` as in :func:`estimate`: pass the run's programmed phase-shifter phases (the
    phase entries of the final control vector; Σ attenuator entries folded into [0, π] as the
    device realises them) so the heater energy follows them.

    ``in_situ_hardware`` (a strategy with ``needs_hardware``: the in-situ adjoint, node
    perturbation): the ADC / DAC conversions the chip booked beyond the schedule's per-sample
    ones (``adc_conversions`` − samples · conversions per sample, the monitor taps and the I/Q
    ports; module docstring, "In-situ gradient hardware") are priced too, as the breakdown's
    ``adc_in_situ`` / ``dac_in_situ`` (J; no latency: every tap and port has its own converter,
    which converts during the pass already charged as a sample). ``loss_balanced``: the laser of
    a loss-balanced mesh (:func:`estimate`).
    """
    allowed = ", ".join(PRICED_KEYS + INFO_KEYS)
    for key in ledger:
        if key not in PRICED_KEYS + INFO_KEYS:
            raise ValueError(f"ledger: unknown key {key!r} (allowed: {allowed})")
    for key in PRICED_KEYS:
        if key not in ledger:
            raise ValueError(f"ledger: missing {key!r} (required: {', '.join(PRICED_KEYS)}; allowed: {allowed})")
    for key, v in ledger.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"ledger.{key}: {v!r} is not a count (allowed: finite number >= 0)")
    rates = estimate(architecture, model, devices, phases, loss_balanced=loss_balanced)._rates
    out = _price(rates, ledger["queries"], ledger["phase_settings"], ledger["samples"])
    if in_situ_hardware:
        scheduled = ledger["samples"] * rates.channel_symbols
        energy = out["breakdown"]["energy_j"]
        for name, key, joules in (("adc_in_situ", "adc_conversions", rates.conversion_energy[0]),
                                  ("dac_in_situ", "dac_conversions", rates.conversion_energy[1])):
            energy[name] = max(0.0, ledger.get(key, 0) - scheduled) * joules
        out["energy_j"] = sum(energy.values())
    out["ledger"] = dict(ledger)
    return out


def in_situ_counts(k: int, blocks: int) -> dict[str, int]:
    """Devices the in-situ adjoint / node perturbation add to ``blocks`` k×k SVD blocks (module
    docstring, "In-situ gradient hardware"): a monitor tap (photodiode, TIA, ADC) at every phase
    shifter and Σ spare port, 2k² + 2k per block (two k×k meshes: 2·k(k−1)/2 MZIs × 2 shifters,
    2k Σ ports, 2k output-screen shifters); an I/Q transceiver at every one of the block's 2k
    ports (k inputs, k outputs): an I/Q modulator (2 modulators, 2 DACs) and an I/Q receiver
    (2 balanced pairs: 4 photodiodes, 2 TIAs, 2 ADCs)."""
    taps = blocks * (2 * k * k + 2 * k)
    ports = blocks * 2 * k
    return {"tap_detectors": taps, "tap_tias": taps, "tap_adcs": taps, "iq_modulators": 2 * ports,
            "iq_dacs": 2 * ports, "iq_detectors": 4 * ports, "iq_tias": 2 * ports, "iq_adcs": 2 * ports}


def conversion_energy(converter: Any) -> float:
    """J per conversion of a card's ``adc`` / ``dac`` section: FOM_W · 2^bits with ``fom``,
    else power / sample_rate (module docstring)."""
    if converter.fom is not None:
        return converter.fom.walden * 2.0**converter.bits
    return converter.power / converter.sample_rate


def converter_area(converter: Any) -> float:
    """m² of one converter: area · 2^(bits − area_bits) · sample_rate / area_rate with ``fom``,
    else the card's area (module docstring)."""
    fom = converter.fom
    if fom is None:
        return converter.area
    return converter.area * 2.0 ** (converter.bits - fom.area_bits) * converter.sample_rate / fom.area_rate


# ---------------------------------------------------------------- internals


def _price(rates: _Rates, queries: float, phase_settings: float, samples: float) -> dict[str, Any]:
    settles = phase_settings if rates.programs == 0 else queries * rates.programs
    latency = {
        "settle": settles * rates.settle_time,
        "optical": samples * rates.t_opt,
        "control": queries * rates.control_overhead,
    }
    total_t = sum(latency.values())
    energy = {"phase_shifters": rates.heater_power * total_t}
    energy |= {name: samples * e for name, e in rates.per_sample.items()}
    return {
        "energy_j": sum(energy.values()),
        "latency_s": total_t,
        "breakdown": {"energy_j": energy, "latency_s": latency},
    }


def block_loss(block: SVDBlock, balanced: bool = False) -> dict[str, Any]:
    """How the MZIs of ``block`` attenuate its paths (module docstring, link budget).

    A mesh column that pairs every mode (and the Σ column of a square block) multiplies the
    transfer matrix by the scalar amplitude of one MZI: its loss is common to every path
    (``uniform`` such columns). The other columns leave some modes untouched, so different
    paths cross different numbers of MZIs: ``critical`` (the most MZIs any input → output
    path crosses) and ``least`` (the fewest). ``simulated``: 0/1 per MZI in the block's U, Σ, V
    order (``SVDBlock.mzi_slices``), 1 on the MZIs of the path-dependent columns — the MZIs
    whose loss the chip simulates (``Chip(insertion_loss=True)``); the rest is the laser's.

    ``balanced`` (a loss-balanced mesh, module docstring): every unpaired position of a column
    holds a dummy element matched to one MZI, so every column is common to every path:
    ``uniform`` = ``least`` = ``critical``, ``simulated`` all 0, and the extra key ``dummies``
    (:func:`dummy_elements`)."""
    n_in, n_out, r = block.n_in, block.n_out, block.rank
    parts = {"U": torch.zeros(block.u.num_mzis), "S": torch.zeros(r), "V": torch.zeros(block.v.num_mzis)}
    uniform = 0
    hi = [0.0] * n_in  # most / fewest MZIs crossed on the way to each mode
    lo = [0.0] * n_in

    def sweep(mesh, key, hi, lo):
        nonlocal uniform
        for col in mesh.columns:
            if 2 * col.count == mesh.n:
                uniform += 1
            else:
                parts[key][col.start:col.start + col.count] = 1.0
            for j in range(col.count):
                a = col.offset + 2 * j
                top, bottom = max(hi[a], hi[a + 1]) + 1, min(lo[a], lo[a + 1]) + 1
                hi[a] = hi[a + 1] = top
                lo[a] = lo[a + 1] = bottom
        return hi, lo

    hi, lo = sweep(block.v, "V", hi, lo)
    if r == n_in == n_out:
        uniform += 1
    else:
        parts["S"][:] = 1.0
    inf = math.inf
    hi = [hi[i] + 1 if i < r else -inf for i in range(n_out)]  # modes >= r of U get no light
    lo = [lo[i] + 1 if i < r else inf for i in range(n_out)]
    hi, lo = sweep(block.u, "U", hi, lo)
    if balanced:
        c = int(max(hi))
        return {"uniform": c, "critical": c, "least": c,
                "simulated": torch.zeros(block.num_mzis, dtype=torch.float64), "dummies": dummy_elements(block)}
    return {"uniform": uniform, "critical": int(max(hi)), "least": int(min(lo)),
            "simulated": torch.cat((parts["U"], parts["S"], parts["V"])).to(torch.float64)}


def dummy_elements(block: SVDBlock) -> int:
    """Dummy elements of a loss-balanced ``block`` (module docstring): one at every position where
    a column of its U or V mesh leaves a mode unpaired, Σ over the columns of n − 2·count (the
    Σ column pairs every lit mode: none there); 2·k for a k×k block of Clements meshes, k >= 2."""
    return sum(mesh.n - 2 * col.count for mesh in (block.v, block.u) for col in mesh.columns)


def link_budget(dev: DeviceCard, k: int, fanout: int, full_scale_amplitude: float = 1.0, *,
                loss_balanced: bool = False) -> dict[str, float]:
    """The optical link of a k×k SVD block (module docstring): what the laser must emit so that
    a full-scale channel (normalized amplitude 1, the readout chain's ``full_scale_power``)
    reaches the detectors at the power the chip simulates. Keys (dB, dBm, W): ``mzi_loss_db``
    (IL_MZI), ``simulated_loss_db`` (the critical path's MZIs: c·IL_MZI), ``path_dependent_loss_db``
    ((c − u)·IL_MZI, the part the chip simulates on the critical path),
    ``uniform_loss_db`` (paid by the laser), ``insertion_loss_db`` (the whole critical path),
    ``detector_full_scale_dbm`` (a full-scale channel on the least lossy paths),
    ``detector_dbm`` (a full-scale channel on the critical path), ``sensitivity_dbm``,
    ``detector_margin_db`` (detector_dbm − sensitivity), ``laser_shortfall_db`` (> 0 when one
    laser at ``laser.max_power`` cannot feed a channel the full-scale power), ``channel_dbm``,
    ``fanout``, ``laser_dbm`` (all channels), ``laser_optical_w``, ``laser_electrical_w``.
    ``loss_balanced`` (module docstring): every path crosses the critical count, all of it
    uniform (``path_dependent_loss_db`` 0); adds ``loss_balanced`` (1.0) and
    ``dummy_elements_per_block``."""
    mzi = 2.0 * dev.phase_shifter.insertion_loss + 2.0 * dev.coupler.insertion_loss
    paths = block_loss(SVDBlock(k, k), balanced=loss_balanced)
    uniform = (dev.modulator.insertion_loss + 2 * dev.phase_shifter.insertion_loss
               + (2 * k + 1) * dev.waveguide.mzi_pitch * dev.waveguide.loss + paths["uniform"] * mzi)
    extra = (paths["critical"] - paths["uniform"]) * mzi
    full = _dbm(full_scale_power(Photodetector.from_card(dev), full_scale_amplitude))
    need = full + uniform
    channel = min(need, _dbm(dev.laser.max_power))
    shortfall = need - channel
    dbm = channel + 10 * math.log10(fanout)
    p_opt = 1e-3 * 10 ** (dbm / 10)
    balanced = {"loss_balanced": 1.0, "dummy_elements_per_block": float(paths["dummies"])} if loss_balanced else {}
    return {
        "mzi_loss_db": mzi,
        "simulated_loss_db": paths["critical"] * mzi,
        "path_dependent_loss_db": extra,
        "uniform_loss_db": uniform,
        "insertion_loss_db": uniform + extra,
        "detector_full_scale_dbm": full - shortfall,
        "detector_dbm": full - shortfall - extra,
        "sensitivity_dbm": dev.photodetector.sensitivity,
        "detector_margin_db": full - shortfall - extra - dev.photodetector.sensitivity,
        "laser_shortfall_db": shortfall,
        "channel_dbm": channel,
        "fanout": fanout,
        "laser_dbm": dbm,
        "laser_optical_w": p_opt,
        "laser_electrical_w": p_opt / dev.laser.wall_plug_efficiency,
        **balanced,
    }


def simulated_loss_db(dev: DeviceCard, k: int, full_scale_amplitude: float = 1.0, *,
                      loss_balanced: bool = False) -> dict[str, Tensor]:
    """The insertion loss a chip of k×k blocks simulates, per MZI (dB), as ``SVDBlock``'s
    ``loss_db`` dict {"U": [M_U], "S": [k], "V": [M_V]}: IL_MZI on the MZIs of the
    path-dependent columns (``block_loss``), 0 on the columns every path crosses (their loss
    is the laser's, :func:`link_budget`); plus, on the Σ column (a scalar for every path), the
    ``laser_shortfall_db`` when one laser at ``laser.max_power`` cannot give a channel the
    full-scale power. Float64 tensors. ``loss_balanced``: no path-dependent column, so only the
    shortfall (of the balanced link, whose laser pays the whole critical path) is left."""
    block = SVDBlock(k, k)
    mask = block_loss(block, balanced=loss_balanced)["simulated"]
    link = link_budget(dev, k, 1, full_scale_amplitude, loss_balanced=loss_balanced)
    loss = mask * link["mzi_loss_db"]
    loss[block.mzi_slices["S"]] += link["laser_shortfall_db"]
    return {part: loss[sl].clone() for part, sl in block.mzi_slices.items()}


def mean_loss_db(block: SVDBlock, loss_db: dict[str, Tensor]) -> float:
    """The power loss (dB) the per-MZI loss ``loss_db`` (``SVDBlock``'s dict, e.g.
    :func:`simulated_loss_db`) costs a field spread evenly over the block's inputs when every
    MZI splits its light evenly (the mean over the paths of a random mesh). The chip's
    controller calibrates its digital readout gain to it (``Chip(insertion_loss=True)``:
    readings × 10^(dB/20), intensities × 10^(dB/10)), so readings keep their lossless scale on
    average while noise and ADC resolution stay those of the attenuated light."""
    n_in, n_out, r = block.n_in, block.n_out, block.rank
    power = [1.0 / n_in] * n_in

    def sweep(mesh, key, power):
        t = (10.0 ** (-loss_db[key].to(torch.float64) / 10.0)).tolist()
        for col in mesh.columns:
            for j in range(col.count):
                a = col.offset + 2 * j
                power[a] = power[a + 1] = 0.5 * (power[a] + power[a + 1]) * t[col.start + j]
        return power

    power = sweep(block.v, "V", power)
    sigma = (10.0 ** (-loss_db["S"].to(torch.float64) / 10.0)).tolist()
    power = [power[i] * sigma[i] if i < r else 0.0 for i in range(n_out)]
    return -10.0 * math.log10(sum(sweep(block.u, "U", power)))


def _dbm(watts: float) -> float:
    return 10.0 * math.log10(watts / 1e-3) if watts > 0 else -math.inf


def _digital_ops(net: NetworkSpec, st: list[Stage]) -> int:
    adds = sum(s.passes * s.rows * (s.col_blocks - 1) for s in st)
    per_layer = sum(l.out_features * (int(l.bias) + int(l.activation != "none")) for l in net.layers)
    return adds + per_layer


def _sram_values(st: list[Stage], arch: str) -> int:
    if arch == "tonn_time":
        return sum(s.passes * (s.rows + s.cols) for s in st)
    if arch == "dense_onn":
        return 0
    values = 0
    for s in st:
        if s.core is None:
            continue
        first_executed = s.core == max(t.core for t in st if t.layer == s.layer)
        values += s.passes * (s.rows * (s.core != 0) + s.cols * (not first_executed))
    return values


def _mean_phase(phases: Any) -> float:
    if phases is None:
        return math.pi
    parts = phases if isinstance(phases, (list, tuple)) else [phases]
    arrays = [np.asarray(p.detach().cpu().numpy() if hasattr(p, "detach") else p, dtype=float).ravel() for p in parts]
    arr = np.concatenate(arrays) if arrays else np.zeros(0)
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError("phases: need a non-empty array of finite phases (allowed: real numbers, rad)")
    return float(np.mod(arr, 2 * math.pi).mean())
