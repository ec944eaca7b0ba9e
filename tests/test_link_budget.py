"""Insertion loss and the optical link budget (issue 22, item 5): the link budget by hand, the
chip's simulated per-path loss against a hand count of the MZIs on each path, the scenario
key ``chip.insertion_loss`` (default on, refused when misspelt) and the report's sentence."""

from __future__ import annotations

import math

import pytest
import torch

from photonic_sim import Experiment
from photonic_sim.accelerators import estimate
from photonic_sim.accelerators.cost import block_loss, link_budget, simulated_loss_db
from photonic_sim.chip import Chip
from photonic_sim.circuits.svd import SVDBlock
from photonic_sim.cores import DenseONN
from photonic_sim.cores.spec import dense
from photonic_sim.devices.cards import load_device_card
from photonic_sim.reports.render import to_markdown
from photonic_sim.reports.summary import link_sentence
from photonic_sim.scenarios import ScenarioError, load_scenario

CARD = "silicon_thermo_optic"


def _dbm(watts: float) -> float:
    return 10.0 * math.log10(watts / 1e-3)


# ------------------------------------------------------------------ the link budget by hand


def test_link_budget_by_hand():
    """k = 8: every path crosses the 4 full columns of each Clements mesh and the Σ column
    (9 MZIs, the laser's share); the critical path crosses all 8 columns of each mesh and Σ
    (17 MZIs). The detectors get the readout chain's full-scale power FS/(2·G·R)."""
    dev = load_device_card(CARD)
    ps, cp = dev.phase_shifter.insertion_loss, dev.coupler.insertion_loss
    assert (ps, cp) == (0.25, 0.33)  # the card's figures this hand count uses
    mzi = 2 * 0.25 + 2 * 0.33  # dB: two shifters and two couplers on either arm
    wg = 17 * 50e-6 * 0.11 * 100  # 17 columns × 50 µm × 0.11 dB/cm
    uniform = 3.0 + 2 * 0.25 + wg + 9 * mzi  # modulator, the two output screens, waveguide, 9 shared MZIs
    full_scale_dbm = 10 * math.log10(1.0 / (2 * 5000 * 1.1) / 1e-3)  # FS 1 V, G 5 kOhm, R 1.1 A/W
    fanout = 192  # 24 blocks × 8 channels (digits network, intensity readout)
    laser_dbm = full_scale_dbm + uniform + 10 * math.log10(fanout)

    link = link_budget(dev, 8, fanout)
    assert link["mzi_loss_db"] == pytest.approx(1.16, abs=1e-12)
    assert link["uniform_loss_db"] == pytest.approx(uniform, abs=1e-9)
    assert link["insertion_loss_db"] == pytest.approx(uniform + 8 * mzi, abs=1e-9)
    assert link["path_dependent_loss_db"] == pytest.approx(8 * mzi, abs=1e-9)
    assert link["laser_dbm"] == pytest.approx(laser_dbm, abs=1e-9)
    assert link["laser_optical_w"] == pytest.approx(1e-3 * 10 ** (laser_dbm / 10), rel=1e-12)
    assert link["detector_full_scale_dbm"] == pytest.approx(full_scale_dbm, abs=1e-9)
    assert link["detector_dbm"] == pytest.approx(full_scale_dbm - 8 * mzi, abs=1e-9)
    assert link["detector_dbm"] > dev.photodetector.sensitivity == link["sensitivity_dbm"]
    assert link["laser_shortfall_db"] == 0.0
    # the cost model prices the same laser: estimate's link and laser count
    rep = estimate("tonn_space", "digits", dev)
    assert rep.link["fanout"] == fanout
    assert rep.link["laser_dbm"] == pytest.approx(laser_dbm, abs=1e-9)
    assert rep.counts["lasers"] == math.ceil(1e-3 * 10 ** (laser_dbm / 10) / 0.1)


def test_block_loss_counts_paths():
    """MZIs per path of small blocks, counted by hand from the Clements layout."""
    # k = 4: columns 0 and 2 pair all modes, 1 and 3 only (1, 2); Σ is one shared column
    four = block_loss(SVDBlock(4, 4))
    assert (four["uniform"], four["least"], four["critical"]) == (5, 5, 9)
    b = SVDBlock(4, 4)
    want = torch.zeros(b.num_mzis, dtype=torch.float64)
    for part in ("U", "V"):  # MZI order per mesh: column 0 (2 MZIs), column 1 (1), column 2 (2), column 3 (1)
        want[b.mzi_slices[part].start + 2] = want[b.mzi_slices[part].start + 5] = 1.0
    assert torch.equal(four["simulated"], want)
    # k = 3: no mesh column pairs every mode (3 modes), only Σ is shared
    three = block_loss(SVDBlock(3, 3))
    assert (three["uniform"], three["least"], three["critical"]) == (1, 3, 7)
    assert block_loss(SVDBlock(1, 1)) | {"simulated": None} == {"uniform": 1, "least": 1, "critical": 1,
                                                               "simulated": None}


def test_laser_shortfall_and_detector_floor():
    """A laser that cannot feed one channel its full-scale power leaves the shortfall on the
    shared Σ column (the chip simulates it); below the detectors' sensitivity the scenario
    does not load, and the error names the card key."""
    dev = load_device_card(CARD, overrides={"laser.max_power": 1e-3})  # 0 dBm per channel at most
    link = link_budget(dev, 8, 1)
    need = link["detector_full_scale_dbm"] + link["laser_shortfall_db"] + link["uniform_loss_db"]
    assert link["channel_dbm"] == pytest.approx(0.0, abs=1e-12)
    assert link["laser_shortfall_db"] == pytest.approx(need - 0.0, abs=1e-12) and link["laser_shortfall_db"] > 0
    loss = simulated_loss_db(dev, 8)
    assert torch.allclose(loss["S"], torch.full((8,), link["laser_shortfall_db"], dtype=torch.float64))
    assert float(loss["U"].max()) == pytest.approx(1.16) and float(loss["U"].min()) == 0.0

    sc = load_scenario("quickstart", ["devices.laser.max_power=1.0e-3"])  # -23.2 dBm: still above -27
    assert sc.chip.insertion_loss
    with pytest.raises(ScenarioError) as err:
        load_scenario("quickstart", ["devices.laser.max_power=1.0e-4"])  # -33.2 dBm on the critical path
    text = str(err.value)
    assert "\n" not in text and "overrides.devices.laser.max_power" in text and "sensitivity" in text


# ------------------------------------------------------------------ the chip's per-path loss


def _bar_chip(insertion_loss: bool) -> Chip:
    """One 4×4 block, no phase errors, exact coherent readout: readings are Re of the block's
    field outputs."""
    card = load_device_card(CARD, overrides={"phase_shifter.bias_range": 0.0, "phase_shifter.gamma_noise_std": 0.0,
                                             "crosstalk.factor": 0.0})
    net = DenseONN([dense(4, 4, "none", False)], block_size=4)
    return Chip(net, card, seed=0, exact_readout=True, readout="coherent", insertion_loss=insertion_loss,
                dtype=torch.float64)


def test_chip_per_path_loss_by_hand():
    """Every MZI in the bar state (θ = π: diag(−1, 1)), Σ at θ = π (σ = 1), screens 0: light
    entering mode j leaves on mode j. Modes 0 and 3 cross only the full columns (0 and 2 of
    each mesh) and Σ: 5 MZIs; modes 1 and 2 cross all 4 columns of each mesh and Σ: 9 MZIs.
    The laser pays the 5 every path shares, so the light reaches the detectors with amplitude 1
    on modes 0, 3 and 10^(−4·1.16/20) on modes 1, 2 (0.586); without loss every mode reads 1.
    The controller's digital gain restores the mean path: by hand, light spread evenly and
    split evenly by each MZI keeps ((1 + t)/2)⁴ of its power through the 4 lossy columns
    (t = 10^(−0.116), each lossy column halves the pair's loss on average), so readings are
    × ((1 + t)/2)^(−2) = 1.283."""
    chip = _bar_chip(True)
    block = SVDBlock(4, 4)
    ph = torch.zeros(chip.num_phases, dtype=torch.float64)
    for part in ("U", "V"):
        sl = block.slices[part]
        ph[sl.start:sl.start + 6] = math.pi  # θ of the 6 MZIs; φ and the screen stay 0
    ph[block.slices["S"]] = math.pi
    eye = torch.eye(4, dtype=torch.float64)
    crossed = [5, 9, 9, 5]  # MZIs on each mode's path (hand count)
    t = 10 ** (-1.16 / 10)
    gain = ((1 + t) / 2) ** -2
    assert chip._readout_chain.gain == pytest.approx(gain, rel=1e-12) and gain == pytest.approx(1.283, abs=1e-3)
    want = gain * torch.tensor([10 ** (-(n - 5) * 1.16 / 20) for n in crossed], dtype=torch.float64)
    got = chip.measure(eye, ph)
    assert torch.allclose(got.abs().diagonal(), want, atol=1e-12, rtol=0)
    assert float((got - torch.diag(got.diagonal())).abs().max()) < 1e-12  # the bar state routes mode j to j
    assert want[1] / gain == pytest.approx(0.586, abs=1e-3)
    lossless = _bar_chip(False).measure(eye, ph)
    assert torch.allclose(lossless.abs(), eye, atol=1e-12, rtol=0)
    # the detector power the chip simulates is the link budget's full-scale power
    link = link_budget(load_device_card(CARD), 4, 1)
    assert _dbm(chip.channel_power) == pytest.approx(link["detector_full_scale_dbm"], abs=1e-12)


# ------------------------------------------------------------------ the scenario key and the report


def test_scenario_key_default_and_refusal():
    quick = load_scenario("quickstart")
    assert quick.chip.insertion_loss is True and quick.resolved()["chip"] == {"insertion_loss": True}
    assert load_scenario("quickstart", ["chip.insertion_loss=false"]).chip.insertion_loss is False
    for name in ("hjb20_tonn", "black_scholes_tonn", "darcy_tonn"):  # published tables measured without loss
        assert load_scenario(name).chip.insertion_loss is False
    for sets, words in ((["chip.insertion_los=false"], ["chip.insertion_los", "unknown key", "insertion_loss"]),
                        (["chip.insertion_loss=maybe"], ["chip.insertion_loss", "true or false"])):
        with pytest.raises(ScenarioError) as err:
            load_scenario("quickstart", sets)
        text = str(err.value)
        assert "\n" not in text and all(w in text for w in words), text


def test_experiment_builds_the_lossy_chip_and_reports_it():
    kw = dict(devices=CARD, accelerator="tonn_space", model="digits", task="none", training="zo_rge")
    on, off = Experiment(**kw), Experiment(**kw, insertion_loss=False)
    assert on.scenario.chip.insertion_loss and not off.scenario.chip.insertion_loss
    assert on.chip._loss_db is not None and off.chip._loss_db is None
    rep_on, rep_off = on.run().report, off.run().report
    assert rep_on["chip"]["insertion_loss"] is True and rep_off["chip"] == {"insertion_loss": False,
                                                                         "link": rep_on["chip"]["link"]}
    line = link_sentence(rep_on)
    link = rep_on["chip"]["link"]
    assert line.startswith("insertion loss simulated: 23.2 dB critical path")
    assert f"to {link['laser_dbm']:.3g} dBm" in line and f"receive {link['detector_dbm']:.3g} dBm" in line
    assert "sensitivity -27 dBm" in line
    assert line in to_markdown(rep_on, {})
    assert link_sentence(rep_off) == "insertion loss not simulated (scenario chip.insertion_loss: false)"


# ------------------------------------------------------------------ in-situ gradient hardware (issue 23)


def test_in_situ_conversions_counted_by_hand_and_priced():
    """One adjoint step of B = 3 inputs on one 4×4 block (coherent readout). By hand, per input
    vector: forward pass 4 DAC + 4 ADC (the ordinary readout) + 2k² + 2k = 40 tap ADCs; adjoint
    pass 2·4 DAC (I/Q source at the 4 outputs) + 2·8 ADC (I/Q receivers at the 4 inputs and 4
    Σ spare ports) + 40 taps; interference pass 2·8 DAC (I/Q at the 8 input-side ports) + 40
    taps. The cost model prices the conversions beyond the schedule's 4 + 4 per sample."""
    from photonic_sim.accelerators.cards import load_accelerator_card
    from photonic_sim.accelerators.cost import conversion_energy, converter_area, in_situ_counts, training_cost

    card = load_device_card(CARD)
    net = DenseONN([dense(4, 4, "none", False)], block_size=4)
    chip = Chip(net, card, seed=0, readout="coherent", dtype=torch.float64)
    b, k = 3, 4
    x = torch.rand(b, k, generator=torch.Generator().manual_seed(1))
    chip.adjoint_gradient(x, chip.init_phases(torch.Generator().manual_seed(0)), lambda r: r.square().sum(-1))
    led = chip.ledger.totals()
    taps = 2 * k * k + 2 * k
    adc = b * (k + taps) + b * (2 * 2 * k + taps) + b * taps
    dac = b * k + b * 2 * k + b * 2 * 2 * k
    assert (led["queries"], led["samples"], led["adc_conversions"], led["dac_conversions"]) == (3, 3 * b, adc, dac)
    assert (adc, dac) == (420, 84)

    acc = load_accelerator_card("dense_onn", overrides={"block_size": 4})
    plain = training_cost(acc, net.spec, card, led)
    hw = training_cost(acc, net.spec, card, led, in_situ_hardware=True)
    e_adc, e_dac = conversion_energy(card.adc), conversion_energy(card.dac)
    scheduled = 3 * b * k  # samples × (blocks · k) conversions of each kind
    e = hw["breakdown"]["energy_j"]
    assert e["adc_in_situ"] == pytest.approx((adc - scheduled) * e_adc, rel=1e-12)
    assert e["dac_in_situ"] == pytest.approx((dac - scheduled) * e_dac, rel=1e-12)
    assert e["adc"] + e["adc_in_situ"] == pytest.approx(adc * e_adc, rel=1e-12)  # every conversion the chip made
    assert hw["energy_j"] == pytest.approx(plain["energy_j"] + e["adc_in_situ"] + e["dac_in_situ"], rel=1e-12)
    assert hw["latency_s"] == plain["latency_s"]  # one converter per tap / port, during the pass
    assert "adc_in_situ" not in plain["breakdown"]["energy_j"]

    rep = estimate(acc, net.spec, card, in_situ_hardware=True)
    extra = in_situ_counts(k, 1)
    assert extra == {"tap_detectors": 40, "tap_tias": 40, "tap_adcs": 40, "iq_modulators": 16, "iq_dacs": 16,
                     "iq_detectors": 32, "iq_tias": 16, "iq_adcs": 16}
    assert all(rep.counts[name] == n for name, n in extra.items())
    base = estimate(acc, net.spec, card)
    added = sum(rep.area_m2.values()) - sum(base.area_m2.values())
    by_hand = acc.area_overhead * (40 * (card.photodetector.area + card.tia.area + converter_area(card.adc))
                                   + 16 * (card.modulator.area + converter_area(card.dac))
                                   + 32 * card.photodetector.area + 16 * (card.tia.area + converter_area(card.adc)))
    assert added == pytest.approx(by_hand, rel=1e-12)


def test_experiment_prices_the_hardware_of_in_situ_strategies_only():
    """The report of an adjoint run carries the taps' conversions and area; a ZO run's does not."""
    reports = {}
    for strategy in ("adjoint", "zo-rge"):
        exp = Experiment(devices=CARD, accelerator="tonn_space", model="digits", task="digits", seed=0,
                         training={"strategy": strategy, "steps": 1, "batch_size": 2, "eval_every": 1,
                                   "eval_batch_size": 512, "strategy_options": {"lr": 0.01}})
        reports[strategy] = exp.run().report
    adj, zo = reports["adjoint"], reports["zo-rge"]
    assert adj["training"]["breakdown"]["energy_j"]["adc_in_situ"] > 0
    assert adj["counts"]["tap_adcs"] == 24 * (2 * 64 + 16) and "tap_adcs" in adj["area_mm2"]["breakdown"]
    assert "adc_in_situ" not in zo["training"]["breakdown"]["energy_j"] and "tap_adcs" not in zo["counts"]


@pytest.mark.parametrize("readout", ["intensity", "coherent"])
def test_readout_gain_same_on_the_fused_and_torch_paths(readout, monkeypatch):
    """The digital readout gain acts alike in the fused C readout and the torch readout (exact
    conversion, so both give the same numbers)."""
    from photonic_sim.cores import _fused_read

    card = load_device_card(CARD)
    net = DenseONN([dense(8, 8, "none", False)], block_size=8)
    chip = Chip(net, card, seed=0, exact_readout=True, readout=readout, insertion_loss=True, dtype=torch.float64)
    assert chip._readout_chain.gain > 1
    x = torch.rand(16, 8, generator=torch.Generator().manual_seed(2))
    ph = chip.init_phases(torch.Generator().manual_seed(1))
    if _fused_read.kernel() is None:
        pytest.skip("no C compiler: the fused readout kernel is not available")
    fused = chip.measure(x, ph)
    monkeypatch.setattr(_fused_read, "usable", lambda *t: False)
    torch_path = chip.measure(x, ph)
    assert torch.allclose(fused, torch_path, rtol=1e-12, atol=1e-12)
