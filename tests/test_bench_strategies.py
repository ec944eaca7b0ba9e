"""benchmarks/bench_strategies.py (the docs/strategies.md generator), run as a command: its
--quick page is complete and the same seeds give the same numbers (every column except the
wall and CPU times) when the command runs twice."""
from __future__ import annotations

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
    """The table rows without their last two cells (wall and CPU time)."""
    rows = [line.strip("|").split("|") for line in page.splitlines() if line.startswith("| `")]
    return [[c.strip() for c in r[:-2]] for r in rows]


def _check(tmp_path: Path, only: str, metric: str, png: str) -> None:
    first = _page(tmp_path / "a", only)
    second = _page(tmp_path / "b", only)
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
    _check(tmp_path, "digits", "accuracy", "strategies_digits.png")


@pytest.mark.slow
def test_quick_page_is_reproducible_black_scholes(tmp_path):
    _check(tmp_path, "black_scholes", "relative_l2", "strategies_black_scholes.png")
