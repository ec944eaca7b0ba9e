import os

import pytest
import torch

# Tests run on small shared CPUs: keep torch to one thread so timings and results are stable.
torch.set_num_threads(int(os.environ.get("PHOTONIC_SIM_TEST_THREADS", "1")))


@pytest.fixture
def gen():
    """A seeded torch.Generator (CPU) for reproducible noise draws."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """``photonic-sim run`` sets torch's thread count (default: every usable core); a test that
    calls the CLI in-process must not leave the rest of the suite on another count."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture
def interrupt_at(monkeypatch):
    """``interrupt_at(step)``: from now on a training run raises KeyboardInterrupt (a user's
    Ctrl-C) right after it records ``step``, so its last checkpoint is the one before;
    ``interrupt_at(None)`` lets runs finish again."""
    from photonic_sim.training import trainer as trainer_mod

    original = trainer_mod.Trainer._record

    def arm(step: int | None) -> None:
        if step is None:
            monkeypatch.setattr(trainer_mod.Trainer, "_record", original)
            return

        def interrupt(self, row, t0):
            original(self, row, t0)
            if self.step == step:
                raise KeyboardInterrupt

        monkeypatch.setattr(trainer_mod.Trainer, "_record", interrupt)

    return arm
