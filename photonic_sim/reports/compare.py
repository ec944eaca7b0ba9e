"""Summaries of many runs: strategy comparisons and parameter sweeps.

``write_comparison`` writes ``comparison.json`` (one row per job: strategy, seed, metric,
metric_final, queries, training_energy_j, training_latency_s, wall_s, …), ``comparison.md``
(mean ± std per strategy, then every job) and ``figures/convergence.png`` (metric vs
queries, mean with a min–max band across seeds). ``write_sweep`` writes ``sweep.json``,
``sweep.md`` and ``figures/sweep.png``. Files are written to temporaries and renamed.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from photonic_sim.training.compare import summarize as numeric_summary  # noqa: E402

from .figures import _png  # noqa: E402
from .units import eng, number  # noqa: E402

ROW_KEYS = ("metric", "metric_final", "queries", "training_energy_j", "training_latency_s", "wall_s")


def summarize(rows: list[dict], group_by: tuple[str, ...]) -> list[dict]:
    """Per group (``training.compare.summarize``), formatted for the tables: runs "ok/all",
    final metric "mean ± std", mean queries and engineering-notation costs ("-" when none)."""
    out = []
    for s in numeric_summary(rows, group_by):
        ok = s["runs"] - s["failed"]
        row = {k: s[k] for k in group_by}
        row["runs"] = f"{ok}/{s['runs']}"
        row["metric"] = s["metric"] if ok else "-"
        row["final (mean ± std)"] = (f"{s['metric_mean']:.4g} ± {s['metric_std']:.2g}"
                                     if math.isfinite(s["metric_mean"]) else "-")
        for field, unit in (("queries", ""), ("training_energy_j", "J"), ("training_latency_s", "s"), ("wall_s", "s")):
            v = s[field]
            row[field] = "-" if not math.isfinite(v) else (f"{v:.0f}" if field == "queries" else eng(v, unit))
        out.append(row)
    return out


def write_comparison(out_dir: str | Path, rows: list[dict], group_by: tuple[str, ...] = ("strategy",)) -> list[dict]:
    out = Path(out_dir)
    summary = summarize(rows, group_by)
    files = {
        "comparison.json": json.dumps([_public(r) for r in rows], indent=2),
        "comparison.md": _markdown("Strategy comparison", summary, rows, group_by),
        "figures/convergence.png": convergence_figure(rows, group_by),
    }
    _write_all(out, files)
    return summary


def write_sweep(out_dir: str | Path, rows: list[dict], keys: list[str]) -> list[dict]:
    out = Path(out_dir)
    summary = summarize(rows, tuple(keys))
    files = {
        "sweep.json": json.dumps([_public(r) for r in rows], indent=2),
        "sweep.md": _markdown("Parameter sweep", summary, rows, tuple(keys)),
        "figures/sweep.png": sweep_figure(rows, keys),
    }
    _write_all(out, files)
    return summary


def convergence_figure(rows: list[dict], group_by: tuple[str, ...]) -> bytes:
    """Metric vs queries per group: mean across seeds on a common query grid, min–max band."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if "error" not in r and r.get("history"):
            groups[" / ".join(str(r.get(k)) for k in group_by)].append(r)
    metric = next((r["metric"] for r in rows if "metric" in r), "metric")
    for label, members in groups.items():
        curves = [np.asarray(r["history"], dtype=float) for r in members]
        top = min(c[-1, 0] for c in curves)
        grid = np.linspace(max(c[0, 0] for c in curves), top, 50) if top > 0 else np.array([0.0])
        ys = np.stack([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
        line, = ax.plot(grid, ys.mean(0), label=f"{label} (n={len(members)})")
        if len(members) > 1:
            ax.fill_between(grid, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("chip queries")
    ax.set_ylabel(metric)
    if metric in ("rel_l2", "mse"):
        ax.set_yscale("log")
    ax.set_title("convergence (mean, band = min-max over seeds)")
    if groups:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def sweep_figure(rows: list[dict], keys: list[str]) -> bytes:
    """Final metric vs the first grid key, one line per value of the other keys."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ok = [r for r in rows if "error" not in r and r.get("metric_final") is not None]
    first, rest = keys[0], keys[1:]
    lines: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
    for r in ok:
        lines[tuple(r.get(k) for k in rest)][r.get(first)].append(r["metric_final"])
    for key, points in lines.items():
        xs = list(points)
        xv = [_num(x) for x in xs]
        order = sorted(range(len(xs)), key=lambda i: (xv[i] is None, xv[i] if xv[i] is not None else str(xs[i])))
        ys = [float(np.mean(points[xs[i]])) for i in order]
        labels = [xs[i] for i in order]
        pos = [xv[i] for i in order] if all(v is not None for v in xv) else list(range(len(order)))
        ax.plot(pos, ys, marker="o", label=", ".join(f"{k}={v}" for k, v in zip(rest, key)) or None)
        if pos == list(range(len(order))):
            ax.set_xticks(pos, labels)
    ax.set_xlabel(first)
    ax.set_ylabel(ok[0]["metric"] if ok else "metric")
    if rest and ok:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("sweep: final metric (mean over seeds)")
    return _png(fig)


def _num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("traceback",)}


def _markdown(title: str, summary: list[dict], rows: list[dict], group_by: tuple[str, ...]) -> str:
    lines = [f"# {title}", ""]
    if summary:
        head = list(summary[0])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in summary]
    lines += ["", "## Every run", ""]
    head = [*group_by, "seed", "metric_final", "queries", "training energy", "training latency", "wall", "status"]
    head = list(dict.fromkeys(head))
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r.get(k)) for k in dict.fromkeys([*group_by, "seed"])]
        cells += [number(r.get("metric_final")), str(r.get("queries", "-")), eng(r.get("training_energy_j"), "J"),
                  eng(r.get("training_latency_s"), "s"), f"{r.get('wall_s', math.nan):.1f} s",
                  ("FAILED: " + r["error"].replace("|", "/")) if "error" in r else ("cached" if r.get("cached") else "ok")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![convergence](figures/convergence.png)" if title.startswith("Strategy") else "![sweep](figures/sweep.png)", ""]
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
