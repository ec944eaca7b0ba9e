"""Fused matvec + readout kernel (photonic_sim.cores._fused_read) against the torch path.

The reference is the chip's torch path (complex bmm, ``Photodetector.homodyne_read`` /
``read`` / ``adc``, gains, sum over block columns), run with the kernel switched off on a
chip built from the same seeds. Contract (module docstring of ``_fused_read``): readings
equal to float rounding, except that rounding may move a value across an ADC code boundary
(≤ one ADC step, a tiny fraction of elements); identical ledger conversions, clipped counts
within that fraction, identical generator state afterwards; noise-free chips to 1e-5.
"""
import pytest
import torch

from photonic_sim.chip import Chip
from photonic_sim.cores import _fused_read
from photonic_sim.cores.photonic import DenseONN, TONN
from photonic_sim.cores.spec import NetworkSpec, dense, preset, tt
from photonic_sim.devices import load_device_card

CARD = load_device_card("silicon_thermo_optic")
SMALL = NetworkSpec("small", (tt((2, 4), (4, 2), 2, "relu"), dense(8, 3)))


@pytest.fixture
def kernel():
    if _fused_read.kernel() is None:
        pytest.skip(f"fused readout kernel unavailable: {_fused_read.unavailable_reason()}")


@pytest.fixture
def spy(monkeypatch):
    calls = []
    real = _fused_read.matvec_read
    monkeypatch.setattr(_fused_read, "matvec_read", lambda *a: calls.append(1) or real(*a))
    return calls


def _net(name):
    if name == "dense":
        return DenseONN(preset("digits"))
    if name == "small_k3":  # generic (non-specialised) block size
        return TONN(SMALL, block_size=3)
    if name == "small_k4":
        return DenseONN(SMALL, block_size=4)
    return TONN(preset(name))


def _measure(net, ph, x, fused, monkeypatch, **chip_kw):
    chip = Chip(net, CARD, seed=3, **chip_kw)
    with monkeypatch.context() as mp:
        if not fused:
            mp.setattr(_fused_read, "kernel", lambda: None)
        out = chip.measure(x, ph)
    return out, chip


def _adc_step(chip, net, x):
    """One ADC step of a block reading in the output's units, times the largest block gain
    and input amplitude (bound on what one flipped code changes)."""
    bits = CARD.adc.bits
    step = 2.0 / 2**bits if chip.readout == "intensity" else 1.0 / 2 ** (bits - 1)
    amp = float(x.abs().max().clamp_min(1.0))
    return step * float(net.block_scales.abs().max()) * amp ** (2 if chip.readout == "intensity" else 1)


CASES = [  # network, real dtype, readout, batch, settings
    ("digits", torch.float32, "intensity", 64, 5),
    ("digits", torch.float64, "coherent", 7, 1),
    ("mnist_small", torch.float32, "coherent", 7, 5),
    ("mnist_small", torch.float64, "intensity", 1, 1),
    ("dense", torch.float32, "coherent", 64, 1),
    ("dense", torch.float64, "intensity", 7, 5),
    ("small_k3", torch.float32, "intensity", 7, 5),
    ("small_k4", torch.float64, "coherent", 64, 5),
]


@pytest.mark.parametrize("name,dtype,readout,batch,settings", CASES)
def test_fused_equals_torch_path(name, dtype, readout, batch, settings, kernel, spy, monkeypatch):
    net = _net(name)
    ph = net.init_phases(torch.Generator().manual_seed(1))
    ph = ph + 0.05 * torch.randn(settings, ph.numel(), generator=torch.Generator().manual_seed(2), dtype=ph.dtype)
    x = torch.rand(batch, net.in_features, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    fused, cf = _measure(net, ph, x, True, monkeypatch, readout=readout, dtype=dtype)
    assert spy, "the fused kernel was not used"
    n_calls = len(spy)
    ref, ct = _measure(net, ph, x, False, monkeypatch, readout=readout, dtype=dtype)
    assert len(spy) == n_calls and fused.dtype == ref.dtype == dtype and fused.shape == ref.shape
    diff = (fused - ref).abs()
    # float rounding of a sum of block readings is relative to the terms, not to a result
    # that cancels: the scale of an element is max(|ref|, mean |ref|)
    rel = diff / torch.maximum(ref.abs(), ref.abs().mean())
    assert float((rel > 1e-6).double().mean()) < 1e-3
    assert float(diff.max()) <= _adc_step(cf, net, x) + 1e-6
    lf, lt = cf.ledger.totals(), ct.ledger.totals()
    assert lf["adc_conversions"] == lt["adc_conversions"] > 0
    assert abs(lf["clipped"] - lt["clipped"]) <= 1e-3 * lt["adc_conversions"]
    assert {k: v for k, v in lf.items() if k != "clipped"} == {k: v for k, v in lt.items() if k != "clipped"}
    assert torch.equal(cf._gen.get_state(), ct._gen.get_state())
    # a seed reproduces the fused readings bit for bit
    again, _ = _measure(net, ph, x, True, monkeypatch, readout=readout, dtype=dtype)
    assert torch.equal(again, fused)


@pytest.mark.parametrize("name", ["digits", "dense", "small_k3"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("readout", ["coherent", "intensity"])
@pytest.mark.parametrize("mode", ["exact_readout", "ideal"])
def test_noise_free_fused_equals_torch(name, dtype, readout, mode, kernel, spy, monkeypatch):
    """exact_readout / ideal chips (noise and ADC off) also run fused: agree to 1e-5."""
    net = _net(name)
    ph = net.init_phases(torch.Generator().manual_seed(1))[None].repeat(2, 1)
    x = torch.rand(7, net.in_features, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    kw = {"readout": readout, "dtype": dtype, mode: True}
    fused, cf = _measure(net, ph, x, True, monkeypatch, **kw)
    assert spy
    ref, ct = _measure(net, ph, x, False, monkeypatch, **kw)
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5)
    assert cf.ledger.totals() == ct.ledger.totals()


def test_fallbacks_no_fused_env_and_differentiable(kernel, spy, monkeypatch):
    """PHOTONIC_SIM_NO_FUSED=1 (kernel not loaded) and differentiable=True take the torch
    path: the kernel is never called, results as the torch path, gradients flow."""
    net = _net("digits")
    ph = net.init_phases(torch.Generator().manual_seed(1))
    x = torch.rand(5, net.in_features, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    fused, _ = _measure(net, ph, x, True, monkeypatch)
    spy.clear()
    monkeypatch.setenv("PHOTONIC_SIM_NO_FUSED", "1")
    _fused_read._LIB.reset()
    assert _fused_read.kernel() is None and "PHOTONIC_SIM_NO_FUSED" in _fused_read.unavailable_reason()
    off = Chip(net, CARD, seed=3).measure(x, ph)
    assert not spy
    assert float(((off - fused).abs() > 1e-6).double().mean()) < 1e-3
    _fused_read._LIB.reset()
    monkeypatch.delenv("PHOTONIC_SIM_NO_FUSED")
    assert _fused_read.kernel() is not None
    p = ph.clone().requires_grad_(True)
    out = Chip(net, CARD, seed=3).measure(x, p, differentiable=True)
    assert not spy and out.requires_grad
    out.sum().backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_kernel_readout_formula_float64(kernel):
    """Kernel alone vs a float64 formula written here (one block column, coherent and
    intensity, noise from the same pre-drawn normals, ADC on a 4-bit grid)."""
    g = torch.Generator().manual_seed(7)
    p, br, bc, k, n = 2, 3, 2, 5, 9
    mat = torch.randn(p, br, bc, k, k, generator=g, dtype=torch.complex128) * 0.4
    field = torch.randn(p, n, bc * k - 2, generator=g, dtype=torch.complex128)
    scales = torch.rand(br, bc, generator=g, dtype=torch.float64) + 0.5
    x = torch.nn.functional.pad(field, (0, 2)).reshape(p, n, bc, k)
    y = torch.einsum("prcji,pnci->prcnj", mat, x)  # [P, br, bc, N, k]
    for coherent in (True, False):
        rec = _fused_read.Readout(coherent, True, True, amp=0.9, responsivity=1.1, dark_current=0.01, shot=0.02,
                                  bandwidth=2.0, floor=1e-3, tia_gain=1.3, lsb=0.1, kmin=-8 if coherent else 0,
                                  kmax=7 if coherent else 15, back=0.7, generator=torch.Generator().manual_seed(5))
        out, clipped = _fused_read.matvec_read(mat, field, scales, rec, 2)
        gz = torch.Generator().manual_seed(5)  # the kernel's draws: one per chunk of 2 block rows
        z = torch.cat([torch.randn(p, 2, bc, n, k, generator=gz, dtype=torch.float64),
                       torch.randn(p, 1, bc, n, k, generator=gz, dtype=torch.float64)], 1)
        e = y.real**2 + y.imag**2
        if coherent:
            cur = 0.9 * y.real + torch.sqrt(0.02 * e + 1e-3) * z
        else:
            cur = 1.1 * 0.9 * e + 0.01
            cur = cur + torch.sqrt(0.02 * cur.abs() * 2.0 + 1e-3) * z
        code = torch.round(1.3 * cur / 0.1)
        kept = code.clamp(rec.kmin, rec.kmax)
        v = kept * 0.1
        reading = v * 0.7 if coherent else (v / 1.3 - 0.01) / 0.7
        ref = (reading * scales[None, :, :, None, None]).sum(2).transpose(1, 2).reshape(p, n, br * k)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        assert clipped == int((kept != code).sum()) > 0
