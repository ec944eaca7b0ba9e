"""Every ``examples/*.py`` runs in its quick mode (``PHOTONIC_SIM_QUICK=1``) and exits 0.

Each example asserts its own result; this test only runs them, as a user would: a fresh
process, an empty working directory, no ``PYTHONPATH`` tricks. New examples are picked up by
the glob.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT_S = 120


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_in_quick_mode(example, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PHOTONIC_SIM_PATH")}
    env.update(PHOTONIC_SIM_QUICK="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    try:
        done = subprocess.run(
            [sys.executable, str(example)], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{example.name} did not finish within {TIMEOUT_S} s in quick mode")
    assert done.returncode == 0, f"{example.name} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
