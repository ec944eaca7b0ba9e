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
``<file>: <dotted.key>: <what is wrong> (allowed: <range/values>)``.

``photodetector.readout`` (optional, default ``intensity``) selects intensity (|y|²) or
coherent (balanced, signed) readout (DESIGN §3).
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal, get_args

import annotated_types as at
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

DEVICES_DIR = Path(__file__).resolve().parents[2] / "devices"

# unit → (dimension, factor to SI)
UNITS: dict[str, tuple[str, float]] = {
    "V": ("voltage", 1.0), "mV": ("voltage", 1e-3),
    "W": ("power", 1.0), "mW": ("power", 1e-3), "uW": ("power", 1e-6), "nW": ("power", 1e-9),
    "J": ("energy", 1.0), "nJ": ("energy", 1e-9), "pJ": ("energy", 1e-12),
    "fJ": ("energy", 1e-15),
    "s": ("time", 1.0), "ms": ("time", 1e-3), "us": ("time", 1e-6), "ns": ("time", 1e-9),
    "ps": ("time", 1e-12),
    "Hz": ("frequency", 1.0), "kHz": ("frequency", 1e3), "MHz": ("frequency", 1e6),
    "GHz": ("frequency", 1e9),
    "S/s": ("sample_rate", 1.0), "MS/s": ("sample_rate", 1e6), "GS/s": ("sample_rate", 1e9),
    "m": ("length", 1.0), "cm": ("length", 1e-2), "mm": ("length", 1e-3),
    "um": ("length", 1e-6), "nm": ("length", 1e-9),
    "m2": ("area", 1.0), "mm2": ("area", 1e-6), "um2": ("area", 1e-12),
    "dB": ("dB", 1.0), "dB/m": ("dB_per_length", 1.0), "dB/cm": ("dB_per_length", 100.0),
    "dBm": ("dBm", 1.0),
    "A/W": ("responsivity", 1.0),
    "A": ("current", 1.0), "mA": ("current", 1e-3), "uA": ("current", 1e-6),
    "nA": ("current", 1e-9),
    "Ohm": ("resistance", 1.0), "kOhm": ("resistance", 1e3),
    "V/A": ("transimpedance", 1.0),
    "K": ("temperature", 1.0),
    "rad": ("angle", 1.0),
    "": ("dimensionless", 1.0),
    "bits": ("bits", 1.0),
}
# SI unit written for a plain-number override of each dimension
_SI_UNIT = {dim: u for u, (dim, f) in UNITS.items() if f == 1.0}


class CardError(ValueError):
    """A device card (or an override) is malformed; the message is one line."""


def _q(dim: str, **kw: Any) -> Any:
    """A physical leaf of dimension ``dim`` (see UNITS)."""
    return Field(json_schema_extra={"dim": dim}, **kw)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PhaseShifterCard(_Section):
    kind: Literal["thermo_optic", "mems", "electro_optic"]
    v_pi: float = _q("voltage", gt=0)
    v_max: float = _q("voltage", gt=0)
    p_pi: float = _q("power", ge=0)
    settle_time: float = _q("time", ge=0)
    insertion_loss: float = _q("dB", ge=0)
    area: float = _q("area", ge=0)
    bits: int = _q("bits", ge=1, le=32)
    gamma_noise_std: float = _q("dimensionless", ge=0, le=1)
    bias_range: float = _q("angle", ge=0)
    dynamic_noise_std: float = _q("angle", ge=0)


class CouplerCard(_Section):
    kappa: float = _q("dimensionless", ge=0, le=1)
    imbalance_std: float = _q("dimensionless", ge=0, le=1)
    insertion_loss: float = _q("dB", ge=0)
    area: float = _q("area", ge=0)


class WaveguideCard(_Section):
    loss: float = _q("dB_per_length", ge=0)
    mzi_pitch: float = _q("length", gt=0)


class CrossingCard(_Section):
    insertion_loss: float = _q("dB", ge=0)
    crosstalk: float = _q("dB", le=0)
    area: float = _q("area", ge=0)


class CrosstalkCard(_Section):
    model: Literal["kernel", "distance"]
    factor: float = _q("dimensionless", default=0.005, ge=0, le=1)
    decay_length: float = _q("length", gt=0)


class PhotodetectorCard(_Section):
    responsivity: float = _q("responsivity", gt=0)
    dark_current: float = _q("current", ge=0)
    bandwidth: float = _q("frequency", gt=0)
    load_resistance: float = _q("resistance", gt=0)
    temperature: float = _q("temperature", gt=0)
    sensitivity: float = _q("dBm")
    area: float = _q("area", ge=0)
    readout: Literal["intensity", "coherent"] = "intensity"


class TIACard(_Section):
    gain: float = _q("transimpedance", gt=0)
    power: float = _q("power", ge=0)
    area: float = _q("area", ge=0)


class ADCCard(_Section):
    bits: int = _q("bits", ge=1, le=32)
    sample_rate: float = _q("sample_rate", gt=0)
    power: float = _q("power", ge=0)
    area: float = _q("area", ge=0)
    full_scale: float = _q("voltage", gt=0)


class DACCard(_Section):
    bits: int = _q("bits", ge=1, le=32)
    sample_rate: float = _q("sample_rate", gt=0)
    power: float = _q("power", ge=0)
    area: float = _q("area", ge=0)


class ModulatorCard(_Section):
    insertion_loss: float = _q("dB", ge=0)
    energy_per_symbol: float = _q("energy", ge=0)
    area: float = _q("area", ge=0)


class LaserCard(_Section):
    wall_plug_efficiency: float = _q("dimensionless", gt=0, le=1)
    max_power: float = _q("power", gt=0)
    area: float = _q("area", ge=0)


class DeviceCard(_Section):
    """A validated device card; every number is an SI float (see module docstring)."""

    name: str
    description: str
    wavelength: float = _q("length", gt=0)
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

    _refs: dict[str, str] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """The file the card was loaded from."""
        return self._source

    def ref(self, path: str) -> str:
        """The ``ref:`` string of the leaf at dotted ``path`` (e.g. ``"phase_shifter.p_pi"``)."""
        try:
            return self._refs[path]
        except KeyError:
            raise CardError(
                f"{self._source}: {path}: no such figure{_did_you_mean(path, self._refs)}"
                f" (allowed: {', '.join(sorted(self._refs))})"
            ) from None

    def refs(self) -> dict[str, str]:
        """All refs, keyed by dotted path."""
        return dict(self._refs)

    def to_dict(self) -> dict[str, Any]:
        """The card as nested plain dicts of SI values."""
        return self.model_dump()


def list_device_cards() -> list[str]:
    """Names of the cards shipped in ``<repo>/devices/``."""
    return sorted(p.stem for p in DEVICES_DIR.glob("*.yaml"))


def load_device_card(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> DeviceCard:
    """Load, convert to SI and validate a device card (a bare name or a path to a YAML file)."""
    path = _resolve(name_or_path)
    src = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        msg = " ".join(str(exc).split())
        raise CardError(f"{src}: <root>: not valid YAML: {msg} (allowed: a YAML mapping)") from None
    if not isinstance(raw, dict):
        raise CardError(
            f"{src}: <root>: card must be a mapping of sections, got {type(raw).__name__}"
            f" (allowed: mapping with keys {', '.join(DeviceCard.model_fields)})"
        )
    for key, value in (overrides or {}).items():
        _apply_override(raw, key, value, src)
    values, refs, shown = _convert(raw, DeviceCard, "", src)
    try:
        card = DeviceCard.model_validate(values)
    except ValidationError as exc:
        raise _validation_error(exc, src, shown) from None
    card._refs = refs
    card._source = src
    return card


# ---------------------------------------------------------------- internals


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(text)
    else:
        path = DEVICES_DIR / f"{text}.yaml"
    if not path.is_file():
        raise CardError(
            f"{path}: <root>: no such device card{_did_you_mean(path.stem, list_device_cards())}"
            f" (allowed: {', '.join(list_device_cards())} or a path to a .yaml file)"
        )
    return path


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def _dims(model: type[BaseModel], name: str) -> str | None:
    extra = model.model_fields[name].json_schema_extra
    return extra.get("dim") if isinstance(extra, dict) else None


def _units_for(dim: str) -> str:
    return ", ".join(repr(u) for u, (d, _) in UNITS.items() if d == dim)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _convert(raw: dict, model: type[BaseModel], prefix: str, src: str):
    """Raw YAML mapping → (SI values for pydantic, refs by path, display strings by path)."""
    values: dict[str, Any] = {}
    refs: dict[str, str] = {}
    shown: dict[str, str] = {}
    fields = model.model_fields
    for key, item in raw.items():
        path = f"{prefix}{key}"
        if key not in fields:
            raise CardError(
                f"{src}: {path}: unknown key{_did_you_mean(str(key), fields)}"
                f" (allowed: {', '.join(fields)})"
            )
        sub = fields[key].annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            if not isinstance(item, dict):
                raise CardError(
                    f"{src}: {path}: section must be a mapping, got {type(item).__name__}"
                    f" (allowed: mapping with keys {', '.join(sub.model_fields)})"
                )
            v, r, s = _convert(item, sub, f"{path}.", src)
            values[key], refs, shown = v, refs | r, shown | s
        elif (dim := _dims(model, key)) is not None:
            values[key], refs[path], shown[path] = _leaf(item, dim, path, src)
        else:
            values[key] = item
            shown[path] = repr(item)
    return values, refs, shown


def _leaf(item: Any, dim: str, path: str, src: str) -> tuple[float | int, str, str]:
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
        what = "unknown unit" if unit not in UNITS else f"a {UNITS[unit][0]} unit, not {dim}:"
        raise CardError(f"{src}: {path}.unit: {what} {unit!r} (allowed: {_units_for(dim)})")
    value = item["value"]
    if not _is_number(value):
        raise CardError(f"{src}: {path}.value: {value!r} is not a number (allowed: a finite real number)")
    if dim == "bits":
        if float(value) != int(value):
            raise CardError(f"{src}: {path}.value: {value!r} is not an integer (allowed: integer >= 1)")
        return int(value), ref, f"{value} bits"
    si = float(f"{float(value) * UNITS[unit][1]:.15g}")  # 10 us → 1e-05, not 9.999999999999999e-06
    return si, ref, f"{value} {unit}".strip()


def _apply_override(raw: dict, key: str, value: Any, src: str) -> None:
    parts = str(key).split(".")
    model: type[BaseModel] = DeviceCard
    node = raw
    for i, part in enumerate(parts):
        path = ".".join(parts[: i + 1])
        fields = model.model_fields
        if part not in fields:
            raise CardError(
                f"{src}: override {path}: unknown key{_did_you_mean(part, fields)}"
                f" (allowed: {', '.join(fields)})"
            )
        sub = fields[part].annotation
        last = i == len(parts) - 1
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            if last:
                raise CardError(f"{src}: override {path}: is a section, not a figure (allowed: {path}.<field>)")
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node, model = node[part], sub
            continue
        if not last:
            raise CardError(f"{src}: override {path}: is a figure, not a section (allowed: {path})")
        dim = _dims(model, part)
        if dim is None or isinstance(value, dict):
            node[part] = dict(value, ref=value.get("ref", "override")) if isinstance(value, dict) else value
        else:
            node[part] = {"value": value, "unit": _SI_UNIT[dim], "ref": "override"}


def _allowed(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    choices = get_args(info.annotation)
    if choices:
        return "one of " + ", ".join(map(str, choices))
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
        return "mapping with keys " + ", ".join(info.annotation.model_fields)
    if info.annotation is str:
        return "a string"
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, (at.Ge, at.Gt)):
            lo = (">=" if isinstance(m, at.Ge) else ">", getattr(m, "ge", getattr(m, "gt", None)))
        elif isinstance(m, (at.Le, at.Lt)):
            hi = ("<=" if isinstance(m, at.Le) else "<", getattr(m, "le", getattr(m, "lt", None)))
    x = "integer" if info.annotation is int else "x"
    dim = _dims(model, name)
    unit = f" {_SI_UNIT[dim]}" if dim and _SI_UNIT.get(dim) else ""
    if lo and hi:
        flip = {">=": "<=", ">": "<"}
        return f"{lo[1]} {flip[lo[0]]} {x} {hi[0]} {hi[1]}{unit}"
    if lo or hi:
        op, bound = lo or hi
        return f"{x} {op} {bound}{unit}"
    return f"any {x}{unit}"


def _validation_error(exc: ValidationError, src: str, shown: dict[str, str]) -> CardError:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    path = ".".join(loc)
    model: type[BaseModel] = DeviceCard
    for part in loc[:-1]:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    name = loc[-1]
    if err["type"] == "missing":
        what = "missing"
    else:
        what = f"{shown.get(path, repr(err.get('input')))} is invalid: {err['msg'].lower()}"
    allowed = _allowed(model, name) if name in model.model_fields else "see DeviceCard"
    return CardError(f"{src}: {path}: {what} (allowed: {allowed})")
