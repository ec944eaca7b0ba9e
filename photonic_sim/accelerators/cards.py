"""Accelerator cards: YAML files under ``<repo>/accelerators/`` describing one architecture.

A card says how a network is placed on photonic hardware (DESIGN §4, §5):

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
:mod:`photonic_sim.devices.cards` (``UNITS``); ``block_size``, ``num_cores``,
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

import difflib
import math
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from photonic_sim.devices.cards import UNITS, CardError

ACCELERATORS_DIR = Path(__file__).resolve().parents[2] / "accelerators"
ARCHITECTURES = ("dense_onn", "tonn_space", "tonn_time")
_SI_UNIT = {dim: u for u, (dim, f) in UNITS.items() if f == 1.0}


def _q(dim: str, **kw: Any) -> Any:
    """A physical leaf ``{value, unit, ref}`` of dimension ``dim`` (see devices.cards.UNITS)."""
    return Field(json_schema_extra={"dim": dim}, **kw)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DigitalCard(_Section):
    energy_per_op: float = _q("energy", ge=0)
    control_overhead: float = _q("time", ge=0)
    sram_energy_per_byte: float = _q("energy", ge=0)


class AcceleratorCard(_Section):
    """A validated accelerator card; every figure is an SI float (see module docstring)."""

    name: str
    description: str
    architecture: Literal["dense_onn", "tonn_space", "tonn_time"]
    block_size: int = Field(8, ge=1, le=1024)
    num_cores: int | None = Field(None, ge=1)
    clock: float = _q("frequency", gt=0)
    readout: Literal["intensity", "coherent"] | None = None
    digital: DigitalCard
    area_overhead: float = _q("dimensionless", ge=1)

    _refs: dict[str, str] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """The file the card was loaded from."""
        return self._source

    def ref(self, path: str) -> str:
        """The ``ref:`` string of the figure at dotted ``path`` (e.g. ``"clock"``)."""
        if path not in self._refs:
            raise CardError(
                f"{self._source}: {path}: no such figure{_did_you_mean(path, self._refs)}"
                f" (allowed: {', '.join(sorted(self._refs))})"
            )
        return self._refs[path]

    def refs(self) -> dict[str, str]:
        return dict(self._refs)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def list_accelerator_cards() -> list[str]:
    """Names of the cards shipped in ``<repo>/accelerators/``."""
    return sorted(p.stem for p in ACCELERATORS_DIR.glob("*.yaml"))


def load_accelerator_card(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> AcceleratorCard:
    """Load, convert to SI and validate an accelerator card (a bare name or a .yaml path)."""
    path = _resolve(name_or_path)
    src = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CardError(f"{src}: <root>: not valid YAML: {' '.join(str(exc).split())} (allowed: a YAML mapping)") from None
    if not isinstance(raw, dict):
        raise CardError(
            f"{src}: <root>: card must be a mapping, got {type(raw).__name__}"
            f" (allowed: mapping with keys {', '.join(AcceleratorCard.model_fields)})"
        )
    for key, value in (overrides or {}).items():
        _apply_override(raw, str(key), value, src)
    values, refs = _convert(raw, AcceleratorCard, "", src)
    try:
        card = AcceleratorCard.model_validate(values)
    except ValidationError as exc:
        raise _validation_error(exc, src) from None
    if card.architecture == "tonn_time" and card.num_cores is None:
        raise CardError(f"{src}: num_cores: missing for architecture tonn_time (allowed: integer >= 1)")
    if card.architecture != "tonn_time" and card.num_cores is not None:
        raise CardError(
            f"{src}: num_cores: only meaningful for architecture tonn_time, not {card.architecture}"
            " (allowed: absent)"
        )
    card._refs, card._source = refs, src
    return card


# ---------------------------------------------------------------- internals


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(text)
    else:
        path = ACCELERATORS_DIR / f"{text}.yaml"
    if not path.is_file():
        names = list_accelerator_cards()
        raise CardError(
            f"{path}: <root>: no such accelerator card{_did_you_mean(path.stem, names)}"
            f" (allowed: {', '.join(names)} or a path to a .yaml file)"
        )
    return path


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def _sub_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    sub = model.model_fields[name].annotation
    return sub if isinstance(sub, type) and issubclass(sub, BaseModel) else None


def _dim(model: type[BaseModel], name: str) -> str | None:
    extra = model.model_fields[name].json_schema_extra
    return extra.get("dim") if isinstance(extra, dict) else None


def _convert(raw: dict, model: type[BaseModel], prefix: str, src: str) -> tuple[dict, dict]:
    """Raw YAML mapping → (SI values for pydantic, refs by dotted path)."""
    values: dict[str, Any] = {}
    refs: dict[str, str] = {}
    fields = model.model_fields
    for key, item in raw.items():
        path = f"{prefix}{key}"
        if key not in fields:
            raise CardError(
                f"{src}: {path}: unknown key{_did_you_mean(str(key), fields)} (allowed: {', '.join(fields)})"
            )
        if (sub := _sub_model(model, key)) is not None:
            if not isinstance(item, dict):
                raise CardError(
                    f"{src}: {path}: section must be a mapping, got {type(item).__name__}"
                    f" (allowed: mapping with keys {', '.join(sub.model_fields)})"
                )
            values[key], r = _convert(item, sub, f"{path}.", src)
            refs |= r
        elif (dim := _dim(model, key)) is not None:
            values[key], refs[path] = _leaf(item, dim, path, src)
        else:
            values[key] = item
    return values, refs


def _leaf(item: Any, dim: str, path: str, src: str) -> tuple[float, str]:
    form = "a mapping {value, unit, ref}"
    if not isinstance(item, dict):
        raise CardError(f"{src}: {path}: expected {form}, got {item!r} (allowed: {form})")
    for k in item:
        if k not in ("value", "unit", "ref"):
            raise CardError(
                f"{src}: {path}.{k}: unknown key{_did_you_mean(str(k), ('value', 'unit', 'ref'))}"
                " (allowed: value, unit, ref)"
            )
    for k in ("value", "unit", "ref"):
        if k not in item:
            raise CardError(f"{src}: {path}: missing '{k}' (allowed: {form})")
    ref = item["ref"]
    if not isinstance(ref, str) or not ref.strip():
        raise CardError(f"{src}: {path}.ref: missing or empty ref (allowed: a non-empty source string)")
    unit = "" if item["unit"] is None else item["unit"]
    if unit not in UNITS or UNITS[unit][0] != dim:
        units = [u for u, (d, _) in UNITS.items() if d == dim]
        raise CardError(
            f"{src}: {path}.unit: {unit!r} is not a {dim} unit{_did_you_mean(str(unit), units)}"
            f" (allowed: {', '.join(map(repr, units))})"
        )
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CardError(f"{src}: {path}.value: {value!r} is not a number (allowed: a finite real number)")
    return float(f"{float(value) * UNITS[unit][1]:.15g}"), ref


def _apply_override(raw: dict, key: str, value: Any, src: str) -> None:
    parts = key.split(".")
    model: type[BaseModel] = AcceleratorCard
    node = raw
    for i, part in enumerate(parts):
        path = ".".join(parts[: i + 1])
        fields = model.model_fields
        if part not in fields:
            raise CardError(
                f"{src}: override {path}: unknown key{_did_you_mean(part, fields)} (allowed: {', '.join(fields)})"
            )
        last = i == len(parts) - 1
        if (sub := _sub_model(model, part)) is not None:
            if last:
                raise CardError(f"{src}: override {path}: is a section, not a figure (allowed: {path}.<field>)")
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node, model = node[part], sub
            continue
        if not last:
            raise CardError(f"{src}: override {path}: is a figure, not a section (allowed: {path})")
        dim = _dim(model, part)
        if dim is None:
            node[part] = value
        elif isinstance(value, dict):
            node[part] = dict(value, ref=value.get("ref", "override"))
        else:
            node[part] = {"value": value, "unit": _SI_UNIT[dim], "ref": "override"}


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
    dim = _dim(model, name)
    unit = f" ({_SI_UNIT.get(dim, '')} when a plain number)" if dim and _SI_UNIT.get(dim) else ""
    kind = "integer" if int in (choices or [info.annotation]) else "number"
    return f"{kind} {' and '.join(bounds)}{unit}".strip() if bounds else f"{kind}{unit}"


def _validation_error(exc: ValidationError, src: str) -> CardError:
    err = exc.errors()[0]
    parent: type[BaseModel] = AcceleratorCard
    parts: list[str] = []
    for p in map(str, err["loc"]):  # union members add tags such as 'int' to the loc: stop there
        if p not in parent.model_fields:
            break
        parts.append(p)
        sub = _sub_model(parent, p)
        if sub is None or p == str(err["loc"][-1]):
            break
        parent = sub
    name = parts[-1]
    what = "missing" if err["type"] == "missing" else f"{err.get('input')!r} is invalid: {err['msg'].lower()}"
    choices = [a for c in get_args(parent.model_fields[name].annotation) for a in (get_args(c) or [c])]
    if err["type"] == "literal_error":
        what += _did_you_mean(str(err.get("input")), [c for c in choices if isinstance(c, str)])
    if _sub_model(parent, name) is not None:
        allowed = "mapping with keys " + ", ".join(_sub_model(parent, name).model_fields)
    else:
        allowed = _allowed(parent, name)
    return CardError(f"{src}: {'.'.join(parts)}: {what} (allowed: {allowed})")


__all__ = [
    "ACCELERATORS_DIR", "ARCHITECTURES", "AcceleratorCard", "CardError", "DigitalCard",
    "list_accelerator_cards", "load_accelerator_card",
]
