"""The black-box chip: exactness when ideal, determinism, ledger, noise scale, static errors.

Noise scale (intensity readout, single photodiode, module docstring of ``photonic_sim.chip``):
readings are in units of |y|² with the channel power P_ch = FS / (2·G·R) (full-scale amplitude
1), so G·R·P_ch = FS/2 and

* ADC step in reading units: LSB_r = (FS / 2^b) / (G·R·P_ch) = 2 / 2^b = 1/128 for b = 8;
* analog noise in reading units: σ_r(p)² = [2q(R·P_ch·p + I_d)·B + 4kTB/R_L] / (R·P_ch)²;
  default card (R 1.1 A/W, B 27 GHz, R_L 5 kΩ, I_d 25 nA): σ_r(0) ≈ 0.0030 (thermal),
  σ_r(1) ≈ 0.0098 (shot dominates at full power);
* a reading is amp² · s · r + b (block floating point: amp = max |input|; s the block gain).
"""
import math

import pytest
import torch
from scipy.constants import Boltzmann, elementary_charge

from photonic_sim.chip import Chip
from photonic_sim.cores.photonic import DenseONN, TONN
from photonic_sim.cores.spec import NetworkSpec, dense, tt
from photonic_sim.devices import PhaseShifter, Photodetector, load_device_card
from photonic_sim.training.strategies import STRATEGIES

CARD = load_device_card("silicon_thermo_optic")
QUIET = {"phase_shifter.bias_range": 0.0, "phase_shifter.gamma_noise_std": 0.0,
         "crosstalk.factor": 0.0, "phase_shifter.bits": 16}
SPEC = NetworkSpec("small", (tt((2, 4), (4, 2), 2, "relu"), dense(8, 3)))


def card(**extra):
    return load_device_card("silicon_thermo_optic", overrides=extra)


def network(seed=0, spec=SPEC, cls=TONN):
    net = cls(spec)
    phases = net.init_phases(torch.Generator().manual_seed(seed))
    return net, phases


def inputs(b=16, n=8, seed=1):
    return torch.rand(b, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_ideal_coherent_chip_equals_weight_domain_network():
    """Independent reference: the realised weights (SVD blocks reassembled) applied as matrices."""
    net, ph = network()
    chip = Chip(net, CARD, ideal=True, readout="coherent", dtype=torch.float64)
    x = inputs()
    (w0, b0), (w1, b1) = net.weights(ph)
    ref = torch.relu(x @ w0.to_dense().T + b0) @ w1.T + b1
    torch.testing.assert_close(chip.measure(x, ph), ref, rtol=0, atol=1e-12)
    # batched settings: row p equals the single-setting answer
    ph2 = torch.stack([ph, torch.flip(ph, [0]) % (2 * math.pi)])
    out = chip.measure(x, ph2)
    torch.testing.assert_close(out[0], ref, rtol=0, atol=1e-12)


def test_ideal_complex64_chip_matches_within_1e_6():
    """Single-precision signals (float64 controls and meshes): rel. error < 1e-6."""
    net, ph = network()
    x = inputs()
    ref = Chip(net, CARD, ideal=True, readout="coherent", dtype=torch.float64).measure(x, ph)
    out = Chip(net, CARD, ideal=True, readout="coherent", dtype=torch.float32).measure(x, ph)
    assert out.dtype == torch.float32
    assert float((out.double() - ref).norm() / ref.norm()) < 1e-6


def test_same_seed_bit_identical_different_seed_differs():
    net, ph = network()
    x = inputs()
    a = Chip(net, CARD, seed=5).measure(x, ph)
    b = Chip(net, CARD, seed=5).measure(x, ph)
    c = Chip(net, CARD, seed=6).measure(x, ph)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # same manufacturing draws, different per-query noise: differences at the noise scale only
    d = Chip(net, CARD, seed=6, static_seed=5).measure(x, ph)
    assert 0 < (a - d).abs().max() < 0.2


def test_ledger_counts():
    """One dense layer 12 → 5 on k = 8: 1×2 blocks; DAC converts the 12 real inputs of each
    sample, the ADCs read all k outputs of both blocks (padded rows included): 16 per sample."""
    net, ph = network(spec=NetworkSpec("d", (dense(12, 5),)), cls=DenseONN)
    chip = Chip(net, CARD)
    x = inputs(b=7, n=12)
    batch = ph.repeat(3, 1)
    batch[1, 0] += 0.1
    chip.measure(x, batch)
    tot = chip.ledger.totals()
    assert (tot["calls"], tot["queries"], tot["samples"], tot["phase_settings"]) == (1, 3, 21, 3)
    assert (tot["dac_conversions"], tot["adc_conversions"]) == (3 * 7 * 12, 3 * 7 * 16)
    chip.measure(x, batch[-1])  # the vector already programmed: no new setting
    chip.measure(x[:2], batch[-1])
    assert chip.ledger.phase_settings == 3 and chip.ledger.queries == 5 and chip.ledger.samples == 21 + 9
    chip.set_phases(batch[1])
    chip.measure(x)
    chip.measure(x)
    assert chip.ledger.phase_settings == 4 and chip.ledger.calls == 5


def _analog_sigma(det, pch, p):
    """σ_r(p) of the module docstring (reading units)."""
    r = det.responsivity
    shot = 2 * elementary_charge * (r * pch * p + det.dark_current) * det.bandwidth
    thermal = 4 * Boltzmann * det.temperature * det.bandwidth / det.load_resistance
    return torch.sqrt(shot + thermal) / (r * pch)


def test_noise_scale_matches_shot_plus_thermal_formula():
    """Every static error off, 16-bit phases, 16-bit ADC: the spread of repeated readings of
    one 8×8 block is the analog σ_r(p) of the module docstring (to 10 %), and the mean is the
    ideal |y|² (inputs on the 8-bit DAC grid with max 1, so DAC and normalisation are exact)."""
    spec = NetworkSpec("one", (dense(8, 8, bias=False),))
    net, ph = network(spec=spec, cls=DenseONN)
    chip = Chip(net, card(**QUIET, **{"adc.bits": 16}), seed=3, dtype=torch.float64)
    x = torch.tensor([[127, -64, 30, 0, 90, -127, 5, 77]], dtype=torch.float64) / 127
    reps = ph.repeat(600, 1)
    noisy = chip.measure(x, reps)[:, 0]  # [600, 8]
    ideal = Chip(net, CARD, ideal=True, dtype=torch.float64).measure(x, ph)[0]
    s = float(net.block_scales[0])
    det = Photodetector.from_card(CARD)
    sigma = abs(s) * _analog_sigma(det, chip.channel_power, ideal / s)
    # outputs within a few σ of zero are truncated by the unipolar ADC (codes ≥ 0): skip them
    far = ideal / s > 0.02
    assert int(far.sum()) >= 4
    ratio = noisy.std(0)[far] / sigma[far]
    assert ((ratio > 0.9) & (ratio < 1.1)).all(), ratio
    err = (noisy.mean(0) - ideal).abs()[far]
    assert (err < 5 * sigma[far] / math.sqrt(600) + 1e-4).all()


def test_quiet_chip_close_to_ideal_within_noise_and_lsb():
    """Default 8-bit ADC, static errors off: |noisy − ideal| ≤ 5σ_r + LSB_r/2 per reading of
    a single block (bias-free, amp = 1, block gain s; DAC-exact inputs) inside the ADC range."""
    spec = NetworkSpec("one", (dense(8, 8, bias=False),))
    net, ph = network(spec=spec, cls=DenseONN)
    chip = Chip(net, card(**QUIET), seed=4, dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(-127, 128, (64, 8), generator=g).to(torch.float64)
    x[:, 0] = 127
    x = x / 127
    noisy = chip.measure(x, ph)
    ideal = Chip(net, CARD, ideal=True, dtype=torch.float64).measure(x, ph)
    s = abs(float(net.block_scales[0]))
    det = Photodetector.from_card(CARD)
    bound = s * (5 * _analog_sigma(det, chip.channel_power, ideal / s) + 0.5 * 2 / 2**CARD.adc.bits)
    inside = ideal / s < 1.9  # |y|² above the full scale 2 clips (tested below)
    assert int(inside.sum()) > 400
    assert ((noisy - ideal).abs() <= bound)[inside].all()
    assert (noisy - ideal).abs().max() > 0  # noise is there


def test_sigma_attenuator_folding():
    """σ = sin(θ/2) is symmetric about π: θ_S and 2π − θ_S give bit-identical readings on the
    full default chip (same seed: same noise draws; Σ attenuators carry no bias)."""
    net, ph = network()
    s_mask = net.mask("S")
    mirrored = ph.clone()
    mirrored[s_mask] = 2 * math.pi - ph[s_mask]
    assert not torch.equal(mirrored, ph)
    x = inputs()
    a = Chip(net, CARD, seed=2).measure(x, ph)
    b = Chip(net, CARD, seed=2).measure(x, mirrored)
    assert torch.equal(a, b)


def test_static_bias_changes_readings_a_lot():
    net, ph = network()
    x = inputs(b=64)
    ideal = Chip(net, CARD, ideal=True).measure(x, ph)
    biased = Chip(net, CARD, seed=1).measure(x, ph)
    unbiased = Chip(net, card(**{"phase_shifter.bias_range": 0.0}), seed=1).measure(x, ph)
    err_biased = (biased - ideal).abs().mean()
    err_unbiased = (unbiased - ideal).abs().mean()
    assert err_biased > 5 * err_unbiased


def test_crosstalk_factor_zero_is_no_crosstalk():
    """Realised phases: with factor 0 exactly the phase-shifter model (quantize → γ(1+ε)V² →
    + bias, ``PhaseShifter``); with the kernel factor f each phase gains f × its neighbours'
    heater phases (nearest neighbours at one MZI pitch), so the difference is nonzero."""
    net, ph = network()
    ps = PhaseShifter.from_card(CARD)
    chips = {f: Chip(net, card(**{"crosstalk.factor": f}), seed=9, dtype=torch.float64) for f in (0.0, 0.005)}
    span = net.num_blocks * net.block.num_phases
    plain = chips[0.0]._realise(ph[None], False)[0, :span]
    c = chips[0.0]
    target = ph[:span]
    quant = torch.where(c._is_sigma, ps.quantize_attenuator(target), ps.quantize(target))
    heater = ps.phase(ps.voltage(quant), c._gamma)
    torch.testing.assert_close(plain, heater + c._bias, rtol=0, atol=1e-12)
    with_x = chips[0.005]._realise(ph[None], False)[0, :span]
    delta = with_x - plain
    assert delta.abs().max() > 1e-3
    # Δφ ≥ 0 (heaters only add heat) and bounded by f × (number of neighbours ≤ 4) × max φ
    assert delta.min() >= 0 and delta.max() <= 0.005 * 4 * heater.max() + 1e-12


def test_adc_clipping_is_counted():
    """Intensity full scale in |y|² units is 2·a (a = full_scale_amplitude, since
    G·R·P_ch = FS/(2a)); readings well above it clip, well below never do. Readings within
    noise of 0 may clip at code 0 too (σ_r(0)·a ≈ 3e-4 for a = 0.1): counted in the bound."""
    spec = NetworkSpec("one", (dense(8, 8, bias=False),))
    net, ph = network(spec=spec, cls=DenseONN)
    x = inputs(b=64)
    x[:, 0] = 1.0
    ideal = Chip(net, CARD, ideal=True, dtype=torch.float64).measure(x, ph)
    p = ideal / net.block_scales[0]  # |y|² per detector (amp = 1)
    a = 0.1
    chip = Chip(net, card(**QUIET), full_scale_amplitude=a, dtype=torch.float64)
    chip.measure(x, ph)
    surely = int((p > 2 * a * 1.3).sum())
    maybe = int((p > 2 * a * 0.7).sum()) + int((p < 0.003).sum())
    assert surely > 50
    assert surely <= chip.ledger.clipped <= maybe
    full = Chip(net, card(**QUIET), dtype=torch.float64)
    full.measure(x, ph)
    assert full.ledger.clipped <= int((p > 2 * 0.9).sum()) + int((p < 0.03).sum())
    assert full.ledger.clipped < chip.ledger.clipped / 5


def test_differentiable_gradients_match_finite_differences():
    """Ideal chip: autograd gradient == central differences (float64). Noisy chip: gradients
    exist (straight-through quantizers) and, with every static error off, are the ideal
    chip's gradient up to the detector noise that enters through the intermediate (TT) readings
    (a loss linear in the readings: the final noise itself does not enter the gradient)."""
    net, ph = network()
    x = inputs(b=8)
    ideal = Chip(net, CARD, ideal=True, dtype=torch.float64)
    w = torch.randn(8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def loss(chip, p, diff=True):
        return (chip.measure(x, p, differentiable=diff) * w).sum()

    p = ph.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(ideal, p), p)
    idx = torch.tensor([0, 50, 140, 300, 410])
    h = 1e-6
    for i in idx:
        e = torch.zeros_like(ph)
        e[i] = h
        fd = (loss(ideal, ph + e, False) - loss(ideal, ph - e, False)) / (2 * h)
        assert abs(float(fd) - float(g[i])) < 1e-6 * (1 + abs(float(fd)))
    quiet = Chip(net, card(**QUIET), dtype=torch.float64)
    p2 = ph.clone().requires_grad_(True)
    (gq,) = torch.autograd.grad(loss(quiet, p2), p2)
    assert torch.isfinite(gq).all() and gq.abs().max() > 0
    assert (gq - g).norm() < 0.05 * g.norm()
    noisy = Chip(net, CARD)
    p3 = ph.clone().requires_grad_(True)
    (gn,) = torch.autograd.grad(loss(noisy, p3), p3)
    assert torch.isfinite(gn).all() and (gn - g).norm() > 0.2 * g.norm()  # the phase bias acts


def test_intensity_readings_not_below_dark_offset():
    """Unipolar ADC codes are ≥ 0, so a reading is ≥ −I_d/(R·P_ch) per block (times amp²·|s|):
    the only way below 0 is the dark-current subtraction."""
    spec = NetworkSpec("two", (dense(16, 8, bias=False),))
    net, ph = network(spec=spec, cls=DenseONN)
    chip = Chip(net, CARD, seed=0, dtype=torch.float64)
    x = inputs(b=256, n=16)
    x[:, 0] = 1.0
    out = chip.measure(x, ph.repeat(4, 1))
    det = chip._detector
    floor = -net.block_scales.abs().sum() * det.dark_current / (det.responsivity * chip.channel_power)
    assert out.min() >= floor - 1e-15
    assert out.min() < 0.01  # some outputs are near zero (|y|² small)


# ---------------------------------------------------------------- black box
class GuardedChip(Chip):
    """A chip whose internals raise when touched from outside ``photonic_sim/chip.py``
    (the network, its weights, the static errors), and which refuses differentiable reads."""

    def __getattribute__(self, name):
        if name.startswith("_") and not name.startswith("__"):
            import sys

            caller = sys._getframe(1).f_code.co_filename
            if not caller.endswith("photonic_sim/chip.py"):
                raise AttributeError(f"black box: {name} read from {caller}")
        return object.__getattribute__(self, name)

    def measure(self, inputs, phases=None, *, differentiable=False):
        if differentiable:
            raise AssertionError("an in-situ strategy asked for a differentiable reading")
        out = super().measure(inputs, phases)
        assert not out.requires_grad
        return out


def _options(name):
    opts = {"lr": 0.01}
    if name == "zo-cge":
        opts["coords_per_step"] = 5
    if name == "hybrid":
        opts.update(q=4, patience=1, tol=10.0)  # switches to CGE after one step
    if name in ("l2ight-sigma", "tt-subspace"):
        opts["mask"] = None  # filled in below
    if name == "staged":  # crosses into the second stage in the test's steps
        opts["stages"] = [dict(strategy="zo-sign-rge", steps=1, q=4),
                          dict(strategy="zo-rge", steps=5, q=2, dist="rademacher", two_sided=True)]
    return opts


@pytest.mark.parametrize("name", sorted(n for n, c in STRATEGIES.items() if c.in_situ))
def test_strategies_only_see_the_closure(name, monkeypatch):
    """Every in-situ strategy trains two steps through the builder's run with the chip's
    internals guarded (``GuardedChip``: private state raises outside chip.py, differentiable
    reads are refused) and the network's weights unreadable."""
    from photonic_sim import Experiment
    from photonic_sim.cores.photonic import PhotonicNetwork
    from photonic_sim.training.data import Dataset

    spec = NetworkSpec("bb", (tt((2, 4), (4, 2), 2, "relu"), dense(8, 3)))
    x = inputs(b=30, n=8)
    data = Dataset("toy", x[:20], torch.arange(20) % 3, x[20:], torch.arange(10) % 3, 3)
    opts = {k: v for k, v in _options(name).items() if k != "mask"}  # the builder's subspace masks
    exp = Experiment(devices=CARD, accelerator="tonn_space", model=spec, task=data, seed=0,
                     training={"strategy": name, "strategy_options": opts, "steps": 2, "eval_every": 2,
                               "batch_size": 8, "eval_batch_size": 512}).build()
    chip = exp.chip
    chip.__class__ = GuardedChip
    with pytest.raises(AttributeError, match="black box"):
        chip._net  # noqa: B018 — the guard really bites
    start = exp.params.clone()
    # from here on, weights cannot be read at all
    for attr in ("weights", "from_weights", "random_weights"):
        monkeypatch.setattr(PhotonicNetwork, attr, lambda *a, **k: (_ for _ in ()).throw(AssertionError("weights read")))
    result = exp.run()
    assert result.report["training"]["queries"] > 0 and result.report["training"]["status"] == "completed"
    assert not torch.equal(result.phases, start) or name == "mixedtrain"


@pytest.mark.parametrize("bits,noise", [(8, 0.0), (3, 0.0), (8, 0.02)])
def test_realise_kernel_equals_torch_ops_bit_for_bit(bits, noise, monkeypatch):
    """With a sparse crosstalk K (the kernel model) the realisation before the dynamic noise
    runs as one C pass (``circuits._fused.realise``): the same bits as the torch ops
    (``quantize_mixed``, drive law, ``apply_crosstalk``, bias) for targets in and out of
    [0, 2π), exact level ties, negatives and a value past V_max's phase; the noise draws
    after it are the same too."""
    from photonic_sim.circuits import _fused

    if _fused.realise_kernel() is None:
        pytest.skip(f"realise kernel unavailable: {_fused.unavailable_reason()}")
    net, ph = network()
    dev = card(**{"phase_shifter.bits": bits, "phase_shifter.dynamic_noise_std": noise})
    g = torch.Generator().manual_seed(5)
    span = net.num_blocks * net.block.num_phases
    rows = [ph + 0.3 * torch.randn(ph.numel(), generator=g, dtype=torch.float64) for _ in range(3)]
    rows.append(torch.remainder(rows[0], 2 * math.pi))  # all in range (an estimator's wrapped rows)
    step = 2 * math.pi / 2**bits
    ties = (torch.arange(span, dtype=torch.float64) % 700 - 350) * step / 2  # half-level ties, ± several turns
    rows.append(torch.cat((ties, ph[span:])))
    target = torch.stack(rows)
    target[0, :4] = torch.tensor([-1e-300, 2 * math.pi, -0.0, 40.0], dtype=torch.float64)
    fast = Chip(net, dev, seed=9, dtype=torch.float64)
    assert fast._xtalk.layout == torch.sparse_coo
    a = fast._realise(target, False)
    monkeypatch.setattr(_fused, "realise_kernel", lambda: None)
    slow = Chip(net, dev, seed=9, dtype=torch.float64)
    b = slow._realise(target, False)
    assert torch.equal(a.view(torch.int64), b.view(torch.int64))  # the same bits, signed zeros too
    assert torch.equal(fast._gen.get_state(), slow._gen.get_state())  # the same draws taken
    if noise:  # the noise is there: the realisation differs from the noise-free one
        quiet = Chip(net, card(**{"phase_shifter.bits": bits}), seed=9, dtype=torch.float64)._realise(target, False)
        spread = (a - quiet)[:, :span].std().item()
        assert 0.5 * noise < spread < 1.5 * noise


def test_torch_path_in_chunks_equals_one_pass(monkeypatch):
    """The torch path (GPU, autograd, no C kernel) splits a call with many settings into chunks
    of ≈ _TORCH_CHUNK_ELEMENTS / (B · widest) settings: on an exact-readout chip (no draws) the
    chunked call reads what one pass reads (float64, 1e-12), with the same ledger; on a noisy
    chip a chunked call is reproducible from the seed and its spread matches one pass's."""
    from photonic_sim.cores import _fused_read, photonic

    monkeypatch.setattr(_fused_read, "usable", lambda *a, **k: False)
    net, _ = network()
    phases = torch.stack([net.init_phases(torch.Generator().manual_seed(s)) for s in range(7)])
    x = torch.rand(5, net.in_features, generator=torch.Generator().manual_seed(1))
    per_chunk = 2  # settings per chunk: 4 chunks of 2, 2, 2, 1
    small = per_chunk * x.shape[0] * net._widest()

    def read(chunk_elements, **kw):
        monkeypatch.setattr(photonic, "_TORCH_CHUNK_ELEMENTS", chunk_elements)
        chip = Chip(net, CARD, dtype=torch.float64, **kw)
        return chip.measure(x, phases), chip.ledger.totals()

    one, ledger_one = read(1 << 26, exact_readout=True)
    chunked, ledger_chunked = read(small, exact_readout=True)
    assert (chunked - one).abs().max() < 1e-12 and ledger_chunked == ledger_one
    noisy_a, _ = read(small, seed=3)
    noisy_b, _ = read(small, seed=3)
    noisy_one, _ = read(1 << 26, seed=3)
    assert torch.equal(noisy_a, noisy_b) and not torch.equal(noisy_a, noisy_one)  # chunks draw in turn
    spread_chunked, spread_one = (noisy_a - one).std(), (noisy_one - one).std()
    assert 0.5 < float(spread_chunked / spread_one) < 2.0
