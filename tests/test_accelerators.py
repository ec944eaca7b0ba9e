"""Accelerator cards, hardware counts, cost model and the `cost` CLI.

The small network used throughout (k = 4):
  layer 0: TT in_modes (2, 3), out_modes (4, 2), ranks (1, 2, 1), relu: 6 → 8
           core 0: (r0·m0) × (n0·r1) = (1·4) × (2·2) = 4×4
           core 1: (r1·m1) × (n1·r2) = (2·2) × (3·1) = 4×3
  layer 1: dense 8 → 3 (matrix 3×8)
"""

import json
import math

import pytest

from photonic_sim.accelerators import cards as acards
from photonic_sim.accelerators.cost import estimate, training_cost
from photonic_sim.cli import main
from photonic_sim.cores.spec import NetworkSpec, dense, preset, tt
from photonic_sim.devices.cards import load_device_card

SMALL = NetworkSpec("small", (tt((2, 3), (4, 2), 2, "relu"), dense(8, 3)))


def card(name, **over):
    """A shipped accelerator card with k = 4 and the given overrides."""
    return acards.load_accelerator_card(name, {"block_size": 4, **over})


# ---------------------------------------------------------------- counts


def test_counts_dense_onn_small():
    c = estimate(card("dense_onn"), SMALL).counts
    # TT layer as dense 8×6: ⌈8/4⌉·⌈6/4⌉ = 4 blocks; dense 3×8: 1·2 = 2 blocks → 6 blocks
    assert c["blocks"] == 6
    assert c["mzi_blocked"] == 6 * 16  # k² = 16 per block
    # SVD: 8×6 → 28 + 15 + 6 = 49; 3×8 → 3 + 28 + 3 = 34
    assert c["mzi_svd"] == 49 + 34
    assert c["phase_shifters"] == 6 * (2 * 16 + 4)  # 2k² + k per block
    assert c["couplers"] == 2 * 96
    assert c["modulators"] == c["dacs"] == c["adcs"] == c["tias"] == c["detectors"] == 6 * 4


def test_counts_tonn_space_small():
    c = estimate(card("tonn_space"), SMALL).counts
    # cores 4×4 (1 block), 4×3 (1 block), dense 3×8 (2 blocks) → 4 blocks
    assert c["blocks"] == 4
    assert c["mzi_blocked"] == 64
    # SVD: 4×4 → 6+6+4 = 16; 4×3 → 6+3+3 = 12; 3×8 → 34
    assert c["mzi_svd"] == 16 + 12 + 34
    assert c["phase_shifters"] == 4 * 36
    assert c["modulators"] == 16 and c["detectors"] == 16


def test_counts_tonn_time_small():
    # P physical 4×4 cores; each is k² = 16 MZIs under both conventions
    for p in (1, 2):
        c = estimate(card("tonn_time", num_cores=p), SMALL).counts
        assert c["blocks"] == p and c["logical_blocks"] == 4
        assert c["mzi_blocked"] == c["mzi_svd"] == 16 * p
        assert c["phase_shifters"] == 36 * p


def test_coherent_readout_doubles_photodiodes_only():
    c = estimate(card("tonn_space", readout="coherent"), SMALL).counts
    assert c["detectors"] == 2 * 16 and c["adcs"] == 16 and c["tias"] == 16


def test_schedule_small():
    # right-to-left: core 1 runs n0 = 2 passes, core 0 runs m1 = 2 passes, dense 1 pass
    space = estimate(card("tonn_space"), SMALL).schedule
    assert space["symbol_periods"] == 5 and space["programs_per_inference"] == 0
    # P = 1: programs [core1], [core0], [dense b1], [dense b2] → 4 loads, 2+2+1+1 periods
    t1 = estimate(card("tonn_time", num_cores=1), SMALL).schedule
    assert t1["programs_per_inference"] == 4 and t1["symbol_periods"] == 6
    # P = 2: [core1, core0] (2+2 periods), [dense b1, b2] (1 period)
    t2 = estimate(card("tonn_time", num_cores=2), SMALL).schedule
    assert t2["programs_per_inference"] == 2 and t2["symbol_periods"] == 5
    # P = 4: everything fits, the phases stay: no loads per inference
    assert estimate(card("tonn_time", num_cores=4), SMALL).schedule["programs_per_inference"] == 0


def test_hjb20_dense_svd_count():
    # 512×21: 130816 + 210 + 21; 512×512: 2·130816 + 512; 1×512: 0 + 130816 + 1
    c = estimate("dense_onn", "hjb20").counts
    assert c["mzi_svd"] == (130816 + 210 + 21) + (2 * 130816 + 512) + (130816 + 1)
    # blocked: 64·3 + 64·64 + 1·64 = 4352 blocks of 64 MZIs
    assert c["mzi_blocked"] == 4352 * 64


# ---------------------------------------------------------------- energy / latency


def test_inference_energy_by_hand():
    acc = card("tonn_space")
    dev = load_device_card("silicon_thermo_optic")
    rep = estimate(acc, SMALL, dev)
    k = 4
    f = min(acc.clock, dev.dac.sample_rate, dev.adc.sample_rate)
    t_opt = 5 / f  # 5 symbol periods (test_schedule_small)
    latency = t_opt + acc.digital.control_overhead
    heaters = 144 * dev.phase_shifter.p_pi  # mean phase π → P_π each
    # link budget (docs/physics.md#insertion-loss-and-the-link-budget), k = 4: the laser pays the loss every
    # path shares (modulator, output screens, waveguide, the 5 MZI columns every path crosses) and delivers
    # the readout chain's full-scale power FS/(2GR) to the detectors, on each of the 16 channels
    il_uniform = (dev.modulator.insertion_loss + 2 * dev.phase_shifter.insertion_loss
                  + 9 * dev.waveguide.mzi_pitch * dev.waveguide.loss
                  + 5 * (2 * dev.phase_shifter.insertion_loss + 2 * dev.coupler.insertion_loss))
    full_scale_dbm = 10 * math.log10(dev.adc.full_scale / (2 * dev.tia.gain * dev.photodetector.responsivity) / 1e-3)
    p_opt = 1e-3 * 10 ** ((full_scale_dbm + il_uniform + 10 * math.log10(16)) / 10)
    symbols = k * (2 * 1 + 2 * 1 + 1 * 2)  # Σ passes·blocks·k = 24 channel symbols
    ops = 3 + 8 * 2 + 3  # dense partial sums 3·(2−1); TT bias+relu 8·2; dense bias 3
    sram_bytes = 8 + 8  # core 1 writes 2·4 values, core 0 reads 2·4 values, 1 byte each
    expected = (heaters * latency + p_opt / dev.laser.wall_plug_efficiency * t_opt
                + 16 * dev.tia.power * t_opt
                + symbols * (dev.dac.power / dev.dac.sample_rate + dev.adc.power / dev.adc.sample_rate
                             + dev.modulator.energy_per_symbol)
                + ops * acc.digital.energy_per_op + sram_bytes * acc.digital.sram_energy_per_byte)
    assert rep.inference["latency_s"] == pytest.approx(latency, rel=1e-12)
    assert rep.inference["energy_j"] == pytest.approx(expected, rel=1e-12)
    assert rep.link["laser_optical_w"] == pytest.approx(p_opt, rel=1e-12)


def test_phases_scale_heater_power():
    base = estimate(card("tonn_space"), SMALL)
    half = estimate(card("tonn_space"), SMALL, phases=[math.pi / 2, math.pi / 2 + 2 * math.pi])
    assert half.link["heater_power_w"] == pytest.approx(base.link["heater_power_w"] / 2, rel=1e-12)
    with pytest.raises(ValueError, match="phases"):
        estimate(card("tonn_space"), SMALL, phases=[])


def test_time_mux_fewer_mzis_more_latency():
    for net in (SMALL, preset("hjb20")):
        space = estimate(card("tonn_space"), net)
        time = estimate(card("tonn_time", num_cores=1), net)
        assert time.counts["mzi_blocked"] < space.counts["mzi_blocked"]
        assert time.area_m2["phase_shifters"] < space.area_m2["phase_shifters"]
        assert time.inference["latency_s"] > space.inference["latency_s"]


def test_area_breakdown_sums_and_overhead():
    a = estimate(card("tonn_space"), SMALL).to_dict()["area_mm2"]
    b = estimate(card("tonn_space", area_overhead=2.0), SMALL).to_dict()["area_mm2"]
    assert a["total"] == pytest.approx(sum(a["breakdown"].values()), rel=1e-12)
    assert b["total"] == pytest.approx(a["total"] * 2.0 / 1.2, rel=1e-12)  # shipped overhead is 1.2
    dev = load_device_card("silicon_thermo_optic")
    assert a["breakdown"]["phase_shifters"] == pytest.approx(144 * dev.phase_shifter.area * 1.2 * 1e6, rel=1e-12)


# ---------------------------------------------------------------- training cost


@pytest.mark.parametrize("arch,over", [("tonn_space", {}), ("tonn_time", {"num_cores": 1})])
def test_training_cost_linear_in_ledger(arch, over):
    acc = card(arch, **over)
    # chip.Ledger.totals() keys; conversions / clipped are echoed, not priced
    l1 = {"calls": 3, "queries": 4, "phase_settings": 2, "samples": 100, "dac_conversions": 9,
          "adc_conversions": 9, "clipped": 0}
    l2 = {"calls": 1, "queries": 7, "phase_settings": 5, "samples": 30, "dac_conversions": 2,
          "adc_conversions": 2, "clipped": 1}
    mix = {key: 2 * l1[key] + 3 * l2[key] for key in l1}
    c1, c2, cm = (training_cost(acc, SMALL, "silicon_thermo_optic", x) for x in (l1, l2, mix))
    for key in ("energy_j", "latency_s"):
        assert cm[key] == pytest.approx(2 * c1[key] + 3 * c2[key], rel=1e-12)
    one = training_cost(acc, SMALL, "silicon_thermo_optic", {"queries": 1, "phase_settings": 0, "samples": 1})
    inf = estimate(acc, SMALL).inference
    assert one["energy_j"] == pytest.approx(inf["energy_j"], rel=1e-12)
    assert one["latency_s"] == pytest.approx(inf["latency_s"], rel=1e-12)


def test_training_cost_settles():
    dev = load_device_card("silicon_thermo_optic")
    led = {"queries": 10, "phase_settings": 3, "samples": 0}
    space = training_cost(card("tonn_space"), SMALL, dev, led)["breakdown"]["latency_s"]["settle"]
    time = training_cost(card("tonn_time", num_cores=1), SMALL, dev, led)["breakdown"]["latency_s"]["settle"]
    tau = dev.phase_shifter.settle_time
    assert space == pytest.approx(3 * tau)  # one settle per programming
    assert time == pytest.approx(10 * 4 * tau)  # 4 program loads per query


def test_training_cost_bad_ledger():
    with pytest.raises(ValueError, match="allowed"):
        training_cost(card("tonn_space"), SMALL, "silicon_thermo_optic", {"queries": 1, "phase_settings": 1, "samples": 1, "x": 1})
    with pytest.raises(ValueError, match="samples"):
        training_cost(card("tonn_space"), SMALL, "silicon_thermo_optic", {"queries": 1, "phase_settings": 1})
    with pytest.raises(ValueError, match="queries"):
        training_cost(card("tonn_space"), SMALL, "silicon_thermo_optic", {"queries": -1, "phase_settings": 1, "samples": 1})


# ---------------------------------------------------------------- cards


GOOD = """\
name: t
description: test
architecture: tonn_space
clock: {value: 5, unit: GHz, ref: r}
digital:
  energy_per_op: {value: 1, unit: pJ, ref: r}
  control_overhead: {value: 1, unit: us, ref: r}
  sram_energy_per_byte: {value: 1, unit: pJ, ref: r}
area_overhead: {value: 1.5, unit: "", ref: r}
"""


def test_card_loads_si(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(GOOD)
    c = acards.load_accelerator_card(p)
    assert c.clock == 5e9 and c.digital.control_overhead == 1e-6 and c.block_size == 8
    assert c.ref("clock") == "r"
    assert set(acards.list_accelerator_cards()) >= {"dense_onn", "tonn_space", "tonn_time"}


@pytest.mark.parametrize("text,pattern", [
    (GOOD + "blok_size: 4\n", r"blok_size: unknown key; did you mean 'block_size'\? \(allowed: "),
    (GOOD.replace("unit: GHz", "unit: GW"), r"clock.unit: 'GW' is not a frequency unit \(allowed: 'Hz'"),
    (GOOD.replace("ref: r}\ndigital", "}\ndigital"), r"clock: missing 'ref'"),
    (GOOD.replace("value: 1.5", "value: 0.5"), r"area_overhead: .*\(allowed: number >= 1"),
    (GOOD.replace("tonn_space", "tonn_spac"), r"did you mean 'tonn_space'\? \(allowed: one of dense_onn"),
    (GOOD + "num_cores: 2\n", r"num_cores: only meaningful for architecture tonn_time"),
    (GOOD.replace("tonn_space", "tonn_time"), r"num_cores: missing"),
    (GOOD.replace("  energy_per_op: {value: 1, unit: pJ, ref: r}\n", ""), r"digital.energy_per_op: missing"),
])
def test_card_errors(tmp_path, text, pattern):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match=pattern) as err:
        acards.load_accelerator_card(p)
    assert str(err.value).startswith(str(p)) and "\n" not in str(err.value)


def test_unknown_card_name():
    with pytest.raises(ValueError, match=r"did you mean 'tonn_time'"):
        acards.load_accelerator_card("tonn_tim")


# ---------------------------------------------------------------- CLI


@pytest.mark.parametrize("argv,flag", [
    (["--accelerator", "tonn_space", "--model", "nope"], "--model"),
    (["--accelerator", "nope", "--model", "hjb20"], "--accelerator"),
    (["--accelerator", "tonn_space", "--model", "hjb20", "--layers", "2-9"], "--layers"),
])
def test_cli_bad_input_exit_2(capsys, argv, flag):
    assert main(["cost", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and flag in err and "allowed" in err and "Traceback" not in err


def test_cli_json(capsys):
    assert main(["cost", "--accelerator", "tonn_space", "--model", "hjb20", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("mzi_blocked", "mzi_svd", "phase_shifters", "couplers", "modulators", "detectors",
                "adcs", "dacs", "lasers", "blocks"):
        assert isinstance(d["counts"][key], int)
    assert d["counts"]["mzi_blocked"] == 72 * 64  # 4 + 4 TT blocks + 64 for the 1×512 layer
    assert d["area_mm2"]["total"] > 0 and set(d["inference"]) >= {"energy_j", "latency_s", "breakdown"}
    assert d["model"] == "hjb20" and d["architecture"] == "tonn_space"


def test_cli_layers_and_scenario(capsys, tmp_path):
    assert main(["cost", "--accelerator", "tonn_space", "--model", "hjb20", "--layers", "1-2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["mzi_blocked"] == 8 * 64
    scen = tmp_path / "s.yaml"
    scen.write_text("model: digits\n")
    assert main(["cost", "--accelerator", "dense_onn", "--model", str(scen)]) == 0
    assert "digits" in capsys.readouterr().out
    scen.write_text("model:\n  name: small\n  layers:\n"
                    "    - {kind: tt, in_modes: [2, 3], out_modes: [4, 2], ranks: [1, 2, 1], activation: relu}\n"
                    "    - {kind: dense, in_features: 8, out_features: 3}\n")
    assert main(["cost", "--accelerator", "tonn_space", "--model", str(scen), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["mzi_blocked"] == 3 * 64  # k = 8: 1 + 1 + 1 blocks
    scen.write_text("task: x\n")
    assert main(["cost", "--accelerator", "dense_onn", "--model", str(scen)]) == 2
    assert "model:" in capsys.readouterr().err


# ---------------------------------------------------------------- converters follow the card


def _no_fom_card(tmp_path):
    """The shipped silicon card without its adc.fom / dac.fom sections."""
    import yaml

    from photonic_sim.devices.cards import DEVICES_DIR

    raw = yaml.safe_load((DEVICES_DIR / "silicon_thermo_optic.yaml").read_text())
    del raw["adc"]["fom"], raw["dac"]["fom"]
    path = tmp_path / "no_fom.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def test_converter_energy_follows_bits_walden():
    acc = card("tonn_space")
    dev8 = load_device_card("silicon_thermo_optic")
    rep8 = estimate(acc, SMALL, dev8)
    symbols = 24  # Σ passes·blocks·k of SMALL on tonn_space (test_inference_energy_by_hand)
    for part in ("adc", "dac"):
        dev6 = load_device_card("silicon_thermo_optic", {f"{part}.bits": 6})
        rep6 = estimate(acc, SMALL, dev6)
        fom = getattr(dev8, part).fom.walden
        e8, e6 = rep8.inference["breakdown"]["energy_j"][part], rep6.inference["breakdown"]["energy_j"][part]
        assert e8 == pytest.approx(symbols * fom * 2**8, rel=1e-12)  # E = FOM_W · 2^bits per conversion
        assert e6 == pytest.approx(symbols * fom * 2**6, rel=1e-12)
        assert e8 / e6 == pytest.approx(4.0, rel=1e-12)
        area = getattr(dev8, part).area * acc.area_overhead
        assert rep6.area_m2[part + "s"] == pytest.approx(rep8.area_m2[part + "s"] / 4, rel=1e-12)
        assert rep8.area_m2[part + "s"] == pytest.approx(16 * area, rel=1e-12)  # 16 converters at the card's part
    # the card's FOM reproduces its part at 8 bits: same energy as power / sample_rate
    assert dev8.adc.fom.walden * 2**8 == pytest.approx(dev8.adc.power / dev8.adc.sample_rate, rel=1e-12)
    assert dev8.dac.fom.walden * 2**8 == pytest.approx(dev8.dac.power / dev8.dac.sample_rate, rel=1e-12)
    assert "Walden" in dev8.ref("adc.fom.walden") and "doi" in dev8.ref("adc.fom.walden")


def test_converter_area_follows_sample_rate_energy_does_not():
    acc = card("tonn_space")
    base = estimate(acc, SMALL, load_device_card("silicon_thermo_optic"))
    slow = estimate(acc, SMALL, load_device_card("silicon_thermo_optic", {"adc.sample_rate": 5e9}))
    assert slow.area_m2["adcs"] == pytest.approx(base.area_m2["adcs"] / 2, rel=1e-12)  # ∝ sample rate
    assert slow.inference["breakdown"]["energy_j"]["adc"] == pytest.approx(
        base.inference["breakdown"]["energy_j"]["adc"], rel=1e-12)  # Walden E per conversion: no rate
    assert slow.schedule["symbol_rate_hz"] == 5e9


def test_card_without_fom_keeps_power_over_rate(tmp_path):
    path = _no_fom_card(tmp_path)
    d8 = load_device_card(path)
    d6 = load_device_card(path, {"adc.bits": 6})
    assert d8.adc.fom is None
    e8 = estimate(card("tonn_space"), SMALL, d8).inference["breakdown"]["energy_j"]["adc"]
    e6 = estimate(card("tonn_space"), SMALL, d6).inference["breakdown"]["energy_j"]["adc"]
    assert e8 == e6 == pytest.approx(24 * d8.adc.power / d8.adc.sample_rate, rel=1e-12)


# ---------------------------------------------------------------- a user's nn.Module


def _digits_mlp():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)).double()


def test_estimate_plain_mlp_equals_digits_preset_on_dense_onn():
    mlp = _digits_mlp()
    got, want = estimate("dense_onn", mlp), estimate("dense_onn", "digits")
    assert got.counts == want.counts and got.schedule == want.schedule
    assert got.inference == want.inference  # same spec (relu read from nn.ReLU), phases unknown → mean π
    assert got.model == "Sequential"


def test_estimate_converted_model_equals_preset_counts():
    import photonic_sim.nn as pnn

    mlp = _digits_mlp()
    tt_model = pnn.convert(mlp, mode="tt", tt_shapes={0: ((4, 4, 4), (4, 4, 4))}, ranks=4, block_size=8)
    dense_model = pnn.convert(mlp, mode="dense", block_size=8)
    for arch, model in (("tonn_space", tt_model), ("tonn_time", tt_model), ("dense_onn", dense_model),
                        ("dense_onn", tt_model)):
        got, want = estimate(arch, model), estimate(arch, "digits")
        assert got.counts == want.counts, arch
        assert got.schedule == want.schedule, arch
        energy, ref = got.inference["breakdown"]["energy_j"], want.inference["breakdown"]["energy_j"]
        for part in ref:
            if part != "phase_shifters":  # heaters follow the programmed phases (next test)
                assert energy[part] == pytest.approx(ref[part], rel=1e-12), (arch, part)


def test_heater_power_uses_programmed_phases():
    import photonic_sim.nn as pnn
    import torch

    model = pnn.convert(_digits_mlp(), mode="tt", tt_shapes={0: ((4, 4, 4), (4, 4, 4))}, ranks=4, block_size=8)
    layers = [m for m in model.modules() if isinstance(m, (pnn.PhotonicLinear, pnn.TTPhotonicLinear))]
    with torch.no_grad():  # known phases: U/V 3.0 rad, Σ 0.5 rad
        for layer in layers:
            sigma = layer.phase_periods() == math.pi
            layer.phases.copy_(torch.where(sigma, 0.5, 3.0))
    n_sigma = sum(int((layer.phase_periods() == math.pi).sum()) for layer in layers)
    n_all = sum(layer.phases.numel() for layer in layers)
    mean = (0.5 * n_sigma + 3.0 * (n_all - n_sigma)) / n_all
    dev = load_device_card("silicon_thermo_optic")
    rep = estimate("tonn_space", model, dev)
    n_ps = rep.counts["phase_shifters"]
    assert n_all == n_ps  # every phase shifter of tonn_space is programmed once
    assert rep.link["heater_mean_phase_rad"] == pytest.approx(mean, rel=1e-12)
    assert rep.link["heater_power_w"] == pytest.approx(n_ps * dev.phase_shifter.p_pi * mean / math.pi, rel=1e-12)
    assert rep.inference["breakdown"]["energy_j"]["phase_shifters"] == pytest.approx(
        rep.link["heater_power_w"] * rep.inference["latency_s"], rel=1e-12)
    # explicit phases win over the model's
    assert estimate("tonn_space", model, dev, phases=[math.pi]).link["heater_mean_phase_rad"] == pytest.approx(math.pi)


def test_spec_from_module_errors_and_nesting():
    torch = pytest.importorskip("torch")
    from photonic_sim.accelerators.mapping import spec_from_module

    with pytest.raises(ValueError, match="has no nn.Linear or photonic layer"):
        spec_from_module(torch.nn.Sequential(torch.nn.ReLU()))
    with pytest.raises(ValueError, match="Conv2d \\(a convolution\\) cannot be priced"):
        spec_from_module(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2)))
    with pytest.raises(ValueError, match="do not chain"):
        spec_from_module(torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(6, 2)))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
            self.head = torch.nn.Linear(4, 2, bias=False)

    spec = spec_from_module(Net())
    assert [(l.in_features, l.out_features, l.activation, l.bias) for l in spec.layers] == [
        (3, 4, "tanh", True), (4, 2, "none", False)]
    assert spec_from_module(torch.nn.Linear(3, 2)).layers[0].out_features == 2  # a bare layer


# ---------------------------------------------------------------- CLI: a user's network

MODEL_PY = '''
import torch
import photonic_sim.nn as pnn

def factory():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    return pnn.convert(mlp, mode="tt", tt_shapes={0: ((4, 4, 4), (4, 4, 4))}, ranks=4)

def plain():
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))

def not_a_model():
    return 42

def needs_args(x):
    return x

def boom():
    raise RuntimeError("no " * 200)
'''


def _cost_json(capsys, *argv):
    assert main(["cost", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_model_py_factory_and_layer_yaml(capsys, tmp_path):
    py = tmp_path / "model.py"
    py.write_text(MODEL_PY)
    want = _cost_json(capsys, "--accelerator", "tonn_space", "--model", "digits")
    got = _cost_json(capsys, "--accelerator", "tonn_space", "--model", f"{py}:factory")
    assert got["counts"] == want["counts"] and got["model"] == "Sequential"
    assert got["link"]["heater_mean_phase_rad"] != pytest.approx(math.pi)  # the converted phases
    plain = _cost_json(capsys, "--accelerator", "tonn_space", "--model", f"{py}:plain")
    dense_want = _cost_json(capsys, "--accelerator", "tonn_space", "--model", "digits", "--layers", "2-2")
    assert plain["counts"]["mzi_blocked"] == 64 * 64 + dense_want["counts"]["mzi_blocked"]  # 64×64 dense: 64 blocks
    layers = tmp_path / "layers.yaml"
    layers.write_text("layers:\n"
                      "  - {kind: tt, in: 64, out: 64, in_modes: [4, 4, 4], out_modes: [4, 4, 4], ranks: 4,"
                      " activation: relu}\n"
                      "  - {kind: dense, in: 64, out: 10}\n")
    got = _cost_json(capsys, "--accelerator", "tonn_space", "--model", str(layers))
    assert got["counts"] == want["counts"] and got["inference"] == want["inference"] and got["model"] == "layers"


@pytest.mark.parametrize("model,pattern", [
    ("{py}:nope", "no function 'nope'"),
    ("{py}:not_a_model", "returned int, not a torch.nn.Module"),
    ("{py}:needs_args", "needs_args(): raised TypeError"),
    ("{py}:boom", "boom(): raised RuntimeError"),
    ("{py}:1x", "is not a Python name"),
    ("{bad}:factory", "running the file raised SyntaxError"),
    ("{tmp}/missing.py:factory", "no such .py file"),
    ("{layers_bad_key}", "layers.0.rank: unknown key 'rank'; did you mean 'ranks'?"),  # the misspelt key, not the missing one
    ("{layers_bad_in}", "layers.0.in: 65 is not the product"),
    ("{layers_chain}", "layers: "),
    ("{layers_empty}", "neither a scenario"),
])
def test_cli_user_model_bad_input(capsys, tmp_path, model, pattern):
    (tmp_path / "model.py").write_text(MODEL_PY)
    (tmp_path / "bad.py").write_text("def factory(:\n")
    files = {"layers_bad_key": "layers:\n  - {kind: tt, in_modes: [4], out_modes: [4], rank: 2}\n",
             "layers_bad_in": "layers:\n  - {kind: tt, in: 65, in_modes: [8, 8], out_modes: [8, 8], ranks: 2}\n",
             "layers_chain": "layers:\n  - {kind: dense, in: 4, out: 5}\n  - {kind: dense, in: 6, out: 2}\n",
             "layers_empty": "name: x\n"}
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    arg = model.format(py=tmp_path / "model.py", bad=tmp_path / "bad.py", tmp=tmp_path,
                       **{name: tmp_path / f"{name}.yaml" for name in files})
    assert main(["cost", "--accelerator", "tonn_space", "--model", arg]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and pattern in err, err
    assert "allowed" in err and len(err) < 400  # user data is cut to a short preview


def test_cli_model_py_imports_its_neighbours(capsys, tmp_path):
    # a dataclass with string annotations needs the module in sys.modules; a sibling import
    # needs the file's folder on sys.path: both as when the user runs the file as a script
    (tmp_path / "mylayers.py").write_text("import torch\nWIDTH = 16\n")
    (tmp_path / "net.py").write_text(
        "from __future__ import annotations\nimport dataclasses\nimport torch\nfrom mylayers import WIDTH\n"
        "@dataclasses.dataclass\nclass Cfg:\n    width: int = WIDTH\n"
        "def make():\n    return torch.nn.Sequential(torch.nn.Linear(8, Cfg().width), torch.nn.Linear(WIDTH, 2))\n")
    got = _cost_json(capsys, "--accelerator", "dense_onn", "--model", f"{tmp_path / 'net.py'}:make")
    assert got["counts"]["blocks"] == 2 * 1 + 1 * 2  # 16×8: 2 blocks, 2×16: 2 blocks (k = 8)


def test_training_cost_heater_energy_from_programmed_phases():
    # a run's heaters hold the programmed phases for the whole chip time: E = N_ps·P_π·φ̄/π·T
    dev = load_device_card("silicon_thermo_optic")
    ledger = {"queries": 40, "phase_settings": 40, "samples": 40 * 32}
    phases = [0.25, 1.0, 2.0, 6.0 + 2 * math.pi]  # the last wraps to 6.0
    run = training_cost(card("tonn_space"), SMALL, dev, ledger, phases=phases)
    n_ps = estimate(card("tonn_space"), SMALL).counts["phase_shifters"]
    mean = (0.25 + 1.0 + 2.0 + 6.0) / 4
    assert run["breakdown"]["energy_j"]["phase_shifters"] == pytest.approx(
        n_ps * dev.phase_shifter.p_pi * mean / math.pi * run["latency_s"], rel=1e-12)
    default = training_cost(card("tonn_space"), SMALL, dev, ledger)  # no phases: mean π
    assert default["breakdown"]["energy_j"]["phase_shifters"] == pytest.approx(
        n_ps * dev.phase_shifter.p_pi * default["latency_s"], rel=1e-12)
