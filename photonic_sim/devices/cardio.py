"""Card machinery shared by device cards and accelerator cards: a YAML file in, an SI model out.

A card is a YAML mapping whose physical figures are leaves ``{value: <number>, unit: "<unit>",
ref: "<source>"}``.  :func:`load_card` resolves a bare name (``<cards_dir>/<name>.yaml``) or a
path, reads the YAML safely, applies dotted overrides, converts every leaf to SI with
:data:`UNITS` (keeping its ``ref``), validates with a pydantic model built on :class:`CardBase`
and turns every problem into a one-line :class:`CardError`
``<file>: <dotted.key>: <what is wrong> (allowed: <range/values>)``.

A model declares a figure with :func:`quantity` (its dimension, one of those in UNITS) and a
group of fields as a :class:`Section`.  Overrides: a plain number for a figure is in SI units
(its ref becomes "override"); a mapping ``{value, unit[, ref]}`` is converted like a card leaf;
any other field takes the value as given.  The phrases in which the two kinds of card word
their messages differently come in a :class:`Wording`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from photonic_sim import library

from .yamlread import preview, read_yaml, short_path

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
    "rad/s": ("angle_rate", 1.0), "mrad/s": ("angle_rate", 1e-3),
    "rad2/s": ("angle_diffusion", 1.0), "mrad2/s": ("angle_diffusion", 1e-6),
    "1/m": ("per_length", 1.0), "1/um": ("per_length", 1e6), "1/nm": ("per_length", 1e9),
    "1/m2": ("per_length2", 1.0), "1/um2": ("per_length2", 1e12), "1/nm2": ("per_length2", 1e18),
    "": ("dimensionless", 1.0),
    "bits": ("bits", 1.0),
}
# SI unit written for a plain-number override of each dimension
SI_UNIT = {dim: u for u, (dim, f) in UNITS.items() if f == 1.0}


class CardError(ValueError):
    """A card (or an override) is malformed; the message is one line."""


def quantity(dim: str, **kw: Any) -> Any:
    """A pydantic field for a physical leaf ``{value, unit, ref}`` of dimension ``dim`` (see UNITS)."""
    return Field(json_schema_extra={"dim": dim}, **kw)


class Section(BaseModel):
    """A group of card fields: unknown keys are errors, the values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CardBase(Section):
    """A loaded card: SI values, the ``ref`` of every figure and the file it came from."""

    _refs: dict[str, str] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """The file the card was loaded from."""
        return self._source

    def ref(self, path: str) -> str:
        """The ``ref:`` string of the figure at dotted ``path`` (e.g. ``"phase_shifter.p_pi"``)."""
        if path not in self._refs:
            raise CardError(
                f"{self._source}: {path}: no such figure{did_you_mean(path, self._refs)}"
                f" (allowed: {', '.join(sorted(self._refs))})"
            )
        return self._refs[path]

    def refs(self) -> dict[str, str]:
        """All refs, keyed by dotted path."""
        return dict(self._refs)

    def to_dict(self) -> dict[str, Any]:
        """The card as nested plain dicts of SI values."""
        return self.model_dump()


@dataclass(frozen=True)
class Wording:
    """How one kind of card words the parts of its messages that differ between kinds.

    ``kind`` names the card ("no such <kind> card"); ``root`` is what the whole file must be
    ("card must be <root>, got list"); ``unit(unit, dim)`` says what is wrong with a unit that
    is not one of dimension ``dim``; ``invalid(error, model, field, written)`` says what is wrong
    with a value pydantic rejected (``error`` is pydantic's error dict, ``written`` the value as
    written in the card, None when absent); ``allowed(model, field)`` describes the allowed
    values of a field that is not a section.
    """

    kind: str
    root: str
    unit: Callable[[Any, str], str]
    invalid: Callable[[dict, type[BaseModel], str, str | None], str]
    allowed: Callable[[type[BaseModel], str], str]


C = TypeVar("C", bound=CardBase)


def list_cards(cards_dir: Path) -> list[str]:
    """Names of the ``*.yaml`` cards in ``cards_dir``."""
    return sorted(p.stem for p in cards_dir.glob("*.yaml"))


def load_card(
    name_or_path: str | Path,
    model_cls: type[C],
    cards_dir: Path,
    overrides: dict[str, Any] | None,
    wording: Wording,
) -> C:
    """Load, override, convert to SI and validate a card (a bare name in ``cards_dir`` or a path)."""
    path = _resolve(name_or_path, cards_dir, wording.kind)
    src = str(path)
    raw = read_yaml(path, _card_error)  # safe, bounded; duplicate keys and tags refused
    if not isinstance(raw, dict):
        raise CardError(
            f"{src}: <root>: card must be {wording.root}, got {type(raw).__name__}"
            f" (allowed: mapping with keys {', '.join(model_cls.model_fields)})"
        )
    for key, value in (overrides or {}).items():
        _apply_override(raw, model_cls, str(key), value, src)
    values, refs, shown = _convert(raw, model_cls, "", src, wording)
    try:
        card = model_cls.model_validate(values)
    except ValidationError as exc:
        raise _validation_error(exc, model_cls, shown, src, wording) from None
    card._refs, card._source = refs, src
    return card


def did_you_mean(word: Any, choices: Any, *, cutoff: float = 0.5) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (compared as strings, difflib
    ratio >= ``cutoff``), or ``""``. Only a short name (a string or number of at most 64
    characters) is compared: a user's list or long text gets no suggestion (and costs nothing)."""
    if isinstance(word, bool) or not isinstance(word, (str, int, float)) or len(str(word)) > 64:
        return ""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=cutoff)
    return f"; did you mean '{close[0]}'?" if close else ""


def dim_of(model: type[BaseModel], name: str) -> str | None:
    """The dimension of field ``name`` when it is a figure (see :func:`quantity`), else None."""
    extra = model.model_fields[name].json_schema_extra
    return extra.get("dim") if isinstance(extra, dict) else None


def sub_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The model of field ``name`` when it is a section, else None."""
    sub = model.model_fields[name].annotation
    return sub if isinstance(sub, type) and issubclass(sub, BaseModel) else None


# ---------------------------------------------------------------- internals


def _card_error(file: str, key: str, what: str, allowed: str) -> CardError:
    """A CardError in the card format, for :func:`photonic_sim.devices.yamlread.read_yaml`; its
    parts are kept (``file``, ``key``, ``what``, ``allowed``) for a caller that re-keys it."""
    err = CardError(f"{file}: {key}: {what} (allowed: {allowed})")
    err.file, err.key, err.what, err.allowed = file, key, what, allowed
    return err


def _finite(value: int | float) -> bool:
    """Whether a number is finite as a float (an integer beyond float range is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _name(key: Any) -> str:
    """A key as written in a card, cut to a short name for an error's key path."""
    text = key if isinstance(key, str) else preview(key)
    return text if len(text) <= 40 else text[:39] + "…"


def _resolve(name_or_path: str | Path, cards_dir: Path, kind: str) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(text)
    else:
        path = cards_dir / f"{text}.yaml"
    if not library.is_file(path):  # a name too long for the file system is no file either
        names = list_cards(cards_dir)
        raise CardError(
            f"{short_path(path)}: <root>: no such {kind} card{did_you_mean(path.stem, names)}"
            f" (allowed: {', '.join(names)} or a path to a .yaml file)"
        )
    return path


def _convert(raw: dict, model: type[BaseModel], prefix: str, src: str, wording: Wording):
    """Raw YAML mapping → (SI values for pydantic, refs by path, values as written by path)."""
    values: dict[str, Any] = {}
    refs: dict[str, str] = {}
    shown: dict[str, str] = {}
    fields = model.model_fields
    for key, item in raw.items():
        path = f"{prefix}{_name(key)}"
        if key not in fields:
            raise CardError(
                f"{src}: {path}: unknown key{did_you_mean(key, fields)}"
                f" (allowed: {', '.join(fields)})"
            )
        if (sub := sub_model(model, key)) is not None:
            if not isinstance(item, dict):
                raise CardError(
                    f"{src}: {path}: section must be a mapping, got {type(item).__name__}"
                    f" (allowed: mapping with keys {', '.join(sub.model_fields)})"
                )
            v, r, s = _convert(item, sub, f"{path}.", src, wording)
            values[key], refs, shown = v, refs | r, shown | s
        elif (dim := dim_of(model, key)) is not None:
            values[key], refs[path], shown[path] = _leaf(item, dim, path, src, wording)
        else:
            values[key] = item
            shown[path] = preview(item)
    return values, refs, shown


def _leaf(item: Any, dim: str, path: str, src: str, wording: Wording) -> tuple[float | int, str, str]:
    """A leaf ``{value, unit, ref}`` → (SI value, ref, value as written)."""
    form = "a mapping {value, unit, ref}"
    if not isinstance(item, dict):
        raise CardError(f"{src}: {path}: expected {form}, got {preview(item)} (allowed: {form})")
    for k in item:
        if k not in ("value", "unit", "ref"):
            raise CardError(
                f"{src}: {path}.{_name(k)}: unknown key{did_you_mean(k, ('value', 'unit', 'ref'))}"
                " (allowed: value, unit, ref)"
            )
    for k in ("value", "unit", "ref"):
        if k not in item:
            raise CardError(f"{src}: {path}: missing '{k}' (allowed: {form})")
    ref = item["ref"]
    if not isinstance(ref, str) or not ref.strip():
        raise CardError(f"{src}: {path}.ref: missing or empty ref (allowed: a non-empty source string)")
    unit = "" if item["unit"] is None else item["unit"]
    if not isinstance(unit, str) or unit not in UNITS or UNITS[unit][0] != dim:
        units = ", ".join(repr(u) for u, (d, _) in UNITS.items() if d == dim)
        raise CardError(f"{src}: {path}.unit: {wording.unit(unit, dim)} (allowed: {units})")
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise CardError(f"{src}: {path}.value: {preview(value)} is not a number (allowed: a finite real number)")
    if dim == "bits":
        if float(value) != int(value):
            raise CardError(f"{src}: {path}.value: {preview(value)} is not an integer (allowed: integer >= 1)")
        return int(value), ref, f"{preview(value)} bits"
    try:
        si = float(f"{float(value) * UNITS[unit][1]:.15g}")  # 10 us → 1e-05, not 9.999999999999999e-06
    except OverflowError:  # an integer beyond float range
        si = math.inf
    if not math.isfinite(si):
        raise CardError(f"{src}: {path}.value: {preview(value)} {unit} overflows in SI units"
                        f" (allowed: a value whose SI equivalent is a finite number)")
    return si, ref, f"{preview(value)} {unit}".strip()


def _apply_override(raw: dict, model: type[BaseModel], key: str, value: Any, src: str) -> None:
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts):
        path = ".".join(_name(p) for p in parts[: i + 1])
        fields = model.model_fields
        if part not in fields:
            raise CardError(
                f"{src}: override {path}: unknown key{did_you_mean(part, fields)}"
                f" (allowed: {', '.join(fields)})"
            )
        last = i == len(parts) - 1
        if (sub := sub_model(model, part)) is not None:
            if last:
                raise CardError(f"{src}: override {path}: is a section, not a figure (allowed: {path}.<field>)")
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node, model = node[part], sub
            continue
        if not last:
            raise CardError(f"{src}: override {path}: is a figure, not a section (allowed: {path})")
        dim = dim_of(model, part)
        if dim is None:
            node[part] = value
        elif isinstance(value, dict):
            node[part] = dict(value, ref=value.get("ref", "override"))
        else:
            node[part] = {"value": value, "unit": SI_UNIT[dim], "ref": "override"}


def _validation_error(
    exc: ValidationError, model: type[BaseModel], shown: dict[str, str], src: str, wording: Wording
) -> CardError:
    """The first pydantic error as one line, keyed by the dotted path of the field."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    parts: list[str] = []
    for i, p in enumerate(loc):  # union members add tags such as 'int' to the loc: stop there
        if p not in model.model_fields:
            break
        parts.append(p)
        sub = sub_model(model, p)
        if sub is None or i == len(loc) - 1:
            break
        model = sub
    name, path = parts[-1], ".".join(parts)
    what = "missing" if err["type"] == "missing" else wording.invalid(err, model, name, shown.get(path))
    if (sub := sub_model(model, name)) is not None:
        allowed = "mapping with keys " + ", ".join(sub.model_fields)
    else:
        allowed = wording.allowed(model, name)
    return CardError(f"{src}: {path}: {what} (allowed: {allowed})")
