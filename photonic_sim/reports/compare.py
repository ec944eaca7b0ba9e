"""Summaries of many runs: strategy / variant comparisons and parameter sweeps.

``write_comparison`` writes ``comparison.json`` (one row per job: strategy or variant, seed,
metric, metric_final, queries, training_energy_j, training_latency_s, inference_energy_j,
inference_latency_s, area_mm2, mzi_blocked, wall_s, …), ``comparison.md`` (mean ± std per
group, then every job) and ``figures/convergence.png`` (metric vs queries and vs training
energy, mean with a min–max band across seeds). ``write_sweep`` writes ``sweep.json``,
``sweep.md`` and ``figures/sweep.png`` (final metric vs the first grid key). Files are written to
temporaries and renamed.

The JSON keeps numbers as numbers: grid values that arrive as ``--grid`` strings and look
like numbers (``8``, ``1e-3``) are stored as numbers, non-finite values as null; only the
markdown and the returned summary round them for display.

Cost-only jobs (``task.kind: none``: no training, metric "none") are summarised by what
they compute: inference energy and latency, area and MZI count per group; their figure is
``figures/costs.png`` (comparison) or ``figures/sweep.png`` showing inference energy and
area (sweep), never an empty training plot.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from photonic_sim.training.compare import summarize as numeric_summary

from .figures import _bars, _png
from .units import eng, number

ROW_KEYS = ("metric", "metric_final", "queries", "training_energy_j", "training_latency_s", "wall_s")
COST_FIELDS = (("inference_energy_j", "inference energy", "J"), ("inference_latency_s", "inference latency", "s"),
               ("area_mm2", "area", "mm²"), ("mzi_blocked", "MZIs", ""))
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def as_number(value):
    """``value`` as an int or float when it is a string that looks like a finite number
    (``"8"`` → 8, ``"1e-3"`` → 0.001); anything else unchanged."""
    if not isinstance(value, str) or not _NUMBER.fullmatch(value.strip()):
        return value
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    number_ = float(text)
    return number_ if math.isfinite(number_) else value


def typed_rows(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Copies of ``rows`` with the values of ``keys`` (grid keys, group keys) as numbers where
    they look like numbers (:func:`as_number`)."""
    return [{k: (as_number(v) if k in keys else v) for k, v in r.items()} for r in rows]


def cost_only(rows: list[dict]) -> bool:
    """True when every job that ran was a cost-only job (no training, metric "none")."""
    ok = [r for r in rows if "error" not in r]
    return bool(ok) and all(r.get("metric") == "none" for r in ok)


def _mean(values) -> float:
    good = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return statistics.fmean(good) if good else math.nan


def _cost_text(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "-"
    if unit == "mm²":
        return f"{number(value, 4)} mm²"
    return eng(value, unit, 4) if unit else number(round(value))


def summarize(rows: list[dict], group_by: tuple[str, ...]) -> list[dict]:
    """Per group (``training.compare.summarize``), formatted for the tables: runs "ok/all",
    final metric "mean ± std", mean queries and engineering-notation costs ("-" when none).
    Cost-only groups show mean inference energy, latency, area and MZI count instead."""
    rows = typed_rows(rows, tuple(group_by))
    only_costs = cost_only(rows)
    out = []
    for s in numeric_summary(rows, group_by):
        ok = s["runs"] - s["failed"]
        row = {k: s[k] for k in group_by}
        row["runs"] = f"{ok}/{s['runs']}"
        members = [r for r in rows if "error" not in r and all(r.get(k) == s[k] for k in group_by)]
        if only_costs:
            for field, label, unit in COST_FIELDS:
                row[label] = _cost_text(_mean(r.get(field) for r in members), unit)
            out.append(row)
            continue
        row["metric"] = s["metric"] if ok else "-"
        row["final (mean ± std)"] = (f"{s['metric_mean']:.4g} ± {s['metric_std']:.2g}"
                                     if math.isfinite(s["metric_mean"]) else "-")
        for field, unit in (("queries", ""), ("training_energy_j", "J"), ("training_latency_s", "s"), ("wall_s", "s")):
            v = s[field]
            row[field] = "-" if not math.isfinite(v) else (f"{v:.0f}" if field == "queries" else eng(v, unit, 4))
        out.append(row)
    return out


def write_comparison(out_dir: str | Path, rows: list[dict], group_by: tuple[str, ...] = ("strategy",)) -> list[dict]:
    out = Path(out_dir)
    rows = typed_rows(rows, tuple(group_by))
    summary = summarize(rows, group_by)
    figure = "figures/costs.png" if cost_only(rows) else "figures/convergence.png"
    files = {
        "comparison.json": _json(rows),
        "comparison.md": _markdown("Cost comparison" if cost_only(rows) else "Strategy comparison", summary, rows,
                                   group_by, figure),
        figure: costs_figure(rows, group_by) if cost_only(rows) else convergence_figure(rows, group_by),
    }
    _write_all(out, files)
    return summary


def write_sweep(out_dir: str | Path, rows: list[dict], keys: list[str]) -> list[dict]:
    out = Path(out_dir)
    rows = typed_rows(rows, tuple(keys))
    summary = summarize(rows, tuple(keys))
    files = {
        "sweep.json": _json(rows),
        "sweep.md": _markdown("Parameter sweep (costs only)" if cost_only(rows) else "Parameter sweep", summary, rows,
                              tuple(keys), "figures/sweep.png"),
        "figures/sweep.png": sweep_figure(rows, keys),
    }
    _write_all(out, files)
    return summary


def _group_label(r: dict, group_by: tuple[str, ...]) -> str:
    return " / ".join(str(r.get(k)) for k in group_by)


def convergence_figure(rows: list[dict], group_by: tuple[str, ...]) -> bytes:
    """Metric vs chip queries (left) and vs training energy in joules (right) per group: the
    mean across seeds on a common grid, min–max band. History points are ``[queries, metric]``
    or ``[queries, metric, energy_j]``; the energy panel shows the groups that have energies."""
    fig = Figure(figsize=(11, 4.2))
    ax_q, ax_e = fig.subplots(1, 2)
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if "error" not in r and r.get("history"):
            groups[_group_label(r, group_by)].append(r)
    metric = next((r["metric"] for r in rows if "metric" in r), "metric")
    many = len(groups) > 10  # past the 10-colour cycle: colour x dash, fainter bands, legend outside
    for i, (label, members) in enumerate(groups.items()):
        curves = [np.asarray([h[:3] + [math.nan] * (3 - len(h[:3])) for h in r["history"]], dtype=float)
                  for r in members]
        style = _style(i, many)
        _band(ax_q, [c[:, [0, 1]] for c in curves], f"{label} (n={len(members)})", **style)
        if all(np.isfinite(c[:, 2]).all() for c in curves):
            _band(ax_e, [c[:, [2, 1]] for c in curves], f"{label} (n={len(members)})", **style)
    ax_q.set_xlabel("chip queries")
    ax_e.set_xlabel("training energy (J)")
    ax_e.xaxis.set_major_formatter(EngFormatter(unit="J", sep=" "))
    for ax in (ax_q, ax_e):
        ax.set_ylabel(metric)
        ax.set_xlim(left=0)
        if metric in ("rel_l2", "relative_l2", "mse"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    ax_q.set_title("against queries (mean, band = min-max over seeds)")
    ax_e.set_title("against training energy")
    if groups and many:
        fig.set_size_inches(13.5, 4.6)
        fig.legend(*ax_q.get_legend_handles_labels(), loc="center right", fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0, 0.83, 1))
    else:
        if groups:
            ax_q.legend(fontsize=8)
        fig.tight_layout()
    return _png(fig)


_DASHES = ("-", "--", ":", "-.")


def _style(i: int, many: bool) -> dict:
    """Line style of the i-th group: the 10-colour cycle, and past 10 groups every colour again
    with another dash pattern (colour i mod 10, dash i div 10) and fainter bands, so no two
    groups look alike."""
    return {"color": f"C{i % 10}", "linestyle": _DASHES[(i // 10) % len(_DASHES)], "alpha": 0.08 if many else 0.2}


def _band(ax, curves: list[np.ndarray], label: str, color=None, linestyle: str = "-", alpha: float = 0.2):
    """Mean of [x, y] curves on a common x grid (the overlap of their ranges) and their min-max band."""
    top = min(c[-1, 0] for c in curves)
    grid = np.linspace(max(c[0, 0] for c in curves), top, 50) if top > 0 else np.array([0.0])
    ys = np.stack([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
    line, = ax.plot(grid, ys.mean(0), label=label, color=color, linestyle=linestyle)
    if len(curves) > 1:
        ax.fill_between(grid, ys.min(0), ys.max(0), color=line.get_color(), alpha=alpha)
    return line


def costs_figure(rows: list[dict], group_by: tuple[str, ...]) -> bytes:
    """Cost-only comparison: mean inference energy and area per group, as bars (log axis when
    one group is over 100× another)."""
    ok = [r for r in rows if "error" not in r]
    labels = list(dict.fromkeys(_group_label(r, group_by) for r in ok))
    per = " / ".join(group_by)
    fig = Figure(figsize=(11, 1.2 + 0.45 * max(len(labels), 2)))
    for ax, (field, what, unit) in zip(fig.subplots(1, 2), (COST_FIELDS[0], COST_FIELDS[2])):
        parts = {lbl: _mean(r.get(field) for r in ok if _group_label(r, group_by) == lbl) for lbl in labels}
        parts = {k: v for k, v in parts.items() if math.isfinite(v)}
        _bars(ax, parts, unit, f"{what} per {per}", fixed=(1.0, "mm²") if unit == "mm²" else None, shares=False)
    fig.tight_layout()
    return _png(fig)


def _sweep_panel(ax, ok: list[dict], keys: list[str], field: str, ylabel: str) -> None:
    """Mean of ``field`` vs the first grid key, one line per value of the other keys."""
    first, rest = keys[0], keys[1:]
    lines: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
    for r in ok:
        if isinstance(r.get(field), (int, float)):
            lines[tuple(r.get(k) for k in rest)][r.get(first)].append(r[field])
    for key, points in lines.items():
        xs = list(points)
        xv = [_num(x) for x in xs]
        order = sorted(range(len(xs)), key=lambda i: (xv[i] is None, xv[i] if xv[i] is not None else str(xs[i])))
        ys = [float(np.mean(points[xs[i]])) for i in order]
        labels = [str(xs[i]) for i in order]
        pos = [xv[i] for i in order] if all(v is not None for v in xv) else list(range(len(order)))
        ax.plot(pos, ys, marker="o", label=", ".join(f"{k}={v}" for k, v in zip(rest, key)) or None)
        if pos == list(range(len(order))) and any(v is None for v in xv):
            ax.set_xticks(pos, labels)
    ax.set_xlabel(first)
    ax.set_ylabel(ylabel)
    if rest and lines:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def sweep_figure(rows: list[dict], keys: list[str]) -> bytes:
    """Final metric (or, for cost-only jobs, inference energy and area) vs the first grid key."""
    ok = [r for r in rows if "error" not in r]
    if cost_only(rows):
        fig = Figure(figsize=(11, 4.2))
        ax_e, ax_a = fig.subplots(1, 2)
        _sweep_panel(ax_e, ok, keys, "inference_energy_j", "inference energy")
        ax_e.yaxis.set_major_formatter(EngFormatter(unit="J", sep=" "))
        ax_e.set_title("inference energy per pass")
        _sweep_panel(ax_a, ok, keys, "area_mm2", "area (mm²)")
        ax_a.set_title("chip area")
        fig.tight_layout()
        return _png(fig)
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    ok = [r for r in ok if r.get("metric_final") is not None]
    _sweep_panel(ax, ok, keys, "metric_final", ok[0]["metric"] if ok else "metric")
    ax.set_title("sweep: final metric (mean over seeds)")
    return _png(fig)


def _num(x):
    if isinstance(x, bool):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _finite(value):
    """JSON-safe: non-finite floats become null (the JSON standard has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _json(rows: list[dict]) -> str:
    return json.dumps([_finite(_public(r)) for r in rows], indent=2, allow_nan=False)


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("traceback",)}


def _status(r: dict) -> str:
    if "error" in r:
        return "FAILED: " + r["error"].replace("|", "/")
    if r.get("status") == "diverged" or str(r.get("stopped", "")).startswith("diverged"):
        return "DIVERGED: " + str(r.get("stopped", "")).replace("|", "/")
    return "cached" if r.get("cached") else "ok"


def _wall(r: dict) -> str:
    w = r.get("wall_s")
    return eng(w, "s", 3) if isinstance(w, (int, float)) and math.isfinite(w) else "-"


CAPTIONS = {
    "convergence": "Metric against chip queries (left) and against training energy (right) per group: the mean "
                   "over seeds, the band spans min to max.",
    "costs": "Mean inference energy per pass (left) and chip area (right) per group.",
    "sweep": "Final metric (mean over seeds) against the first grid key, one line per value of the other keys.",
    "sweep-costs": "Inference energy per pass (left) and chip area (right) against the first grid key, one line per "
                   "value of the other keys.",
}


def _markdown(title: str, summary: list[dict], rows: list[dict], group_by: tuple[str, ...], figure: str) -> str:
    lines = [f"# {title}", ""]
    if summary:
        head = list(summary[0])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in summary]
    lines += ["", "## Every run", ""]
    keys = list(dict.fromkeys([*group_by, "seed"]))
    if cost_only(rows):
        head = [*keys, *(label for _, label, _ in COST_FIELDS), "status"]
    else:
        head = [*keys, "metric_final", "queries", "training energy", "training latency", "wall", "status"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r.get(k)) for k in keys]
        if cost_only(rows):
            cells += [_cost_text(_mean([r.get(field)]), unit) for field, _, unit in COST_FIELDS]
        else:
            queries = r.get("queries")
            cells += [number(r.get("metric_final"), 4),
                      number(queries) if isinstance(queries, int) else "-",
                      _cost_text(_mean([r.get("training_energy_j")]), "J"),
                      _cost_text(_mean([r.get("training_latency_s")]), "s"), _wall(r)]
        lines.append("| " + " | ".join([*cells, _status(r)]) + " |")
    name = Path(figure).stem + ("-costs" if Path(figure).stem == "sweep" and cost_only(rows) else "")
    lines += ["", f"![{CAPTIONS[name]}]({figure})", "", f"*{CAPTIONS[name]}*", ""]
    return "\n".join(lines)


def _write_all(out: Path, files: dict[str, str | bytes]) -> None:
    """Write every file to a temporary beside it, then rename them all into place."""
    tmps = []
    try:
        for name, data in files.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            (tmp.write_bytes if isinstance(data, bytes) else tmp.write_text)(data)
            tmps.append((tmp, path))
        for tmp, path in tmps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in tmps:
            tmp.unlink(missing_ok=True)
        raise
