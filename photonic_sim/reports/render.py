"""report.md and report.html (self-contained: CSS inline, figures as base64 PNG data URIs).

Both are rendered from the same sections built from report.json; numbers are shown in
engineering units (mW, pJ, µs, mm²). ``render(run_dir)`` re-renders figures/, report.md and
report.html of an existing run directory from report.json, metrics.csv and
checkpoint/phases_by_mesh.npz (``photonic-sim report RUN_DIR``).
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .figures import make_figures
from .files import PHASES_FILE, ReportError, load_phases, read_history, validate_report
from .units import eng, number

Table = tuple[list[str], list[list[str]]]  # header, rows


def _parts_table(energy: dict[str, float], latency: dict[str, float]) -> Table:
    names = list(dict.fromkeys([*energy, *latency]))
    return ["component", "energy", "latency"], [[n, eng(energy.get(n), "J"), eng(latency.get(n), "s")] for n in names]


def sections(report: dict) -> list[tuple[str, list[Table]]]:
    """(heading, tables) in display order."""
    m, inf, tr, area = report["metrics"], report["inference"], report["training"], report["area_mm2"]
    task = ", ".join(f"{k}={v}" for k, v in report["task"].items())
    summary = [
        ["scenario", report["scenario"] + (f" / {report['variant']}" if report.get("variant") else "")],
        ["seed", str(report["seed"])],
        ["task", task],
        [f"{m['name']} (final)", number(m["final"])],
        [f"{m['name']} (best)", number(m["best"])],
    ]
    train = [
        ["chip queries", number(tr["queries"])],
        ["energy", eng(tr["energy_j"], "J")],
        ["chip time (latency)", eng(tr["latency_s"], "s")],
        ["average power", eng(tr["energy_j"] / tr["latency_s"], "W") if tr["latency_s"] > 0 else "—"],
        ["simulation wall time", eng(tr["wall_s"], "s")],
    ]
    inference = [["energy per inference", eng(inf["energy_j"], "J")], ["latency per inference", eng(inf["latency_s"], "s")]]
    area_rows = [[k, f"{v:.4g} mm²"] for k, v in area["breakdown"].items()] + [["total", f"{area['total']:.4g} mm²"]]
    return [
        ("Summary", [(["item", "value"], summary)]),
        ("Hardware counts", [(["device", "count"], [[k, number(v)] for k, v in report["counts"].items()])]),
        ("Area", [(["component", "area"], area_rows)]),
        ("Inference", [(["item", "value"], inference), _parts_table(inf["breakdown"]["energy_j"], inf["breakdown"]["latency_s"])]),
        ("Training", [(["item", "value"], train), _parts_table(tr["breakdown"]["energy_j"], tr["breakdown"]["latency_s"])]),
        ("Versions", [(["package", "version"], [[k, str(v)] for k, v in report["versions"].items()])]),
    ]


def _title(report: dict) -> str:
    return f"photonic-sim report: {report['scenario']}" + (f" / {report['variant']}" if report.get("variant") else "")


def to_markdown(report: dict, figure_names: list[str]) -> str:
    out = [f"# {_title(report)}", ""]
    for heading, tables in sections(report):
        out += [f"## {heading}", ""]
        for header, rows in tables:
            out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
            out.append("")
    out += ["## Figures", ""] + [f"![{n}](figures/{n})" for n in figure_names] + [""]
    out.append(f"Per-step history: `{report['metrics']['history_file']}`.")
    return "\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0 1.5em}"""


def to_html(report: dict, figures: dict[str, bytes]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(_title(report))}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{e(_title(report))}</h1>"]
    for heading, tables in sections(report):
        out.append(f"<h2>{e(heading)}</h2>")
        for header, rows in tables:
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
            out.append("</table>")
    out.append("<h2>Figures</h2>")
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        out.append(f'<figure><img alt="{e(name)}" src="data:image/png;base64,{data}"><figcaption>{e(name)}</figcaption></figure>')
    out.append(f"<p>Per-step history: <code>{e(report['metrics']['history_file'])}</code>.</p></body></html>")
    return "\n".join(out) + "\n"


def render_into(directory: Path, report: dict, history: list[dict], phases_by_mesh: dict[str, np.ndarray] | None) -> None:
    """Write figures/*.png, report.md and report.html into ``directory``."""
    figures = make_figures(report, history, phases_by_mesh)
    fig_dir = directory / "figures"
    fig_dir.mkdir()
    for name, png in figures.items():
        (fig_dir / name).write_bytes(png)
    (directory / "report.md").write_text(to_markdown(report, list(figures)), encoding="utf-8")
    (directory / "report.html").write_text(to_html(report, figures), encoding="utf-8")


def render(run_dir: str | Path) -> Path:
    """Re-render figures/, report.md and report.html of ``run_dir`` from its data files.

    The new files are built in a temporary directory inside ``run_dir`` and then swapped in,
    so a failure leaves the previous rendering untouched.
    """
    run = Path(run_dir)
    report_path = run / "report.json"
    if not report_path.is_file():
        raise ReportError(f"{run}: report.json: missing (allowed: a run directory written by photonic-sim run)")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{report_path}: <root>: not valid JSON: {exc} (allowed: a JSON object)") from None
    validate_report(report, str(report_path))
    history_path = run / report["metrics"]["history_file"]
    history = read_history(history_path) if history_path.is_file() else []
    tmp = Path(tempfile.mkdtemp(prefix=".render-", dir=run))
    try:
        render_into(tmp, report, history, load_phases(run / PHASES_FILE))
        old = run / "figures"
        trash = tmp / "old-figures"
        if old.exists():
            os.rename(old, trash)
        try:
            os.rename(tmp / "figures", old)
        except OSError:
            if trash.exists():
                os.rename(trash, old)
            raise
        for name in ("report.md", "report.html"):
            os.replace(tmp / name, run / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return run
