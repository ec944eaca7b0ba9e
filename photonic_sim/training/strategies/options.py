"""Declarative option tables: each estimator and strategy lists its options ONCE, as
``{name: Option(...)}``, and :func:`check_options` checks a given mapping against the table.

An :class:`Option` is a default plus what values are allowed: a kind ("int", "float", "bool",
"choice", "pair", "list"), an optional closed/open interval, and whether ``None`` (YAML
``null``) is allowed. A bound may name a *context* value instead of a number (e.g. ``hi=
"n_active"``: the number of perturbable coordinates, known only once a strategy sits on its
phases); a bound whose context value is not given is not checked.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any


class OptionError(ValueError):
    """An option that a strategy's table does not allow (one line). ``key`` names it (a path
    under the recipe's ``strategy_options``, e.g. ``nnz`` or ``stages.1.q``), ``allowed`` says
    what it may be, ``what`` what is wrong; the scenario builder turns it into a
    ``ScenarioError`` naming the file and ``training.strategy_options.<key>``."""

    def __init__(self, message: str, key: str, what: str, allowed: str):
        super().__init__(message)
        self.key, self.what, self.allowed = key, what, allowed


@dataclass(frozen=True)
class Option:
    """One option: its default and its allowed values (see the module docstring)."""

    default: Any
    kind: str = "float"
    lo: float | str | None = None
    hi: float | str | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    nullable: bool = False
    doc: str = ""


def integer(default, lo=1, hi=None, *, nullable=False, doc="") -> Option:
    """An integer in [lo, hi] (hi None: unbounded)."""
    return Option(default, "int", lo, hi, nullable=nullable, doc=doc)


def positive(default, *, nullable=False, doc="") -> Option:
    """A finite number > 0."""
    return Option(default, "float", 0.0, None, lo_open=True, nullable=nullable, doc=doc)


def nonnegative(default, *, doc="") -> Option:
    """A finite number >= 0."""
    return Option(default, "float", 0.0, None, doc=doc)


def interval(default, lo, hi, *, lo_open=False, hi_open=False, doc="") -> Option:
    """A finite number in the interval lo..hi (open or closed at each end)."""
    return Option(default, "float", lo, hi, lo_open=lo_open, hi_open=hi_open, doc=doc)


def flag(default, *, doc="") -> Option:
    """true or false."""
    return Option(default, "bool", doc=doc)


def choice(default, choices, *, doc="") -> Option:
    """One of ``choices``."""
    return Option(default, "choice", choices=tuple(choices), doc=doc)


def did_you_mean(word, allowed) -> str:
    """' Did you mean 'x'?' for the closest allowed name, or '' when none is close."""
    close = difflib.get_close_matches(str(word), [str(a) for a in allowed], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def preview(value, limit: int = 40) -> str:
    """repr(value) cut to ``limit`` characters (errors never echo user data at length)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bound(bound, context: dict):
    return context.get(bound) if isinstance(bound, str) else bound


def _fmt(x) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def describe(spec: Option, context: dict | None = None) -> str:
    """What ``spec`` allows, in words (the tail of the error message)."""
    context = context or {}
    if spec.kind == "bool":
        text = "true or false"
    elif spec.kind == "choice":
        text = f"one of {spec.choices}"
    elif spec.kind == "pair":
        text = "a pair [a, b] of numbers in [0, 1)"
    elif spec.kind == "list":
        text = "a non-empty list"
    else:
        lo, hi = _bound(spec.lo, context), _bound(spec.hi, context)
        lo, hi = (None if b is None else _fmt(b) for b in (lo, hi))
        what = "an integer" if spec.kind == "int" else "a finite number"
        if lo is not None and hi is not None:
            text = f"{what} in {'(' if spec.lo_open else '['}{lo}, {hi}{')' if spec.hi_open else ']'}"
        elif lo is not None:
            text = f"{what} {'>' if spec.lo_open else '>='} {lo}"
        elif hi is not None:
            text = f"{what} {'<' if spec.hi_open else '<='} {hi}"
        else:
            text = what
    return f"null or {text}" if spec.nullable else text


def allowed(spec: Option, value, context: dict | None = None) -> bool:
    """Whether ``value`` is allowed by ``spec`` (bounds naming absent context are skipped)."""
    context = context or {}
    if value is None:
        return spec.nullable
    if spec.kind == "bool":
        return isinstance(value, bool)
    if spec.kind == "choice":
        return isinstance(value, str) and value in spec.choices
    if spec.kind == "pair":
        return (isinstance(value, (list, tuple)) and len(value) == 2
                and all(_number(v) and 0 <= v < 1 for v in value))
    if spec.kind == "list":
        return isinstance(value, (list, tuple)) and len(value) > 0
    if not _number(value) or (spec.kind == "int" and int(value) != value):
        return False
    lo, hi = _bound(spec.lo, context), _bound(spec.hi, context)
    if lo is not None and (value <= lo if spec.lo_open else value < lo):
        return False
    return not (hi is not None and (value >= hi if spec.hi_open else value > hi))


def check_options(owner: str, table: dict[str, Option], given: dict, context: dict | None = None,
                  extra_names: tuple = ()) -> dict:
    """``given`` checked against ``table``; returns the defaults updated by ``given``.

    :class:`OptionError` (a ValueError, one line) on an unknown key (naming the allowed ones and the closest) or a
    value out of range ("<key> must be <what>, got <preview>"). ``extra_names`` are names the
    caller accepts besides the table (listed in the unknown-key message only)."""
    for key in given:
        if key not in table:
            names = sorted(table) + sorted(extra_names)
            hint = did_you_mean(key, table)
            raise OptionError(f"{owner}: unknown option {key!r}; allowed: {names}.{hint}", str(key),
                              f"unknown option of {owner!r}{hint}", ", ".join(names))
    out = {key: spec.default for key, spec in table.items()}
    out.update(given)
    for key, value in out.items():
        spec = table[key]
        if not allowed(spec, value, context):
            hint = did_you_mean(value, spec.choices) if spec.kind == "choice" else ""
            what = describe(spec, context)
            raise OptionError(f"{key} must be {what}, got {preview(value)}" + (f".{hint}" if hint else ""), key,
                              f"{preview(value)} is not allowed{hint}", what)
        if spec.kind == "int" and value is not None:
            out[key] = int(value)
        elif spec.kind == "pair":
            out[key] = tuple(value)
    return out
