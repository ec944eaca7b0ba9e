"""Write a run directory atomically.

Layout::

    <out_dir>/scenario.resolved.yaml   the scenario with cards and recipe expanded (SI)
    <out_dir>/report.json              checked against schema.json (SI units; area in mm²)
    <out_dir>/metrics.csv              per logged step: step, queries, loss, metric, energy_j, latency_s
    <out_dir>/report.md, report.html   html self-contained (figures embedded as base64 PNG)
    <out_dir>/figures/*.png            training curve, energy / area / latency breakdowns, phases
    <out_dir>/checkpoint/              the caller's files + phases_by_mesh.npz

Atomicity: everything is built in a hidden temporary sibling ``.<name>.tmp-*`` and renamed
into place at the end; on any failure the temporary directory is removed, so a run that dies
leaves no half report.

Existing ``out_dir`` policy: an empty directory is replaced; a non-empty one raises
:class:`FileExistsError` *before anything is written* unless ``overwrite=True``, in which case
the old directory is moved aside only once the new one is complete, the new one renamed into
place, and the old one deleted (a failure before that point leaves the old run untouched).
Call :func:`check_out_dir` before a long run to fail early.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml

from .files import PHASES_FILE, ReportError, check_history, save_phases, validate_report, write_history
from .render import render_into


def check_out_dir(out_dir: str | Path, overwrite: bool = False) -> None:
    """Raise FileExistsError if ``out_dir`` is a non-empty directory (or a file) and not ``overwrite``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a directory (allowed: a new or empty directory)")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: directory exists and is not empty (allowed: a new or empty directory, or overwrite)")


def write_run_dir(
    out_dir: str | Path,
    report: dict,
    history: list[dict],
    resolved_scenario: dict,
    phases_by_mesh: dict[str, np.ndarray] | None = None,
    checkpoint_files: dict[str, bytes] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the run directory (see module docstring) and return its path.

    Raises :class:`ReportError` (a ValueError) for a report that does not match schema.json,
    a history row without the required columns or a bad checkpoint file name, and
    FileExistsError per the existing-directory policy — all before anything is written.
    """
    out = Path(out_dir)
    validate_report(report)
    rows = check_history(history)
    checkpoint_files = dict(checkpoint_files or {})
    for name in checkpoint_files:
        if not name or "/" in name or "\\" in name or name.startswith(".") or f"checkpoint/{name}" == PHASES_FILE:
            raise ReportError(f"checkpoint_files: {name!r}: not a plain file name (allowed: a name without '/', not starting with '.', not {Path(PHASES_FILE).name})")
    check_out_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; the run dir gets normal permissions
        (tmp / "scenario.resolved.yaml").write_text(
            yaml.safe_dump(resolved_scenario, sort_keys=False, allow_unicode=True), encoding="utf-8")
        (tmp / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        write_history(tmp / "metrics.csv", rows)
        if checkpoint_files or phases_by_mesh:  # a cost-only run has nothing to put there
            (tmp / "checkpoint").mkdir()
        for name, data in checkpoint_files.items():
            (tmp / "checkpoint" / name).write_bytes(data)
        if phases_by_mesh:
            save_phases(tmp / PHASES_FILE, phases_by_mesh)
        render_into(tmp, report, rows, phases_by_mesh)
        _move_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    if out.is_dir() and any(out.iterdir()):
        check_out_dir(out, overwrite)  # may have appeared while we were writing
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, trash / "run")
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(trash / "run", out)
            shutil.rmtree(trash, ignore_errors=True)
            raise
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, out)  # onto a missing or empty directory
