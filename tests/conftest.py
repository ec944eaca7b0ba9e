import os

import pytest
import torch

# Tests run on small shared CPUs: keep torch to one thread so timings and results are stable.
torch.set_num_threads(int(os.environ.get("PHOTONIC_SIM_TEST_THREADS", "1")))


@pytest.fixture
def gen():
    """A seeded torch.Generator (CPU) for reproducible noise draws."""
    return torch.Generator().manual_seed(1234)
