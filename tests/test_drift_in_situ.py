"""Bias drift during an in-situ run (benchmarks/bench_drift.py's in-situ part, docs/calibration.md#drift-a-weight-mapped-chip-versus-a-chip-trained-in-situ).

A ZO strategy stepping through the chip's black box moves the chip's clock by the drift
model's law (settle_time per phase setting, query_time per query) and the random walk goes on
between the steps as a function of time only: a twin chip of the same seed, measured with
other phases but the same number of settings per call, walks the same walk bit for bit, and
the realised phases after the run are the drift-free chip's plus that walk on the U/V
shifters (the references: the clock law written out here, a drift-free chip of the same
static seed).
"""

import torch

from photonic_sim.chip import Chip
from photonic_sim.cores.photonic import DenseONN
from photonic_sim.cores.spec import NetworkSpec, dense
from photonic_sim.devices import load_device_card
from photonic_sim.training.strategies.registry import make_strategy

QUERY_TIME, DIFFUSION = 1e-3, 0.2


def test_drift_goes_on_between_the_steps_of_an_in_situ_run():
    net = DenseONN(NetworkSpec("drift8", (dense(8, 8, bias=False),)), block_size=4)
    base = {"phase_shifter.query_time": QUERY_TIME, "phase_shifter.dynamic_noise_std": 0.0}
    drifting = load_device_card("silicon_thermo_optic", overrides={
        **base, "phase_shifter.drift.kind": "random_walk", "phase_shifter.drift.diffusion": DIFFUSION})
    settle = drifting.phase_shifter.settle_time
    chip, twin = (Chip(net, drifting, seed=2, readout="coherent", exact_readout=True, dtype=torch.float64)
                  for _ in range(2))
    still = Chip(net, load_device_card("silicon_thermo_optic", overrides=base), seed=2, readout="coherent",
                 exact_readout=True, dtype=torch.float64)
    x = torch.rand(6, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    target = torch.rand(6, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    params = net.init_phases(torch.Generator().manual_seed(0))
    opt = make_strategy("zo-rge", params, lr=0.01, generator=torch.Generator().manual_seed(0), q=3, mu=0.01)
    closure = chip.closure(lambda rows: (chip.measure(x, rows) - target).square().sum((1, 2)))
    walks, first = [], True
    for _ in range(3):
        clock, before = chip.clock, chip.ledger.totals()
        opt.step(closure)
        led = {k: v - before[k] for k, v in chip.ledger.totals().items()}
        assert led["calls"] == 1 and led["queries"] == led["phase_settings"] > 1
        # the clock law: a settle per setting, a query time per query (none before the first at power-on)
        expect = led["phase_settings"] * settle + (led["queries"] - first) * QUERY_TIME
        assert abs(chip.clock - clock - expect) < 1e-12
        first = False
        twin.measure(x, torch.zeros(led["queries"], chip.num_phases, dtype=torch.float64))
        assert torch.equal(twin._walk, chip._walk)  # drift: a function of time only, not of the phases
        walks.append(chip._walk.clone())
    assert not torch.equal(walks[0], walks[1]) and not torch.equal(walks[1], walks[2])  # it moved between steps
    # after the run: the realised phases are the drift-free chip's + the walk (U/V shifters; Σ do not drift)
    ph = params.detach()[None]
    diff = chip._realise(ph, False) - still._realise(ph, False)
    uv = ~chip._is_sigma
    walk = chip._walk.reshape(net.num_hw_blocks, -1)[net.hw_block].reshape(1, -1)
    torch.testing.assert_close(diff[:, uv], walk[:, uv], rtol=0, atol=1e-12)
    assert bool((diff[:, ~uv] == 0).all()) and float(walk[:, uv].abs().max()) > 0.01
