"""report.md and report.html (self-contained: CSS inline, figures as base64 PNG data URIs).

Both are rendered from the same sections built from report.json and the run's
scenario.resolved.yaml: first what produced the run (scenario, device card, accelerator,
model, recipe / strategy, steps, seed, package version, how training ended; a run that
stopped early says where and why above everything), then its headline numbers, then the
details. A cost-only run (``task.kind: none``) has no training section, figure or history
line. Numbers are shown in engineering units (mW, pJ, µs, mm²); every figure has a caption
that says what it shows. The HTML uses the page width (sections and figures flow into
columns, images never wider than the page). ``render(run_dir)`` re-renders figures/, report.md and
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
import yaml

from .figures import Figure, make_figures
from .files import PHASES_FILE, ReportError, load_phases, read_history, validate_report
from .summary import COMPLETED, DIGITS, cost_only, numbers, provenance, stopped
from .units import eng, number

Table = tuple[list[str], list[list[str]]]  # header, rows
RESOLVED_FILE = "scenario.resolved.yaml"
_RESOLVED_MAX_BYTES = 4_000_000


def load_resolved(path: Path) -> dict | None:
    """The run's scenario.resolved.yaml as a dict (None when the file is missing)."""
    if not path.is_file():
        return None
    allowed = "(allowed: the scenario.resolved.yaml that photonic-sim run wrote)"
    if path.stat().st_size > _RESOLVED_MAX_BYTES:
        raise ReportError(f"{path}: <root>: larger than {_RESOLVED_MAX_BYTES:,} bytes {allowed}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise ReportError(f"{path}: <root>: not valid YAML {allowed}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: <root>: not a mapping {allowed}")
    return data


def mesh_info(resolved: dict | None) -> dict[str, dict]:
    """``layer{l}.core{c}`` → ``{"kind", "shape": (rows, cols)}`` of every hardware matrix of the
    resolved scenario's model, as ``cores.spec.LayerSpec.matrix_shapes`` places them (TT core
    c: (r_c·m_c, n_c·r_(c+1)); dense: (out_features, in_features)). Empty when unknown."""
    model = (resolved or {}).get("model")
    layers = model.get("layers") if isinstance(model, dict) else None
    out: dict[str, dict] = {}
    for li, layer in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(layer, dict):
            continue
        kind = str(layer.get("kind"))
        try:
            if kind == "dense":
                shapes = [(int(layer["out_features"]), int(layer["in_features"]))]
            else:
                r, m, n = layer["ranks"], layer["out_modes"], layer["in_modes"]
                shapes = [(int(r[c]) * int(m[c]), int(n[c]) * int(r[c + 1])) for c in range(len(m))]
        except (KeyError, TypeError, ValueError, IndexError):
            shapes = []
        for ci, shape in enumerate(shapes):
            out[f"layer{li}.core{ci}"] = {"kind": kind, "shape": shape}
        if not shapes:
            out[f"layer{li}.core0"] = {"kind": kind}
    return out


def _parts_table(energy: dict[str, float], latency: dict[str, float]) -> Table:
    names = list(dict.fromkeys([*energy, *latency]))
    return ["component", "energy", "latency"], [[n, eng(energy.get(n), "J", DIGITS), eng(latency.get(n), "s", DIGITS)] for n in names]


def status_line(report: dict) -> str | None:
    """One sentence on where and why training stopped, for runs that did not complete."""
    if cost_only(report) or stopped(report) == COMPLETED:
        return None
    tr = report["training"]
    where = f" after {number(tr['steps'])} steps and {number(tr['queries'])} chip queries" if "steps" in tr else ""
    failed = tr.get("status") == "diverged" or stopped(report).startswith("diverged")
    return f"{'Run failed: training diverged' if failed else 'Training stopped early'}{where}: {stopped(report)}."


def sections(report: dict, resolved: dict | None = None) -> list[tuple[str, list[Table]]]:
    """(heading, tables) in display order: what produced the run, its headline numbers, then
    the details (a cost-only run has no training section)."""
    inf, tr, area = report["inference"], report["training"], report["area_mm2"]
    train = [
        ["chip queries", number(tr["queries"])],
        ["energy", eng(tr["energy_j"], "J", DIGITS)],
        ["chip time (latency)", eng(tr["latency_s"], "s", DIGITS)],
        ["average power", eng(tr["energy_j"] / tr["latency_s"], "W", DIGITS) if tr["latency_s"] > 0 else "—"],
        ["simulation wall time", eng(tr["wall_s"], "s", DIGITS)],
    ]
    inference = [["energy per inference", eng(inf["energy_j"], "J", DIGITS)], ["latency per inference", eng(inf["latency_s"], "s", DIGITS)]]
    area_rows = [[k, f"{v:.4g} mm²"] for k, v in area["breakdown"].items()] + [["total", f"{area['total']:.4g} mm²"]]
    out = [
        ("Run", [(["item", "value"], [list(r) for r in provenance(report, resolved)])]),
        ("Results", [(["quantity", "value"], [list(r) for r in numbers(report)])]),
        ("Hardware counts", [(["device", "count"], [[k, number(v)] for k, v in report["counts"].items()])]),
        ("Area", [(["component", "area"], area_rows)]),
        ("Inference", [(["item", "value"], inference), _parts_table(inf["breakdown"]["energy_j"], inf["breakdown"]["latency_s"])]),
    ]
    if not cost_only(report):
        out.append(("Training", [(["item", "value"], train),
                                 _parts_table(tr["breakdown"]["energy_j"], tr["breakdown"]["latency_s"])]))
    out.append(("Versions", [(["package", "version"], [[k, str(v)] for k, v in report["versions"].items()])]))
    return out


def _title(report: dict) -> str:
    kind = "cost report" if cost_only(report) else "run report"
    return f"photonic-sim {kind}: {report['scenario']}" + (f" / {report['variant']}" if report.get("variant") else "")


def to_markdown(report: dict, figures: dict[str, Figure], resolved: dict | None = None) -> str:
    out = [f"# {_title(report)}", ""]
    status = status_line(report)
    if status:
        out += [f"> **{status}**", ""]
    for heading, tables in sections(report, resolved):
        out += [f"## {heading}", ""]
        for header, rows in tables:
            out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
            out.append("")
    if figures:
        out += ["## Figures", ""]
        for i, (name, fig) in enumerate(figures.items(), 1):
            out += [f"![{fig.caption}](figures/{name})", "", f"*Figure {i}. {fig.caption}*", ""]
    if not cost_only(report):
        out.append(f"Per-step history: `{report['metrics']['history_file']}`.")
    return "\n".join(out).rstrip("\n") + "\n"


_CSS = """*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:1.5em auto;padding:0 2vw;max-width:2000px;color:#222;line-height:1.4}
h1{font-size:1.6em;margin:.2em 0 .6em}h2{margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
.status{background:#fff3cd;border:1px solid #e0b100;padding:.6em 1em;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:0 2.5em;align-items:flex-start}.grid>section{flex:1 1 360px;min-width:0}
table{border-collapse:collapse;margin:.5em 0 1em;max-width:100%}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}td:last-child{font-variant-numeric:tabular-nums}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,640px),1fr));gap:1.5em}
figure{margin:0}figure.wide{grid-column:1/-1}img{max-width:100%;height:auto;display:block}figcaption{font-size:.92em;color:#444;margin-top:.3em}"""


WIDE_PX = 1100  # figures wider than this (two panels, heatmaps) take a whole row of the figure grid


def _png_width(png: bytes) -> int:
    """Pixel width from the PNG header (0 if it is not a PNG)."""
    return int.from_bytes(png[16:20], "big") if png[12:16] == b"IHDR" else 0


def to_html(report: dict, figures: dict[str, Figure], resolved: dict | None = None) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{e(_title(report))}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{e(_title(report))}</h1>"]
    status = status_line(report)
    if status:
        out.append(f'<p class="status">{e(status)}</p>')
    out.append('<div class="grid">')
    for heading, tables in sections(report, resolved):
        out.append(f"<section><h2>{e(heading)}</h2>")
        for header, rows in tables:
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
            out.append("</table>")
        out.append("</section>")
    out.append("</div>")
    if figures:
        out.append('<h2>Figures</h2><div class="figures">')
        for i, fig in enumerate(figures.values(), 1):
            data = base64.b64encode(fig.png).decode("ascii")
            wide = ' class="wide"' if _png_width(fig.png) > WIDE_PX else ""
            out.append(f'<figure{wide}><img alt="{e(fig.caption)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>Figure {i}. {e(fig.caption)}</figcaption></figure>")
        out.append("</div>")
    if not cost_only(report):
        out.append(f"<p>Per-step history: <code>{e(report['metrics']['history_file'])}</code>.</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_into(directory: Path, report: dict, history: list[dict], phases_by_mesh: dict[str, np.ndarray] | None,
                resolved: dict | None = None) -> None:
    """Write figures/*.png, report.md and report.html into ``directory``; ``resolved`` (the
    scenario.resolved.yaml dict) defaults to ``directory``'s own file when it has one."""
    if resolved is None:
        resolved = load_resolved(directory / RESOLVED_FILE)
    figures = make_figures(report, history, phases_by_mesh, mesh_info(resolved))
    fig_dir = directory / "figures"
    fig_dir.mkdir()
    for name, fig in figures.items():
        (fig_dir / name).write_bytes(fig.png)
    (directory / "report.md").write_text(to_markdown(report, figures, resolved), encoding="utf-8")
    (directory / "report.html").write_text(to_html(report, figures, resolved), encoding="utf-8")


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
    except (UnicodeDecodeError, RecursionError, OSError) as exc:
        raise ReportError(f"{report_path}: <root>: not readable JSON text ({type(exc).__name__}) "
                          "(allowed: the report.json that photonic-sim run wrote)") from None
    validate_report(report, str(report_path))
    history_path = run / report["metrics"]["history_file"]
    history = read_history(history_path) if history_path.is_file() else []
    tmp = Path(tempfile.mkdtemp(prefix=".render-", dir=run))
    try:
        render_into(tmp, report, history, load_phases(run / PHASES_FILE), load_resolved(run / RESOLVED_FILE))
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
