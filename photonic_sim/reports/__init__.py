"""Run reports: report.json (schema.json), metrics.csv, report.md / report.html, figures.

    from photonic_sim.reports import write_run_dir, render, validate_report, collect_versions
    write_run_dir("runs/quickstart", report, history, scenario.resolved(), phases_by_mesh, {"state.pt": b"..."})
    render("runs/quickstart")   # re-render md / html / figures from report.json + metrics.csv
    summary_rows(report, resolved)  # [(label, value)] of the terminal summary, rounded

report.json (SI units except ``area_mm2``; see schema.json)::

    scenario, variant (optional), seed, task {kind, ...},
    metrics {name, final, best, higher_is_better (optional), history_file: "metrics.csv"},
    counts {mzi_blocked, mzi_svd, phase_shifters, detectors, adcs, dacs, lasers, ...},
    area_mm2 {total, breakdown {component: mm²}},
    inference {energy_j, latency_s, breakdown {energy_j {component: J}, latency_s {component: s}}},
    training {queries, energy_j, latency_s, breakdown {energy_j {...}, latency_s {...}}, wall_s},
    versions {photonic_sim, torch, numpy, python}
"""

from .files import HISTORY_COLUMNS, ReportError, collect_versions, read_history, validate_report
from .render import render
from .summary import summary_rows
from .writer import check_out_dir, write_run_dir

__all__ = [
    "HISTORY_COLUMNS", "ReportError", "check_out_dir", "collect_versions", "read_history", "render",
    "summary_rows", "validate_report", "write_run_dir",
]
