"""Device cards and single-device models (photonic_sim.devices)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import yaml
from scipy import constants, stats

from photonic_sim.devices import (
    MZI,
    CardError,
    DirectionalCoupler,
    Laser,
    Modulator,
    PhaseShifter,
    Photodetector,
    apply_crosstalk,
    coupler_matrix,
    crosstalk_from_card,
    crosstalk_matrix,
    list_device_cards,
    load_device_card,
    mzi_matrix,
)
from photonic_sim.devices import crosstalk as crosstalk_module
from photonic_sim.devices.cards import DEVICES_DIR
from photonic_sim.devices.mzi import mzi_coefficients, mzi_coefficients_from_phasors

CARDS = ("silicon_thermo_optic", "mems_phase_shifter")
F64 = torch.float64


# ------------------------------------------------------------------ cards


def _leaves(raw: dict, prefix: str = "") -> dict[str, dict]:
    """Every {value, unit, ref} leaf of a raw YAML card, by dotted path (independent walk)."""
    out = {}
    for key, item in raw.items():
        if isinstance(item, dict) and "value" in item:
            out[prefix + key] = item
        elif isinstance(item, dict):
            out |= _leaves(item, f"{prefix}{key}.")
    return out


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out |= _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v}
    return out


def test_shipped_cards_are_listed():
    assert set(CARDS) <= set(list_device_cards())


@pytest.mark.parametrize("name", CARDS)
def test_every_leaf_has_a_ref_and_converts_to_si(name):
    card = load_device_card(name)
    raw = yaml.safe_load((DEVICES_DIR / f"{name}.yaml").read_text())
    leaves = _leaves(raw)
    numeric = {k for k, v in _flatten(card.to_dict()).items() if not isinstance(v, str) and v is not None}
    assert set(leaves) == numeric == set(card.refs())
    factors = {"mW": 1e-3, "nW": 1e-9, "us": 1e-6, "ns": 1e-9, "um": 1e-6, "nm": 1e-9, "um2": 1e-12, "GHz": 1e9,
               "GS/s": 1e9, "nA": 1e-9, "kOhm": 1e3, "fJ": 1e-15, "dB/cm": 100.0}
    si = _flatten(card.to_dict())
    for path, leaf in leaves.items():
        assert card.ref(path) == leaf["ref"] and leaf["ref"].strip()
        expected = leaf["value"] * factors.get(leaf["unit"], 1.0)
        assert si[path] == pytest.approx(expected, rel=1e-12), path


def test_silicon_card_si_values():
    card = load_device_card("silicon_thermo_optic")
    ps = card.phase_shifter
    assert (ps.v_pi, ps.v_max, ps.p_pi, ps.bits) == (4.36, 10.8, 0.03, 8)
    assert ps.settle_time == pytest.approx(10e-6) and ps.area == pytest.approx(100e-6 * 25e-6)
    assert (ps.gamma_noise_std, ps.bias_range, ps.dynamic_noise_std) == (0.002, 1.0, 0.0)
    assert card.waveguide.loss == pytest.approx(11.0)  # 0.11 dB/cm
    assert card.adc.sample_rate == 10e9 and card.adc.power == pytest.approx(14.8e-3)
    assert card.dac.sample_rate == 14e9 and card.dac.area == pytest.approx(11000e-12)
    assert card.photodetector.sensitivity == -27.0 and card.photodetector.responsivity == 1.1
    assert card.photodetector.readout == "intensity"
    assert card.laser.wall_plug_efficiency == 0.2 and card.crosstalk.factor == 0.005
    mems = load_device_card("mems_phase_shifter")
    assert mems.phase_shifter.kind == "mems" and mems.phase_shifter.p_pi == pytest.approx(1e-9)
    assert mems.phase_shifter.settle_time == pytest.approx(2e-6)
    assert mems.phase_shifter.area == pytest.approx(100e-6 * 45e-6)


def test_overrides():
    card = load_device_card("silicon_thermo_optic", overrides={
        "phase_shifter.bits": 6,
        "phase_shifter.p_pi": {"value": 20, "unit": "mW", "ref": "my heater"},
        "coupler.imbalance_std": 0.01,
    })
    assert card.phase_shifter.bits == 6 and card.ref("phase_shifter.bits") == "override"
    assert card.phase_shifter.p_pi == pytest.approx(0.02) and card.ref("phase_shifter.p_pi") == "my heater"
    assert card.coupler.imbalance_std == 0.01
    with pytest.raises(CardError, match=r"phase_shifter\.bits: .*allowed: 1 <= integer"):
        load_device_card("silicon_thermo_optic", overrides={"phase_shifter.bits": 0})
    with pytest.raises(CardError, match="did you mean 'p_pi'"):
        load_device_card("silicon_thermo_optic", overrides={"phase_shifter.ppi": 1.0})


def _edit(raw, path, value):
    *parents, last = path.split(".")
    node = raw
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    "path, value, pattern",
    [
        ("phase_shifter.p_pi.value", -30, r"phase_shifter\.p_pi: -30 mW .*allowed: 0 <= x <= 10 W"),
        ("phase_shifter.bits.value", 0, r"phase_shifter\.bits: .*allowed: 1 <= integer <= 32"),
        ("coupler.kappa.value", 1.5, r"coupler\.kappa: 1\.5 .*allowed: 0 <= x <= 1"),
        ("coupler.kappa.value", -0.1, r"coupler\.kappa: .*allowed: 0 <= x <= 1"),
        ("phase_shifter.p_pie", {"value": 1, "unit": "W", "ref": "x"},
         r"phase_shifter\.p_pie: unknown key; did you mean 'p_pi'\?"),
        ("phase_shifter.p_pi.unit", "furlong", r"phase_shifter\.p_pi\.unit: unknown unit 'furlong' .*'mW'"),
        ("phase_shifter.p_pi.unit", "V", r"phase_shifter\.p_pi\.unit: a voltage unit, not power"),
        ("phase_shifter.p_pi.ref", _DELETE, r"phase_shifter\.p_pi: missing 'ref'"),
        ("phase_shifter.p_pi.ref", "  ", r"phase_shifter\.p_pi\.ref: missing or empty ref"),
        ("adc.bits.value", "eight", r"adc\.bits\.value: 'eight' is not a number"),
        ("phase_shifter.kind", "laser", r"phase_shifter\.kind: .*allowed: one of thermo_optic, mems"),
        ("laser.wall_plug_efficiency.value", 0, r"laser\.wall_plug_efficiency: .*allowed: 1e-06 <= x <= 1"),
        ("tia", 5, r"tia: section must be a mapping"),
        ("tia.gain", _DELETE, r"tia\.gain: missing"),
    ],
)
def test_bad_card_values(tmp_path, path, value, pattern):
    raw = yaml.safe_load((DEVICES_DIR / "silicon_thermo_optic.yaml").read_text())
    _edit(raw, path, value)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=pattern) as info:
        load_device_card(bad)
    assert isinstance(info.value, CardError)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(bad)) and "(allowed: " in msg


def test_non_mapping_card(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(CardError, match=r"<root>: card must be a mapping"):
        load_device_card(bad)
    with pytest.raises(CardError, match="did you mean 'silicon_thermo_optic'"):
        load_device_card("silicon_thermo_optik")


# ------------------------------------------------------------------ phase shifter


def test_quantization_levels_and_error():
    bits = 4
    ps = PhaseShifter(bits=bits)
    phi = torch.linspace(-2 * math.pi, 4 * math.pi, 100_001, dtype=F64)
    for period in (2 * math.pi, math.pi):
        q = ps.quantize(phi, period=period)
        levels = torch.arange(2**bits, dtype=F64) * period / 2**bits
        assert torch.unique(q).numel() == 2**bits
        assert torch.isin(q, levels).all()
        # brute-force reference: nearest level in circular distance
        diff = torch.remainder(phi[:, None] - levels[None, :], period)
        circ = torch.minimum(diff, period - diff)
        err = circ.min(dim=1).values
        got = torch.remainder(phi - q, period)
        got = torch.minimum(got, period - got)
        torch.testing.assert_close(got, err, rtol=0, atol=1e-12)
        assert err.max() <= period / 2 ** (bits + 1) + 1e-12


def test_gamma_noise_statistics_and_bias_range():
    ps = PhaseShifter(gamma_noise_std=0.002, bias_range=1.0)
    n = 200_000
    s = ps.draw_static((n,), torch.Generator().manual_seed(7))
    eps = s.gamma_scale - 1.0
    ref_std = 0.002 * stats.truncnorm.std(-3, 3)
    assert abs(float(eps.mean())) < 5 * ref_std / math.sqrt(n)
    assert float(eps.std()) == pytest.approx(ref_std, rel=0.01)
    assert float(eps.abs().max()) <= 3 * 0.002 + 1e-15
    b = s.bias
    assert float(b.abs().max()) <= 1.0 and float(b.abs().max()) > 0.999
    assert abs(float(b.mean())) < 5 * math.sqrt(1 / 3) / math.sqrt(n)
    assert float(b.var()) == pytest.approx(1 / 3, rel=0.02)  # U(-1, 1)


def test_same_seed_same_draws():
    ps = PhaseShifter(dynamic_noise_std=0.01)
    a = ps.draw_static((5, 6), torch.Generator().manual_seed(3))
    b = ps.draw_static((5, 6), torch.Generator().manual_seed(3))
    c = ps.draw_static((5, 6), torch.Generator().manual_seed(4))
    assert torch.equal(a.gamma_scale, b.gamma_scale) and torch.equal(a.bias, b.bias)
    assert not torch.equal(a.bias, c.bias)
    phi = torch.rand(5, 6, dtype=F64, generator=torch.Generator().manual_seed(0)) * 6
    r1 = ps.realize(phi, a, torch.Generator().manual_seed(9))
    r2 = ps.realize(phi, b, torch.Generator().manual_seed(9))
    assert torch.equal(r1, r2)
    k1 = DirectionalCoupler(imbalance_std=0.01).draw_kappas((4,), torch.Generator().manual_seed(1))
    k2 = DirectionalCoupler(imbalance_std=0.01).draw_kappas((4,), torch.Generator().manual_seed(1))
    assert torch.equal(k1, k2)


def test_realize_chain():
    ps = PhaseShifter(bits=8, gamma_noise_std=0.002, bias_range=1.0)
    g = torch.Generator().manual_seed(11)
    phi = torch.rand(1000, dtype=F64, generator=g) * 2 * math.pi
    q = torch.round(phi / (2 * math.pi / 256)) % 256 * (2 * math.pi / 256)
    torch.testing.assert_close(ps.realize(phi), q, rtol=0, atol=1e-12)
    s = ps.draw_static(phi.shape, g)
    torch.testing.assert_close(ps.realize(phi, s), s.gamma_scale * q + s.bias, rtol=0, atol=1e-12)
    noisy = PhaseShifter(bits=8, dynamic_noise_std=0.05)
    resid = noisy.realize(phi.repeat(50), None, g) - q.repeat(50)
    assert float(resid.std()) == pytest.approx(0.05, rel=0.05)
    with pytest.raises(ValueError, match="generator"):
        noisy.realize(phi)


def test_voltage_law_clamp_and_power():
    ps = PhaseShifter(v_pi=4.36, v_max=10.8, p_pi=0.03)
    assert ps.max_phase > 2 * math.pi  # (10.8/4.36)^2 ≈ 6.14 π
    assert float(ps.voltage(torch.tensor(math.pi, dtype=F64))) == pytest.approx(4.36, rel=1e-12)
    assert float(ps.phase(torch.tensor(4.36, dtype=F64))) == pytest.approx(math.pi, rel=1e-12)
    assert float(ps.power(torch.tensor(math.pi, dtype=F64))) == pytest.approx(0.03)
    weak = PhaseShifter(v_pi=4.36, v_max=6.0, bits=8)  # reaches only (6/4.36)^2 π ≈ 1.89 π
    phi = torch.tensor([0.5, 1.5 * math.pi, 1.95 * math.pi], dtype=F64)
    out = weak.realize(phi)
    assert float(out[2]) == pytest.approx(math.pi * (6.0 / 4.36) ** 2, rel=1e-12)
    assert float(weak.voltage(phi).max()) == 6.0
    with pytest.raises(ValueError, match="bits"):
        PhaseShifter(bits=0)
    with pytest.raises(ValueError, match="p_pi"):
        PhaseShifter(p_pi=-1.0)


def test_from_card_uses_card_values():
    card = load_device_card("mems_phase_shifter", overrides={"phase_shifter.bits": 5})
    ps = PhaseShifter.from_card(card)
    assert (ps.bits, ps.p_pi, ps.settle_time) == (5, card.phase_shifter.p_pi, card.phase_shifter.settle_time)
    pd = Photodetector.from_card(card)
    assert (pd.responsivity, pd.tia_gain, pd.adc_bits) == (1.1, card.tia.gain, card.adc.bits)
    assert Modulator.from_card(card).bits == card.dac.bits
    assert Laser.from_card(card).wall_plug_efficiency == 0.2


# ------------------------------------------------------------------ coupler / MZI


def test_coupler_draws_and_matrix():
    dc = DirectionalCoupler(kappa=0.5, imbalance_std=0.02, insertion_loss=0.33)
    k = dc.draw_kappas((100_000,), torch.Generator().manual_seed(2))
    assert float(k.mean()) == pytest.approx(0.5, abs=5 * 0.02 / math.sqrt(1e5))
    assert float(k.std()) == pytest.approx(0.02, rel=0.02)
    edge = DirectionalCoupler(kappa=0.99, imbalance_std=0.05).draw_kappas((10_000,), torch.Generator().manual_seed(2))
    assert float(edge.max()) == 1.0 and float(edge.min()) >= 0.0
    b = dc.matrix(torch.tensor([0.3, 0.5], dtype=F64), lossy=True)
    ref = 10 ** (-0.33 / 20) * np.array([[[math.sqrt(1 - k), 1j * math.sqrt(k)], [1j * math.sqrt(k), math.sqrt(1 - k)]]
                                         for k in (0.3, 0.5)])
    np.testing.assert_allclose(b.numpy(), ref, atol=1e-14)
    torch.testing.assert_close(dc.matrix(), coupler_matrix(0.5))


def test_mzi_device_matches_convention():
    mzi = MZI(PhaseShifter(bits=8), DirectionalCoupler(insertion_loss=0.33))
    theta = torch.tensor([0.7, 2.0], dtype=F64)
    phi = torch.tensor([1.1, 5.0], dtype=F64)
    q = mzi.phase_shifter.quantize
    ref = mzi_matrix(q(theta), q(phi), loss_db=2 * 0.25 + 2 * 0.33)
    torch.testing.assert_close(mzi.matrix(theta, phi), ref, rtol=0, atol=1e-14)
    s = mzi.draw_static((2,), torch.Generator().manual_seed(0))
    ref = mzi_matrix(s.theta.gamma_scale * q(theta) + s.theta.bias, s.phi.gamma_scale * q(phi) + s.phi.bias,
                     kappa1=s.kappa1, kappa2=s.kappa2)
    torch.testing.assert_close(mzi.matrix(theta, phi, s, lossy=False), ref, rtol=0, atol=1e-12)


def test_mzi_closed_form_matches_coupler_product():
    """Closed-form mzi_matrix / mzi_coefficients == B(κ₂)·diag(e^{iθ},1)·B(κ₁)·diag(e^{iφ},1)
    multiplied out from coupler_matrix (the product formula), ideal and imbalanced, with loss."""
    g = torch.Generator().manual_seed(4)
    theta = torch.rand(5, 6, generator=g, dtype=F64) * 4 * math.pi - math.pi  # outside [0, 2π) too
    phi = torch.rand(6, generator=g, dtype=F64) * 2 * math.pi
    k1 = torch.rand(5, 6, generator=g, dtype=F64)
    k2 = torch.rand(5, 1, generator=g, dtype=F64)
    loss = torch.rand(6, generator=g, dtype=F64)

    def product(kk1, kk2, il):
        shape = theta.shape
        b1 = coupler_matrix(torch.as_tensor(kk1, dtype=F64).expand(shape))
        b2 = coupler_matrix(torch.as_tensor(kk2, dtype=F64).expand(shape))
        one = torch.ones(shape, dtype=torch.complex128)
        d_theta = torch.diag_embed(torch.stack((torch.exp(1j * theta), one), -1))
        d_phi = torch.diag_embed(torch.stack((torch.exp(1j * phi).expand(shape), one), -1))
        return b2 @ d_theta @ b1 @ d_phi * (10 ** (-torch.as_tensor(il, dtype=F64) / 20))[..., None, None]

    for kk1, kk2, il in ((0.5, 0.5, 0.0), (k1, k2, loss), (torch.tensor(0.5, dtype=F64), 0.5, 0.7)):
        ref = product(kk1, kk2, il)
        got = mzi_matrix(theta, phi, kappa1=kk1, kappa2=kk2, loss_db=il)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-14)
        entries = torch.stack(mzi_coefficients(theta, phi, kappa1=kk1, kappa2=kk2, loss_db=il), -1)
        torch.testing.assert_close(entries, ref.flatten(-2), rtol=0, atol=1e-14)
        e_theta, e_phi = torch.exp(1j * theta), torch.exp(1j * phi)  # independent phasors (exp, not cos + i·sin)
        from_phasors = torch.stack(mzi_coefficients_from_phasors(e_theta, e_phi, kappa1=kk1, kappa2=kk2, loss_db=il), -1)
        torch.testing.assert_close(from_phasors, ref.flatten(-2), rtol=0, atol=1e-14)
    t32 = mzi_matrix(theta.float(), phi.float(), kappa1=k1.float(), dtype=torch.complex64)
    assert t32.dtype == torch.complex64
    torch.testing.assert_close(t32.to(torch.complex128), product(k1, 0.5, 0.0), rtol=0, atol=1e-5)


# ------------------------------------------------------------------ crosstalk


def _grid(rows, cols, pitch):
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.stack((c.flatten().to(F64) * pitch, r.flatten().to(F64) * pitch), -1), r.flatten(), c.flatten()


def test_crosstalk_identity_at_zero_factor():
    pos, _, _ = _grid(3, 4, 50e-6)
    phi = torch.rand(7, 12, dtype=F64, generator=torch.Generator().manual_seed(0)) * 6
    for model in ("kernel", "distance"):
        k = crosstalk_matrix(pos, model=model, factor=0.0)
        assert torch.equal(apply_crosstalk(phi, k), phi)


def test_crosstalk_kernel_and_distance_models():
    pitch = 50e-6
    pos, r, c = _grid(4, 5, pitch)
    kern = crosstalk_matrix(pos, model="kernel", factor=0.005, pitch=pitch)
    adjacent = ((r[:, None] - r[None, :]).abs() + (c[:, None] - c[None, :]).abs()) == 1
    torch.testing.assert_close(kern, 0.005 * adjacent.to(F64), rtol=0, atol=0)
    steep = crosstalk_matrix(pos, model="distance", factor=0.005, pitch=pitch, decay_length=1e-10)
    torch.testing.assert_close(steep, kern, rtol=1e-9, atol=1e-15)  # exp(-rounding of d / L)
    # physical form Δφ_i = Σ_j C_ij P_j with P_j = P_π φ_j / π (numpy reference)
    p_pi, decay = 0.03, 20e-6
    k = crosstalk_matrix(pos, model="distance", factor=0.005, pitch=pitch, decay_length=decay, p_pi=p_pi)
    x = pos.numpy()
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    cij = np.where(d > 0, 0.005 * math.pi / p_pi * np.exp(-(d - pitch) / decay), 0.0)
    phi = np.random.default_rng(0).uniform(0, 2 * math.pi, size=(3, len(x)))
    expected = phi + (cij @ (p_pi * phi / math.pi).T).T
    np.testing.assert_allclose(apply_crosstalk(torch.from_numpy(phi), k).numpy(), expected, rtol=1e-12)
    card = load_device_card("silicon_thermo_optic")
    torch.testing.assert_close(crosstalk_from_card(pos, card), kern)

@pytest.mark.parametrize("model", ["kernel", "distance"])
def test_sparse_crosstalk_equals_dense(model, monkeypatch):
    """crosstalk_matrix(sparse=True) == the dense K entry for entry (built over several row
    blocks), and apply_crosstalk with a COO or CSR K == the dense product, values and grads."""
    monkeypatch.setattr(crosstalk_module, "_ROW_BLOCK", 64)
    pitch = 50e-6
    pos, r, c = _grid(12, 17, pitch)  # 204 heaters, 4 row blocks
    dense = crosstalk_matrix(pos, model=model, factor=0.005, pitch=pitch)
    sp = crosstalk_matrix(pos, model=model, factor=0.005, pitch=pitch, sparse=True)
    assert sp.layout == torch.sparse_coo and sp.is_coalesced()
    torch.testing.assert_close(sp.to_dense(), dense, rtol=0, atol=0)
    expected_nnz = int((dense != 0).sum())
    assert sp._nnz() == expected_nnz
    if model == "kernel":  # grid neighbours: 4 inside, 3 on edges, 2 at corners
        assert expected_nnz == 2 * (12 * 16 + 11 * 17)
    g = torch.Generator().manual_seed(3)
    phi = (torch.rand(3, 2, len(pos), generator=g, dtype=F64) * 2 * math.pi).requires_grad_(True)
    w = torch.randn(3, 2, len(pos), generator=g, dtype=F64)
    out_dense = apply_crosstalk(phi, dense)
    (grad_dense,) = torch.autograd.grad((out_dense * w).sum(), phi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "CSR support is in beta state"
        csr = sp.to_sparse_csr()
    for k in (sp, csr):
        out = apply_crosstalk(phi, k)
        torch.testing.assert_close(out, out_dense, rtol=1e-14, atol=1e-14)  # summation order differs
        (grad,) = torch.autograd.grad((out * w).sum(), phi)
        torch.testing.assert_close(grad, grad_dense, rtol=0, atol=1e-14)
    torch.testing.assert_close(apply_crosstalk(phi[0, 0], sp), out_dense[0, 0], rtol=0, atol=1e-14)
    card = load_device_card("silicon_thermo_optic")
    if model == "kernel":
        torch.testing.assert_close(crosstalk_from_card(pos, card, sparse=True).to_dense(), dense, rtol=0, atol=0)


# ------------------------------------------------------------------ detector / ADC


def test_detector_noise_variance():
    pd = Photodetector(responsivity=1.1, dark_current=25e-9, bandwidth=27e9, load_resistance=5e3, temperature=300)
    p = 1e-5
    i_mean = 1.1 * p + 25e-9
    ref = 2 * constants.e * i_mean * 27e9 + 4 * constants.k * 300 * 27e9 / 5e3
    assert float(pd.noise_variance(torch.tensor(i_mean, dtype=F64))) == pytest.approx(ref, rel=1e-12)
    n = 100_000
    cur = pd.detect(torch.full((n,), p, dtype=F64), torch.Generator().manual_seed(5))
    assert float(cur.var()) == pytest.approx(ref, rel=0.03)
    assert float(cur.mean()) == pytest.approx(i_mean, abs=5 * math.sqrt(ref / n))
    torch.testing.assert_close(pd.detect(torch.tensor([p], dtype=F64), noisy=False),
                               torch.tensor([i_mean], dtype=F64))


def test_adc_codes_and_clipping():
    pd = Photodetector(adc_bits=3, full_scale=1.0)
    lsb = 1.0 / 8  # unipolar codes 0 … 7 → [0, 0.875]
    v = torch.tensor([-0.2, -0.05, 0.0, 0.3, 0.5, 0.93, 0.94, 1.5], dtype=F64)
    out, clipped = pd.adc(v)
    assert clipped == int(((v < -lsb / 2) | (v > 7 * lsb + lsb / 2)).sum()) == 3
    levels = torch.arange(8, dtype=F64) * lsb
    nearest = levels[(v[:, None] - levels[None, :]).abs().argmin(dim=1)]
    torch.testing.assert_close(out, nearest, rtol=0, atol=1e-15)
    # bipolar codes −4 … 3, LSB = 0.25 → [−1, 0.75]
    vb = torch.tensor([-1.3, -1.1, -0.3, 0.0, 0.6, 0.8, 0.9], dtype=F64)
    outb, clippedb = pd.adc(vb, bipolar=True)
    levels = torch.arange(-4, 4, dtype=F64) * 0.25
    nearest = levels[(vb[:, None] - levels[None, :]).abs().argmin(dim=1)]
    torch.testing.assert_close(outb, nearest, rtol=0, atol=1e-15)
    assert clippedb == 2  # −1.3 and 0.9


def test_read_and_balanced_read():
    pd = Photodetector()
    p = torch.tensor([1e-6, 2e-5, 1e-3], dtype=F64)
    volts, clipped = pd.read(p, noisy=False)
    lsb = pd.full_scale / 2**pd.adc_bits
    ideal = pd.tia_gain * (pd.responsivity * p + pd.dark_current)
    assert clipped == 1  # 1 mW → 5.5 V > 1 V full scale
    torch.testing.assert_close(volts[:2], torch.round(ideal[:2] / lsb) * lsb)
    # balanced: P± = |y ± r|²/2 → I₊ − I₋ = 2 R Re(y r*) (signed)
    y = torch.tensor([3e-3, -2e-3, 0.0], dtype=torch.complex128)
    r = torch.tensor(4e-3 + 0j, dtype=torch.complex128)
    pp, pm = (y + r).abs() ** 2 / 2, (y - r).abs() ** 2 / 2
    volts, clipped = pd.balanced_read(pp, pm, noisy=False)
    expected = pd.tia_gain * 2 * pd.responsivity * (y * r.conj()).real
    lsb = pd.full_scale / 2 ** (pd.adc_bits - 1)
    torch.testing.assert_close(volts, torch.round(expected / lsb) * lsb)
    assert clipped == 0 and volts[1] < 0 < volts[0]


def test_balanced_read_noise_statistics():
    """I₊ − I₋ with noise: mean R(P₊ − P₋), variance σ²(I₊) + σ²(I₋) (independent diodes, each
    2q|I|B + 4kTB/R_L); a 16-bit ADC with a large TIA gain makes quantization negligible."""
    pd = Photodetector(tia_gain=2e5, adc_bits=16, full_scale=10.0)
    n = 200_000
    pp = torch.full((n,), 2e-5, dtype=F64)
    pm = torch.full((n,), 1e-5, dtype=F64)
    volts, clipped = pd.balanced_read(pp, pm, torch.Generator().manual_seed(3))
    current = volts / pd.tia_gain
    var = pd.noise_variance(pd.photocurrent(pp[:1])) + pd.noise_variance(pd.photocurrent(pm[:1]))
    assert clipped == 0
    assert abs(float(current.mean()) - pd.responsivity * 1e-5) < 4 * float(var.sqrt()) / n**0.5
    assert float(current.var()) == pytest.approx(float(var), rel=0.02)


def test_homodyne_read_is_balanced_read_of_the_two_powers():
    """homodyne_read(y) ≡ balanced_read(P_ch|y+1|²/2, P_ch|y−1|²/2): equal without noise, and
    with noise the same mean and variance (the fused path draws the same distribution)."""
    pd = Photodetector(tia_gain=2e5, adc_bits=16, full_scale=10.0)
    pch = 1e-4
    gen = torch.Generator().manual_seed(5)
    y = torch.complex(torch.randn(6, generator=gen, dtype=F64), torch.randn(6, generator=gen, dtype=F64)) * 0.3
    pp, pm = pch * (y + 1).abs() ** 2 / 2, pch * (y - 1).abs() ** 2 / 2
    exact, _ = pd.balanced_read(pp, pm, noisy=False)
    fused, _ = pd.homodyne_read(y, pch, noisy=False)
    torch.testing.assert_close(fused, exact, rtol=0, atol=1e-12)
    n = 200_000
    yy = y[:2].repeat_interleave(n)
    a, _ = pd.homodyne_read(yy, pch, torch.Generator().manual_seed(1))
    b, _ = pd.balanced_read(pch * (yy + 1).abs() ** 2 / 2, pch * (yy - 1).abs() ** 2 / 2, torch.Generator().manual_seed(2))
    for i in range(2):
        sa, sb = a[i * n:(i + 1) * n], b[i * n:(i + 1) * n]
        assert abs(float(sa.mean() - sb.mean())) < 5 * float(sb.std()) * (2 / n) ** 0.5
        assert float(sa.var()) == pytest.approx(float(sb.var()), rel=0.03)


# ------------------------------------------------------------------ modulator / laser


def test_dac_levels():
    m = Modulator(bits=4, insertion_loss=3.0)
    x = torch.linspace(-1.5, 1.5, 30_001, dtype=F64)
    q = m.quantize(x)
    assert torch.unique(q).numel() == 2**4 - 1
    assert {-1.0, 0.0, 1.0} <= set(q.tolist())
    inside = x.abs() <= 1
    assert float((q - x)[inside].abs().max()) <= 1 / (2 * 7) + 1e-12
    field = m.encode(torch.tensor([-1.0, 0.5, 0.0], dtype=F64))
    torch.testing.assert_close(field, torch.tensor([-1.0, 4 / 7, 0.0], dtype=F64) * 10 ** (-3.0 / 20))


def test_laser_link_budget():
    laser = Laser(wall_plug_efficiency=0.2)
    dbm = laser.required_power_dbm(-27.0, 12.0, 64)
    assert dbm == pytest.approx(-27.0 + 12.0 + 10 * math.log10(64))
    watts = 1e-3 * 10 ** (dbm / 10)
    # each of 64 detectors receives the sensitivity after 12 dB loss
    assert 10 * math.log10(watts * 10 ** (-12 / 10) / 64 / 1e-3) == pytest.approx(-27.0)
    assert laser.required_electrical_power(-27.0, 12.0, 64) == pytest.approx(watts / 0.2)
    assert laser.electrical_power(0.01) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="fanout"):
        laser.required_power_dbm(-27, 1, 0)
