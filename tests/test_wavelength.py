"""Wavelength in the chip (docs/physics.md#wavelength): κ(λ) from the card polynomial, phases
∝ λ_d/λ at the laser's wavelength, a detuned laser degrading the mesh.

References: the SiEPIC directional-coupler data shipped with simphony (and simphony's own SiEPIC
model, an independent interpolation of the same files), the MZI power transfer in closed form
|T01|² = 4κ(1−κ)cos²(θ'/2), |T00|² = (1−κ)² + κ² − 2κ(1−κ)cos θ' with θ' = θ·λ_d/λ, and a
SAX circuit of the MZI (``circuits.simphony_bridge``).
"""
import math

import numpy as np
import pytest
import torch

from photonic_sim.chip import Chip
from photonic_sim.cores.photonic import DenseONN
from photonic_sim.cores.spec import NetworkSpec, dense
from photonic_sim.devices import CardError, load_device_card
from photonic_sim.devices.coupler import kappa_at
from photonic_sim.devices.mzi import mzi_coefficients

SPEC = NetworkSpec("one", (dense(8, 8),))
DESIGN = 1.55e-6
# a κ(λ) polynomial of the shape fit_kappa_dispersion returns (SiEPIC 17.5 µm, normalized)
POLY = {"coupler.kappa": 0.49, "coupler.kappa_slope": 3.4e6, "coupler.kappa_curvature": 5.7e13}


def card(**extra):
    return load_device_card("silicon_thermo_optic", overrides=extra)


def test_kappa_polynomial_by_hand_and_clipped():
    c = card(**POLY)
    d = 10e-9
    assert kappa_at(c, DESIGN + d) == pytest.approx(0.49 + 3.4e6 * d + 0.5 * 5.7e13 * d * d, rel=1e-12)
    assert kappa_at(c, DESIGN) == 0.49
    assert kappa_at(card(**{"coupler.kappa": 0.99, "coupler.kappa_slope": 1e8}), DESIGN + 1e-6) == 1.0


def test_detuned_chip_scales_phases_and_uses_kappa_of_lambda():
    """Laser at 1560 nm: every realised phase (heater, crosstalk, bias) is the design one times
    λ_d/λ, and every coupler has κ(λ) of the card polynomial (no imbalance drawn)."""
    lam = 1.56e-6
    net = DenseONN(SPEC)
    ph = net.init_phases(torch.Generator().manual_seed(0))[None]
    ref = Chip(net, card(**POLY), seed=2, dtype=torch.float64)
    det = Chip(net, card(**POLY, **{"laser.wavelength": lam}), seed=2, dtype=torch.float64)
    span = ref._block_span
    a, b = ref._realise(ph, False)[:, :span], det._realise(ph, False)[:, :span]
    torch.testing.assert_close(b, a * (DESIGN / lam), rtol=1e-13, atol=1e-13)
    assert torch.all(det._kappa == kappa_at(det._card, lam)) and torch.all(ref._kappa == 0.49)
    assert kappa_at(det._card, lam) == pytest.approx(0.49 + 0.034 + 0.5 * 5.7e13 * 1e-16, rel=1e-12)


def test_default_card_has_no_detuning():
    net = DenseONN(SPEC)
    chip = Chip(net, card(), seed=2, dtype=torch.float64)
    assert chip._kappa is None and card().laser.wavelength == DESIGN


@pytest.mark.parametrize("theta", [0.3, 1.9, 4.0])
def test_dispersed_mzi_power_transfer_closed_form(theta):
    """The MZI at λ with θ' = θ·λ_d/λ and κ(λ) against the closed-form powers."""
    lam = 1.565e-6
    kap = kappa_at(card(**POLY), lam)
    t = theta * DESIGN / lam
    t00, t01, _, _ = mzi_coefficients(torch.tensor(t, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64),
                                      kappa1=kap, kappa2=kap)
    assert abs(t01) ** 2 == pytest.approx(4 * kap * (1 - kap) * math.cos(t / 2) ** 2, abs=1e-14)
    assert abs(t00) ** 2 == pytest.approx((1 - kap) ** 2 + kap**2 - 2 * kap * (1 - kap) * math.cos(t), abs=1e-14)


def test_detuning_degrades_the_mesh_more_the_further_it_goes():
    """Readings of one phase setting, exact readout, against the design-wavelength chip: the
    relative error is 0 at λ_d and grows with |Δλ| (1 and 10 nm)."""
    net = DenseONN(SPEC)
    ph = net.init_phases(torch.Generator().manual_seed(1))
    x = torch.rand(16, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def readings(lam):
        chip = Chip(net, card(**POLY, **{"laser.wavelength": lam}), seed=2, exact_readout=True,
                    readout="coherent", dtype=torch.float64)
        return chip.measure(x, ph)

    ref = readings(DESIGN)
    err = [float((readings(DESIGN + d) - ref).norm() / ref.norm()) for d in (0.0, 1e-9, 10e-9)]
    assert err[0] == 0.0 and 0 < err[1] < err[2] and err[2] > 0.05


def test_wavelength_keys_range_checked():
    with pytest.raises(CardError, match=r"laser\.wavelength: .*allowed"):
        card(**{"laser.wavelength": -1.0})
    with pytest.raises(CardError, match=r"coupler\.kappa_slope: .*allowed"):
        card(**{"coupler.kappa_slope": 1e12})


def test_kappa_fit_against_siepic_data_and_simphony_model():
    pytest.importorskip("simphony", reason="simphony not installed: no SiEPIC data to fit")
    pytest.importorskip("sax", reason="sax not installed (needed by the simphony bridge)")
    from simphony.libraries import siepic

    from photonic_sim.circuits import simphony_bridge as sb

    fit = sb.fit_kappa_dispersion(DESIGN, 20e-9)
    assert fit["max_error"] < 2e-3
    c = card(**{f"coupler.{k}": v for k, v in fit.items() if k != "max_error"})
    wl = np.linspace(1.535e-6, 1.565e-6, 7)
    s = siepic.directional_coupler(wl=wl * 1e6, gap=200, coupling_length=17.5)  # independent interpolation
    cross, bar = (np.abs(np.asarray(s["port_1", p])) ** 2 for p in ("port_4", "port_3"))
    ref = cross / (cross + bar)
    ours = np.array([kappa_at(c, w) for w in wl])
    assert np.max(np.abs(ours - ref)) < 3e-3
    assert ours[-1] - ours[0] > 0.05  # the coupler is dispersive over 30 nm


def test_detuned_mzi_against_simphony_circuit():
    """One MZI at 1565 nm: our closed form with the card's κ(λ) and θ·λ_d/λ against a SAX circuit
    with the SiEPIC κ at that wavelength: powers within 5e-3 (the κ fit error)."""
    pytest.importorskip("simphony", reason="simphony not installed")
    pytest.importorskip("sax", reason="sax not installed (needed by the simphony bridge)")
    from photonic_sim.circuits import simphony_bridge as sb

    lam = 1.565e-6
    fit = sb.fit_kappa_dispersion(DESIGN, 20e-9)
    c = card(**{f"coupler.{k}": v for k, v in fit.items() if k != "max_error"})
    kap_data = float(sb.siepic_dc_kappa(lam, normalized=True))
    theta, phi = np.array([0.4, 2.2, 5.0]), np.array([1.0, 0.3, 2.5])
    scale = DESIGN / lam
    phases = np.stack([theta * scale, phi * scale, np.zeros(3), np.zeros(3)], -1)
    u = sb.simphony_unitary(2, phases, kappa=np.full((3, 1, 2), kap_data))
    kap = kappa_at(c, lam)
    coeff = mzi_coefficients(torch.tensor(theta * scale), torch.tensor(phi * scale), kappa1=kap, kappa2=kap)
    ours = torch.stack(coeff, -1).reshape(3, 2, 2).numpy()
    assert np.max(np.abs(np.abs(ours) ** 2 - np.abs(u) ** 2)) < 5e-3
