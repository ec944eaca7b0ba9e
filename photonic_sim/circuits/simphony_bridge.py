"""Cross-check of our MZI meshes against a SAX / simphony circuit simulation.

Import this module explicitly (``from photonic_sim.circuits import simphony_bridge``); it is
never imported by ``photonic_sim.circuits`` because importing ``sax`` switches JAX to 64-bit
floats globally (``jax_enable_x64``), which we also set here on purpose: the comparison is
made in float64 / complex128.

The same devices as in ``photonic_sim.devices.mzi`` are built from circuit elements:

* directional coupler: ``simphony.libraries.ideal.coupler`` with power coupling κ and zero
  loss. Its ports are ``o2`` (top left), ``o3`` (top right), ``o0`` (bottom left), ``o1``
  (bottom right); the bar terms are √(1-κ) and the cross terms √κ·e^{iπ/2} = i√κ, so it is
  our B(κ) with the top waveguide on ``o2 → o3`` and the bottom one on ``o0 → o1``.
* phase shifter: :func:`phase_shifter`, a 2-port with transmission e^{i·phase}.
* insertion loss: :func:`attenuator`, a 2-port with transmission 10^(-loss_db/20); one sits on
  each output arm of every MZI, so the whole MZI is scaled by 10^(-IL/20) as in our model.

Per MZI, in light order: φ shifter (top arm) → coupler κ₁ → θ shifter (top arm) → coupler κ₂
→ attenuators (both arms). Clements mesh: column c holds MZIs on modes (i, i+1) with
i ≡ c (mod 2), MZIs numbered column by column, top to bottom; then the output phase screen
α (one shifter per mode). Any other layout (e.g. ``ReckMesh``) is built from its list of
MZI top modes in index order (``mesh.mzis``). Phase vector layout (as ``ClementsMesh``): phases[..., 0:M] = θ,
[M:2M] = φ, [2M:2M+n] = α, with M = n(n-1)/2. External ports are ``in{j}`` and ``out{i}``
(modes numbered top to bottom); the returned matrix is U[i, j] = S(in{j} → out{i}), i.e.
out[i] = Σ_j U[i, j] in[j], our convention.

The netlist is built once per n and evaluated with ``sax.circuit`` on the KLU backend inside a
``jax.jit``: all phases, couplings and losses are array arguments, so one compiled circuit
(per n) serves any number of settings; leading batch dims on ``phases`` are flattened and
evaluated in vectorised chunks of 8 settings per call (fixed shape, so no recompilation).
"""

from __future__ import annotations

import importlib.resources
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import sax
import torch
from scipy.interpolate import CubicSpline
from simphony.libraries import ideal
from simphony.plugins.lumerical import df_to_sdict, load_sparams

from photonic_sim.circuits.mesh import ClementsMesh

jax.config.update("jax_enable_x64", True)

_SPEED_OF_LIGHT = 299_792_458.0
_CHUNK = 8  # phase settings per call of the compiled circuit


# ----------------------------------------------------------------------------- SAX models
def phase_shifter(*, phase: float = 0.0) -> sax.SDict:
    """2-port phase shifter ``o0 ↔ o1`` with transmission e^{i·phase} (phase in rad)."""
    return sax.reciprocal({("o0", "o1"): jnp.exp(1j * jnp.asarray(phase))})


def attenuator(*, loss_db: float = 0.0) -> sax.SDict:
    """2-port insertion loss ``o0 ↔ o1`` with field transmission 10^(-loss_db/20)."""
    amp = 10.0 ** (-jnp.asarray(loss_db) / 20.0)
    return sax.reciprocal({("o0", "o1"): amp + 0j})


MODELS = {"coupler": ideal.coupler, "phase_shifter": phase_shifter, "attenuator": attenuator}


# ----------------------------------------------------------------------------- netlists
def clements_pairs(n: int) -> list[int]:
    """Top mode index i of every MZI (i, i+1) of an n-mode Clements mesh, in light order."""
    _check_n(n)
    return [i for c in range(n) for i in range(c % 2, n - 1, 2)]


class _Builder:
    """Grows a flat SAX netlist, tracking the open (rightmost) port of every mode."""

    def __init__(self, n: int):
        self.instances: dict[str, dict] = {}
        self.connections: dict[str, str] = {}
        self.ports: dict[str, str] = {}
        self.open = [f"in{j}" for j in range(n)]

    def _attach(self, mode: int, inst: str, port_in: str, port_out: str) -> None:
        dst = f"{inst},{port_in}"
        src = self.open[mode]
        if "," in src:
            self.connections[src] = dst
        else:
            self.ports[src] = dst
        self.open[mode] = f"{inst},{port_out}"

    def two_port(self, name: str, component: str, mode: int) -> None:
        self.instances[name] = {"component": component}
        self._attach(mode, name, "o0", "o1")

    def coupler(self, name: str, top: int) -> None:
        self.instances[name] = {"component": "coupler"}
        self._attach(top, name, "o2", "o3")
        self._attach(top + 1, name, "o0", "o1")

    def mzi(self, k: int, top: int) -> None:
        self.two_port(f"phi{k}", "phase_shifter", top)
        self.coupler(f"dc1_{k}", top)
        self.two_port(f"theta{k}", "phase_shifter", top)
        self.coupler(f"dc2_{k}", top)
        self.two_port(f"lt{k}", "attenuator", top)
        self.two_port(f"lb{k}", "attenuator", top + 1)

    def netlist(self) -> dict:
        for i, src in enumerate(self.open):
            self.ports[f"out{i}"] = src
        return {"instances": self.instances, "connections": self.connections, "ports": self.ports}


def mzi_netlist() -> dict:
    """SAX netlist of one MZI (ports in0/in1 → out0/out1, 0 = top), no output screen.

    Instances: ``phi0``, ``dc1_0``, ``theta0``, ``dc2_0``, ``lt0``, ``lb0`` (see module doc).
    """
    b = _Builder(2)
    b.mzi(0, 0)
    return b.netlist()


def mesh_netlist(n: int, tops) -> dict:
    """SAX netlist of n modes with MZIs on (top, top+1) for ``tops`` in light order, then the
    output phase screen (instances ``alpha{i}``).

    MZI k has instances ``phi{k}``, ``dc1_{k}``, ``theta{k}``, ``dc2_{k}``, ``lt{k}``, ``lb{k}``;
    ports ``in{j}`` → ``out{i}``, modes top to bottom.
    """
    _check_n(n)
    b = _Builder(n)
    for k, top in enumerate(tops):
        if not 0 <= top < n - 1:
            raise ValueError(f"tops: MZI top mode must lie in [0, {n - 2}], got {top}")
        b.mzi(k, top)
    for i in range(n):
        b.two_port(f"alpha{i}", "phase_shifter", i)
    return b.netlist()


def clements_netlist(n: int) -> dict:
    """SAX netlist of an n-mode Clements mesh plus output phase screen (see ``mesh_netlist``)."""
    return mesh_netlist(n, clements_pairs(n))


# ----------------------------------------------------------------------------- evaluation
@lru_cache(maxsize=None)
def _compiled(n: int, tops: tuple[int, ...]):
    """Jitted (θ[C, M], φ[C, M], α[C, n], κ[C, M, 2], IL[C, M]) → U[C, n, n], one per layout."""
    circuit, _ = sax.circuit(mesh_netlist(n, tops), models=MODELS, backend="klu")
    m = len(tops)
    ins = [f"in{j}" for j in range(n)]
    outs = [f"out{i}" for i in range(n)]

    def unitary(theta, phi, alpha, kappa, loss_db):
        settings = {}
        for k in range(m):
            settings[f"theta{k}"] = {"phase": theta[..., k]}
            settings[f"phi{k}"] = {"phase": phi[..., k]}
            settings[f"dc1_{k}"] = {"coupling": kappa[..., k, 0]}
            settings[f"dc2_{k}"] = {"coupling": kappa[..., k, 1]}
            settings[f"lt{k}"] = {"loss_db": loss_db[..., k]}
            settings[f"lb{k}"] = {"loss_db": loss_db[..., k]}
        for i in range(n):
            settings[f"alpha{i}"] = {"phase": alpha[..., i]}
        s, port_map = sax.sdense(circuit(**settings))
        rows = jnp.array([port_map[p] for p in outs])
        cols = jnp.array([port_map[p] for p in ins])
        # SAX S[a, b] is the transmission a → b; we want U[i, j] = S(in_j → out_i).
        return jnp.swapaxes(s[..., cols, :][..., :, rows], -1, -2)

    return jax.jit(unitary)


def simphony_unitary(mesh_or_n, phases, kappa=None, loss_db=None) -> np.ndarray:
    """Transfer matrix of a mesh computed by SAX → numpy complex128 [..., n, n].

    ``mesh_or_n``: an int n (Clements mesh on n modes) or a mesh object with ``n`` and ``mzis``
    ((column, top mode) of every MZI in index order, as ``photonic_sim.circuits.mesh.Mesh``),
    e.g. ``ReckMesh(n)``. ``phases``: [..., 2M + n] in rad, layout θ | φ | α (module doc);
    leading dims are evaluated by the one compiled circuit, 8 settings per call.
    ``kappa``: power coupling ratios broadcastable to [..., M, 2] = (input-side κ₁,
    output-side κ₂), default 0.5, each in [0, 1]. ``loss_db``: per-MZI insertion loss
    broadcastable to [..., M], ≥ 0 dB, default 0.
    """
    if isinstance(mesh_or_n, int):
        n, tops = mesh_or_n, tuple(clements_pairs(mesh_or_n))
    else:
        n, tops = mesh_or_n.n, tuple(top for _, top in mesh_or_n.mzis)
    _check_n(n)
    m = len(tops)
    phases = _to_numpy(phases)
    if phases.shape[-1:] != (2 * m + n,):
        raise ValueError(f"phases: last dim must be 2M+n = {2 * m + n} (n={n}, M={m}), got {phases.shape}")
    batch = phases.shape[:-1]
    kappa = np.broadcast_to(_to_numpy(0.5 if kappa is None else kappa), (*batch, m, 2))
    if np.any(kappa < 0) or np.any(kappa > 1):
        raise ValueError("kappa: power coupling ratios must lie in [0, 1]")
    loss_db = np.broadcast_to(_to_numpy(0.0 if loss_db is None else loss_db), (*batch, m))
    if np.any(loss_db < 0):
        raise ValueError("loss_db: insertion loss must be >= 0 dB")
    # Fixed chunks of _CHUNK settings: the circuit is compiled once per n, whatever the batch.
    flat = [a.reshape(-1, *a.shape[len(batch) :]) for a in (phases, kappa, loss_db)]
    total = flat[0].shape[0]
    pad = -total % _CHUNK
    flat = [np.concatenate([a, np.broadcast_to(a[:1], (pad, *a.shape[1:]))]) for a in flat]
    fn = _compiled(n, tops)
    out = []
    for start in range(0, total + pad, _CHUNK):
        p, k, il = (a[start : start + _CHUNK] for a in flat)
        out.append(np.asarray(fn(p[:, :m], p[:, m : 2 * m], p[:, 2 * m :], k, il)))
    return np.concatenate(out)[:total].reshape(*batch, n, n).astype(np.complex128)


def compare_with_simphony(n: int, phases, kappa=None, loss_db=None) -> float:
    """Max |U_ours − U_SAX| between ``ClementsMesh(n).unitary`` and :func:`simphony_unitary`."""

    def as_t(x):
        return None if x is None else torch.as_tensor(_to_numpy(x))

    ours = ClementsMesh(n).unitary(as_t(phases), kappa=as_t(kappa), loss_db=as_t(loss_db))
    ref = simphony_unitary(n, phases, kappa=kappa, loss_db=loss_db)
    return float(np.max(np.abs(ours.detach().cpu().numpy() - ref)))


# ----------------------------------------------------------------------------- SiEPIC data
_DC_DIR = "siepic/source_data/ebeam_dc_te1550"
DC_LENGTHS_M = tuple(x * 1e-6 for x in np.arange(0.0, 48.0, 2.5))  # files shipped: Lc 0…47.5 µm


@lru_cache(maxsize=None)
def _dc_table(lc_um: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency Hz ascending, S_through, S_cross) of the SiEPIC DC file with gap 200 nm."""
    name = f"dc_gap=200nm_Lc={lc_um:g}um.sparam"
    path = importlib.resources.files("simphony.libraries") / _DC_DIR / name
    _, df = load_sparams(path)
    f, s = df_to_sdict(df)
    return np.asarray(f), np.asarray(s["port_1", "port_3"]), np.asarray(s["port_1", "port_4"])


def siepic_dc_kappa(
    wavelength_m,
    *,
    coupling_length_m: float = 17.5e-6,
    gap_m: float = 200e-9,
    normalized: bool = False,
) -> np.ndarray:
    """Wavelength-dependent power coupling κ = |S_cross|² of the SiEPIC ``ebeam_dc_te1550``.

    Data: the Lumerical S-parameter files shipped in simphony,
    ``simphony/libraries/siepic/source_data/ebeam_dc_te1550/dc_gap=200nm_Lc=<L>um.sparam``
    (TE, 500 nm strip waveguides, gap 200 nm — the only gap shipped — and coupling lengths
    0, 2.5, …, 47.5 µm, sampled 1.5–1.6 µm). Port 1 → port 3 is the through (bar) path,
    port 1 → port 4 the cross path. κ is interpolated in frequency with a cubic spline of
    |S_cross|² (as simphony's own loader does for S). The default L = 17.5 µm is the shipped
    length closest to 50:50 at 1550 nm (κ ≈ 0.47). ``normalized=True`` returns
    |S_cross|² / (|S_cross|² + |S_through|²), i.e. the split with the excess loss removed.

    ``wavelength_m``: scalar or array in metres, within the data range (else ValueError).
    """
    lc_um = round(coupling_length_m * 1e6, 6)
    if not any(abs(lc_um - x * 1e6) < 1e-6 for x in DC_LENGTHS_M):
        raise ValueError(
            f"coupling_length_m: must be one of the shipped lengths 0, 2.5e-6, …, 47.5e-6 m, "
            f"got {coupling_length_m}"
        )
    if abs(gap_m - 200e-9) > 1e-12:
        raise ValueError(f"gap_m: only 200e-9 m is shipped, got {gap_m}")
    f, s_bar, s_cross = _dc_table(lc_um)
    freq = _SPEED_OF_LIGHT / np.asarray(wavelength_m, dtype=np.float64)
    if np.any(freq < f[0]) or np.any(freq > f[-1]):
        lo, hi = _SPEED_OF_LIGHT / f[-1], _SPEED_OF_LIGHT / f[0]
        raise ValueError(f"wavelength_m: must lie in [{lo:.4e}, {hi:.4e}] m, got {wavelength_m}")
    cross = np.abs(s_cross) ** 2
    if normalized:
        cross = cross / (cross + np.abs(s_bar) ** 2)
    return CubicSpline(f, cross)(freq)


def fit_kappa_dispersion(
    center_m: float = 1.55e-6,
    half_span_m: float = 20e-9,
    *,
    coupling_length_m: float = 17.5e-6,
    normalized: bool = True,
    samples: int = 81,
) -> dict[str, float]:
    """The device card's κ(λ) polynomial fitted to the SiEPIC data (:func:`siepic_dc_kappa`):
    least squares of κ + s·Δλ + c·Δλ²/2 (Δλ = λ − ``center_m``) over ``samples`` points in
    [center − half_span, center + half_span] (m). Returns ``kappa``, ``kappa_slope`` (1/m),
    ``kappa_curvature`` (1/m²) — the card keys ``coupler.kappa``, ``coupler.kappa_slope``,
    ``coupler.kappa_curvature`` in SI units, with the card's ``wavelength`` = ``center_m``
    (docs/physics.md#wavelength) — and ``max_error``, the largest |fit − data| on the grid."""
    if not (half_span_m > 0 and int(samples) == samples and samples >= 3):
        raise ValueError("half_span_m, samples: need half_span_m > 0 and an integer samples >= 3")
    d = np.linspace(-half_span_m, half_span_m, int(samples))
    data = siepic_dc_kappa(center_m + d, coupling_length_m=coupling_length_m, normalized=normalized)
    c2, c1, c0 = np.polyfit(d, data, 2)
    fit = np.polyval((c2, c1, c0), d)
    return {"kappa": float(c0), "kappa_slope": float(c1), "kappa_curvature": float(2.0 * c2),
            "max_error": float(np.max(np.abs(fit - data)))}


# ----------------------------------------------------------------------------- helpers
def _check_n(n: int) -> None:
    if int(n) != n or n < 2:
        raise ValueError(f"n: number of modes must be an integer >= 2, got {n}")


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)
