"""Our MZI / Clements mesh against an independent SAX + simphony circuit simulation."""

import math

import numpy as np
import pytest
import torch

pytest.importorskip("simphony")
sax = pytest.importorskip("sax")
jax = pytest.importorskip("jax")

from photonic_sim.circuits import simphony_bridge as sb  # noqa: E402
from photonic_sim.devices.mzi import mzi_matrix  # noqa: E402

TOL = 1e-9


def _random_case(n, batch, case, rng):
    m = n * (n - 1) // 2
    phases = rng.uniform(0.0, 2 * math.pi, (batch, 2 * m + n))
    kappa = rng.uniform(0.45, 0.55, (batch, m, 2)) if case in ("imbalanced", "lossy") else None
    loss = rng.uniform(0.0, 1.0, (batch, m)) if case == "lossy" else None
    return phases, kappa, loss


def _reference_clements(n, phases, kappa, loss):
    """Dense product of embedded 2×2 mzi_matrix blocks, built column by column (docs/physics.md#conventions)."""
    m = n * (n - 1) // 2
    kappa = np.full((m, 2), 0.5) if kappa is None else kappa
    loss = np.zeros(m) if loss is None else loss
    u = np.eye(n, dtype=complex)
    k = 0
    for col in range(n):
        for top in range(col % 2, n - 1, 2):
            t = mzi_matrix(
                torch.tensor(phases[k]),
                torch.tensor(phases[m + k]),
                kappa1=float(kappa[k, 0]),
                kappa2=float(kappa[k, 1]),
                loss_db=float(loss[k]),
            ).numpy()
            block = np.eye(n, dtype=complex)
            block[top : top + 2, top : top + 2] = t
            u = block @ u
            k += 1
    return np.diag(np.exp(1j * phases[2 * m :])) @ u


def test_single_mzi_netlist_matches_mzi_matrix():
    rng = np.random.default_rng(0)
    circuit = jax.jit(sax.circuit(sb.mzi_netlist(), models=sb.MODELS, backend="klu")[0])
    theta, phi = rng.uniform(0, 2 * math.pi, (2, 6))
    k1, k2 = rng.uniform(0.4, 0.6, (2, 6))
    loss = rng.uniform(0.0, 2.0, 6)
    s = circuit(
        theta0={"phase": theta},
        phi0={"phase": phi},
        dc1_0={"coupling": k1},
        dc2_0={"coupling": k2},
        lt0={"loss_db": loss},
        lb0={"loss_db": loss},
    )
    got = np.stack(
        [np.stack([np.asarray(s[f"in{j}", f"out{i}"]) for j in range(2)], -1) for i in range(2)],
        -2,
    )
    ref = mzi_matrix(
        torch.tensor(theta), torch.tensor(phi),
        kappa1=torch.tensor(k1), kappa2=torch.tensor(k2), loss_db=torch.tensor(loss),
    ).numpy()
    assert np.max(np.abs(got - ref)) <= TOL


@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("case", ["ideal", "imbalanced", "lossy"])
def test_bridge_matches_dense_reference(n, case):
    rng = np.random.default_rng(10 * n + len(case))
    phases, kappa, loss = _random_case(n, 2, case, rng)
    got = sb.simphony_unitary(n, phases, kappa=kappa, loss_db=loss)
    assert got.shape == (2, n, n) and got.dtype == np.complex128
    for b in range(2):
        ref = _reference_clements(
            n, phases[b], None if kappa is None else kappa[b], None if loss is None else loss[b]
        )
        assert np.max(np.abs(got[b] - ref)) <= TOL


@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("case", ["ideal", "imbalanced", "lossy"])
def test_clements_mesh_matches_simphony(n, case):
    mesh_mod = pytest.importorskip("photonic_sim.circuits.mesh")
    rng = np.random.default_rng(100 * n + len(case))
    phases, kappa, loss = _random_case(n, 3, case, rng)
    assert mesh_mod.ClementsMesh(n).num_phases == phases.shape[-1]
    assert sb.compare_with_simphony(n, phases, kappa=kappa, loss_db=loss) <= TOL


def test_reck_mesh_matches_simphony():
    mesh_mod = pytest.importorskip("photonic_sim.circuits.mesh")
    rng = np.random.default_rng(7)
    mesh = mesh_mod.ReckMesh(4)
    phases, kappa, loss = _random_case(4, 3, "lossy", rng)
    ours = mesh.unitary(torch.tensor(phases), kappa=torch.tensor(kappa), loss_db=torch.tensor(loss))
    ref = sb.simphony_unitary(mesh, phases, kappa=kappa, loss_db=loss)
    assert np.max(np.abs(ours.numpy() - ref)) <= TOL


def test_leading_batch_dims_span_several_chunks():
    rng = np.random.default_rng(5)
    phases = rng.uniform(0, 2 * math.pi, (3, 4, 4))  # 12 settings > one chunk of 8
    got = sb.simphony_unitary(2, phases)
    assert got.shape == (3, 4, 2, 2)
    for i in range(3):
        for j in range(4):
            assert np.max(np.abs(got[i, j] - _reference_clements(2, phases[i, j], None, None))) <= TOL


def test_lossless_ideal_mesh_is_unitary_and_loss_scales_power():
    rng = np.random.default_rng(3)
    phases, _, _ = _random_case(4, 1, "ideal", rng)
    u = sb.simphony_unitary(4, phases[0])
    assert np.max(np.abs(u @ u.conj().T - np.eye(4))) <= TOL
    # n = 2 holds one MZI: its insertion loss L dB scales every |U_ij|² by 10^(-L/10).
    p2 = rng.uniform(0, 2 * math.pi, 4)
    lossy = sb.simphony_unitary(2, p2, loss_db=3.0)
    ideal = sb.simphony_unitary(2, p2)
    assert np.allclose(np.abs(lossy) ** 2, np.abs(ideal) ** 2 * 10 ** (-0.3), atol=TOL)


def test_siepic_kappa_physical_and_dispersive():
    from simphony.libraries import siepic

    wl = np.linspace(1.5e-6, 1.6e-6, 11)
    kappa = sb.siepic_dc_kappa(wl)
    assert np.all((kappa >= 0) & (kappa <= 1))
    assert kappa[-1] - kappa[0] > 0.1  # longer wavelength couples more strongly
    norm = sb.siepic_dc_kappa(wl, normalized=True)
    assert np.all((norm >= kappa) & (norm <= 1))
    # independent path: simphony's own SiEPIC model (cubic spline of complex S), 0.1 % agreement
    for lc in (10e-6, 17.5e-6):
        s = siepic.directional_coupler(wl=wl * 1e6, gap=200, coupling_length=lc * 1e6)
        ref = np.abs(np.asarray(s["port_1", "port_4"])) ** 2
        assert np.max(np.abs(sb.siepic_dc_kappa(wl, coupling_length_m=lc) - ref)) < 1e-3
    # longer couplers couple more at 1550 nm (well below the first full transfer)
    assert sb.siepic_dc_kappa(1.55e-6, coupling_length_m=5e-6) < sb.siepic_dc_kappa(1.55e-6)


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda: sb.simphony_unitary(1, np.zeros(1)), "n"),
        (lambda: sb.simphony_unitary(4, np.zeros(10)), "phases"),
        (lambda: sb.simphony_unitary(2, np.zeros(4), kappa=1.2), "kappa"),
        (lambda: sb.simphony_unitary(2, np.zeros(4), loss_db=-1.0), "loss_db"),
        (lambda: sb.siepic_dc_kappa(1.3e-6), "wavelength_m"),
        (lambda: sb.siepic_dc_kappa(1.55e-6, coupling_length_m=11e-6), "coupling_length_m"),
        (lambda: sb.siepic_dc_kappa(1.55e-6, gap_m=100e-9), "gap_m"),
    ],
)
def test_bad_inputs_raise(call, field):
    with pytest.raises(ValueError, match=field):
        call()
