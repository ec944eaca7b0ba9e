"""Thermal settling and bias drift of the phase shifters (docs/physics.md#drift-and-thermal-settling).

References are independent of the chip's time stepping: the first-order step response
φ_prev + (φ_new − φ_prev)(1 − e^(−t/τ)) written out here, the settled phases of a chip built
from the same card without τ / drift (same static seed), a random walk's variance D·t and a
ramp's rate·t.
"""
import io
import math

import pytest
import torch

from photonic_sim.chip import Chip
from photonic_sim.circuits import _fused
from photonic_sim.cores.photonic import TONN
from photonic_sim.cores.spec import NetworkSpec, dense, tt
from photonic_sim.devices import CardError, load_device_card

SPEC = NetworkSpec("small", (tt((2, 4), (4, 2), 2, "relu"), dense(8, 3)))
TAU, SETTLE = 5e-6, 10e-6


def card(**extra):
    return load_device_card("silicon_thermo_optic", overrides=extra)


def chips(extra, seed=3):
    """(chip with the time dependence ``extra``, the same chip without it) on one network."""
    net = TONN(SPEC)
    return Chip(net, card(**extra), seed=seed, dtype=torch.float64), Chip(net, card(), seed=seed, dtype=torch.float64)


def settings(n, seed=0):
    net = TONN(SPEC)
    g = torch.Generator().manual_seed(seed)
    return torch.stack([net.init_phases(g) for _ in range(n)])


def span_of(chip):
    return chip._block_span


@pytest.mark.parametrize("fused", [True, False])
def test_step_response_is_first_order(fused, monkeypatch):
    """Power-on (heaters off: phase = static bias) → A → B → B again, with the settle wait s
    and a query time q: each read equals the analytic exponential relaxation."""
    if not fused:
        monkeypatch.setattr(_fused, "realise_kernel", lambda: None)
    q = 3e-6
    chip, ref = chips({"phase_shifter.thermal_time_constant": TAU, "phase_shifter.query_time": q})
    a, b = settings(2)
    n = span_of(chip)
    pa, pb = ref._realise(a[None], False)[0, :n], ref._realise(b[None], False)[0, :n]
    bias = ref._bias
    es, eq = math.exp(-SETTLE / TAU), math.exp(-q / TAU)
    r1 = chip._realise(a[None], False)[0, :n]
    torch.testing.assert_close(r1, bias + (pa - bias) * (1 - es), rtol=0, atol=1e-12)
    r2 = chip._realise(b[None], False)[0, :n]
    before = pa + (r1 - pa) * eq  # the rest of query 1 relaxes towards A
    torch.testing.assert_close(r2, before + (pb - before) * (1 - es), rtol=0, atol=1e-12)
    r3 = chip._realise(b[None], False)[0, :n]  # a repeat: no new settle, one more query time
    torch.testing.assert_close(r3, pb + (r2 - pb) * eq, rtol=0, atol=1e-12)
    assert chip.clock == pytest.approx(2 * q + 2 * SETTLE, rel=1e-12)  # the time of the last read
    assert (r1 - pa).abs().max() > 0.1  # the effect is large at t = 2τ


def test_batched_settings_settle_one_after_another():
    """P settings in one call are the same P queries issued one by one."""
    extra = {"phase_shifter.thermal_time_constant": TAU, "phase_shifter.query_time": 1e-6}
    one, _ = chips(extra)
    many, _ = chips(extra)
    ph = settings(4)
    rows = torch.cat([one._realise(p[None], False) for p in ph])
    torch.testing.assert_close(many._realise(ph, False), rows, rtol=0, atol=1e-12)


def test_long_wait_reaches_the_settled_phases():
    chip, ref = chips({"phase_shifter.thermal_time_constant": TAU, "phase_shifter.settle_time": 60 * TAU})
    ph = settings(1)
    torch.testing.assert_close(chip._realise(ph, False), ref._realise(ph, False), rtol=0, atol=1e-12)


def test_off_by_default_and_state_has_no_dynamics():
    chip, _ = chips({})
    assert not chip._dyn_on and chip.state_dict()["dynamics"] is None


def test_ramp_is_rate_times_clock_on_uv_phases_only():
    rate, q = 0.02, 2e-6
    chip, ref = chips({"phase_shifter.drift.kind": "ramp", "phase_shifter.drift.rate": rate,
                       "phase_shifter.query_time": q})
    ph = settings(3)
    n = span_of(chip)
    drift = (chip._realise(ph, False) - ref._realise(ph, False))[:, :n]
    times = torch.tensor([SETTLE, q + 2 * SETTLE, 2 * q + 3 * SETTLE], dtype=torch.float64)
    expect = rate * times[:, None] * (~chip._is_sigma)
    torch.testing.assert_close(drift, expect, rtol=0, atol=1e-15)


def test_random_walk_variance_grows_linearly_in_time():
    """Drift of every U/V shifter after n settings (t = n·s, query time 0): mean 0 and variance
    D·t; increments between two times have variance D·Δt. Three chips (static seeds 3, 4, 5:
    independent walks) give N = 1152 shifters per row: the sample variance's relative std is
    √(2/N) ≈ 4.2 %, the tolerance 20 % (> 4.5σ)."""
    d = 0.5  # rad²/s
    ph = settings(40)
    parts = []
    for seed in (3, 4, 5):
        chip, ref = chips({"phase_shifter.drift.kind": "random_walk", "phase_shifter.drift.diffusion": d,
                           "phase_shifter.query_time": 0.0}, seed=seed)
        n = span_of(chip)
        uv = ~chip._is_sigma
        parts.append((chip._realise(ph, False) - ref._realise(ph, False))[:, :n][:, uv])
    drift = torch.cat(parts, 1)
    assert drift.shape[1] == 1152
    for i in (9, 39):
        t = (i + 1) * SETTLE
        assert abs(float(drift[i].mean())) < 4 * math.sqrt(d * t / drift.shape[1])
        assert float(drift[i].var()) == pytest.approx(d * t, rel=0.2)
    inc = drift[39] - drift[9]
    assert float(inc.var()) == pytest.approx(d * 30 * SETTLE, rel=0.2)
    assert float((drift[9] * inc).mean()) == pytest.approx(0.0, abs=4 * d * SETTLE * math.sqrt(300 / drift.shape[1]))
    # Σ attenuators do not drift
    assert torch.equal(chip._realise(ph[:1], False)[:, :n][:, ~uv], ref._realise(ph[:1], False)[:, :n][:, ~uv])


def test_same_seed_same_drift_and_resume_is_bit_identical():
    extra = {"phase_shifter.drift.kind": "random_walk", "phase_shifter.drift.diffusion": 0.3,
             "phase_shifter.thermal_time_constant": TAU, "phase_shifter.dynamic_noise_std": 0.01}
    net = TONN(SPEC)
    dev = card(**extra)
    x = torch.rand(5, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ph = settings(6)
    first = Chip(net, dev, seed=4, dtype=torch.float64)
    for p in ph[:3]:
        first.measure(x, p)
    first.measure(x, ph[2])  # a repeat
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    rest = [first.measure(x, ph[3:5]), first.measure(x, ph[5])]
    buf.seek(0)
    again = Chip(net, dev, seed=4, dtype=torch.float64)
    again.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(again.measure(x, ph[3:5]), rest[0]) and torch.equal(again.measure(x, ph[5]), rest[1])
    twin = Chip(net, dev, seed=4, dtype=torch.float64)  # the same seed: the same drift from the start
    other = Chip(net, dev, seed=4, static_seed=5, dtype=torch.float64)
    ra, rb = twin._realise(ph[:2], False), other._realise(ph[:2], False)
    assert torch.equal(Chip(net, dev, seed=4, dtype=torch.float64)._realise(ph[:2], False), ra)
    assert not torch.equal(ra, rb)


@pytest.mark.parametrize("override, key", [
    ({"phase_shifter.thermal_time_constant": -1e-6}, "phase_shifter.thermal_time_constant"),
    ({"phase_shifter.query_time": 2.0}, "phase_shifter.query_time"),
    ({"phase_shifter.drift.kind": "walk"}, "phase_shifter.drift.kind"),
    ({"phase_shifter.drift.kind": "ramp", "phase_shifter.drift.diffusion": 1.0}, "phase_shifter.drift"),
    ({"phase_shifter.drift.kind": "random_walk", "phase_shifter.drift.diffusion": -1.0},
     "phase_shifter.drift.diffusion"),
])
def test_card_ranges_checked_at_load(override, key):
    with pytest.raises(CardError, match=f": {key}: .*allowed"):
        card(**override)


def test_differentiable_path_scales_the_gradient_by_the_settled_fraction():
    """First-order baseline (autograd): the first read after power-on is bias + (φ − bias)(1 − e^(−s/τ)),
    so d(read)/d(target) is the settled chip's gradient times 1 − e^(−s/τ)."""
    chip, ref = chips({"phase_shifter.thermal_time_constant": TAU})
    ph = settings(1)
    n = span_of(chip)
    grads = []
    for c in (chip, ref):
        x = ph.clone().requires_grad_(True)
        c._realise(x, True)[:, :n].sum().backward()
        grads.append(x.grad[0, :n])
    torch.testing.assert_close(grads[0], grads[1] * (1 - math.exp(-SETTLE / TAU)), rtol=1e-12, atol=1e-15)
