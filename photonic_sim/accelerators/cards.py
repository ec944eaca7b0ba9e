"""Accelerator cards: YAML files under ``<repo>/accelerators/`` describing one architecture.

A card says how a network is placed on photonic hardware (docs/physics.md#tensorized-onn-tonn, docs/physics.md#cost-model):

* ``architecture``: ``dense_onn`` (every layer a blocked dense matrix, own hardware),
  ``tonn_space`` (every TT core matrix on its own k×k blocks) or ``tonn_time``
  (``num_cores`` physical k×k blocks reused for every block of the network);
* ``block_size`` k (default 8) and ``num_cores`` P (only for ``tonn_time``);
* ``clock``: DAC / optical / ADC symbol rate;
* ``readout``: ``intensity`` or ``coherent``; when absent the device card's
  ``photodetector.readout`` is used;
* ``digital``: ``energy_per_op`` (J per electronic add / bias / activation),
  ``control_overhead`` (s of digital control and handshake per query),
  ``sram_energy_per_byte`` (J per byte written or read when intermediates are buffered);
* ``area_overhead``: routing / packaging multiplier (>= 1) on the summed device areas.

Every physical figure is a leaf ``{value, unit, ref}`` converted to SI with the unit table of
:mod:`photonic_sim.devices.cardio` (``UNITS``); ``block_size``, ``num_cores``,
``architecture`` and ``readout`` are plain values.

    card = load_accelerator_card("tonn_time", overrides={"num_cores": 2, "clock": 5e9})
    card.clock                       # 5e9 (Hz)
    card.digital.energy_per_op       # J
    card.ref("digital.energy_per_op")

Overrides are a dotted-path dict applied before validation: a plain number for a figure is
SI (ref becomes "override"), a mapping ``{value, unit[, ref]}`` is converted like a card leaf.
Every problem raises :class:`CardError` (a ``ValueError``) with one line
``<file>: <dotted.key>: <what is wrong> (allowed: ...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from photonic_sim.devices.cardio import (
    SI_UNIT, UNITS, CardBase, CardError, Section, Wording, did_you_mean, dim_of, load_card, preview,
)
from photonic_sim import library
from photonic_sim.devices.cardio import quantity as _q

ACCELERATORS_DIR = library.builtin_dir("accelerators")  # built-in cards; bare names use the search path
ARCHITECTURES = ("dense_onn", "tonn_space", "tonn_time")


# Sane ranges (SI) are declared once on each field: a value outside is a typo or a unit
# mistake (1e300 GHz), refused at load time with the range in the message.
class DigitalCard(Section):
    energy_per_op: float = _q("energy", ge=0, le=1e-6)
    control_overhead: float = _q("time", ge=0, le=1)
    sram_energy_per_byte: float = _q("energy", ge=0, le=1e-6)


class LayoutCard(Section):
    """Optional ``layout``: a generated floorplan of the hardware blocks on the die, row-major
    on a grid of ``columns`` (default ⌈√n⌉) with centre-to-centre ``block_pitch`` (m); see
    :mod:`photonic_sim.accelerators.layout`."""

    block_pitch: float = _q("length", gt=0, le=0.1)
    columns: int | None = Field(None, ge=1, le=1_000_000)


class AcceleratorCard(CardBase):
    """A validated accelerator card; every figure is an SI float (see module docstring)."""

    name: str
    description: str
    architecture: Literal["dense_onn", "tonn_space", "tonn_time"]
    # k >= 2 for a mesh; k <= 64: the simulator holds ~k⁴-sized arrays per block (k = 64: ~2 GB)
    block_size: int = Field(8, ge=2, le=64)
    num_cores: int | None = Field(None, ge=1, le=1_000_000)
    clock: float = _q("frequency", ge=1e3, le=1e12)
    readout: Literal["intensity", "coherent"] | None = None
    digital: DigitalCard
    area_overhead: float = _q("dimensionless", ge=1, le=100)
    layout: LayoutCard = None  # optional floorplan (thermal crosstalk across blocks, die area)


def list_accelerator_cards() -> list[str]:
    """Names of the accelerator cards on the search path (:mod:`photonic_sim.library`)."""
    return library.names("accelerators")


def load_accelerator_card(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> AcceleratorCard:
    """Load, convert to SI and validate an accelerator card (a bare name or a .yaml path)."""
    card = load_card(library.locate("accelerators", name_or_path), AcceleratorCard, ACCELERATORS_DIR, overrides, _WORDING)
    if card.architecture == "tonn_time" and card.num_cores is None:
        raise CardError(f"{card.source}: num_cores: missing for architecture tonn_time (allowed: integer >= 1)")
    if card.architecture != "tonn_time" and card.num_cores is not None:
        raise CardError(
            f"{card.source}: num_cores: only meaningful for architecture tonn_time, not {card.architecture}"
            " (allowed: absent)"
        )
    return card


# ---------------------------------------------------------------- wording of errors


def _unit_what(unit: Any, dim: str) -> str:
    units = [u for u, (d, _) in UNITS.items() if d == dim]
    return f"{preview(unit)} is not a {dim} unit{did_you_mean(unit, units)}"


def _invalid_what(err: dict, model: type[BaseModel], name: str, written: str | None) -> str:
    what = f"{preview(err.get('input'))} is invalid: {err['msg'].lower()}"
    if err["type"] == "literal_error":
        choices = [a for c in get_args(model.model_fields[name].annotation) for a in (get_args(c) or [c])]
        what += did_you_mean(err.get("input"), [c for c in choices if isinstance(c, str)])
    return what


def _allowed(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    choices = [c for c in get_args(info.annotation) if c is not type(None)]
    literal = [a for c in choices for a in (get_args(c) or [c]) if isinstance(a, str)]
    if literal:
        return "one of " + ", ".join(literal)
    bounds = []
    for m in info.metadata:
        for op, attr in ((">=", "ge"), (">", "gt"), ("<=", "le"), ("<", "lt")):
            if getattr(m, attr, None) is not None:
                bounds.append(f"{op} {getattr(m, attr)}")
    dim = dim_of(model, name)
    unit = f" ({SI_UNIT.get(dim, '')} when a plain number)" if dim and SI_UNIT.get(dim) else ""
    kind = "integer" if int in (choices or [info.annotation]) else "number"
    return f"{kind} {' and '.join(bounds)}{unit}".strip() if bounds else f"{kind}{unit}"


_WORDING = Wording(kind="accelerator", root="a mapping", unit=_unit_what, invalid=_invalid_what, allowed=_allowed)

__all__ = [
    "ACCELERATORS_DIR", "ARCHITECTURES", "AcceleratorCard", "CardError", "DigitalCard",
    "list_accelerator_cards", "load_accelerator_card",
]
