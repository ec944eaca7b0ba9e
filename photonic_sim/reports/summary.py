"""What produced a run and what it came to, as (label, value) rows of rounded text.

``provenance(report, resolved)`` → the rows that head report.md / report.html (scenario,
device card, accelerator, model, task, recipe and strategy, steps, seed, package version,
how the run ended); ``summary_rows(report, resolved)`` → those rows followed by the run's
numbers, for the terminal summary. ``resolved`` is the run's ``scenario.resolved.yaml`` as
a dict (None: the rows that need it are left out). Numbers keep 4 significant digits with
SI prefixes (``units.eng``); report.json keeps the full values.

A cost-only run (``task.kind: none``) has no training rows: its numbers are inference
energy and latency, area, MZI and phase-shifter counts.
"""

from __future__ import annotations

from .units import eng, number

Rows = list[tuple[str, str]]
DIGITS = 4
COMPLETED = "completed"


def cost_only(report: dict) -> bool:
    """True for a run without training (``task.kind: none``)."""
    return report.get("task", {}).get("kind") == "none"


def stopped(report: dict) -> str:
    """How training ended: ``"completed"`` or the trainer's reason (e.g. ``"diverged at step 41: …"``)."""
    return str(report.get("training", {}).get("stopped") or COMPLETED)


def _name(card) -> str | None:
    if isinstance(card, dict):
        return card.get("name") and str(card["name"])
    return str(card) if card else None


def _accelerator(card) -> str | None:
    name = _name(card)
    if not isinstance(card, dict) or not name:
        return name
    details = [str(card["architecture"])] if card.get("architecture") and card["architecture"] != name else []
    if card.get("block_size"):
        details.append(f"{card['block_size']}×{card['block_size']} blocks")
    if card.get("num_cores"):
        details.append(f"{card['num_cores']} cores")
    return name + (f" ({', '.join(details)})" if details else "")


def provenance(report: dict, resolved: dict | None = None) -> Rows:
    """What produced the run (see module docstring)."""
    resolved = resolved if isinstance(resolved, dict) else {}
    tr = report.get("training", {})
    scenario = report["scenario"] + (f" / {report['variant']}" if report.get("variant") else "")
    task = report.get("task", {})
    rows: Rows = [("scenario", scenario)]
    for label, value in (("device card", _name(resolved.get("devices"))),
                         ("accelerator", _accelerator(resolved.get("accelerator"))),
                         ("model", _name(resolved.get("model")))):
        if value:
            rows.append((label, value))
    extra = ", ".join(f"{k}={v}" for k, v in task.items() if k != "kind")
    rows.append(("task", str(task.get("kind", "?")) + (f" ({extra})" if extra else "")))
    if cost_only(report):
        rows.append(("training", "none (cost report only)"))
    else:
        recipe = _name(resolved.get("training"))
        strategy = tr.get("strategy") or (resolved.get("training") or {}).get("strategy")
        if recipe or strategy:
            rows.append(("recipe / strategy", " / ".join(str(x) for x in (recipe, strategy) if x)))
        planned = (resolved.get("training") or {}).get("steps")
        if tr.get("steps") is not None:
            rows.append(("steps", f"{number(tr['steps'])}" + (f" of {number(planned)}" if planned else "")))
        elif planned:
            rows.append(("steps (planned)", number(planned)))
    rows.append(("seed", str(report["seed"])))
    versions = report.get("versions", {})
    if versions.get("photonic_sim"):
        rows.append(("photonic-sim version", str(versions["photonic_sim"])))
    if not cost_only(report):
        rows.append(("status", stopped(report)))
    return rows


def _mzis(report: dict) -> tuple[str, str]:
    c = report["counts"]
    return "MZIs (blocked / SVD)", f"{number(c['mzi_blocked'])} / {number(c['mzi_svd'])}"


def _area(report: dict) -> tuple[str, str]:
    return "area", f"{number(float(report['area_mm2']['total']), DIGITS)} mm²"


def link_sentence(report: dict) -> str | None:
    """What the chip simulated of the optical link (report.json ``chip``), in one sentence;
    None for a report written before the ``chip`` section existed."""
    chip = report.get("chip")
    if not isinstance(chip, dict) or "insertion_loss" not in chip:
        return None
    if not chip["insertion_loss"]:
        return "insertion loss not simulated (scenario chip.insertion_loss: false)"
    link = chip.get("link") or {}
    try:
        mesh = ""
        if chip.get("loss_balanced"):
            mesh = (f"loss-balanced mesh ({link['dummy_elements_per_block']:.0f} dummy elements per block, every path "
                    "crosses the critical count); ")
        return (f"insertion loss simulated: {mesh}{link['insertion_loss_db']:.3g} dB critical path "
                f"({link['path_dependent_loss_db']:.3g} dB of it path-dependent); laser set by the link budget to "
                f"{link['laser_dbm']:.3g} dBm so the detectors receive {link['detector_dbm']:.3g} dBm on the critical "
                f"path, {link['detector_full_scale_dbm']:.3g} dBm at full scale (noise floor / sensitivity "
                f"{link['sensitivity_dbm']:.3g} dBm)")
    except (KeyError, TypeError, ValueError):
        return "insertion loss simulated"


def numbers(report: dict) -> Rows:
    """The run's headline numbers, rounded (see module docstring)."""
    inf, tr, m = report["inference"], report["training"], report["metrics"]
    inference = [("inference energy", eng(inf["energy_j"], "J", DIGITS)),
                 ("inference latency", eng(inf["latency_s"], "s", DIGITS))]
    link = link_sentence(report)
    optical = [("optical link", link)] if link else []
    if cost_only(report):
        counts = report["counts"]
        rows = [*inference, _area(report), _mzis(report)]
        rows += [(label, number(counts[key])) for key, label in
                 (("phase_shifters", "phase shifters"), ("detectors", "detectors"), ("adcs", "ADCs"),
                  ("dacs", "DACs"), ("lasers", "lasers")) if key in counts]
        return rows + optical
    kept = [("kept phases", f"step {number(m['kept_step'])} of {number(tr.get('steps'))} (lowest evaluation loss)")] \
        if m.get("kept_step") is not None else []
    return [
        (f"{m['name']} final / best", f"{number(m['final'], DIGITS)} / {number(m['best'], DIGITS)}"),
        *kept,
        ("training queries", number(tr["queries"])),
        ("training energy / latency", f"{eng(tr['energy_j'], 'J', DIGITS)} / {eng(tr['latency_s'], 's', DIGITS)}"),
        ("inference energy / latency", f"{inference[0][1]} / {inference[1][1]}"),
        _mzis(report),
        _area(report),
        ("wall time", eng(tr["wall_s"], "s", DIGITS)),
        *optical,
    ]


def summary_rows(report: dict, resolved: dict | None = None) -> Rows:
    """Rows of the terminal summary: :func:`provenance` then :func:`numbers`.

    The caller adds where the run was written (``("run directory", str(out))``).
    """
    return provenance(report, resolved) + numbers(report)
