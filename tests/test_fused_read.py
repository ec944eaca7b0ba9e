"""Fused matvec + readout kernel (photonic_sim.cores._fused_read) against the torch path.

The reference is the chip's torch path (complex bmm, ``Photodetector.homodyne_read`` /
``read`` / ``adc``, gains, sum over block columns), run with the kernel switched off on a
chip built from the same seeds. Contract (module docstring of ``_fused_read``): noise-free
readings equal to float rounding (1e-5); noisy readings drawn from the same distribution
(the kernel draws its own Philox normals), reproducible bit for bit from a seed whatever
the thread count; identical ledger conversions, clipped counts within sampling error. The
kernel alone is checked against a float64 formula, and its normals against N(0, 1).
"""
import dataclasses

import numpy as np
import pytest
import torch

from photonic_sim.chip import Chip
from photonic_sim.cores import _fused_read, readout_normals
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
    monkeypatch.setattr(_fused_read, "matvec_read", lambda *a, **kw: calls.append(1) or real(*a, **kw))
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


CASES = [  # network, real dtype, readout, batch
    ("digits", torch.float32, "intensity", 16),
    ("digits", torch.float64, "coherent", 7),
    ("mnist_small", torch.float32, "coherent", 7),
    ("mnist_small", torch.float64, "intensity", 1),
    ("dense", torch.float32, "coherent", 16),
    ("dense", torch.float64, "intensity", 7),
    ("small_k3", torch.float32, "intensity", 7),
    ("small_k4", torch.float64, "coherent", 16),
]


@pytest.mark.parametrize("name,dtype,readout,batch", CASES)
def test_fused_noise_has_the_torch_path_distribution(name, dtype, readout, batch, kernel, spy, monkeypatch):
    """The fused path draws its own normals (Philox), so a noisy reading is not the torch
    path's realisation but must have its distribution: one phase setting measured R = 300
    times (the static non-idealities are fixed, only detector noise differs between rows)
    on both paths. Per element, the difference of the two means in units of its standard
    error, z, is ~N(0, 1): mean z² within [0.5, 2] (the elements share hidden-layer noise, so few are independent) and no |z| > 6
    (the readings are not Gaussian after ReLU and ADC: heavier tails); the RMS spread of the
    readings agrees within 10 %; ledger counts agree (clipped within sampling error)."""
    net = _net(name)
    ph = net.init_phases(torch.Generator().manual_seed(1))[None].repeat(300, 1)
    x = torch.rand(batch, net.in_features, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    fused, cf = _measure(net, ph, x, True, monkeypatch, readout=readout, dtype=dtype)
    assert spy, "the fused kernel was not used"
    n_calls = len(spy)
    ref, ct = _measure(net, ph, x, False, monkeypatch, readout=readout, dtype=dtype)
    assert len(spy) == n_calls and fused.dtype == ref.dtype == dtype and fused.shape == ref.shape
    r = ph.shape[0]
    var_f, var_t = fused.double().var(0), ref.double().var(0)
    assert float(var_t.mean()) > 0, "no detector noise reached the output"
    z = (fused.double().mean(0) - ref.double().mean(0)) / ((var_f + var_t) / r).sqrt().clamp_min(1e-300)
    z = torch.where((var_f + var_t) > 0, z, torch.zeros_like(z))
    assert 0.5 < float(z.square().mean()) < 2.0 and float(z.abs().max()) < 6
    assert abs(float(var_f.mean().sqrt() / var_t.mean().sqrt()) - 1) < 0.1
    lf, lt = cf.ledger.totals(), ct.ledger.totals()
    assert lf["adc_conversions"] == lt["adc_conversions"] > 0
    assert abs(lf["clipped"] - lt["clipped"]) <= 5 * lt["clipped"] ** 0.5 + 1e-3 * lt["adc_conversions"]
    assert {k: v for k, v in lf.items() if k != "clipped"} == {k: v for k, v in lt.items() if k != "clipped"}
    # a seed reproduces the fused readings bit for bit; the next query draws new noise
    again, _ = _measure(net, ph, x, True, monkeypatch, readout=readout, dtype=dtype)
    assert torch.equal(again, fused)
    assert not torch.equal(cf.measure(x, ph), fused)


def test_kernel_normals_are_standard_normal_and_independent(kernel):
    """The kernel's Philox/Box–Muller normals: moments of N(0, 1) (1e6 draws: mean and
    skewness within 5 standard errors, variance within 5e-3, excess kurtosis within 0.03),
    a Kolmogorov–Smirnov test, no correlation between neighbours, streams or keys, and
    n-prefix consistency (a stream's first n values do not depend on n); through the public
    ``photonic_sim.cores.readout_normals``, which refuses a negative or non-integer count."""
    from scipy import stats

    z = readout_normals(12345, 7, 1_000_000).double().numpy()
    n = z.size
    assert abs(z.mean()) < 5 / n**0.5 and abs(z.var() - 1) < 5e-3
    assert abs(stats.skew(z)) < 5 * (6 / n) ** 0.5 and abs(stats.kurtosis(z)) < 0.03
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(float(np.corrcoef(z[:-1], z[1:])[0, 1])) < 5 / n**0.5
    near = [readout_normals(12345, 8, 100_000), readout_normals(12346, 7, 100_000)]
    for w in near:
        assert abs(float(np.corrcoef(z[:100_000], w.double().numpy())[0, 1])) < 5 / 100_000**0.5
    assert torch.equal(readout_normals(9, 3, 70), readout_normals(9, 3, 1000)[:70])
    assert torch.equal(readout_normals(9, 3, 70), _fused_read.normals(9, 3, 70)) and readout_normals(9, 3, 0).numel() == 0
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="n must be an integer >= 0"):
            readout_normals(9, 3, bad)


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
    fused, _ = _measure(net, ph, x, True, monkeypatch, exact_readout=True)
    spy.clear()
    monkeypatch.setenv("PHOTONIC_SIM_NO_FUSED", "1")
    _fused_read._LIB.reset()
    assert _fused_read.kernel() is None and "PHOTONIC_SIM_NO_FUSED" in _fused_read.unavailable_reason()
    off = Chip(net, CARD, seed=3, exact_readout=True).measure(x, ph)
    assert not spy
    torch.testing.assert_close(off, fused, rtol=1e-5, atol=1e-5)
    _fused_read._LIB.reset()
    monkeypatch.delenv("PHOTONIC_SIM_NO_FUSED")
    assert _fused_read.kernel() is not None
    p = ph.clone().requires_grad_(True)
    out = Chip(net, CARD, seed=3).measure(x, p, differentiable=True)
    assert not spy and out.requires_grad
    out.sum().backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("power,dac", [(0, 0), (1, 7), (2, 7)])
def test_kernel_readout_formula_float64(kernel, power, dac):
    """Kernel alone vs a float64 formula written here (one block column, coherent and
    intensity, noise from the kernel's normals (one stream per setting and block: n < 16
    vectors, one tile, normals [j][t]), ADC on a 4-bit grid; inputs encoded
    with block floating point to ``power`` and a ``dac``-half-level DAC, or as given)."""
    g = torch.Generator().manual_seed(7)
    p, br, bc, k, n = 2, 3, 2, 5, 9
    mat = torch.randn(p, br, bc, k, k, generator=g, dtype=torch.complex128) * 0.4
    v = torch.randn(p, n, bc * k - 2, generator=g, dtype=torch.float64) * 1.5
    scales = torch.rand(br, bc, generator=g, dtype=torch.float64) + 0.5
    amp = v.abs().amax(-1, keepdim=True) if power else torch.ones(p, n, 1, dtype=torch.float64)
    u = v / amp
    if dac:
        u = torch.round(u.clamp(-1, 1) * dac) / dac
    x = torch.nn.functional.pad(u, (0, 2)).reshape(p, n, bc, k).to(torch.complex128)
    y = torch.einsum("prcji,pnci->prcnj", mat, x)  # [P, br, bc, N, k]
    for coherent in (True, False):
        rec = _fused_read.Readout(coherent, True, True, amp=0.9, responsivity=1.1, dark_current=0.01, shot=0.02,
                                  bandwidth=2.0, floor=1e-3, tia_gain=1.3, lsb=0.1, kmin=-8 if coherent else 0,
                                  kmax=7 if coherent else 15, back=0.7, generator=torch.Generator().manual_seed(5))
        out, clipped = _fused_read.matvec_read(mat, v, scales, rec, dac, power)
        key = _fused_read.draw_key(torch.Generator().manual_seed(5))  # the kernel's key, one per call
        tile = 16  # the kernel's tile of vectors: a block's normals are laid out [j][t], t < 16
        z = torch.stack([_fused_read.normals(key, (pi * br + r) * bc + c, k * tile).double().reshape(k, tile)[:, :n].T
                         for pi in range(p) for r in range(br) for c in range(bc)]).reshape(p, br, bc, n, k)
        e = y.real**2 + y.imag**2
        if coherent:
            cur = 0.9 * y.real + torch.sqrt(0.02 * e + 1e-3) * z
        else:
            cur = 1.1 * 0.9 * e + 0.01
            cur = cur + torch.sqrt(0.02 * cur.abs() * 2.0 + 1e-3) * z
        code = torch.round(1.3 * cur / 0.1)
        kept = code.clamp(rec.kmin, rec.kmax)
        volts = kept * 0.1
        reading = volts * 0.7 if coherent else (volts / 1.3 - 0.01) / 0.7
        ref = (reading * scales[None, :, :, None, None]).sum(2).transpose(1, 2).reshape(p, n, br * k)
        torch.testing.assert_close(out, ref * amp**power, rtol=1e-12, atol=1e-12)
        assert clipped == int((kept != code).sum()) > 0


@pytest.mark.parametrize("k,bc", [(8, 3), (4, 1), (16, 2), (6, 2)])
def test_kernel_exact_coherent_readout_formula_float64(kernel, k, bc):
    """The noise- and ADC-free coherent readout (the chip's exact readout: the PINN rows). For
    k a multiple of 4 the kernel adds every output into its block-column sum from registers
    (the direct path), for other k it stores and reads the outputs back: both against the
    float64 formula Σ_c s[r, c]·back·G·a·Re(B x) to 1e-13 (one rounding per operation), and
    with gains that are not 1, so a wrong factor on the direct path shows."""
    g = torch.Generator().manual_seed(11)
    p, br, n = 3, 2, 37  # 37 vectors: two full tiles of 16 and a partial one
    mat = torch.randn(p, br, bc, k, k, generator=g, dtype=torch.complex128) * 0.4
    v = torch.randn(p, n, bc * k - 1, generator=g, dtype=torch.float64)
    scales = torch.rand(br, bc, generator=g, dtype=torch.float64) + 0.5
    rec = _fused_read.Readout(True, False, False, amp=0.9, responsivity=1.0, dark_current=0.0, shot=0.0,
                              bandwidth=1.0, floor=0.0, tia_gain=1.3, lsb=1.0, kmin=-1.0, kmax=1.0, back=0.7)
    out, clipped = _fused_read.matvec_read(mat, v, scales, rec)
    x = torch.nn.functional.pad(v, (0, 1)).reshape(p, n, bc, k)
    y = torch.einsum("prcji,pnci->prcnj", mat.real, x)  # Re(B x): the inputs are real
    ref = (y * 0.9 * 1.3 * 0.7 * scales[None, :, :, None, None]).sum(2).transpose(1, 2).reshape(p, n, br * k)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-13)
    assert clipped == 0


def _bits(t):
    return t.contiguous().view(torch.int64 if t.dtype == torch.float64 else torch.int32)


@pytest.mark.parametrize("rows", [16, 13, 5, 1])
@pytest.mark.parametrize("unit", [True, False])
def test_kernel_direct_path_by_columns_equals_by_rows(kernel, rows, unit, monkeypatch):
    """The exact coherent readout at k = 8 in float64 runs by columns where an 8-double vector
    is one register (AVX-512): inputs read in place, one vector of readings per input vector.
    It must give the row path's readings bit for bit (the same products and sums in the same
    order), for every shape the TT layers hand it: several block rows and columns, padded
    input modes (cols < bc·k), kept rows that end inside a block row (not a multiple of 4),
    partial tiles (39 vectors: 16 + 16 + 7), inputs as a transposed strided view, NaN, ±inf
    and signed zeros among the inputs, a NaN matrix entry on a padded mode (the padding's
    products are added, as the row path adds them), gains of 1 (their products skipped) or not, one or two
    kernel threads. On a machine without AVX-512 both runs take the row path."""
    g = torch.Generator().manual_seed(21)
    p, br, bc, k, n1, n2 = 3, 2, 3, 8, 3, 13  # 39 vectors per setting as [n1, n2]
    cols = bc * k - 3
    mat = torch.randn(p, br, bc, k, k, generator=g, dtype=torch.complex128) * 0.4
    mat[1, 0, bc - 1, 2, k - 1] = complex(float("nan"), 0.0)  # on a padded input mode: b·0 is NaN there
    base = torch.randn(p, n1, cols, n2, generator=g, dtype=torch.float64)
    base[0, 0, :, 0] = 0.0
    base[0, 0, 1, 1], base[1, 2, 0, 3], base[2, 1, 4, 5], base[2, 1, 3, 6] = float("nan"), float("inf"), -float("inf"), -0.0
    v = base.transpose(-1, -2)  # [P, n1, n2, cols], cols strided: the TT contraction's layout
    scales = torch.rand(br, bc, generator=g, dtype=torch.float64) + 0.5
    amp, gain, back = (1.0, 1.0, 1.0) if unit else (0.9, 1.3, 0.7)
    rec = _fused_read.Readout(True, False, False, amp=amp, responsivity=1.0, dark_current=0.0, shot=0.0,
                              bandwidth=1.0, floor=0.0, tia_gain=gain, lsb=1.0, kmin=-1.0, kmax=1.0, back=back)
    runs = {}
    for columns in (True, False):
        monkeypatch.setattr(_fused_read, "_BY_COLUMNS", columns)
        for threads in (1, 2):
            runs[columns, threads] = _fused_read.matvec_read(mat, v, scales, rec, rows=rows, threads=threads)
    ref, clipped = runs[False, 1]
    assert ref.shape == (p, n1, n2, rows) and clipped == 0 and ref.isnan().any() and ref.isfinite().any()
    if rows > 2:
        assert ref[1, ..., 2].isnan().all()  # the padded mode's NaN reaches every vector's row 2
    full, _ = _fused_read.matvec_read(mat, v, scales, rec, threads=1)  # every row (the row path skips rows >= rows)
    assert torch.equal(_bits(full[..., :rows]), _bits(ref))
    for (out, c) in runs.values():
        assert out.stride() == ref.stride() and c == 0
        assert torch.equal(_bits(out), _bits(ref))


@pytest.mark.parametrize("settings", [3, 1])
def test_kernel_threads_give_identical_readings(kernel, settings, monkeypatch):
    """With torch.get_num_threads() = T > 1 the fused forward runs chunks of settings on T
    worker threads (one kernel thread each), or, for one chunk, shares the kernel's (setting,
    tile) pairs among T threads: readings, clipped counts, ledger and generator state do not
    depend on T (1, 2 or 3), and with T > 1 and several settings the chunks did run on the
    worker threads."""
    import threading

    net = _net("mnist_small")
    ph = net.init_phases(torch.Generator().manual_seed(1))
    ph = ph + 0.05 * torch.randn(settings, ph.numel(), generator=torch.Generator().manual_seed(2), dtype=ph.dtype)
    x = torch.rand(37, net.in_features, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    where = []
    real = _fused_read.matvec_read
    monkeypatch.setattr(_fused_read, "matvec_read",
                        lambda *a, **kw: where.append(threading.current_thread().name) or real(*a, **kw))
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            where.clear()
            chip = Chip(net, CARD, seed=3, dtype=torch.float32)
            runs.append((chip.measure(x, ph), chip.ledger.totals(), chip._gen.get_state(), set(where)))
    finally:
        torch.set_num_threads(before)
    a, la, ga, wa = runs[0]
    assert la["clipped"] > 0 and wa == {threading.current_thread().name}
    for b, lb, gb, wb in runs[1:]:
        assert torch.equal(a, b) and la == lb and torch.equal(ga, gb)
        assert all(w.startswith("photonic_sim") for w in wb) if settings > 1 else wb == wa


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_reads_strided_inputs_in_place(kernel, dtype):
    """v with any strides (a transposed view with two lead dims, a setting axis of stride 0
    from expand) gives the same readings, noise and clipped count as its contiguous copy;
    ``rows`` keeps the first rows; with two lead dims the output has rows before the last
    lead dim in memory (so tt.contract's next reshape is a view)."""
    g = torch.Generator().manual_seed(3)
    cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
    p, br, bc, k, b, j, i, cols = 3, 2, 3, 4, 2, 5, 7, 10
    mat = torch.randn(p, br, bc, k, k, generator=g, dtype=cdt) * 0.5
    base = torch.rand(b, j, cols, i, generator=g, dtype=dtype)
    v = base.transpose(-1, -2)[None].expand(p, b, j, i, cols)  # [P, B, J, I, C], not contiguous, stride 0 on P
    scales = torch.rand(br, bc, generator=g, dtype=dtype) + 0.5
    outs = []
    for inp in (v, v.contiguous()):
        rec = _fused_read.Readout(False, True, True, amp=0.9, responsivity=1.1, dark_current=0.01, shot=0.02,
                                  bandwidth=2.0, floor=1e-3, tia_gain=1.3, lsb=0.05, kmin=0, kmax=40, back=0.7,
                                  generator=torch.Generator().manual_seed(5))
        outs.append(_fused_read.matvec_read(mat, inp, scales, rec, 7, 1, rows=7))
    (a, ca), (c, cc) = outs
    assert a.shape == (p, b, j, i, 7) and torch.equal(a, c) and ca == cc > 0
    assert a.transpose(-1, -2).is_contiguous()
    rec = dataclasses.replace(rec, generator=torch.Generator().manual_seed(5))  # same key: same normals
    flat, _ = _fused_read.matvec_read(mat, v.reshape(p, b * j * i, cols), scales, rec, 7, 1)
    assert flat.shape == (p, b * j * i, br * k) and flat.is_contiguous()
    assert torch.equal(flat[..., :7], a.reshape(p, b * j * i, 7))


def test_kernel_rejects_mismatched_inputs(kernel):
    mat = torch.zeros(1, 1, 1, 4, 4, dtype=torch.complex64)
    rec = _fused_read.Readout(True, False, False, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0)
    for v, power in ((torch.zeros(1, 2, 4, dtype=torch.float64), 0), (torch.zeros(1, 2, 5), 0),
                     (torch.zeros(1, 2, 4), 3)):
        with pytest.raises(ValueError, match="do not match"):
            _fused_read.matvec_read(mat, v, torch.ones(1, 1), rec, 0, power)


def test_kernel_split_calls_read_what_one_call_reads(kernel):
    """Settings p0.. of a call, run as their own call with that call's key and ``p0``, get
    the same readings (noise included) and, summed, the same clipped count; a given key
    takes no draw from the generator."""
    g = torch.Generator().manual_seed(11)
    p, br, bc, k, n = 5, 2, 3, 8, 21
    mat = torch.randn(p, br, bc, k, k, generator=g, dtype=torch.complex128) * 0.4
    v = torch.randn(p, n, bc * k, generator=g, dtype=torch.float64)
    scales = torch.rand(br, bc, generator=g, dtype=torch.float64) + 0.5
    for coherent in (True, False):
        rec = _fused_read.Readout(coherent, True, True, amp=0.9, responsivity=1.1, dark_current=0.01, shot=0.02,
                                  bandwidth=2.0, floor=1e-3, tia_gain=1.3, lsb=0.1, kmin=-8 if coherent else 0,
                                  kmax=7 if coherent else 15, back=0.7, generator=torch.Generator().manual_seed(5))
        whole, clipped = _fused_read.matvec_read(mat, v, scales, rec, 7, 1)
        key = _fused_read.draw_key(torch.Generator().manual_seed(5))
        state = rec.generator.get_state()
        parts = [_fused_read.matvec_read(mat[a:b], v[a:b], scales, rec, 7, 1, key=key, p0=a)
                 for a, b in ((0, 2), (2, 3), (3, 5))]
        assert torch.equal(torch.cat([o for o, _ in parts]), whole)
        assert sum(c for _, c in parts) == clipped > 0
        assert torch.equal(rec.generator.get_state(), state)
        shifted, _ = _fused_read.matvec_read(mat[2:3], v[2:3], scales, rec, 7, 1, key=key, p0=0)
        assert not torch.equal(shifted, whole[2:3])  # p0 names the noise stream


@pytest.mark.parametrize("name,readout", [("mnist_small", "intensity"), ("digits", "coherent"), ("dense", "intensity")])
def test_forward_in_chunks_of_settings_equals_one_pass(name, readout, kernel, spy, monkeypatch):
    """The fused forward runs the settings in chunks (``_FUSED_CHUNK_ELEMENTS``): chunks of
    one setting give the readings (noise included), ledger and generator state of one pass."""
    from photonic_sim.cores import photonic

    net = _net(name)
    ph = net.init_phases(torch.Generator().manual_seed(1))
    ph = ph + 0.05 * torch.randn(4, ph.numel(), generator=torch.Generator().manual_seed(2), dtype=ph.dtype)
    x = torch.rand(9, net.in_features, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    runs = []
    for budget in (1 << 40, 1):
        monkeypatch.setattr(photonic, "_FUSED_CHUNK_ELEMENTS", budget)
        spy.clear()
        chip = Chip(net, CARD, seed=3, readout=readout)
        runs.append((chip.measure(x, ph), chip.ledger.totals(), chip._gen.get_state(), len(spy)))
    (a, la, ga, na), (b, lb, gb, nb) = runs
    assert nb == 4 * na > 0  # one kernel call per matrix and chunk
    assert torch.equal(a, b) and la == lb and torch.equal(ga, gb)


def test_allocator_thresholds_set_at_import_and_switchable():
    """``import photonic_sim`` sets glibc's mmap/trim thresholds (package docstring,
    "Allocator") on glibc Linux, without importing torch; ``PHOTONIC_SIM_NO_MALLOPT=1`` leaves
    the allocator alone."""
    import os
    import platform
    import subprocess
    import sys

    code = "import sys, photonic_sim; print(photonic_sim.ALLOCATOR_TUNED, 'torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "PHOTONIC_SIM_NO_MALLOPT"}
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**env, "PHOTONIC_SIM_NO_MALLOPT": "1"}).stdout.split()
    glibc = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    assert on == [str(glibc), "False"] and off == ["False", "False"]
