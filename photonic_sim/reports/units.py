"""Engineering units for reports only (the code everywhere else is SI).

``eng(1.5e-12, "J")`` → ``"1.5 pJ"``; ``scale(values, "s")`` → ``(1e6, "µs")`` picks one prefix
for an axis so the largest value reads between 1 and 1000.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

_PREFIXES = [(1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G")]


def _prefix(x: float) -> tuple[float, str]:
    """(multiplier, prefix) with 1 <= |x|·multiplier < 1000 where possible."""
    if x == 0 or not math.isfinite(x):
        return 1.0, ""
    for factor, name in reversed(_PREFIXES):
        if abs(x) >= factor * (1 - 1e-12):
            return 1.0 / factor, name
    return 1.0 / _PREFIXES[0][0], _PREFIXES[0][1]


def eng(value: float | None, unit: str, digits: int = 3) -> str:
    """``value`` (SI) with an SI prefix, ``digits`` significant figures; ``—`` for None."""
    if value is None:
        return "—"
    mult, name = _prefix(float(value))
    return f"{float(value) * mult:.{digits}g} {name}{unit}"


def scale(values: Iterable[float], unit: str) -> tuple[float, str]:
    """(multiplier, unit label) for plotting ``values`` (SI) on one axis."""
    biggest = max((abs(float(v)) for v in values), default=0.0)
    mult, name = _prefix(biggest)
    return mult, f"{name}{unit}"


def number(value: float | int | None, digits: int = 4) -> str:
    """A plain number for tables (integers with thousands separators)."""
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):.{digits}g}"
