"""benchmarks/bench_strategies.py (the docs/strategies.md generator), run as a command: its
--quick page is complete and the same seeds give the same numbers (every column except the
wall and CPU times) when the command runs twice; and its summaries (the phase-bits sweep's
fewest-joules rule, the rounding comparison's verdict) on hand-made rows."""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_strategies.py"


def _page(tmp: Path, only: str) -> str:
    out = tmp / "out"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--only", only, "--out", str(out),
           "--page", str(tmp / "page.md"), "--img", str(tmp / "img")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return (tmp / "page.md").read_text()


def _numbers(page: str) -> list[list[str]]:
    """The comparison tables' rows without their last two cells (wall and CPU time)."""
    page = page.split("## Stochastic against deterministic rounding", 1)[0]
    rows = [line.strip("|").split("|") for line in page.splitlines() if line.startswith("| `")]
    return [[c.strip() for c in r[:-2]] for r in rows]


def _sr_numbers(page: str) -> list[str]:
    """The rounding comparison's table rows and verdict (no wall or CPU times in them)."""
    part = page.split("## Stochastic against deterministic rounding", 1)[1].split("\nPackage ", 1)[0]
    return [line for line in part.splitlines() if line.startswith(("| ", "Verdict"))]


def _check(tmp_path: Path, only: str, metric: str, png: str, sr: bool = False) -> None:
    first = _page(tmp_path / "a", only + (",sr" if sr else ""))
    second = _page(tmp_path / "b", only + (",sr" if sr else ""))
    if sr:  # the quick rounding comparison: 2 arms x 1 radius, 2 seeds, reproduced
        table = _sr_numbers(first)
        assert table == _sr_numbers(second)
        assert len(table) == 6 and table[1].startswith("| stochastic rows and updates") and "0.02 rad" in table[0]
        assert table[4].startswith("| `sr` − `nearest` | ") and table[5].startswith("Verdict (computed from the table)")
        for line in table[1:3]:
            mean, std = (float(x) for x in line.split("|")[2].strip(" %").split("±"))
            assert 0.0 <= mean <= 100.0 and std >= 0.0
    rows = _numbers(first)
    assert [r[0] for r in rows] == ["`zo-rge`", "`zo-sign-rge`"]  # the base, then the first variant
    for r in rows:
        assert r[2] == "3" and r[3] == "2/2" and r[4] == metric  # steps, runs ok, metric
        mean = float(r[5].split("±")[0])
        assert 0.0 <= mean <= (1.0 if metric == "accuracy" else 1e3)
        assert int(r[6]) > 0  # training queries
    assert rows == _numbers(second)
    assert "python benchmarks/bench_strategies.py --quick" in first
    assert (tmp_path / "a" / "img" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "a" / "out" / only / "comparison.json").is_file()


def test_quick_page_is_reproducible_digits(tmp_path):
    _check(tmp_path, "digits", "accuracy", "strategies_digits.png", sr=True)


@pytest.mark.slow
def test_quick_page_is_reproducible_black_scholes(tmp_path):
    _check(tmp_path, "black_scholes", "relative_l2", "strategies_black_scholes.png")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_strategies", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(seed: int, accs: list[float], joules: list[float]) -> dict:
    return {"seed": seed, "metric_final": accs[-1], "history": [[i, a, j] for i, (a, j) in enumerate(zip(accs, joules))]}


def test_fewest_joules_reads_the_seed_mean_curves():
    b = _bench()
    # a: seeds cross 0.25 at evaluations 1 and 3 -> mean curve (0.1, 0.2, 0.25, 0.3) crosses at evaluation 2
    a = b.mean_history([_row(0, [0.1, 0.3, 0.3, 0.3], [0.0, 1.0, 2.0, 3.0]),
                        _row(1, [0.1, 0.1, 0.2, 0.3], [0.0, 1.2, 2.2, 3.2])])
    assert [j for j, _ in a] == pytest.approx([0.0, 1.1, 2.1, 3.1]) and a[2][1] == pytest.approx(0.25)
    assert b.crossing(a, 0.25) == pytest.approx((1.1, 2.1))
    curves = {"a": a,
              "b": [(0.0, 0.1), (1.5, 0.2), (2.5, 0.26)],  # (1.5, 2.5] overlaps a's (1.1, 2.1]: a tie
              "c": [(0.0, 0.1), (2.2, 0.2), (3.0, 0.3)],  # (2.2, 3.0]: after a's first evaluation at 0.25
              "d": [(0.0, 0.1), (1.0, 0.24), (2.0, 0.249)]}  # never reaches it (one seed may have): no candidate
    tied, got = b.fewest_joules(curves, 0.25)
    assert tied == ["a", "b"] and set(got) == {"a", "b", "c"}
    assert b.fewest_joules({"d": curves["d"]}, 0.25) == ([], {})
    assert b.joules_to(_row(0, [0.1, 0.2, 0.26], [0.0, 1.0, 2.0]), 0.25) == 2.0
    assert math.isnan(b.joules_to(_row(0, [0.1, 0.2], [0.0, 1.0]), 0.25))


def test_sr_verdict_needs_a_margin_above_the_larger_spread():
    b = _bench()

    def g(mean, std, start=0.10):
        return {"metric_mean": mean, "metric_std": std, "start": start}

    groups = {("sr", 0.02): g(0.11, 0.01), ("nearest", 0.02): g(0.08, 0.02),  # +3 > 2, but 11 % is 1 point over start
              ("sr", 0.1): g(0.30, 0.04), ("nearest", 0.1): g(0.20, 0.05),  # +10 > 5, 20 points over start: a win
              ("sr", 0.2): g(0.30, 0.04), ("nearest", 0.2): g(0.25, 0.06),  # +5 < 6
              ("sr", 0.4): g(0.20, 0.01), ("nearest", 0.4): g(0.25, 0.01),  # -5
              ("sr-rows", 0.4): g(0.5, 0.1)}  # no partner at 0.4 in the last pair, nothing at the other radii
    wins, lines = b.sr_verdict(groups, (0.02, 0.1, 0.2, 0.4), pairs=(("sr", "nearest"), ("sr-rows", "nearest-rows")))
    assert wins == {("sr", "nearest"): [0.1]}
    assert lines == ["| `sr` − `nearest` | +3.0 (2.0) | **+10.0 (5.0)** | +5.0 (6.0) | -5.0 (1.0) |"]


def test_in_situ_adjoint_rows_run_on_the_loss_balanced_mesh():
    """adjoint and node-perturbation (their interference pass assumes unitary meshes) run with
    chip.loss_balanced: true wherever the page runs them; every other strategy on the scenario's chip."""
    from photonic_sim.scenarios import load_scenario

    b = _bench()
    path = b.SCENARIOS_BY_KEY["digits"]
    sc = load_scenario(path, ["training.steps=3"])
    for name in ("adjoint", "node-perturbation"):
        got, sets = b.with_strategy_sets(path, sc.variants[name], ["training.steps=3"])
        assert got.variant == name and got.recipe.strategy == name and got.recipe.steps == 3
        assert got.chip.loss_balanced and got.chip.insertion_loss and sets[-1] == "chip.loss_balanced=true"
        assert b._name(name) == f"`{name}` (loss-balanced mesh)"
    for v in (sc, sc.variants["quzo"]):
        assert b.with_strategy_sets(path, v, []) == (v, []) and not v.chip.loss_balanced
    assert b._name("quzo") == "`quzo`" and b._sets_note(["zo-rge", "fo"]) == []
    note = b._sets_note(["zo-rge", "adjoint", "node-perturbation"])
    assert note[1].startswith("`adjoint`, `node-perturbation`: run on a loss-balanced mesh (`chip.loss_balanced: true`")
