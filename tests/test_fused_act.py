"""The fused bias + sine pass (photonic_sim.cores._fused_act): accuracy of its sine against an
exact reference (mpmath, 120 bits), the out-of-range fallback, the bias arithmetic, and the
network's outputs against torch's add_/sin_ path."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch

from photonic_sim.cores import _fused_act
from photonic_sim.cores import photonic as photonic_mod
from photonic_sim.cores.photonic import TONN
from photonic_sim.cores.spec import NetworkSpec, tt

pytestmark = pytest.mark.skipif(_fused_act.kernel() is None,
                                reason=f"fused activation kernel unavailable: {_fused_act.unavailable_reason()}")


def fast_sin(x: np.ndarray) -> np.ndarray:
    h = torch.tensor(np.asarray(x, dtype=np.float64)).reshape(1, 1, -1).clone()
    return _fused_act.bias_sin_(h).reshape(-1).numpy()


def ulp_errors(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|y − sin x| in units of the last place of the exact sin x (mpmath, 120 bits)."""
    out = np.empty(len(x))
    with mpmath.workprec(120):
        for i, (xi, yi) in enumerate(zip(x.tolist(), y.tolist())):
            exact = mpmath.sin(mpmath.mpf(xi))
            out[i] = float(abs(mpmath.mpf(yi) - exact) / math.ulp(float(exact)))
    return out


@pytest.mark.parametrize("scale", [1.0, 10.0, 1e3, 1e6])
def test_sine_within_two_ulp_of_exact(scale):
    x = np.random.default_rng(7).uniform(-scale, scale, 4000)
    err = ulp_errors(x, fast_sin(x))
    assert err.max() <= 2.0, err.max()
    assert err.mean() <= 0.45, err.mean()  # torch's own: ≈ 0.25


def test_sine_near_multiples_of_half_pi():
    """The hard points of the reduction: the doubles nearest kπ/2 (sin tiny or ±1)."""
    with mpmath.workprec(120):
        x = np.array([float(mpmath.mpf(k) * mpmath.pi / 2) for k in range(1, 3001)])
    err = ulp_errors(x, fast_sin(x))
    assert err.max() <= 2.0, err.max()


def test_sine_small_arguments_and_signed_zero():
    x = np.concatenate([np.random.default_rng(1).uniform(-1e-3, 1e-3, 2000), [1e-300, -1e-300, 5e-324]])
    assert ulp_errors(x, fast_sin(x)).max() <= 0.5  # r = x: the polynomial term is below half an ulp
    z = fast_sin(np.array([0.0, -0.0]))
    assert z[0] == 0 and z[1] == 0 and not math.copysign(1, z[0]) < 0 and math.copysign(1, z[1]) < 0


def test_out_of_range_values_take_the_c_library_sine():
    """|x| > 2^20, ±inf and NaN go to libm's sin (math.sin is libm's), the rest of their
    segment still to the fast sine."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-5, 5, 300)
    x[[7, 100, 299]] = [3.5e9, -1e300, 2.0**20 + 0.5]
    y = fast_sin(x)
    for i in (7, 100, 299):
        assert y[i] == math.sin(x[i])
    rest = np.delete(np.arange(300), [7, 100, 299])
    assert np.array_equal(y[rest], fast_sin(x[rest]))  # same values as without the fallback in their segment
    special = fast_sin(np.array([np.inf, -np.inf, np.nan]))
    assert np.isnan(special).all()


def test_bias_is_added_once_then_the_sine():
    """h ← sin(h + b) with b [P, F] broadcast over N: the sum rounded once (torch's add_), then
    the same sine as without a bias; bias rows may be strided, h's middle stride too."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(3, 10, 300, dtype=torch.float64, generator=g) * 4
    h = base[:, ::2]  # [3, 5, 300], middle stride 600
    wide = torch.randn(3, 400, dtype=torch.float64, generator=g)
    b = wide[:, 50:350]  # [3, 300], row stride 400
    want = (h + b[:, None]).clone()
    _fused_act.bias_sin_(want)
    got = _fused_act.bias_sin_(h.clone(), b)
    assert torch.equal(got, want)
    strided = base.clone()
    _fused_act.bias_sin_(strided[:, ::2], b)  # in place through the view
    assert torch.equal(strided[:, ::2], want) and torch.equal(strided[:, 1::2], base[:, 1::2])
    assert torch.allclose(got, torch.sin(h + b[:, None]), rtol=0, atol=5e-16)
    with pytest.raises(ValueError, match="bias"):
        _fused_act.bias_sin_(h.clone(), b[:, :10])


def test_usable_only_where_the_kernel_applies():
    h = torch.zeros(2, 3, 4, dtype=torch.float64)
    assert _fused_act.usable(h)
    assert not _fused_act.usable(h.float())
    assert not _fused_act.usable(h.transpose(1, 2))  # innermost stride not 1
    assert not _fused_act.usable(h[0])
    assert not _fused_act.usable(h.clone().requires_grad_())


def test_network_forward_matches_torch_activation(monkeypatch):
    """A sine TONN's readings with the fused pass equal those of torch's add_/sin_ to float64
    rounding (ideal chip, exact readout)."""
    spec = NetworkSpec("sine_tt", (tt((4, 4), (4, 4), (1, 2, 1), activation="sin"), tt((4, 4), (2, 2), (1, 2, 1))))
    net = TONN(spec, block_size=4)
    g = torch.Generator().manual_seed(5)
    ph = torch.rand(6, net.num_phases, dtype=torch.float64, generator=g) * 2 * math.pi
    x = torch.randn(9, 16, dtype=torch.float64, generator=g)
    calls = []
    real = _fused_act.bias_sin_
    monkeypatch.setattr(_fused_act, "bias_sin_", lambda h, b=None: calls.append(1) or real(h, b))
    fused = net(x, ph)
    assert calls, "the fused pass was not used"
    monkeypatch.setattr(photonic_mod._fused_act, "usable", lambda h: False)
    plain = net(x, ph)
    assert fused.shape == plain.shape == (6, 9, 4)
    assert torch.allclose(fused, plain, rtol=1e-13, atol=1e-14)
