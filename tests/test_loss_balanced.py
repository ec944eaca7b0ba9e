"""Loss-balanced meshes (issue 23, "the rest of the BP-free family"): a dummy element matched to
one MZI's insertion loss at every position a Clements column leaves unpaired, so every block is
a scalar times a unitary. The link budget and the dummy count by hand from the card's figures
and the Clements layout, the scenario key ``chip.loss_balanced`` (default, refusals, served
identity, report line), the chip (no simulated path-dependent loss, bit-identical readings to
the lossless chip when the laser can pay the loss), and the in-situ adjoint: exact on a balanced
lossy circuit (float64, against autograd), not on an unbalanced one, and no warning."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from photonic_sim import Experiment
from photonic_sim.accelerators import estimate
from photonic_sim.accelerators.cost import block_loss, dummy_elements, link_budget, simulated_loss_db
from photonic_sim.chip import Chip
from photonic_sim.circuits.svd import SVDBlock
from photonic_sim.cli import main
from photonic_sim.cores import DenseONN
from photonic_sim.cores.spec import dense
from photonic_sim.devices.cards import load_device_card
from photonic_sim.reports.summary import link_sentence
from photonic_sim.scenarios import ScenarioError, load_scenario

CARD = "silicon_thermo_optic"
MZI = 2 * 0.25 + 2 * 0.33  # dB: IL_MZI of the card (two shifters, two couplers on either arm)


# ------------------------------------------------------------------ the link budget by hand


def test_dummy_count_by_hand():
    """Clements k×k: k columns per mesh, alternating offsets 0 / 1. k = 3: every column has one
    MZI and leaves one mode unpaired (3 per mesh); k = 4: columns 1 and 3 pair only (1, 2) and
    leave modes 0 and 3 (2 × 2 per mesh); k = 8: columns 1, 3, 5, 7 leave modes 0 and 7 (4 × 2).
    Two meshes per block, the square Σ column needs none."""
    for k, per_mesh in ((3, 3 * 1), (4, 2 * 2), (8, 4 * 2)):
        block = SVDBlock(k, k)
        assert dummy_elements(block) == 2 * per_mesh
        paths = block_loss(block, balanced=True)
        assert paths["dummies"] == 2 * per_mesh
        # every path crosses every column of both meshes and Σ: k + 1 + k
        assert paths["uniform"] == paths["least"] == paths["critical"] == 2 * k + 1
        assert not bool(paths["simulated"].any())
    assert [dummy_elements(SVDBlock(k, k)) for k in (3, 4, 8)] == [6, 8, 16]


def test_balanced_link_budget_by_hand():
    """k = 8, digits network (24 blocks, intensity readout: fan-out 192). Unbalanced: the laser
    pays 9 shared MZIs, the chip simulates up to 8 more on the critical path. Balanced: the
    laser pays all 17, so its power is higher by exactly 8·IL_MZI = 9.28 dB; nothing is path
    dependent and the detectors receive the full-scale power on every path."""
    dev = load_device_card(CARD)
    assert (dev.phase_shifter.insertion_loss, dev.coupler.insertion_loss) == (0.25, 0.33)
    wg = 17 * 50e-6 * 0.11 * 100  # 17 columns × 50 µm × 0.11 dB/cm
    shared = 3.0 + 2 * 0.25 + wg  # modulator, output screens, waveguide
    full_scale_dbm = 10 * math.log10(1.0 / (2 * 5000 * 1.1) / 1e-3)  # FS 1 V, G 5 kOhm, R 1.1 A/W
    fanout = 192
    plain = link_budget(dev, 8, fanout)
    bal = link_budget(dev, 8, fanout, loss_balanced=True)
    assert plain["uniform_loss_db"] == pytest.approx(shared + 9 * MZI, abs=1e-9)
    assert bal["uniform_loss_db"] == pytest.approx(shared + 17 * MZI, abs=1e-9)
    assert bal["insertion_loss_db"] == pytest.approx(bal["uniform_loss_db"], abs=1e-12)
    assert bal["insertion_loss_db"] == pytest.approx(plain["insertion_loss_db"], abs=1e-9)  # same critical path
    assert bal["path_dependent_loss_db"] == 0.0 and plain["path_dependent_loss_db"] == pytest.approx(8 * MZI)
    laser = full_scale_dbm + shared + 17 * MZI + 10 * math.log10(fanout)
    assert bal["laser_dbm"] == pytest.approx(laser, abs=1e-9)
    assert bal["laser_dbm"] - plain["laser_dbm"] == pytest.approx((17 - 9) * MZI, abs=1e-9)
    assert (17 - 9) * MZI == pytest.approx(9.28, abs=1e-12)
    assert bal["laser_shortfall_db"] == 0.0  # 12.8 dBm per channel < laser.max_power 20 dBm
    assert bal["detector_dbm"] == pytest.approx(full_scale_dbm, abs=1e-9) == bal["detector_full_scale_dbm"]
    assert (bal["loss_balanced"], bal["dummy_elements_per_block"]) == (1.0, 16.0)
    assert "loss_balanced" not in plain and "dummy_elements_per_block" not in plain

    # the cost model: dummies counted and priced in the area (one MZI's footprint each), more laser
    rep_plain, rep_bal = estimate("tonn_space", "digits", dev), estimate("tonn_space", "digits", dev, loss_balanced=True)
    assert rep_bal.counts["dummy_elements"] == 24 * 16 and "dummy_elements" not in rep_plain.counts
    from photonic_sim.accelerators.cards import load_accelerator_card

    acc = load_accelerator_card("tonn_space")
    by_hand = 24 * 16 * 2 * (dev.phase_shifter.area + dev.coupler.area) * acc.area_overhead
    assert rep_bal.area_m2["dummy_elements"] == pytest.approx(by_hand, rel=1e-12)
    # and the lasers: 3.67 W of light at 0.1 W per laser, 37 instead of 5
    lasers = (rep_bal.counts["lasers"], rep_plain.counts["lasers"])
    assert lasers == (math.ceil(1e-3 * 10 ** (laser / 10) / 0.1), 5) == (37, 5)
    by_hand += (lasers[0] - lasers[1]) * dev.laser.area * acc.area_overhead
    assert sum(rep_bal.area_m2.values()) - sum(rep_plain.area_m2.values()) == pytest.approx(by_hand, rel=1e-9)
    assert rep_bal.link["laser_dbm"] == pytest.approx(laser, abs=1e-9)
    assert rep_bal.inference["breakdown"]["energy_j"]["laser"] == pytest.approx(
        rep_plain.inference["breakdown"]["energy_j"]["laser"] * 10 ** (8 * MZI / 10), rel=1e-9)
    # passive dummies: the heater power does not change
    assert rep_bal.link["heater_power_w"] == rep_plain.link["heater_power_w"]


def test_balanced_shortfall_is_the_only_simulated_loss():
    """laser.max_power 1 mW (0 dBm per channel): the balanced link needs 12.8 dBm per channel,
    so 12.8 dB are missing; the chip simulates that shortfall on the Σ column (a scalar on every
    path) and nothing else, and its readout gain undoes exactly it."""
    dev = load_device_card(CARD, overrides={"laser.max_power": 1e-3})
    bal = link_budget(dev, 8, 1, loss_balanced=True)
    need = bal["detector_full_scale_dbm"] + bal["laser_shortfall_db"] + bal["uniform_loss_db"]
    assert bal["channel_dbm"] == pytest.approx(0.0, abs=1e-12)
    assert bal["laser_shortfall_db"] == pytest.approx(need, abs=1e-12)
    full_scale_dbm = 10 * math.log10(1.0 / (2 * 5000 * 1.1) / 1e-3)
    assert bal["laser_shortfall_db"] == pytest.approx(full_scale_dbm + 3.5 + 17 * 50e-6 * 11 + 17 * MZI, abs=1e-9)
    loss = simulated_loss_db(dev, 8, loss_balanced=True)
    assert not bool(loss["U"].any()) and not bool(loss["V"].any())
    assert torch.allclose(loss["S"], torch.full((8,), bal["laser_shortfall_db"], dtype=torch.float64))
    net = DenseONN([dense(8, 8, "none", False)], block_size=8)
    chip = Chip(net, dev, seed=0, insertion_loss=True, loss_balanced=True)
    assert chip._readout_chain.gain == pytest.approx(10 ** (bal["laser_shortfall_db"] / 20), rel=1e-12)


def test_balanced_chip_reads_like_the_lossless_chip_when_the_laser_pays():
    """Default card: no shortfall, so the balanced chip simulates no loss at all (readout gain
    0 dB) and its readings are bit for bit the lossless chip's; the unbalanced lossy chip's are
    not."""
    card = load_device_card(CARD)
    net = DenseONN([dense(8, 8, "none", False)], block_size=8)
    x = torch.rand(5, 8, generator=torch.Generator().manual_seed(0))
    ph = net.init_phases(torch.Generator().manual_seed(1))
    chips = {key: Chip(net, card, seed=3, insertion_loss=il, loss_balanced=lb)
             for key, il, lb in (("lossless", False, False), ("balanced", True, True), ("lossy", True, False))}
    assert chips["balanced"]._loss_db is None and chips["balanced"]._readout_chain.gain == 1.0
    out = {key: chip.measure(x, ph) for key, chip in chips.items()}
    assert torch.equal(out["balanced"], out["lossless"])
    assert not torch.equal(out["lossy"], out["lossless"])
    with pytest.raises(ValueError, match="loss_balanced.*insertion_loss"):
        Chip(net, card, loss_balanced=True)


# ------------------------------------------------------------------ the scenario key


def test_scenario_key_default_refusals_and_served_identity():
    from photonic_sim.scenarios.serve import chip_identity

    quick = load_scenario("quickstart")
    assert quick.chip.loss_balanced is False and quick.resolved()["chip"] == {"insertion_loss": True}
    bal = load_scenario("quickstart", ["chip.loss_balanced=true"])
    assert bal.chip.loss_balanced is True
    assert bal.resolved()["chip"] == {"insertion_loss": True, "loss_balanced": True}
    ids = {name: chip_identity(Experiment.from_scenario(sc)) for name, sc in
           (("default", quick), ("false", load_scenario("quickstart", ["chip.loss_balanced=false"])), ("true", bal))}
    assert ids["default"] == ids["false"] != ids["true"]
    for sets, words in ((["chip.loss_balanced=maybe"], ["chip.loss_balanced", "true or false"]),
                        (["chip.insertion_loss=false", "chip.loss_balanced=true"],
                         ["chip.loss_balanced", "chip.insertion_loss"])):
        with pytest.raises(ScenarioError) as err:
            load_scenario("quickstart", sets)
        text = str(err.value)
        assert "\n" not in text and all(w in text for w in words), text
    with pytest.raises(ScenarioError, match="loss_balanced.*insertion_loss"):
        Experiment(devices=CARD, accelerator="tonn_space", model="digits", task="none", training="zo_rge",
                   insertion_loss=False, loss_balanced=True)


def test_cli_refuses_the_key_without_loss_in_one_line(capsys):
    capsys.readouterr()
    rc = main(["validate", "quickstart", "--set", "chip.insertion_loss=false", "--set", "chip.loss_balanced=true"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "chip.loss_balanced" in err and "Traceback" not in err


def test_experiment_reports_the_balanced_link():
    kw = dict(devices=CARD, accelerator="tonn_space", model="digits", task="none", training="zo_rge")
    exp = Experiment(**kw, loss_balanced=True)
    assert exp.chip.loss_balanced and exp.chip._loss_db is None
    rep = exp.run().report
    chip = rep["chip"]
    assert chip["insertion_loss"] is True and chip["loss_balanced"] is True
    assert chip["link"]["path_dependent_loss_db"] == 0.0 and rep["counts"]["dummy_elements"] == 384
    line = link_sentence(rep)
    assert line.startswith("insertion loss simulated: loss-balanced mesh (16 dummy elements per block")
    assert "23.2 dB critical path (0 dB of it path-dependent)" in line
    assert f"to {chip['link']['laser_dbm']:.3g} dBm" in line
    plain = Experiment(**kw).run().report
    assert "loss_balanced" not in plain["chip"] and "loss-balanced" not in link_sentence(plain)


@pytest.mark.parametrize("training", ["adjoint", "node_perturbation"])
def test_in_situ_strategies_warn_only_on_the_unbalanced_lossy_chip(training):
    with pytest.warns(UserWarning, match="chip.loss_balanced: true"):
        Experiment.from_file("quickstart", sets=[f"training={training}"]).strategy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exp = Experiment.from_file("quickstart", sets=[f"training={training}", "chip.loss_balanced=true"])
        exp.strategy
    assert exp.chip.loss_balanced


def test_dummies_add_no_area_to_a_floorplan():
    """With a ``layout`` the meshes' area is the floorplan's: the dummies sit in the columns' empty
    edge slots inside each block's footprint, so only the count grows (and the lasers)."""
    from photonic_sim.accelerators.cards import load_accelerator_card

    acc = load_accelerator_card("dense_onn", overrides={"layout.block_pitch": 1.2e-3})
    dev = load_device_card(CARD)
    plain, bal = estimate(acc, "digits", dev), estimate(acc, "digits", dev, loss_balanced=True)
    assert bal.counts["dummy_elements"] == bal.counts["blocks"] * 16 > 0
    assert "dummy_elements" not in bal.area_m2
    assert bal.area_m2["blocks_floorplan"] == plain.area_m2["blocks_floorplan"]
