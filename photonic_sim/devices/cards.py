"""Device cards: YAML files under ``<repo>/devices/`` describing one technology.

Every physical figure is a leaf ``{value: <number>, unit: "<unit>", ref: "<source>"}``; the
loader converts it to SI (W, J, s, m, m², Hz, samples/s, Ohm, A, V, rad, K) and keeps the
``ref`` so reports can cite it.  Kept as they are: ``dB`` (losses, crosstalk), ``dBm``
(sensitivity), dB/cm → dB/m, dimensionless ``""`` and ``bits`` (an integer).  Plain text
fields (``name``, ``description``, ``phase_shifter.kind``, ``crosstalk.model``,
``photodetector.readout``) are bare strings.

    card = load_device_card("silicon_thermo_optic", overrides={"phase_shifter.bits": 6})
    card.phase_shifter.p_pi            # 0.03 (W)
    card.ref("phase_shifter.p_pi")     # the citation string

Overrides are a dotted-path dict applied before validation.  A plain number is taken in SI
units (ref becomes "override"); a mapping ``{value, unit[, ref]}`` is converted like a card
leaf.  Every problem raises :class:`CardError` (a ``ValueError``) with one line
``<file>: <dotted.key>: <what is wrong> (allowed: <range/values>)``.  The loading machinery
(YAML, units, overrides, messages) is :mod:`photonic_sim.devices.cardio`, shared with the
accelerator cards.

``photodetector.readout`` (optional, default ``intensity``) selects intensity (|y|²) or
coherent (balanced, signed) readout (docs/physics.md#non-idealities).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, get_args

import annotated_types as at
from pydantic import BaseModel, model_validator

from photonic_sim.devices.cardio import (
    SI_UNIT, UNITS, CardBase, CardError, Section, Wording, dim_of, load_card, preview,
)
from photonic_sim import library
from photonic_sim.devices.cardio import quantity as _q

DEVICES_DIR = library.builtin_dir("devices")  # built-in cards; bare names use the search path


# Sane physical ranges (SI), declared once on each field below: a value outside is a typo or a
# unit mistake (1e300 GHz, 1e308 W), refused at load time with the range in the message.
# Every area is at most AREA_MAX (1 cm² per device). The losses of the elements on the optical
# path (shifters and couplers: 4k+3 of each for k <= 64, waveguide, modulator) are bounded so the
# link budget's laser power stays a float (path loss < 3000 dB; scenarios also refuse > 60 dBm).
# The figures the simulation divides by (v_pi, responsivity, load_resistance, tia.gain,
# laser.wall_plug_efficiency) have a floor above 0, so a denormal value (1e-300) is refused
# instead of turning the chip's readings into inf / NaN mid-run.
AREA_MAX = 1e-4


class DriftCard(Section):
    """Optional ``phase_shifter.drift``: slow drift of the U/V shifters' bias with the chip's
    clock (docs/physics.md#drift-and-thermal-settling). ``kind: random_walk``: every shifter
    does its own Gaussian random walk, variance ``diffusion``·t (rad²/s); ``kind: ramp``: a
    temperature ramp shifts every U/V phase by ``rate``·t (rad/s). The clock advances by
    ``phase_shifter.query_time`` per query and by ``settle_time`` per phase setting."""

    kind: Literal["random_walk", "ramp"]
    rate: float = _q("angle_rate", default=0.0, ge=-10, le=10)
    diffusion: float = _q("angle_diffusion", default=0.0, ge=0, le=100)

    @model_validator(mode="after")
    def _figure_of_kind(self) -> DriftCard:
        if (self.kind == "ramp" and self.diffusion) or (self.kind == "random_walk" and self.rate):
            raise ValueError("rate belongs to kind ramp, diffusion to kind random_walk")
        return self


class PhaseShifterCard(Section):
    kind: Literal["thermo_optic", "mems", "electro_optic"]
    v_pi: float = _q("voltage", ge=1e-3, le=1e3)  # γ = π / v_pi²: a denormal v_pi divides by zero
    v_max: float = _q("voltage", gt=0, le=1e3)
    p_pi: float = _q("power", ge=0, le=10)
    settle_time: float = _q("time", ge=0, le=1)
    insertion_loss: float = _q("dB", ge=0, le=5)
    area: float = _q("area", ge=0, le=AREA_MAX)
    bits: int = _q("bits", ge=1, le=32)
    gamma_noise_std: float = _q("dimensionless", ge=0, lt=1 / 3)  # γ noise is truncated at 3σ (PhaseShifter)
    bias_range: float = _q("angle", ge=0, le=2 * math.pi)
    dynamic_noise_std: float = _q("angle", ge=0, le=2 * math.pi)
    # optional: first-order thermal response (0 = instantaneous) and bias drift (absent = none)
    thermal_time_constant: float = _q("time", default=0.0, ge=0, le=1)
    query_time: float = _q("time", default=1e-7, ge=0, le=1)  # a query's time besides the settle wait
    drift: DriftCard = None


class CouplerCard(Section):
    kappa: float = _q("dimensionless", ge=0, le=1)
    # κ(λ) = κ + slope·Δλ + curvature·Δλ²/2 about the card's design ``wavelength`` (optional)
    kappa_slope: float = _q("per_length", default=0.0, ge=-1e9, le=1e9)
    kappa_curvature: float = _q("per_length2", default=0.0, ge=-1e18, le=1e18)
    imbalance_std: float = _q("dimensionless", ge=0, le=1)
    insertion_loss: float = _q("dB", ge=0, le=5)
    area: float = _q("area", ge=0, le=AREA_MAX)


class WaveguideCard(Section):
    loss: float = _q("dB_per_length", ge=0, le=1e3)  # 10 dB/cm
    mzi_pitch: float = _q("length", gt=0, le=1e-3)


class CrossingCard(Section):
    insertion_loss: float = _q("dB", ge=0, le=20)
    crosstalk: float = _q("dB", ge=-200, le=0)
    area: float = _q("area", ge=0, le=AREA_MAX)


class CrosstalkCard(Section):
    model: Literal["kernel", "distance"]
    factor: float = _q("dimensionless", default=0.005, ge=0, le=1)
    decay_length: float = _q("length", gt=0, le=1e-2)


class PhotodetectorCard(Section):
    responsivity: float = _q("responsivity", ge=1e-3, le=10)  # the readout chain scales by 1 / (R · G)
    dark_current: float = _q("current", ge=0, le=1e-3)
    bandwidth: float = _q("frequency", ge=1e3, le=1e12)
    load_resistance: float = _q("resistance", ge=1e-3, le=1e9)
    temperature: float = _q("temperature", gt=0, le=1e3)
    sensitivity: float = _q("dBm", ge=-100, le=30)
    area: float = _q("area", ge=0, le=AREA_MAX)
    readout: Literal["intensity", "coherent"] = "intensity"


class TIACard(Section):
    gain: float = _q("transimpedance", ge=1e-3, le=1e9)
    power: float = _q("power", ge=0, le=10)
    area: float = _q("area", ge=0, le=AREA_MAX)


class ConverterFOMCard(Section):
    """Optional ``adc.fom`` / ``dac.fom``: energy per conversion walden · 2^bits (Walden figure
    of merit, J per conversion step); ``area`` scales by 2^(bits − area_bits) · sample_rate /
    area_rate from the part it was measured on (the cost model's docstring has the laws)."""

    walden: float = _q("energy", gt=0, le=1e-9)
    area_bits: int = _q("bits", ge=1, le=32)
    area_rate: float = _q("sample_rate", ge=1e3, le=1e12)


class ADCCard(Section):
    bits: int = _q("bits", ge=1, le=32)
    sample_rate: float = _q("sample_rate", ge=1e3, le=1e12)
    power: float = _q("power", ge=0, le=10)
    area: float = _q("area", ge=0, le=AREA_MAX)
    full_scale: float = _q("voltage", gt=0, le=1e3)
    fom: ConverterFOMCard = None  # optional; absent: power / sample_rate per conversion, area as given


class DACCard(Section):
    bits: int = _q("bits", ge=2, le=32)  # symmetric levels around 0 (Modulator)
    sample_rate: float = _q("sample_rate", ge=1e3, le=1e12)
    power: float = _q("power", ge=0, le=10)
    area: float = _q("area", ge=0, le=AREA_MAX)
    fom: ConverterFOMCard = None  # optional, as adc.fom


class ModulatorCard(Section):
    insertion_loss: float = _q("dB", ge=0, le=20)
    energy_per_symbol: float = _q("energy", ge=0, le=1e-6)
    area: float = _q("area", ge=0, le=AREA_MAX)


class LaserCard(Section):
    wall_plug_efficiency: float = _q("dimensionless", ge=1e-6, le=1)  # electrical = optical / efficiency
    wavelength: float = _q("length", default=0.0, ge=0, le=2e-5)  # operating λ; 0 = the card's design wavelength
    max_power: float = _q("power", gt=0, le=10)
    area: float = _q("area", ge=0, le=AREA_MAX)


class DeviceCard(CardBase):
    """A validated device card; every number is an SI float (see module docstring)."""

    name: str
    description: str
    wavelength: float = _q("length", ge=1e-7, le=2e-5)
    phase_shifter: PhaseShifterCard
    coupler: CouplerCard
    waveguide: WaveguideCard
    crossing: CrossingCard
    crosstalk: CrosstalkCard
    photodetector: PhotodetectorCard
    tia: TIACard
    adc: ADCCard
    dac: DACCard
    modulator: ModulatorCard
    laser: LaserCard


def list_device_cards() -> list[str]:
    """Names of the device cards on the search path (:mod:`photonic_sim.library`)."""
    return library.names("devices")


def load_device_card(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> DeviceCard:
    """Load, convert to SI and validate a device card (a bare name or a path to a YAML file)."""
    return load_card(library.locate("devices", name_or_path), DeviceCard, DEVICES_DIR, overrides, _WORDING)


# ---------------------------------------------------------------- wording of errors


def _unit_what(unit: Any, dim: str) -> str:
    what = "unknown unit" if not isinstance(unit, str) or unit not in UNITS else f"a {UNITS[unit][0]} unit, not {dim}:"
    return f"{what} {preview(unit)}"


def _invalid_what(err: dict, model: type[BaseModel], name: str, written: str | None) -> str:
    shown = preview(err.get("input")) if written is None else written
    return f"{shown} is invalid: {err['msg'].lower()}"


def _allowed(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    choices = get_args(info.annotation)
    if choices:
        return "one of " + ", ".join(map(str, choices))
    if info.annotation is str:
        return "a string"
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, (at.Ge, at.Gt)):
            lo = (">=" if isinstance(m, at.Ge) else ">", getattr(m, "ge", getattr(m, "gt", None)))
        elif isinstance(m, (at.Le, at.Lt)):
            hi = ("<=" if isinstance(m, at.Le) else "<", getattr(m, "le", getattr(m, "lt", None)))
    x = "integer" if info.annotation is int else "x"
    dim = dim_of(model, name)
    unit = f" {SI_UNIT[dim]}" if dim and SI_UNIT.get(dim) else ""
    if lo and hi:
        flip = {">=": "<=", ">": "<"}
        return f"{lo[1]} {flip[lo[0]]} {x} {hi[0]} {hi[1]}{unit}"
    if lo or hi:
        op, bound = lo or hi
        return f"{x} {op} {bound}{unit}"
    return f"any {x}{unit}"


_WORDING = Wording(
    kind="device", root="a mapping of sections", unit=_unit_what, invalid=_invalid_what, allowed=_allowed
)

__all__ = [
    "DEVICES_DIR", "UNITS", "CardError", "DeviceCard", "list_device_cards", "load_device_card",
]
