import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

# Tests run on small shared CPUs: keep torch to one thread so timings and results are stable.
torch.set_num_threads(int(os.environ.get("PHOTONIC_SIM_TEST_THREADS", "1")))


@pytest.fixture
def gen():
    """A seeded torch.Generator (CPU) for reproducible noise draws."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def load_bench():
    """``load_bench(name)`` imports ``benchmarks/<name>.py`` as a fresh module (the folder is on
    sys.path while it loads: benchmarks import each other)."""
    here = Path(__file__).resolve().parents[1] / "benchmarks"

    def load(name):
        sys.path.insert(0, str(here))
        try:
            spec = importlib.util.spec_from_file_location(name, here / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(here))
        return module

    return load
