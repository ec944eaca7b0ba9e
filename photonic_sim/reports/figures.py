"""Report figures as PNG bytes (matplotlib, Agg canvas; no pyplot global state).

``make_figures(report, history, phases_by_mesh)`` → ``{"training_curve.png": b"…", …}``:

* ``training_curve.png``: loss and the task metric vs chip queries (only with history rows);
* ``energy_breakdown.png``, ``latency_breakdown.png``: per-component inference (one pass)
  and training (the whole run) figures, each axis in one engineering unit;
* ``area_breakdown.png``: per-component area in mm²;
* ``phases_<mesh>.png``: every phase of each mesh wrapped to [0, 2π), one heatmap per mesh
  (1-D arrays as one row; N-D arrays as ``shape[0]`` rows).
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .units import scale

_DPI = 100


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def mesh_filename(mesh: str) -> str:
    """``phases_<mesh>.png`` with characters other than letters, digits, ``_.-`` replaced."""
    return "phases_" + re.sub(r"[^A-Za-z0-9_.-]", "_", mesh) + ".png"


def training_curve(history: list[dict], metric_name: str) -> bytes:
    fig = Figure(figsize=(8, 3.4))
    ax_loss, ax_metric = fig.subplots(1, 2)
    q = np.array([r["queries"] for r in history], dtype=float)
    loss = np.array([np.nan if r["loss"] is None else r["loss"] for r in history], dtype=float)
    ax_loss.plot(q, loss, color="tab:blue", lw=1.2)
    if np.all(loss[np.isfinite(loss)] > 0) and np.isfinite(loss).any():
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel="chip queries", ylabel="training loss", title="loss")
    pts = [(r["queries"], r["metric"]) for r in history if r["metric"] is not None]
    if pts:
        mq, mv = zip(*pts)
        ax_metric.plot(mq, mv, "o-", color="tab:green", lw=1.2, ms=3)
    ax_metric.set(xlabel="chip queries", ylabel=metric_name, title=metric_name)
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _bars(ax, parts: dict[str, float], unit: str, title: str, fixed: tuple[float, str] | None = None) -> None:
    """Horizontal bars of ``parts`` (SI) in one engineering unit (or ``fixed`` = (multiplier, label))."""
    if not parts:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set(title=title, xticks=[], yticks=[])
        return
    items = sorted(parts.items(), key=lambda kv: kv[1])
    mult, label = fixed or scale((v for _, v in items), unit)
    names = [k for k, _ in items]
    vals = [v * mult for _, v in items]
    ax.barh(names, vals, color="tab:orange")
    total = sum(v for _, v in items) * mult
    for y, v in enumerate(vals):
        share = f" ({100 * v / total:.0f} %)" if total > 0 else ""
        ax.text(v, y, f" {v:.3g}{share}", va="center", fontsize=8)
    ax.set(xlabel=label, title=title)
    ax.set_xlim(0, max(vals) * 1.35 if max(vals) > 0 else 1)
    ax.grid(axis="x", alpha=0.3)


def _pair(inference: dict[str, float], training: dict[str, float], unit: str, what: str) -> bytes:
    fig = Figure(figsize=(10, 0.9 + 0.35 * max(len(inference), len(training), 3)))
    ax_inf, ax_train = fig.subplots(1, 2)
    _bars(ax_inf, inference, unit, f"inference {what} (one pass)")
    _bars(ax_train, training, unit, f"training {what} (whole run)")
    fig.tight_layout()
    return _png(fig)


def energy_breakdown(report: dict) -> bytes:
    return _pair(report["inference"]["breakdown"]["energy_j"], report["training"]["breakdown"]["energy_j"], "J", "energy")


def latency_breakdown(report: dict) -> bytes:
    return _pair(report["inference"]["breakdown"]["latency_s"], report["training"]["breakdown"]["latency_s"], "s", "latency")


def area_breakdown(report: dict) -> bytes:
    parts = report["area_mm2"]["breakdown"]
    fig = Figure(figsize=(6, 0.9 + 0.35 * max(len(parts), 3)))
    ax = fig.subplots()
    _bars(ax, parts, "mm²", f"area (total {report['area_mm2']['total']:.4g} mm²)", fixed=(1.0, "mm²"))
    fig.tight_layout()
    return _png(fig)


def phase_heatmap(mesh: str, phases: np.ndarray) -> bytes:
    a = np.asarray(phases, dtype=float)
    a = a.reshape(1, -1) if a.ndim <= 1 else a.reshape(a.shape[0], -1)
    wrapped = np.mod(a, 2 * math.pi)
    fig = Figure(figsize=(7, 1.6 + min(4.0, 0.08 * a.shape[0])))
    ax = fig.subplots()
    im = ax.imshow(wrapped, aspect="auto", cmap="twilight", vmin=0, vmax=2 * math.pi, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_ticks([0, math.pi, 2 * math.pi], labels=["0", "π", "2π"])
    cbar.set_label("phase (rad)")
    ax.set(title=f"phases of {mesh} {tuple(np.shape(phases))}", xlabel="phase index", ylabel="row")
    fig.tight_layout()
    return _png(fig)


def make_figures(report: dict, history: list[dict], phases_by_mesh: dict[str, np.ndarray] | None) -> dict[str, bytes]:
    """Every figure of a run, by file name (see module docstring)."""
    figs: dict[str, bytes] = {}
    if history:
        figs["training_curve.png"] = training_curve(history, report["metrics"]["name"])
    figs["energy_breakdown.png"] = energy_breakdown(report)
    figs["area_breakdown.png"] = area_breakdown(report)
    figs["latency_breakdown.png"] = latency_breakdown(report)
    for mesh, phases in (phases_by_mesh or {}).items():
        figs[mesh_filename(mesh)] = phase_heatmap(mesh, phases)
    return figs
