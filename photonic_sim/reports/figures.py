"""Report figures as PNG bytes with a caption that says what each shows (matplotlib, Agg
canvas; no pyplot global state; 150 dpi).

``make_figures(report, history, phases_by_mesh, meshes)`` → ``{"training_curve.png":
Figure(png, caption), …}``:

* ``training_curve.png`` (runs that trained): training loss per step (raw and running mean)
  and the task metric at every evaluation, against chip queries; the axis starts at query 0
  and the metric curve at the initial evaluation when report.json has ``metrics.initial``;
* ``energy_breakdown.png``, ``latency_breakdown.png``: per-component inference (one pass) and,
  for runs that trained, training (the whole run) figures; a log axis when one part is over
  100× the smallest, every bar labelled with its value and share;
* ``area_breakdown.png``: per-component area in mm²;
* ``phases_<mesh>.png``: the programmed phases of each hardware matrix, one row per k×k SVD
  block (labelled (block row, column) when ``meshes`` gives the matrix shape), columns split and labelled by :func:`block_segments` (U mesh θ | φ | output screen
  α, Σ attenuators, V mesh θ | φ | α), wrapped to [0, 2π).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import EngFormatter, FuncFormatter

from .units import eng, scale

DPI = 150
LOG_RATIO = 100.0  # a bar chart gets a log axis when its largest part is this many times its smallest


@dataclass(frozen=True)
class Figure:
    """One report figure: PNG bytes and a one-sentence caption of what it shows."""

    png: bytes
    caption: str


def _png(fig: MplFigure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def mesh_filename(mesh: str) -> str:
    """``phases_<mesh>.png`` with characters other than letters, digits, ``_.-`` replaced."""
    return "phases_" + re.sub(r"[^A-Za-z0-9_.-]", "_", mesh) + ".png"


# ------------------------------------------------------------------ training curve


def _window(n: int) -> int:
    """Running-mean window of the loss curve: about 1/25 of the steps, odd, at least 1."""
    w = max(1, n // 25)
    return w if w % 2 else w + 1


def _running_mean(y: np.ndarray, w: int) -> np.ndarray:
    """Centred running mean over the finite values (window shrinks at the ends)."""
    out = np.full_like(y, np.nan)
    half = w // 2
    for i in range(len(y)):
        seg = y[max(0, i - half) : i + half + 1]
        seg = seg[np.isfinite(seg)]
        if seg.size:
            out[i] = seg.mean()
    return out


def metric_points(history: list[dict], report: dict) -> list[tuple[float, float]]:
    """(queries, metric) of every evaluation, with (0, ``metrics.initial``) first when
    report.json has the initial evaluation and the history does not start at query 0."""
    pts = [(float(r["queries"]), float(r["metric"])) for r in history if r.get("metric") is not None]
    initial = report.get("metrics", {}).get("initial")
    if isinstance(initial, (int, float)) and not isinstance(initial, bool) and not (pts and pts[0][0] == 0):
        pts.insert(0, (0.0, float(initial)))
    return pts


def _percent(name: str) -> bool:
    return name == "accuracy"


def training_curve(history: list[dict], report: dict) -> Figure:
    return Figure(*_rendered(training_curve_figure(history, report)))


def _rendered(fig_caption: tuple[MplFigure, str]) -> tuple[bytes, str]:
    return _png(fig_caption[0]), fig_caption[1]


def training_curve_figure(history: list[dict], report: dict) -> tuple[MplFigure, str]:
    """The matplotlib figure of :func:`training_curve` and its caption."""
    name = report["metrics"]["name"]
    fig = MplFigure(figsize=(10, 3.8))
    ax_loss, ax_metric = fig.subplots(1, 2)
    q = np.array([r["queries"] for r in history], dtype=float)
    loss = np.array([np.nan if r["loss"] is None else r["loss"] for r in history], dtype=float)
    w = _window(len(loss))
    ax_loss.plot(q, loss, color="tab:blue", lw=0.8, alpha=0.35, label="every step")
    if w > 1:
        ax_loss.plot(q, _running_mean(loss, w), color="tab:blue", lw=1.8, label=f"running mean ({w} steps)")
        ax_loss.legend(fontsize=8, loc="upper right")
    good = loss[np.isfinite(loss)]
    if good.size and np.all(good > 0) and good.max() / good.min() > 20:
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel="chip queries", ylabel="training loss", title="training loss per step")
    pts = metric_points(history, report)
    scale_ = 100.0 if _percent(name) else 1.0
    if pts:
        mq, mv = zip(*pts)
        ax_metric.plot(mq, [v * scale_ for v in mv], "o-", color="tab:green", lw=1.4, ms=4)
        last_q, last_v = pts[-1]
        ax_metric.annotate(f"{last_v * scale_:.4g}{' %' if scale_ != 1 else ''}", (last_q, last_v * scale_),
                           textcoords="offset points", xytext=(-4, 6), ha="right", fontsize=8)
    if _percent(name):
        ax_metric.set_ylim(0, 100)
    if name in ("rel_l2", "mse") and pts and all(v > 0 for _, v in pts):
        ax_metric.set_yscale("log")
    ax_metric.set(xlabel="chip queries", ylabel=f"{name} (%)" if _percent(name) else name,
                  title=f"{name} at each evaluation")
    right = max([0.0, *q.tolist(), *(p[0] for p in pts)])
    for ax in (ax_loss, ax_metric):
        ax.set_xlim(0, right * 1.03 if right > 0 else 1)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    start = "from the initial evaluation at query 0" if pts and pts[0][0] == 0 else \
        "the axis starts at query 0; the first evaluation comes after the first training steps"
    mean = f" (thick line: running mean over {w} steps)" if w > 1 else ""
    caption = (f"Training progress against chip queries: training loss at every step{mean} on the left, "
               f"{name} at each evaluation on the right ({start}).")
    return fig, caption


# ------------------------------------------------------------------ bar charts


def _log_axis(parts: dict[str, float]) -> bool:
    pos = [v for v in parts.values() if v > 0]
    return len(pos) > 1 and max(pos) / min(pos) > LOG_RATIO


def _share(v: float, total: float) -> str:
    if total <= 0:
        return ""
    s = 100 * v / total
    if 99.5 <= s < 100:
        return f" ({s:.3g} %)"
    return f" ({s:.0f} %)" if s >= 1 or s == 0 else f" ({s:.2g} %)"


def what_of(title: str) -> str:
    """Axis label of a bar chart on a log axis: the quantity named in its title."""
    return title.split(",")[0].split("(")[0].strip()


def _bars(ax, parts: dict[str, float], unit: str, title: str, fixed: tuple[float, str] | None = None,
          shares: bool = True) -> None:
    """Horizontal bars of ``parts`` (SI), largest on top, each labelled with its value and (``shares``) share;
    one engineering unit on the axis (or ``fixed`` = (multiplier, label)), log when :func:`_log_axis`."""
    if not parts:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set(title=title, xticks=[], yticks=[])
        return
    items = sorted(parts.items(), key=lambda kv: kv[1])
    log = _log_axis(parts)
    # a log axis stays in SI with prefixed tick labels (1 nJ, 10 nJ, …); a linear one takes one prefix
    mult, label = fixed or ((1.0, what_of(title)) if log else scale((v for _, v in items), unit))
    names = [k.replace("_", " ") if shares else k for k, _ in items]
    vals = [v * mult for _, v in items]
    total = sum(v for _, v in items)
    ax.barh(names, vals, color="tab:orange")
    for y, (_, v) in enumerate(items):
        text = (f"{v * mult:.4g} {label}" if fixed else eng(v, unit, 4)) + (_share(v, total) if shares else "")
        ax.text(v * mult if v > 0 else 0, y, f" {text}", va="center", fontsize=8)
    top = max(vals)
    if log:
        low = min(v for v in vals if v > 0)
        ax.set_xscale("log")
        ax.set_xlim(low / 3, top * 40)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}") if fixed else EngFormatter(unit=unit, sep=" "))
        label += " (log scale)"
    else:
        ax.set_xlim(0, top * 1.45 if top > 0 else 1)
    ax.set(xlabel=label, title=title)
    ax.grid(axis="x", alpha=0.3)


def _trained(report: dict) -> bool:
    return report["task"].get("kind") != "none"


def _pair(report: dict, key: str, unit: str, what: str) -> Figure:
    inference = report["inference"]["breakdown"][key]
    training = report["training"]["breakdown"][key] if _trained(report) else {}
    n = max(len(inference), len(training), 3)
    panels = [(inference, f"inference {what}, one pass")]
    if training:
        panels.append((training, f"training {what}, whole run"))
    fig = MplFigure(figsize=(6 * len(panels), 1.1 + 0.38 * n))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (parts, title) in zip(axes, panels):
        _bars(ax, parts, unit, title)
    fig.tight_layout()
    scope = "one inference pass (left) and the whole training run (right)" if training else "one inference pass"
    logs = [t.split(",")[0] for p, t in panels if _log_axis(p)]
    note = f"; {' and '.join(logs)} on a log axis because one part dominates" if logs else ""
    caption = (f"{what.capitalize()} by component for {scope}; each bar gives the value and its share of the "
               f"total{note}.")
    return Figure(_png(fig), caption)


def energy_breakdown(report: dict) -> Figure:
    return _pair(report, "energy_j", "J", "energy")


def latency_breakdown(report: dict) -> Figure:
    return _pair(report, "latency_s", "s", "latency")


def area_breakdown(report: dict) -> Figure:
    parts = report["area_mm2"]["breakdown"]
    total = report["area_mm2"]["total"]
    fig = MplFigure(figsize=(6, 1.1 + 0.38 * max(len(parts), 3)))
    ax = fig.subplots()
    _bars(ax, parts, "mm²", f"chip area (total {total:.4g} mm²)", fixed=(1.0, "mm²"))
    fig.tight_layout()
    note = "; log axis because one part dominates" if _log_axis(parts) else ""
    return Figure(_png(fig), f"Chip area by component in mm² (total {total:.4g} mm²), with each part's share{note}.")


# ------------------------------------------------------------------ phase heatmaps


def block_segments(width: int) -> list[tuple[str, int, int]] | None:
    """(label, start, stop) of the parts of one k×k SVD block's phase vector of length
    ``width`` = 2k² + k: U mesh θ (k(k−1)/2 MZIs), U φ, U output screen α (k), Σ attenuators
    (k), V mesh θ, φ, α (as photonic_sim.circuits.svd.SVDBlock(k, k) and ClementsMesh);
    empty parts are left out. None when ``width`` is not of that form."""
    k = int(round((-1 + math.sqrt(1 + 8 * width)) / 4)) if width > 0 else 0
    if k < 1 or 2 * k * k + k != width:
        return None
    m = k * (k - 1) // 2
    sizes = [("U θ", m), ("U φ", m), ("U α", k), ("Σ", k), ("V θ", m), ("V φ", m), ("V α", k)]
    out, start = [], 0
    for label, size in sizes:
        if size:
            out.append((label, start, start + size))
        start += size
    return out


def mesh_title(mesh: str, info: dict | None = None) -> str:
    """``layer0.core1`` → ``layer 0 (TT), TT core 1`` (the kind from ``info``); other names unchanged."""
    m = re.fullmatch(r"layer(\d+)\.core(\d+)", mesh)
    if not m:
        return mesh
    kind = (info or {}).get("kind")
    kind_text = {"tt": " (TT)", "dense": " (dense)"}.get(kind or "", f" ({kind})" if kind else "")
    return f"layer {m.group(1)}{kind_text}, " + (f"TT core {m.group(2)}" if kind == "tt" else f"core {m.group(2)}")


def block_grid(info: dict | None, k: int, blocks: int) -> tuple[int, int] | None:
    """(block rows, block columns) of the matrix ``info["shape"]`` = (rows, cols) on k×k blocks,
    when that grid has ``blocks`` blocks (else None)."""
    shape = (info or {}).get("shape")
    if not shape or k < 1:
        return None
    grid = (math.ceil(shape[0] / k), math.ceil(shape[1] / k))
    return grid if grid[0] * grid[1] == blocks else None


def phase_heatmap(mesh: str, phases: np.ndarray, info: dict | None = None) -> Figure:
    return Figure(*_rendered(phase_heatmap_figure(mesh, phases, info)))


def phase_heatmap_figure(mesh: str, phases: np.ndarray, info: dict | None = None) -> tuple[MplFigure, str]:
    """The matplotlib figure of :func:`phase_heatmap` and its caption. ``info`` (optional):
    ``{"kind": "tt" | "dense", "shape": (rows, cols)}`` of the hardware matrix, to name the
    layer and label each block by its (block row, block column)."""
    a = np.asarray(phases, dtype=float)
    a = a.reshape(1, -1) if a.ndim <= 1 else a.reshape(a.shape[0], -1)
    rows, width = a.shape
    wrapped = np.mod(a, 2 * math.pi)
    segments = block_segments(width)
    fig = MplFigure(figsize=(10, 2.0 + min(6.0, 0.22 * rows)))
    ax = fig.subplots()
    im = ax.imshow(wrapped, aspect="auto", cmap="twilight", vmin=0, vmax=2 * math.pi, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, pad=0.01)
    ticks = [(0, "0"), (math.pi, "π"), (2 * math.pi, "2π")] if rows <= 3 else \
        [(0, "0"), (math.pi / 2, "π/2"), (math.pi, "π"), (3 * math.pi / 2, "3π/2"), (2 * math.pi, "2π")]
    cbar.set_ticks([t for t, _ in ticks], labels=[lbl for _, lbl in ticks])
    cbar.set_label("phase mod 2π (rad)")
    name = mesh_title(mesh, info)
    title, grid, k = name, None, 0
    if segments:
        k = segments[-1][2] - segments[-1][1]
        grid = block_grid(info, k, rows)
        for _, start, _stop in segments[1:]:
            ax.axvline(start - 0.5, color="black", lw=1.2)
        top = ax.secondary_xaxis("top")
        top.set_xticks([(s + e - 1) / 2 for _, s, e in segments], labels=[lbl for lbl, _, _ in segments], fontsize=9)
        top.tick_params(length=0)
        ax.set_xlabel("phase shifter within the block (U mesh θ, φ, output screen α | Σ attenuators | V mesh θ, φ, α)")
        if grid:
            shape = info["shape"]
            title += f": {shape[0]}×{shape[1]} matrix on {grid[0]}×{grid[1]} blocks of {k}×{k}"
            ax.set_ylabel("SVD block (block row, column)")
        else:
            title += f": {rows} block{'s' * (rows != 1)} of {k}×{k}"
            ax.set_ylabel("SVD block")
    else:
        ax.set_xlabel("phase index")
        ax.set_ylabel("row")
    if rows <= 24:
        labels = [f"({i // grid[1]},{i % grid[1]})" for i in range(rows)] if grid else [str(i) for i in range(rows)]
        ax.set_yticks(range(rows), labels=labels, fontsize=8 if rows > 12 else 9)
    ax.set_title(title, pad=22 if segments else 6)
    fig.tight_layout()
    if segments:
        order = "labelled (block row, block column)" if grid else "in row-major order over the matrix"
        caption = (f"Programmed phases of {name} after training: one row per {k}×{k} SVD block ({order}), one "
                   f"column per phase shifter of the block in the order U mesh (MZI θ, MZI φ, output screen α), "
                   f"Σ attenuators, V mesh (θ, φ, α); colour is the phase mod 2π.")
    else:
        caption = f"Programmed phases of {name} (array {tuple(np.shape(phases))}), wrapped to [0, 2π)."
    return fig, caption


def make_figures(report: dict, history: list[dict], phases_by_mesh: dict[str, np.ndarray] | None,
                 meshes: dict[str, dict] | None = None) -> dict[str, Figure]:
    """Every figure of a run, by file name (see module docstring). ``meshes`` (mesh name →
    ``{"kind", "shape"}``, from the resolved scenario's model) labels the phase heatmaps."""
    figs: dict[str, Figure] = {}
    if history and _trained(report):
        figs["training_curve.png"] = training_curve(history, report)
    figs["energy_breakdown.png"] = energy_breakdown(report)
    figs["latency_breakdown.png"] = latency_breakdown(report)
    figs["area_breakdown.png"] = area_breakdown(report)
    for mesh, phases in (phases_by_mesh or {}).items():
        figs[mesh_filename(mesh)] = phase_heatmap(mesh, phases, (meshes or {}).get(mesh))
    return figs
