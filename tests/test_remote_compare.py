"""`photonic-sim compare` and `sweep` through a served chip (--chip).

A served chip is one chip: its jobs run one after another, each from the chip's reset state,
and give the local jobs' numbers bit for bit; what would change the chip (several seeds, a
grid key or a variant that changes the devices, accelerator, model, seed, readout or insertion
loss) and what cannot run on it (the first-order baseline, parallel workers, Ray) is refused
with one line, exit 2, before anything runs or is written."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from photonic_sim.cli import main
from photonic_sim.scenarios import load_scenario
from test_cli import TINY  # the tiny TT scenario: 4 steps of sign-RGE, q=4, batch 16
from test_remote_chip import served_in_process

NUMBERS = ("metric_final", "metric_best", "queries", "training_energy_j", "training_latency_s", "inference_energy_j",
           "mzi_blocked", "area_mm2", "status")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("remote_compare") / "tiny.yaml"
    path.write_text(TINY + "variants:\n  q2: {training.strategy_options.q: 2}\n"
                    "  bits6: {devices.phase_shifter.bits: 6}\n")
    return path


@pytest.fixture(scope="module")
def served(tiny):
    with served_in_process(load_scenario(tiny)) as server:
        yield server


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """Figures are not this file's subject (matplotlib costs seconds per summary)."""
    compare = importlib.import_module("photonic_sim.reports.compare")
    for name in ("convergence_figure", "sweep_figure"):
        monkeypatch.setattr(compare, name, lambda *args, **kwargs: b"")


def _rows(out: Path, name: str) -> list[dict]:
    return json.loads((out / name).read_text())


def _same(remote: list[dict], local: list[dict], keys) -> None:
    assert len(remote) == len(local)
    for r, ref in zip(remote, local):
        assert "error" not in r, r.get("error")
        for key in (*keys, *NUMBERS):
            assert r[key] == ref[key], (key, r[key], ref[key])


def test_compare_through_a_served_chip_gives_the_local_numbers(tiny, served, tmp_path, capsys):
    args = ["compare", str(tiny), "--strategies", "zo-sign-rge,spsa", "--set", "training.steps=2"]
    assert main([*args, "--seeds", "1", "--out", str(tmp_path / "local")]) == 0
    # the second job runs on the chip the first one drove: equal numbers need the reset between them
    assert main([*args, "--chip", served.address, "--out", str(tmp_path / "remote")]) == 0
    remote, local = _rows(tmp_path / "remote", "comparison.json"), _rows(tmp_path / "local", "comparison.json")
    _same(remote, local, ("strategy", "seed"))
    assert [r["strategy"] for r in remote] == ["zo-sign-rge", "spsa"] and remote[0]["queries"] > 0
    assert not (tmp_path / "remote" / "jobs").exists()  # rows from a served chip are never reused
    assert served.backend.ledger.queries > 0
    assert "strategy=spsa, seed=0: accuracy=" in capsys.readouterr().err


def test_sweep_through_a_served_chip_gives_the_local_numbers(tiny, served, tmp_path):
    args = ["sweep", str(tiny), "--grid", "training.strategy_options.q=2,3", "--set", "training.steps=2"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--chip", served.address, "--out", str(tmp_path / "remote")]) == 0
    remote, local = _rows(tmp_path / "remote", "sweep.json"), _rows(tmp_path / "local", "sweep.json")
    _same(remote, local, ("training.strategy_options.q", "seed"))
    assert [r["queries"] for r in remote] == [2 * 3, 2 * 4]  # one-sided, q + 1 per step: each job its own q


REFUSED = {  # name: (arguments after SCENARIO, words of the one-line error)
    "seeds": (["compare", "--strategies", "zo-sign-rge", "--seeds", "2"], "compare: --seeds: 2 with --chip (allowed: 1"),
    "sweep_seeds": (["sweep", "--grid", "training.steps=1", "--seeds", "3"], "sweep: --seeds: 3 with --chip"),
    "workers": (["compare", "--strategies", "zo-sign-rge", "--workers", "2"], "--workers/--backend: with --chip"),
    "ray": (["sweep", "--grid", "training.steps=1", "--backend", "ray"], "(allowed: --workers 1 --backend local)"),
    "grid_seed": (["sweep", "--grid", "training.steps=1,2", "--grid", "seed=0,1"],
                  "sweep: --grid seed: changes the chip (devices, accelerator, model, seed, readout or chip)"),
    "grid_devices": (["sweep", "--grid", "devices.phase_shifter.bits=8,6"],
                     "sweep: --grid devices.phase_shifter.bits: changes the chip"),
    "grid_loss": (["sweep", "--grid", "chip.insertion_loss=true,false"], "sweep: --grid chip.insertion_loss: changes"),
    "variants": (["compare"], "compare: --chip: variants: changes the chip"),
    "first_order": (["compare", "--strategies", "zo-sign-rge,fo"], "--strategies: fo needs the simulated chip"),
    "unreachable": (["compare", "--strategies", "zo-sign-rge"], "compare: --chip: "),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_a_served_chip_cannot_run_is_refused_before_anything_runs(case, tiny, served, tmp_path, capsys):
    command, *rest = REFUSED[case][0]
    address = "tcp://127.0.0.1:1" if case == "unreachable" else served.address
    queries = served.backend.ledger.queries
    out = tmp_path / "out"
    assert main([command, str(tiny), *rest, "--chip", address, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and REFUSED[case][1] in err[0] and len(err[0]) < 250, err
    assert not out.exists() and served.backend.ledger.queries == queries  # nothing written, nothing measured
