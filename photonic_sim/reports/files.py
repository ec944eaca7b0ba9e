"""The files of a run directory: report.json (checked against schema.json), metrics.csv, phases.

metrics.csv has one row per logged step with columns ``step, queries, loss, metric,
energy_j, latency_s`` (energy and latency are cumulative over the run so far, SI units;
``metric`` is empty on steps without an evaluation), then any extra columns the rows carry.
"""

from __future__ import annotations

import csv
import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from photonic_sim.devices.yamlread import preview

SCHEMA_PATH = Path(__file__).with_name("schema.json")
HISTORY_COLUMNS = ("step", "queries", "loss", "metric", "energy_j", "latency_s")
PHASES_FILE = "checkpoint/phases_by_mesh.npz"


class ReportError(ValueError):
    """A report, history or run directory is malformed; the message is one line."""


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_report(report: dict, where: str = "report.json") -> None:
    """Raise :class:`ReportError` (``report.json: metrics.final: … (schema: …)``) unless
    ``report`` matches schema.json and every number in it is finite."""
    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(report), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        path = ".".join(str(p) for p in e.path) or "<root>"
        rule = f"{e.validator}: {json.dumps(e.validator_value)}" if e.validator != "$ref" else "schema"
        raise ReportError(" ".join(f"{where}: {path}: {e.message} (schema {rule})".split()))
    bad = _non_finite(report, "")
    if bad:
        raise ReportError(f"{where}: {bad}: not a finite number (allowed: finite numbers; use null for a missing metric)")


def _non_finite(obj: Any, path: str) -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path or "<root>"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def check_history(history: list[dict]) -> list[dict]:
    """The rows as plain dicts; each must hold every column of HISTORY_COLUMNS."""
    rows = []
    for i, row in enumerate(history):
        missing = [c for c in HISTORY_COLUMNS if c not in row]
        if missing:
            raise ReportError(f"history[{i}]: missing {', '.join(missing)} (allowed: rows with {', '.join(HISTORY_COLUMNS)})")
        rows.append(dict(row))
    return rows


def write_history(path: Path, rows: list[dict]) -> None:
    columns = list(HISTORY_COLUMNS) + sorted({k for r in rows for k in r} - set(HISTORY_COLUMNS))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})


def _cell(text: str | None) -> int | float | str | None:
    if text is None or text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_history(path: Path) -> list[dict]:
    """metrics.csv back as rows (ints, floats, None for empty cells). :class:`ReportError` (one
    line naming the file and the row) unless it is a table whose rows hold every column of
    HISTORY_COLUMNS as a number or an empty cell."""
    allowed = f"(allowed: the metrics.csv that photonic-sim run wrote: columns {', '.join(HISTORY_COLUMNS)}, numbers)"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            raw = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReportError(f"{path}: <root>: not a readable CSV table ({type(exc).__name__}) {allowed}") from None
    rows = []
    for i, row in enumerate(raw):
        line = i + 2  # the header is line 1
        if None in row or None in row.values():
            raise ReportError(f"{path}: line {line}: not as many cells as the header has columns {allowed}")
        missing = [c for c in HISTORY_COLUMNS if c not in row]
        if missing:
            raise ReportError(f"{path}: <root>: no column {missing[0]} {allowed}")
        cells = {k: _cell(v) for k, v in row.items()}
        bad = next((c for c in HISTORY_COLUMNS if isinstance(cells[c], str)), None)
        if bad is not None:
            raise ReportError(f"{path}: line {line}: {bad}: not a number {allowed}")  # (the cell is not echoed)
        rows.append(cells)
    return rows


def save_phases(path: Path, phases_by_mesh: dict[str, np.ndarray]) -> None:
    np.savez(path, **{name: np.asarray(p, dtype=float) for name, p in phases_by_mesh.items()})


def load_phases(path: Path) -> dict[str, np.ndarray]:
    """The phases of each mesh in ``path`` (an .npz of real arrays; empty when absent);
    :class:`ReportError` (one line naming the file) for a file that is not such an archive.
    Read with ``allow_pickle=False``: an object array is refused, never unpickled."""
    if not path.is_file():
        return {}
    allowed = "(allowed: the phases_by_mesh.npz that photonic-sim run wrote: arrays of real numbers)"
    try:
        with np.load(path, allow_pickle=False) as data:
            phases = {name: data[name] for name in data.files}
    except Exception as exc:  # not a zip, a truncated member, an object array: one line, whatever numpy raises
        raise ReportError(f"{path}: <root>: not a readable .npz archive ({type(exc).__name__}) {allowed}") from None
    for name, a in phases.items():
        if not isinstance(a, np.ndarray) or a.size == 0 or not (np.issubdtype(a.dtype, np.integer)
                                                                or np.issubdtype(a.dtype, np.floating)):
            shown = preview(name)
            raise ReportError(f"{path}: {shown}: an array of {getattr(a, 'dtype', type(a).__name__)} "
                              f"{getattr(a, 'shape', '')} {allowed}")
    return phases


def collect_versions() -> dict[str, str]:
    """The ``versions`` block of report.json (the builder's :func:`~photonic_sim.scenarios.experiment.versions`)."""
    from photonic_sim.scenarios.experiment import versions

    return versions()
