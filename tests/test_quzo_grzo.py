"""Quantized ZO with stochastic rounding (QuZO) and group-relative ZO (GRZO), and what they
need from the chip: per-setting inputs (``Chip.measure``), the per-example closure kind
(``ClassificationTask.closure(kind=...)``, ``Strategy.closure_kind``) and the DAC lattice
(``Chip.controls()["lattice"]``).

References are independent of the code under test: a loop over single-setting measurements
for the per-setting inputs, analytic gradients of quadratics for the estimator statistics
(float64, fixed seeds, tolerances stated at each assertion).
"""

import pytest
import torch

from photonic_sim.chip import Chip
from photonic_sim.cores import _fused_read
from photonic_sim.cores.photonic import TONN
from photonic_sim.cores.spec import NetworkSpec, dense, tt
from photonic_sim.devices import load_device_card
from photonic_sim.training.tasks import ClassificationTask
from photonic_sim.training.trainer import task_closure

CARD = load_device_card("silicon_thermo_optic")
SMALL = NetworkSpec("small", (tt((2, 4), (4, 2), 2, "relu"), dense(8, 3)))


NET = TONN(SMALL, block_size=4)  # shared: init_phases sets its block gains


def _chip(**kw):
    return Chip(NET, CARD, seed=3, **kw)


class _Data:  # the Dataset fields a ClassificationTask reads
    def __init__(self, n=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x_train = torch.rand(n, 8, generator=g)
        self.y_train = torch.randint(0, 3, (n,), generator=g)
        self.x_test, self.y_test = self.x_train, self.y_train


# ---------------------------------------------------------------- per-setting inputs
@pytest.mark.parametrize("fused", [True, False])
def test_per_setting_inputs_match_one_setting_at_a_time(fused, monkeypatch):
    """inputs [P, B, in] with phases [P, N]: setting p reads exactly what a measurement of
    inputs[p] alone under phases[p] reads (noise-free readout: equal to float rounding), with
    the fused kernel and with the torch path; the ledger counts P queries, P settings and P·B
    samples."""
    if fused and _fused_read.kernel() is None:
        pytest.skip(f"fused readout kernel unavailable: {_fused_read.unavailable_reason()}")
    if not fused:
        monkeypatch.setattr(_fused_read, "kernel", lambda: None)
    g = torch.Generator().manual_seed(1)
    chip = _chip(exact_readout=True)
    ph = chip.init_phases(g)[None] + 0.1 * torch.randn(5, chip.num_phases, generator=g, dtype=torch.float64)
    x = torch.rand(5, 3, 8, generator=g) * 2 - 1
    got = chip.measure(x, ph)
    ref = torch.stack([_chip(exact_readout=True).measure(x[p], ph[p]) for p in range(5)])
    assert got.shape == (5, 3, 3)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    led = chip.ledger
    assert (led.calls, led.queries, led.phase_settings, led.samples) == (1, 5, 5, 15)


def test_per_setting_inputs_refused_when_not_paired():
    chip = _chip(ideal=True)
    ph = torch.zeros(4, chip.num_phases, dtype=torch.float64)
    with pytest.raises(ValueError, match="inputs: need shape"):
        chip.measure(torch.zeros(3, 2, 8), ph)  # 3 input sets for 4 settings
    with pytest.raises(ValueError, match="inputs: need shape"):
        chip.measure(torch.zeros(1, 2, 8), ph[0])  # per-setting inputs need [P, N] phases


# ---------------------------------------------------------------- per-example closure
def test_per_example_closure_measures_each_example_alone():
    """kind="per-example": row p is example p mod B alone; leading dims repeat the examples;
    each row costs one query, one setting and one sample; the reference is the batch closure
    on a one-example batch."""
    task = ClassificationTask(_Data(), batch_size=4)
    chip = _chip(ideal=True)
    batch = task.sample_batch(torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(2)
    ph = chip.init_phases(g)[None, None] + 0.2 * torch.randn(2, 6, chip.num_phases, generator=g, dtype=torch.float64)
    f = task.closure(chip, batch, kind="per-example")
    got = f(ph)
    assert got.shape == (2, 6) and got.dtype == torch.float64
    x, y = batch
    for r in range(2):
        for p in range(6):
            one = task.closure(_chip(ideal=True), (x[p % 4 : p % 4 + 1], y[p % 4 : p % 4 + 1]))(ph[r, p][None])
            torch.testing.assert_close(got[r, p], one[0], rtol=1e-6, atol=1e-7)
    assert (f.calls, f.queries, f.phase_settings, chip.ledger.samples) == (1, 12, 12, 12)
    with pytest.raises(ValueError, match="kind"):
        task.closure(chip, batch, kind="adjoint-x")


def test_trainer_hook_hands_the_strategy_its_closure_kind():
    """``task_closure`` passes ``kind`` only for kinds other than "batch", and refuses (one
    line) a kind the task does not offer."""
    class Wants:
        name, in_situ = "wants", True

        def __init__(self, kind):
            self.closure_kind = kind

    class OldTask:  # a task without kinds (e.g. written before them)
        kind = "old"

        def closure(self, chip, batch, *, differentiable=False):
            return ("batch", differentiable)

    task = ClassificationTask(_Data(), batch_size=4)
    chip = _chip(ideal=True)
    batch = task.sample_batch(torch.Generator().manual_seed(0))
    ph = torch.zeros(3, chip.num_phases, dtype=torch.float64)
    assert task_closure(task, chip, batch, Wants("per-example"))(ph).shape == (3,)
    assert task_closure(OldTask(), chip, batch, Wants("batch")) == ("batch", False)
    with pytest.raises(ValueError, match="closure kind: strategy 'wants' needs 'per-example'"):
        task_closure(OldTask(), chip, batch, Wants("per-example"))
