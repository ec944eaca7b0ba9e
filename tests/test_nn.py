"""photonic_sim.nn: photonic layers as nn.Modules, convert(), gradients to the phases.

References: the original nn.Linear output (dense mode), the TT-reconstructed weight of an
independent TT-SVD (TT mode), central finite differences of the forward in float64
(gradients). Tolerances are stated at each assert.
"""

import math

import pytest
import torch
from torch import nn

import photonic_sim.nn as pnn
from photonic_sim.cores.tt import TTMatrix
from photonic_sim.devices.cards import load_device_card

F64 = torch.float64


class Block(nn.Module):
    """A user module with a Linear inside a custom module and one in a Sequential."""

    def __init__(self):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(12, 10), nn.Tanh())
        self.out = nn.Linear(10, 3, bias=False)

    def forward(self, x):
        return self.out(self.head(x))


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), Block()).double()


def _x(n=7, d=16, seed=1):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def test_dense_convert_matches_linear_on_ideal_chip():
    model = _mlp()
    chip_model = pnn.convert(model, mode="dense", block_size=4)
    x = _x()
    kinds = [type(m).__name__ for m in chip_model.modules() if isinstance(m, (nn.Linear, pnn.PhotonicLinear))]
    assert kinds == ["PhotonicLinear"] * 4  # every Linear replaced, also inside Block
    assert all(type(m) is nn.Linear for m in model.modules() if "Linear" in type(m).__name__)  # original kept
    with torch.no_grad():
        ref, out = model(x), chip_model(x)
    assert (out - ref).abs().max() < 1e-6  # acceptance: 1e-6 in float64 (observed ~1e-15)
    assert (out - ref).abs().max() < 1e-12
    out_grad_path = chip_model(x)  # the differentiable (autograd) path computes the same
    assert (out_grad_path - ref).abs().max() < 1e-12
    # 3-d inputs keep their leading dims like nn.Linear
    assert chip_model(x.reshape(7, 1, 16)).shape == (7, 1, 3)


def test_ideal_weight_is_the_programmed_weight():
    lin = nn.Linear(11, 6).double()
    layer = pnn.PhotonicLinear.from_linear(lin, block_size=4, dtype=F64)
    assert layer.phases.numel() == 6 * (2 * 16 + 4)  # ⌈6/4⌉·⌈11/4⌉ = 6 blocks of 2k² + k phases
    assert torch.allclose(layer.ideal_weight(), lin.weight.detach(), atol=1e-12, rtol=0)


def test_tt_convert_matches_tt_reconstructed_weight():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4)).double()
    chip_model = pnn.convert(model, mode="tt", tt_shapes={0: ((4, 4), (4, 3))}, ranks=2, block_size=4)
    assert isinstance(chip_model[0], pnn.TTPhotonicLinear) and isinstance(chip_model[2], pnn.PhotonicLinear)
    w_tt = TTMatrix.from_dense(model[0].weight.detach(), (4, 4), (4, 3), ranks=(1, 2, 1)).to_dense()
    assert (w_tt - model[0].weight).abs().max() > 1e-3  # rank 2 truncates: the reference is not the Linear
    x = _x(d=16)
    ref = torch.relu(x @ w_tt.T + model[0].bias) @ model[2].weight.T + model[2].bias
    with torch.no_grad():
        out = chip_model(x)
    assert (out - ref).abs().max() < 1e-6  # acceptance tolerance (float64)
    assert (out - ref).abs().max() < 1e-11


def test_tt_layer_exact_for_a_tt_weight():
    g = torch.Generator().manual_seed(5)
    w = TTMatrix.random((2, 3, 2), (3, 2, 2), (1, 2, 3, 1), g).to_dense()
    lin = nn.Linear(12, 12).double()
    with torch.no_grad():
        lin.weight.copy_(w)
    layer = pnn.TTPhotonicLinear.from_linear(lin, (2, 3, 2), (3, 2, 2), (1, 2, 3, 1), block_size=4, dtype=F64)
    x = _x(d=12)
    with torch.no_grad():
        assert (layer(x) - lin(x)).abs().max() < 1e-11  # exact ranks: the TT-SVD loses nothing


def _fd_check(layer, x, coords, eps, tol):
    """autograd d(Σ c·y)/dφ against central differences of the forward (no autograd)."""
    c = torch.randn(x.shape[0], layer.out_features, generator=torch.Generator().manual_seed(9), dtype=F64)
    layer.zero_grad()
    (layer(x) * c).sum().backward()
    grad = layer.phases.grad.clone()
    assert grad.abs().max() > 0
    for i in coords:
        vals = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                layer.phases[i] += sign * eps
                vals.append((layer(x) * c).sum().item())
                layer.phases[i] -= sign * eps
        fd = (vals[0] - vals[1]) / (2 * eps)
        assert grad[i].item() == pytest.approx(fd, abs=tol, rel=tol), f"phase {i}"
    return grad


def test_gradients_flow_to_phases_finite_differences_ideal():
    lin = nn.Linear(6, 5).double()
    layer = pnn.PhotonicLinear.from_linear(lin, block_size=4, dtype=F64)
    coords = torch.randperm(layer.phases.numel(), generator=torch.Generator().manual_seed(2))[:25].tolist()
    s = layer.slices()
    coords += [s["core0.block(0,0).S"].start, s["core0.block(1,1).U"].stop - 1]  # a Σ phase, an output screen
    _fd_check(layer, _x(d=6), coords, eps=1e-6, tol=1e-6)  # central FD error O(eps²) + rounding/eps ~ 1e-9
    assert layer.bias.grad is not None


def test_gradients_with_device_errors_finite_differences():
    # static γ-noise, phase bias and thermal crosstalk are differentiable; 32-bit phase
    # quantization keeps the straight-through error (2π/2^32 / eps ≈ 1.5e-5) under the tolerance
    card = load_device_card("silicon_thermo_optic", {"phase_shifter.bits": 32, "phase_shifter.gamma_noise_std": 0.05,
                                                     "crosstalk.factor": 0.02})
    lin = nn.Linear(6, 5).double()
    layer = pnn.TTPhotonicLinear.from_linear(lin, (3, 2), (5, 1), 2, block_size=4, devices=card, dtype=F64,
                                            exact_readout=True, seed=4)
    ideal = pnn.TTPhotonicLinear.from_linear(lin, (3, 2), (5, 1), 2, block_size=4, dtype=F64)
    x = _x(d=6)
    with torch.no_grad():
        assert (layer(x) - ideal(x)).abs().max() > 1e-2  # the device errors act
    # away from the ends of a phase range: there the heater jumps from 2π back to 0 (a real
    # discontinuity once γ-errors and crosstalk act on the heater phase, not the wrapped one)
    ph, per = layer.phases.detach(), layer.phase_periods()
    inner = ((ph > 1e-2) & (ph < per - 1e-2)).nonzero().flatten()
    coords = inner[torch.randperm(inner.numel(), generator=torch.Generator().manual_seed(3))[:20]].tolist()
    grad = _fd_check(layer, x, coords, eps=1e-4, tol=2e-4)
    ideal_grad = _fd_check(ideal, x, coords[:3], eps=1e-6, tol=1e-6)
    assert (grad - ideal_grad).abs().max() > 1e-3  # the gradient sees the errors


def test_noisy_card_is_seeded_and_not_ideal():
    model = _mlp()
    a = pnn.convert(model, devices="silicon_thermo_optic", seed=1)
    b = pnn.convert(model, devices="silicon_thermo_optic", seed=1)
    x = _x()
    with torch.no_grad():
        ya, yb, ref = a(x), b(x), model(x)
    assert torch.equal(ya, yb)  # same seed, same chip, same first readings
    assert (ya - ref).abs().max() > 1e-2  # uncalibrated phase bias etc.
    assert a[0].card_name == "silicon_thermo_optic" and not a[0].ideal and a[2].seed == 2


def test_phase_conventions_wrap_and_state_dict():
    lin = nn.Linear(8, 8).double()
    layer = pnn.PhotonicLinear.from_linear(lin, block_size=4, dtype=F64)
    periods = layer.phase_periods()
    sigma = periods == math.pi
    ph = layer.phases.detach()
    assert ph.min() >= 0 and bool((ph[~sigma] < 2 * math.pi).all()) and bool((ph[sigma] <= math.pi).all())
    x = _x(d=8)
    with torch.no_grad():
        before = layer(x)
        layer.phases.add_(torch.randn(ph.shape, dtype=F64) * 4)  # leave the ranges
        moved = layer(x)
        layer.wrap_phases_()
        after = layer(x)
    ph = layer.phases.detach()
    assert ph.min() >= 0 and bool((ph[~sigma] < 2 * math.pi).all()) and bool((ph[sigma] <= math.pi).all())
    assert (after - moved).abs().max() < 1e-12 and (after - before).abs().max() > 1e-3
    fresh = pnn.PhotonicLinear(8, 8, block_size=4, dtype=F64, seed=7)
    fresh.load_state_dict(layer.state_dict())
    with torch.no_grad():
        assert (fresh(x) - after).abs().max() < 1e-12  # phases, bias and block gains travel


def test_hardware_aware_training_reduces_loss():
    torch.manual_seed(0)
    layer = pnn.PhotonicLinear(8, 4, block_size=4, dtype=F64)
    target = nn.Linear(8, 4).double()
    x = _x(n=32, d=8)
    y = target(x).detach()
    opt = torch.optim.Adam(layer.parameters(), lr=0.02)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((layer(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("kwargs, pattern", [
    ({"mode": "sparse"}, "mode: 'sparse' is not one of dense, tt"),
    ({"mode": "tt"}, "tt_shapes: mode='tt' needs"),
    ({"mode": "tt", "tt_shapes": {"9": ((4, 4), (3, 4))}, "ranks": 2}, "'9' is not an nn.Linear"),
    ({"mode": "tt", "tt_shapes": {0: ((4, 5), (3, 4))}, "ranks": 2}, "do not factor 16 -> 12"),
    ({"mode": "tt", "tt_shapes": {0: ((4, 4), (3, 4))}}, "ranks: missing for TT layer '0'"),
    ({"mode": "dense", "ranks": 2}, "only for mode='tt'"),
    ({"block_size": 1}, "block_size: 1 is out of range"),
])
def test_convert_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern.replace("(", r"\(").replace(")", r"\)")):
        pnn.convert(_mlp(), **kwargs)


def test_convert_no_linear_and_bare_linear():
    with pytest.raises(ValueError, match="has no nn.Linear"):
        pnn.convert(nn.Sequential(nn.ReLU()))
    lin = nn.Linear(5, 3).double()
    layer = pnn.convert(lin, block_size=2)
    x = _x(d=5)
    with torch.no_grad():
        assert isinstance(layer, pnn.PhotonicLinear) and (layer(x) - lin(x)).abs().max() < 1e-12
