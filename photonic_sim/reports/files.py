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


def _cell(text: str) -> int | float | str | None:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_history(path: Path) -> list[dict]:
    """metrics.csv back as rows (ints, floats, None for empty cells)."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def save_phases(path: Path, phases_by_mesh: dict[str, np.ndarray]) -> None:
    np.savez(path, **{name: np.asarray(p, dtype=float) for name, p in phases_by_mesh.items()})


def load_phases(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def collect_versions() -> dict[str, str]:
    """The ``versions`` block of report.json (the builder's :func:`~photonic_sim.scenarios.experiment.versions`)."""
    from photonic_sim.scenarios.experiment import versions

    return versions()
