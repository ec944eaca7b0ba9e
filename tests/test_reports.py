"""Run directories: schema-valid report.json, atomic writes, real PNG figures embedded in the HTML."""

from __future__ import annotations

import base64
import copy
import json
import re
import struct

import numpy as np
import pytest
import yaml

from photonic_sim.reports import (
    ReportError, check_out_dir, collect_versions, read_history, render, validate_report, write_run_dir,
)
from photonic_sim.reports import figures as figures_mod
from photonic_sim.reports.units import eng, scale

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_report() -> dict:
    return {
        "scenario": "quickstart", "seed": 0, "task": {"kind": "digits", "test_fraction": 0.25},
        "metrics": {"name": "accuracy", "final": 0.91, "best": 0.93, "history_file": "metrics.csv"},
        "counts": {"mzi_blocked": 640, "mzi_svd": 500, "phase_shifters": 1400, "detectors": 80, "adcs": 80,
                   "dacs": 80, "lasers": 1},
        "area_mm2": {"total": 10.8, "breakdown": {"phase_shifters": 3.5, "couplers": 0.3, "adc": 4.0, "dac": 3.0}},
        "inference": {"energy_j": 3.2e-10, "latency_s": 2.1e-7,
                      "breakdown": {"energy_j": {"laser": 1e-10, "adc": 1.2e-10, "dac": 1e-10},
                                    "latency_s": {"optical": 1e-10, "control": 2.099e-7}}},
        "training": {"queries": 3200, "energy_j": 1.3, "latency_s": 1.1, "wall_s": 55.0,
                     "breakdown": {"energy_j": {"heaters": 1.0, "adc": 0.3}, "latency_s": {"settle": 1.0, "optical": 0.1}}},
        "versions": collect_versions(),
    }


def make_history(n: int = 40) -> list[dict]:
    return [{"step": i, "queries": 16 * i, "loss": 2.3 * 0.95**i, "metric": 0.1 + 0.02 * i if i % 10 == 0 else None,
             "energy_j": 1e-3 * i, "latency_s": 5e-4 * i} for i in range(1, n + 1)]


PHASES = {"layer0.core0": np.linspace(0, 9, 8 * 28).reshape(8, 28), "layer1/dense": np.arange(12.0)}


def write(out, **kw):
    args = dict(report=make_report(), history=make_history(), resolved_scenario={"name": "quickstart", "seed": 0},
                phases_by_mesh=PHASES, checkpoint_files={"state.pt": b"\x00\x01weights"})
    args.update(kw)
    return write_run_dir(out, **args)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write(tmp_path_factory.mktemp("runs") / "quickstart")


# ------------------------------------------------------------------ schema


def test_report_schema_accepts_a_good_report_and_rejects_broken_ones():
    validate_report(make_report())
    breakages = {
        "training": lambda r: r.pop("training"),
        "counts.lasers": lambda r: r["counts"].pop("lasers"),
        "counts.adcs": lambda r: r["counts"].__setitem__("adcs", 2.5),
        "inference.energy_j": lambda r: r["inference"].__setitem__("energy_j", -1.0),
        "metrics.history_file": lambda r: r["metrics"].__setitem__("history_file", "other.csv"),
        "area_mm2.breakdown.adc": lambda r: r["area_mm2"]["breakdown"].__setitem__("adc", "4 mm2"),
        "task.kind": lambda r: r["task"].__setitem__("kind", "cifar"),
        "training.breakdown.energy_j.heaters": lambda r: r["training"]["breakdown"]["energy_j"].__setitem__("heaters", float("nan")),
    }
    for key, breaker in breakages.items():
        report = copy.deepcopy(make_report())
        breaker(report)
        with pytest.raises(ReportError) as info:
            validate_report(report)
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith("report.json: ")
        where = {"training": "<root>: 'training' is a required", "counts.lasers": "counts: 'lasers' is a required"}
        assert msg.startswith(f"report.json: {where.get(key, key + ':')}"), (key, msg)


def test_null_metrics_are_allowed_for_a_cost_only_run():
    report = make_report()
    report["task"] = {"kind": "none"}
    report["metrics"].update(final=None, best=None, name="none")
    validate_report(report)


# ------------------------------------------------------------------ the run directory


def test_run_dir_has_every_file_and_report_json_round_trips(run_dir):
    names = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")}
    assert {"scenario.resolved.yaml", "report.json", "metrics.csv", "report.md", "report.html", "figures",
            "checkpoint/state.pt", "checkpoint/phases_by_mesh.npz"} <= names
    report = json.loads((run_dir / "report.json").read_text())
    assert report == make_report() | {"versions": report["versions"]}
    validate_report(report)
    assert yaml.safe_load((run_dir / "scenario.resolved.yaml").read_text()) == {"name": "quickstart", "seed": 0}
    assert (run_dir / "checkpoint/state.pt").read_bytes() == b"\x00\x01weights"
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_metrics_csv_round_trips_the_history(run_dir):
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,queries,loss,metric,energy_j,latency_s"
    rows = read_history(run_dir / "metrics.csv")
    expected = make_history()
    assert [r["step"] for r in rows] == [r["step"] for r in expected]
    for got, want in zip(rows, expected):
        assert got["queries"] == want["queries"] and got["metric"] == want["metric"]
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-15)


def test_figures_are_real_pngs_and_the_html_embeds_them(run_dir):
    expected = {"training_curve.png", "energy_breakdown.png", "area_breakdown.png", "latency_breakdown.png",
                "phases_layer0.core0.png", "phases_layer1_dense.png"}
    figs = {p.name: p.read_bytes() for p in (run_dir / "figures").iterdir()}
    assert set(figs) == expected
    for name, data in figs.items():
        w, h = png_size(data)
        assert w >= 200 and h >= 100 and len(data) > 5000, name
    html = (run_dir / "report.html").read_text()
    embedded = [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]
    assert sorted(embedded) == sorted(figs.values())  # every figure, byte for byte, and nothing else
    assert "figures/" not in html  # self-contained: no links to files
    md = (run_dir / "report.md").read_text()
    assert all(f"](figures/{n})" in md for n in expected)


def test_reports_show_engineering_units(run_dir):
    md = (run_dir / "report.md").read_text()
    assert "| energy per inference | 320 pJ |" in md
    assert "| latency per inference | 210 ns |" in md
    assert "| average power | 1.182 W |" in md  # 1.3 J / 1.1 s, 4 significant digits
    assert "| total | 10.8 mm² |" in md
    assert eng(0.03, "W") == "30 mW" and eng(1e-5, "s") == "10 µs" and eng(None, "J") == "—"
    assert scale([2e-7, 5e-6], "s") == (1e6, "µs")


def test_cost_only_run_has_no_training_curve(tmp_path):
    report = make_report()
    report["task"] = {"kind": "none"}
    report["metrics"].update(final=None, best=None, name="none")
    out = write(tmp_path / "cost", report=report, history=[], phases_by_mesh=None)
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["area_breakdown.png", "energy_breakdown.png",
                                                                  "latency_breakdown.png"]
    assert read_history(out / "metrics.csv") == []


# ------------------------------------------------------------------ atomicity and existing dirs


def test_a_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(figures_mod, "phase_heatmap", boom)  # after json/csv/checkpoint were written
    with pytest.raises(RuntimeError, match="disk on fire"):
        write(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_existing_dir_is_kept_on_failure_and_replaced_only_with_overwrite(tmp_path, monkeypatch):
    out = write(tmp_path / "run")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError):
        write(out)
    with pytest.raises(FileExistsError):
        check_out_dir(out)
    monkeypatch.setattr(figures_mod, "phase_heatmap", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write(out, overwrite=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    monkeypatch.undo()
    report = make_report()
    report["seed"] = 7
    write(out, report=report, checkpoint_files={}, overwrite=True)
    assert json.loads((out / "report.json").read_text())["seed"] == 7
    assert not (out / "checkpoint/state.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_bad_inputs_raise_before_anything_is_written(tmp_path):
    broken = make_report()
    del broken["counts"]["mzi_svd"]
    with pytest.raises(ReportError, match="counts"):
        write(tmp_path / "a", report=broken)
    with pytest.raises(ReportError, match=r"history\[1\]: missing loss"):
        write(tmp_path / "b", history=[make_history()[0], {"step": 2, "queries": 3}])
    with pytest.raises(ReportError, match="not a plain file name"):
        write(tmp_path / "c", checkpoint_files={"../escape": b""})
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()  # an empty directory is fine
    assert (write(tmp_path / "empty") / "report.json").is_file()


# ------------------------------------------------------------------ re-rendering


def test_render_recreates_md_html_and_figures_from_the_data_files(tmp_path):
    out = write(tmp_path / "run")
    originals = {n: (out / n).read_text() for n in ("report.md", "report.html")}
    fig_names = sorted(p.name for p in (out / "figures").iterdir())
    for p in (out / "figures").iterdir():
        p.unlink()
    (out / "report.md").write_text("stale")
    (out / "report.html").unlink()
    render(out)
    assert sorted(p.name for p in (out / "figures").iterdir()) == fig_names
    assert (out / "report.md").read_text() == originals["report.md"]
    assert (out / "report.html").read_text().count("data:image/png;base64,") == len(fig_names)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    (out / "report.json").write_text(json.dumps({"scenario": "x"}))
    with pytest.raises(ReportError, match="report.json: <root>: 'seed' is a required property"):
        render(out)


def _npz(arrays: dict) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


CORRUPT_RUN = {  # file of the run directory → its new content, and the words the one error line holds
    "metrics_no_step": ("metrics.csv", b"a,b\n1,2\n", ["metrics.csv", "step"]),
    "metrics_text_cell": ("metrics.csv", b"step,queries,loss,metric,energy_j,latency_s\n1,16,hunter2,,0.1,0.1\n",
                          ["metrics.csv", "line 2", "loss"]),
    "metrics_extra_cells": ("metrics.csv", b"step,queries,loss,metric,energy_j,latency_s\n1,16,1,,0.1,0.1,9,9\n",
                            ["metrics.csv", "line 2"]),
    "metrics_not_utf8": ("metrics.csv", b"\xff\xfe" * 50, ["metrics.csv"]),
    "phases_not_zip": ("checkpoint/phases_by_mesh.npz", b"PK\x03\x04garbage", ["phases_by_mesh.npz"]),
    "phases_object_array": ("checkpoint/phases_by_mesh.npz", _npz({"a": np.array([{"x": 1}], dtype=object)}),
                            ["phases_by_mesh.npz"]),
    "phases_text_array": ("checkpoint/phases_by_mesh.npz", _npz({"layer0": np.array(["a", "b"])}),
                          ["phases_by_mesh.npz", "layer0"]),
    "phases_empty_array": ("checkpoint/phases_by_mesh.npz", _npz({"layer0": np.zeros((0, 3))}),
                           ["phases_by_mesh.npz", "layer0"]),
    "report_not_utf8": ("report.json", b"\xff\xfe{}", ["report.json"]),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_RUN))
def test_report_of_a_corrupt_run_directory_is_one_line_naming_the_file(case, tmp_path, capsys):
    """``photonic-sim report`` on a run directory with a damaged data file: exit 2, one line naming
    the file (no traceback, no echo of its content), and the run directory left as it was."""
    from photonic_sim.cli import main

    out = write(tmp_path / "run")
    name, content, words = CORRUPT_RUN[case]
    (out / name).write_bytes(content)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out, lines[:5]
    assert all(w in lines[0] for w in words) and "hunter2" not in lines[0], lines[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_broken_resolved_scenario_is_one_line_naming_the_file(tmp_path):
    from photonic_sim.reports.render import load_resolved

    path = tmp_path / "scenario.resolved.yaml"
    for text, why in (("a: [1, 2\n" + "secret " * 50, "not valid YAML"), ("- 1\n- 2\n", "not a mapping"),
                      ("!!python/object/apply:os.system ['true']\n", "not valid YAML")):
        path.write_text(text)
        with pytest.raises(ReportError) as info:
            load_resolved(path)
        msg = str(info.value)
        assert msg.startswith(f"{path}: <root>: {why}") and "\n" not in msg and "secret" not in msg
    assert load_resolved(tmp_path / "missing.yaml") is None


# ------------------------------------------------------------------ what produced a run (issue 21 items 8, 11, 12)

RESOLVED = {"name": "quickstart", "seed": 0, "devices": {"name": "silicon_thermo_optic", "phase_shifter": {"bits": 8}},
            "accelerator": {"name": "tonn_time", "architecture": "tonn_time", "block_size": 8, "num_cores": 4},
            "training": {"name": "zo_rge", "strategy": "zo-rge", "steps": 600}, "model": {"name": "digits", "layers": [{"kind": "tt"}, {"kind": "dense"}]}}


def trained_report(stopped: str = "completed") -> dict:
    report = make_report()
    report["training"].update(strategy="zo-rge", steps=600 if stopped == "completed" else 41, stopped=stopped)
    return report


def cost_report() -> dict:
    report = make_report()
    report["task"] = {"kind": "none"}
    report["metrics"].update(final=None, best=None, name="none")
    report["training"].update(queries=0, energy_j=0.0, latency_s=0.0, wall_s=0.0,
                              breakdown={"energy_j": {"heaters": 0.0, "adc": 0.0}, "latency_s": {"settle": 0.0}})
    return report


def test_summary_rows_name_what_produced_the_run_and_round_the_numbers():
    from photonic_sim.reports import summary_rows

    rows = dict(summary_rows(trained_report(), RESOLVED))
    assert rows["device card"] == "silicon_thermo_optic"
    assert rows["accelerator"] == "tonn_time (8×8 blocks, 4 cores)"
    assert rows["model"] == "digits" and rows["recipe / strategy"] == "zo_rge / zo-rge"
    assert rows["steps"] == "600 of 600" and rows["seed"] == "0" and rows["status"] == "completed"
    assert rows["photonic-sim version"] == collect_versions()["photonic_sim"]
    assert rows["accuracy final / best"] == "0.91 / 0.93"
    assert rows["training energy / latency"] == "1.3 J / 1.1 s"
    assert rows["inference energy / latency"] == "320 pJ / 210 ns"
    assert rows["area"] == "10.8 mm²" and rows["MZIs (blocked / SVD)"] == "640 / 500"
    report = trained_report()
    report["inference"]["energy_j"] = 1.234567e-10
    assert dict(summary_rows(report))["inference energy / latency"] == "123.5 pJ / 210 ns"  # 4 significant digits
    assert "device card" not in dict(summary_rows(report))  # no resolved scenario: those rows are left out
    diverged = dict(summary_rows(trained_report("diverged at step 41: loss nan is not finite")))
    assert diverged["status"].startswith("diverged at step 41") and diverged["steps"] == "41"


def test_summary_rows_of_a_cost_only_run_show_inference_costs_not_training():
    from photonic_sim.reports import summary_rows

    rows = dict(summary_rows(cost_report(), RESOLVED))
    assert rows["inference energy"] == "320 pJ" and rows["inference latency"] == "210 ns"
    assert rows["area"] == "10.8 mm²" and rows["MZIs (blocked / SVD)"] == "640 / 500"
    assert rows["phase shifters"] == "1,400" and rows["training"] == "none (cost report only)"
    assert not [k for k in rows if "queries" in k or "final" in k or k in ("status", "steps", "wall time")]


# ------------------------------------------------------------------ reports a person can read (issue 21 items 8, 11, 12, 13)


def png_dpi(data: bytes) -> float:
    """Horizontal resolution from the PNG pHYs chunk (pixels per metre → dots per inch)."""
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"pHYs":
            ppm_x, _ppm_y, unit = struct.unpack(">IIB", data[pos + 8 : pos + 17])
            assert unit == 1  # metres
            return ppm_x * 0.0254
        pos += 12 + length
    raise AssertionError("no pHYs chunk")


def test_figures_are_at_least_150_dpi(run_dir):
    for p in (run_dir / "figures").iterdir():
        assert png_dpi(p.read_bytes()) >= 149.9, p.name


def test_captions_say_what_a_figure_shows_not_its_file_name(run_dir):
    md = (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    assert len(captions) == 6
    for caption in captions:
        assert ".png" not in caption and len(caption.split()) >= 8, caption
    assert re.search(r"<figcaption>Figure 1\. Training progress against chip queries", html)
    assert "![training_curve.png]" not in md and "*Figure 1. Training progress against chip queries" in md
    assert "Energy by component for one inference pass (left) and the whole training run (right)" in md


def test_report_top_names_what_produced_it(tmp_path):
    out = write(tmp_path / "run", report=trained_report(), resolved_scenario=RESOLVED)
    md = (out / "report.md").read_text()
    head = md.split("## Results")[0]
    for row in ("| device card | silicon_thermo_optic |", "| accelerator | tonn_time (8×8 blocks, 4 cores) |",
                "| model | digits |", "| recipe / strategy | zo_rge / zo-rge |", "| steps | 600 of 600 |",
                "| seed | 0 |", f"| photonic-sim version | {collect_versions()['photonic_sim']} |",
                "| status | completed |"):
        assert row in head, row
    assert md.index("## Run") < md.index("## Results") < md.index("## Hardware counts")
    html = (out / "report.html").read_text()
    assert html.index("<td>device card</td><td>silicon_thermo_optic</td>") < html.index("<h2>Results</h2>")
    assert "Training stopped early" not in md and 'class="status"' not in html
    # phase heatmaps name the layer kind from the resolved scenario's model
    assert "Programmed phases of layer 0 (TT), TT core 0 after training" not in md  # PHASES has no block layout
    assert "Programmed phases of layer 0 (TT), TT core 0" in md


def test_a_diverged_run_says_where_and_why_at_the_top():
    report = trained_report("diverged at step 41: loss nan is not finite; kept the phases of the last good step")
    report["training"]["status"] = "diverged"
    from photonic_sim.reports.render import status_line, to_html, to_markdown

    md = to_markdown(report, {}, RESOLVED)
    line = ("Run failed: training diverged after 41 steps and 3,200 chip queries: diverged at step 41: loss nan is "
            "not finite; kept the phases of the last good step.")
    assert md.startswith(f"# photonic-sim run report: quickstart\n\n> **{line}**\n")
    assert "| status | diverged at step 41" in md
    html = to_html(report, {}, RESOLVED)
    assert html.index(f'<p class="status">{line}</p>') < html.index("<h2>Run</h2>")
    report["training"].update(stopped="early stop at step 300: no improvement in 5 evaluations", status="early-stop")
    assert status_line(report).startswith("Training stopped early after 41 steps")


def test_a_cost_only_report_shows_inference_costs_and_no_training(tmp_path):
    out = write(tmp_path / "cost", report=cost_report(), history=[], phases_by_mesh=None, resolved_scenario=RESOLVED)
    md = (out / "report.md").read_text()
    assert md.startswith("# photonic-sim cost report: quickstart")
    for row in ("| inference energy | 320 pJ |", "| inference latency | 210 ns |", "| area | 10.8 mm² |",
                "| MZIs (blocked / SVD) | 640 / 500 |", "| training | none (cost report only) |"):
        assert row in md, row
    assert "## Training" not in md and "chip queries" not in md and "none (final)" not in md
    assert "metrics.csv" not in md and "training_curve" not in md
    html = (out / "report.html").read_text()
    assert "<h2>Training</h2>" not in html and "training energy" not in html
    # the energy and latency figures show only the inference panel
    assert "whole training run" not in md
    w_cost, _ = png_size((out / "figures/energy_breakdown.png").read_bytes())
    w_run, _ = png_size(figures_mod.energy_breakdown(trained_report()).png)
    assert w_cost < 0.7 * w_run


def test_training_curve_starts_at_query_zero():
    from photonic_sim.reports.figures import metric_points, training_curve_figure

    history, report = make_history(), trained_report()
    fig, caption = training_curve_figure(history, report)
    ax_loss, ax_metric = fig.axes[:2]
    assert ax_loss.get_xlim()[0] == 0 and ax_metric.get_xlim()[0] == 0
    assert ax_metric.get_xlim()[1] >= history[-1]["queries"]
    assert "the axis starts at query 0" in caption
    assert metric_points(history, report)[0] == (160.0, 0.1 + 0.02 * 10)  # the first evaluation of make_history
    report["metrics"]["initial"] = 0.1
    validate_report(report)
    pts = metric_points(history, report)
    assert pts[0] == (0.0, 0.1) and pts[1] == (160.0, 0.1 + 0.02 * 10)
    fig, caption = training_curve_figure(history, report)
    xs, ys = fig.axes[1].lines[0].get_data()
    assert xs[0] == 0 and ys[0] == pytest.approx(10.0)  # accuracy drawn in %
    assert "from the initial evaluation at query 0" in caption
    with_zero = [{"step": 0, "queries": 0, "loss": 2.3, "metric": 0.12, "energy_j": 0.0, "latency_s": 0.0}, *history]
    assert metric_points(with_zero, report)[0] == (0.0, 0.12)  # a history row at query 0 wins


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8, 9])
def test_block_segments_match_the_svd_block_layout(k):
    from photonic_sim.circuits.svd import SVDBlock
    from photonic_sim.reports.figures import block_segments

    block = SVDBlock(k, k)
    seg = {label: (a, b) for label, a, b in block_segments(block.num_phases)}
    m = block.u.num_mzis
    u, s, v = block.slices["U"], block.slices["S"], block.slices["V"]
    assert seg["Σ"] == (s.start, s.stop)
    assert seg["U α"] == (u.start + 2 * m, u.stop) and seg["V α"] == (v.start + 2 * m, v.stop)
    if k > 1:
        assert seg["U θ"] == (u.start, u.start + m) and seg["U φ"] == (u.start + m, u.start + 2 * m)
        assert seg["V θ"] == (v.start, v.start + m) and seg["V φ"] == (v.start + m, v.start + 2 * m)
    else:
        assert set(seg) == {"U α", "Σ", "V α"}
    assert block_segments(block.num_phases + 1) is None


def test_phase_heatmap_labels_blocks_parts_and_axes():
    from photonic_sim.reports.figures import phase_heatmap_figure

    phases = np.random.default_rng(0).uniform(0, 7, size=(3, 2 * 8 * 8 + 8))
    fig, caption = phase_heatmap_figure("layer1.core0", phases, {"kind": "dense"})
    ax = fig.axes[0]
    assert ax.get_title() == "layer 1 (dense), core 0: 3 blocks of 8×8"
    assert ax.get_ylabel() == "SVD block" and ax.get_xlabel().startswith("phase shifter within the block")
    top = ax.child_axes[0]  # the secondary x axis on top
    assert [t.get_text() for t in top.get_xticklabels()] == ["U θ", "U φ", "U α", "Σ", "V θ", "V φ", "V α"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
    assert np.allclose(ax.images[0].get_array(), np.mod(phases, 2 * np.pi))
    assert caption.startswith("Programmed phases of layer 1 (dense), core 0 after training: one row per 8×8 SVD block")
    # with the matrix shape, blocks are named by (block row, block column)
    fig, caption = phase_heatmap_figure("layer0.core2", phases, {"kind": "tt", "shape": (20, 7)})
    ax = fig.axes[0]
    assert ax.get_title() == "layer 0 (TT), TT core 2: 20×7 matrix on 3×1 blocks of 8×8"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["(0,0)", "(1,0)", "(2,0)"]
    assert "(labelled (block row, block column))" in caption


@pytest.mark.parametrize("model", ["digits", "hjb20"])
def test_mesh_info_matches_the_hardware_matrices(model):
    import dataclasses

    from photonic_sim.cores import TONN
    from photonic_sim.cores.spec import preset
    from photonic_sim.reports.render import mesh_info

    spec = preset(model)
    info = mesh_info({"model": json.loads(json.dumps(dataclasses.asdict(spec)))})  # as scenario.resolved.yaml holds it
    hw = TONN(spec, 8).hardware_matrices()
    assert info == {f"layer{m.layer}.core{m.core}": {"kind": spec.layers[m.layer].kind, "shape": (m.rows, m.cols)}
                    for m in hw}
    assert mesh_info(None) == {} and mesh_info({"model": "digits"}) == {}


def test_energy_bars_use_a_log_axis_when_one_part_dominates():
    from matplotlib.figure import Figure

    from photonic_sim.reports.figures import _bars

    dominated = {"phase_shifters": 3.9481344e-05, "tia": 5.94432e-08, "modulator": 1.4652e-09}
    ax = Figure().subplots()
    _bars(ax, dominated, "J", "inference energy, one pass")
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] < 1.4652e-09
    texts = [t.get_text().strip() for t in ax.texts]
    total = sum(dominated.values())
    assert f"39.48 µJ ({100 * 3.9481344e-05 / total:.3g} %)" in texts and "1.465 nJ (0.0037 %)" in texts
    even = Figure().subplots()
    _bars(even, {"a": 1e-9, "b": 3e-9}, "J", "inference energy, one pass")
    assert even.get_xscale() == "linear" and even.get_xlabel() == "nJ"


def test_html_uses_the_page_width(run_dir):
    html = (run_dir / "report.html").read_text()
    css = html.split("<style>")[1].split("</style>")[0]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "max-width:1000px" not in css and re.search(r"img\{[^}]*max-width:100%", css)
    assert "grid-template-columns:repeat(auto-fit" in css
    # two-panel figures and heatmaps take a whole row; the area chart shares one
    assert html.count('<figure class="wide">') == 5 and html.count("<figure><img") == 1


# ------------------------------------------------------------------ sweeps and comparisons (issue 21 items 11, 15)


def job_row(label: dict, *, cost: bool = False, metric: float = 0.5, energy: float = 3.2e-10) -> dict:
    row = {**label, "job": "x" * 16, "metric": "none" if cost else "accuracy", "metric_final": None if cost else metric,
           "metric_best": None if cost else metric, "higher_is_better": True, "queries": 0 if cost else 160,
           "training_energy_j": 0.0 if cost else 0.02, "training_latency_s": 0.0 if cost else 1e-3, "wall_s": 0.0,
           "inference_energy_j": energy, "inference_latency_s": 2.1e-7, "mzi_blocked": 640, "area_mm2": 10.8,
           "history": [] if cost else [[80, metric / 2], [160, metric]], "stopped": "completed", "status": "completed"}
    return row


def test_sweep_json_keeps_numbers_as_numbers(tmp_path):
    from photonic_sim.reports.compare import as_number, write_sweep

    assert [as_number(v) for v in ("8", "-3", "1e-3", "0.25", ".5", "nan", "inf", "abc", "1,2", "true", 7)] == \
        [8, -3, 1e-3, 0.25, 0.5, "nan", "inf", "abc", "1,2", "true", 7]
    rows = [job_row({"devices.phase_shifter.bits": b, "training.strategy_options.lr": lr, "devices": d, "seed": 0},
                    metric=0.1 * i)
            for i, (b, lr, d) in enumerate([("4", "1e-3", "mems"), ("8", "1e-3", "mems"), ("4", "0.01", "thermo")])]
    rows.append({"devices.phase_shifter.bits": "8", "training.strategy_options.lr": "0.01", "devices": "thermo",
                 "seed": 0, "job": "y" * 16, "metric": "accuracy", "metric_final": float("nan"), "wall_s": 1.0,
                 "error": "RuntimeError: boom"})
    keys = ["devices.phase_shifter.bits", "training.strategy_options.lr", "devices"]
    summary = write_sweep(tmp_path, rows, keys)
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["devices.phase_shifter.bits"] for r in data] == [4, 8, 4, 8]
    assert [r["training.strategy_options.lr"] for r in data] == [1e-3, 1e-3, 0.01, 0.01]
    assert [r["devices"] for r in data] == ["mems", "mems", "thermo", "thermo"]
    assert data[0]["inference_energy_j"] == 3.2e-10 and data[1]["metric_final"] == pytest.approx(0.1, rel=1e-15)
    assert data[3]["metric_final"] is None  # NaN is not JSON
    assert [s["devices.phase_shifter.bits"] for s in summary] == [4, 8, 4, 8]
    assert summary[0]["training_energy_j"] == "20 mJ"  # rounded for display only
    assert "| 8 | 0.01 | thermo | 0 |" in (tmp_path / "sweep.md").read_text()


def test_cost_only_sweep_and_comparison_summarise_inference_costs(tmp_path):
    from photonic_sim.reports.compare import write_comparison, write_sweep

    rows = [job_row({"accelerator.block_size": k, "seed": 0}, cost=True, energy=e) for k, e in (("4", 1e-9), ("8", 4e-9))]
    summary = write_sweep(tmp_path / "sweep", rows, ["accelerator.block_size"])
    assert summary == [
        {"accelerator.block_size": 4, "runs": "1/1", "inference energy": "1 nJ", "inference latency": "210 ns",
         "area": "10.8 mm²", "MZIs": "640"},
        {"accelerator.block_size": 8, "runs": "1/1", "inference energy": "4 nJ", "inference latency": "210 ns",
         "area": "10.8 mm²", "MZIs": "640"}]
    md = (tmp_path / "sweep" / "sweep.md").read_text()
    assert "| 8 | 0 | 4 nJ | 210 ns | 10.8 mm² | 640 | ok |" in md
    assert "metric_final" not in md and "training energy" not in md and "queries" not in md
    assert "Inference energy per pass (left) and chip area (right) against the first grid key" in md
    assert png_dpi((tmp_path / "sweep" / "figures" / "sweep.png").read_bytes()) >= 149.9
    variants = [job_row({"variant": v, "seed": 0}, cost=True, energy=e) for v, e in (("base", 4e-5), ("mems", 2e-7))]
    summary = write_comparison(tmp_path / "cmp", variants, group_by=("variant",))
    assert [(s["variant"], s["inference energy"]) for s in summary] == [("base", "40 µJ"), ("mems", "200 nJ")]
    names = {p.name for p in (tmp_path / "cmp" / "figures").iterdir()}
    assert names == {"costs.png"} and "# Cost comparison" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_convergence_bands_against_queries_and_joules():
    """The comparison figure's curves: the mean over seeds on the common x range, with the
    min–max band; the energy panel uses each history point's training energy (third entry),
    and rows written before energies were recorded ([queries, metric]) still draw."""
    from matplotlib.figure import Figure

    from photonic_sim.reports.compare import _band, convergence_figure

    a = np.array([[0.0, 0.1], [10.0, 0.5], [20.0, 0.9]])
    b = np.array([[0.0, 0.3], [20.0, 0.7]])
    ax = Figure().subplots()
    line = _band(ax, [a, b], "g")
    x, y = line.get_data()
    assert x[0] == 0 and x[-1] == 20 and len(x) == 50
    assert np.allclose(y, 0.5 * (np.interp(x, a[:, 0], a[:, 1]) + np.interp(x, b[:, 0], b[:, 1])), atol=1e-12)
    rows = [{"strategy": "s", "seed": k, "metric": "relative_l2",
             "history": [[0, 0.5, 0.0], [100, 0.1 + 0.01 * k, 2.5e-3]]} for k in range(2)]
    rows.append({"strategy": "old", "seed": 0, "metric": "relative_l2", "history": [[0, 0.5], [100, 0.2]]})
    png = convergence_figure(rows, ("strategy",))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # past 10 groups no two look alike: colour i mod 10 with dash pattern i div 10
    from photonic_sim.reports.compare import _style

    looks = {(st["color"], st["linestyle"]) for st in (_style(i, True) for i in range(16))}
    assert len(looks) == 16 and _style(3, False) == {"color": "C3", "linestyle": "-", "alpha": 0.2}
    many = [{"strategy": f"s{i}", "seed": 0, "metric": "accuracy", "history": [[0, 0.1, 0.0], [10, 0.2 + 0.01 * i, 1.0]]}
            for i in range(16)]
    assert convergence_figure(many, ("strategy",))[:8] == b"\x89PNG\r\n\x1a\n"
