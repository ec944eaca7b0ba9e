"""benchmarks/bench_mnist.py --quick: the printed cost table's structure, and the numbers in it
that are counts (controls, queries per step, the partial run's ledger), against values computed
here from the network's layer shapes, the block size and the recipe file, not by the package."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from photonic_sim.cores.spec import PRESETS

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = ROOT.parent / "shared" / "datasets" / "mnist"
BLOCK = 8  # accelerators/tonn_space.yaml and dense_onn.yaml: block_size


def block_controls(k: int) -> int:
    """Phases of one k×k SVD block: two Clements meshes (k(k−1)/2 MZIs × 2 phases + k output
    phases each) and k Σ attenuators (docs/physics.md)."""
    return 2 * (k * (k - 1) // 2 * 2 + k) + k


def matrix_shapes(layer, dense: bool) -> list[tuple[int, int]]:
    """Hardware matrices of a layer: TT core i is (r_i·m_i) × (n_i·r_{i+1}) (m out modes, n in
    modes); a dense layer, or any layer on the dense ONN, is out × in."""
    if dense or layer.kind == "dense":
        return [(layer.out_features, layer.in_features)]
    r, n, m = layer.ranks, layer.in_modes, layer.out_modes
    return [(r[i] * m[i], n[i] * r[i + 1]) for i in range(len(n))]


def expected_counts(model: str, dense: bool) -> tuple[int, int]:
    """(controls, blocks) of the preset on k×k blocks: every block's phases + the biases."""
    layers = PRESETS[model].layers
    blocks = sum(math.ceil(a / BLOCK) * math.ceil(b / BLOCK) for layer in layers for a, b in matrix_shapes(layer, dense))
    biases = sum(layer.out_features for layer in layers if layer.bias)
    return blocks * block_controls(BLOCK) + biases, blocks


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"no MNIST IDX files at {MNIST_DIR}")
def test_quick_run_table_and_counts(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_mnist.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout

    # the cost table: header, separator of the same width, two rows (sign-RGE, CGE) per network
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| network |"))
    ncols = lines[head].count("|") - 1
    assert ncols == 12 + 3  # 12 columns + N = 2, 8, 32
    assert lines[head + 1] == "|" + "---|" * ncols
    rows = [line.split("|")[1:-1] for line in lines[head + 2: head + 6]]
    assert all(len(r) == ncols for r in rows)
    cols = [c.strip() for c in lines[head].split("|")[1:-1]]

    recipe = yaml.safe_load((ROOT / "training" / "hybrid_zo.yaml").read_text())
    q, two_sided = recipe["strategy_options"]["q"], recipe["strategy_options"].get("two_sided", False)
    rge_queries = 2 * q if two_sided else q + 1
    for r, (network, phase) in zip(rows, [("TT", "sign-RGE"), ("TT", "CGE"), ("dense", "sign-RGE"), ("dense", "CGE")]):
        cell = dict(zip(cols, (c.strip() for c in r)))
        controls, blocks = expected_counts("mnist_small", dense=network == "dense")
        assert cell["network"] == network and cell["phase"].startswith(phase)
        assert int(cell["controls"]) == controls and int(cell["blocks"]) == blocks
        assert int(cell["queries/step"]) == (rge_queries if phase == "sign-RGE" else controls + 1)
        assert int(cell["batch"]) == 64
        for key in ("1 thread", "N=2", "N=8", "N=32"):
            assert re.fullmatch(r"[0-9.e+]+ (s|min|h|d)", cell[key]), cell[key]
    assert expected_counts("mnist_small", dense=False) == (6330, 46)  # docs/classification.md, MNIST
    assert expected_counts("mnist", dense=False)[0] == 8514  # the paper's TT network (docs, ZO-gain table)

    # the partial run: it trained, was labelled partial, and its ledger counts q + 1 queries per step
    data = json.loads(out.read_text())
    run = data["partial_run"]
    assert "PARTIAL" in text and run["steps"] >= 1 and run["steps"] < run["steps_planned"] == 2000
    rge_steps = run["switched_at"] or run["steps"]  # the hybrid's switch to CGE (d + 1 queries per step)
    cge_queries = expected_counts("mnist_small", dense=False)[0] + 1
    assert run["queries"] == rge_steps * rge_queries + (run["steps"] - rge_steps) * cge_queries
    assert run["curve"][0]["step"] == 0 and run["curve"][-1]["step"] == run["steps"]
    assert 0.0 <= run["accuracy"] <= 1.0 and run["energy_j"] > 0
    # the one-thread projection is steps x step + evaluations x eval (21: every 100 steps and step 0)
    tt = data["costs"][0]
    assert tt["evaluations"] == 21
    assert tt["projected_rge_s"]["1"] == pytest.approx(2000 * tt["step_s"] + 21 * tt["eval_s"], rel=1e-12)
