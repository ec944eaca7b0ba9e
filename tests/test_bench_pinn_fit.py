"""benchmarks/bench_pinn_fit.py: the supervised capacity fit of a bench_pinn case's network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pinn_fit.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600, env=env)


def test_supervised_fit_lowers_the_error_of_the_burgers_network():
    """Ten Adam steps on the reference values take the odd Burgers network's test error down
    (0.51 -> 0.40 on seed 0), printed five times."""
    done = _run("--steps", "10", "--points", "100", "--test-points", "200")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.split() and line.split()[0].isdigit()]
    rel = [float(r[2]) for r in rows]
    assert [int(r[0]) for r in rows] == [2, 4, 6, 8, 10]
    assert rel[-1] < 0.9 * rel[0] and 0 < rel[-1] < 1


def test_bad_arguments_exit_2():
    done = _run("--case", "nope")
    assert done.returncode == 2 and "--case" in done.stderr
