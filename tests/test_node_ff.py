"""Node perturbation and forward-forward (strategies ``node-perturbation``, ``forward-forward``)
and the ``adjoint`` strategy's update.

Known functions: a network whose output is linear in the hidden node values with a quadratic
loss, so central node differences are exact and the node-perturbation estimate ĝ of each
example's node error g has E[ĝ] = g and covariance (|g|²I + ggᵀ)/q (Gaussian directions);
for forward-forward a synthetic two-"layer" quadratic. References: the exact adjoint
gradient (equal to autograd, tests/test_adjoint.py) and analytic gradients (float64).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from photonic_sim.chip import Chip
from photonic_sim.cores.photonic import TONN
from photonic_sim.cores.spec import NetworkSpec, dense, tt
from photonic_sim.devices import load_device_card
from photonic_sim.training.data import Dataset
from photonic_sim.training.strategies import STRATEGIES, STRATEGY_NAMES, make_strategy
from photonic_sim.training.strategies.forward_forward import LocalGoodness
from photonic_sim.training.tasks import (ClassificationTask, coordinate_layers, evaluate_forward_forward,
                                         forward_forward_closure, goodness)

CARD = load_device_card("silicon_thermo_optic")
LINEAR = NetworkSpec("lin", (dense(8, 6, "none"), dense(6, 3)))


def _ideal(spec=LINEAR, readout="coherent", seed=0):
    net = TONN(spec, block_size=4)
    phases = net.init_phases(torch.Generator().manual_seed(seed))
    return Chip(net, CARD, ideal=True, readout=readout, dtype=torch.float64), phases


def _batch(b=4, n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, generator=g, dtype=torch.float64), torch.randn(b, 3, generator=g, dtype=torch.float64)


def _quadratic(target):
    return lambda r: ((r - target) ** 2).sum(-1)  # readings [..., B, 3] → [..., B]


def test_node_perturbation_is_unbiased_with_variance_one_over_q():
    chip, phases = _ideal()
    x, target = _batch()
    loss_fn = _quadratic(target)
    _, exact = chip.adjoint_gradient(x, phases, loss_fn)
    reps, est = 150, {}
    for q in (1, 4):
        gen = torch.Generator().manual_seed(q)
        est[q] = torch.stack([chip.adjoint_gradient(x, phases, loss_fn, node_q=q, node_mu=0.3, generator=gen)[1]
                              for _ in range(reps)])
    for q, e in est.items():  # unbiased: every coordinate within 4.5 standard errors
        se = e.std(0) / math.sqrt(reps) + 1e-12
        assert ((e.mean(0) - exact).abs() / se).max() < 4.5, q
    # the error's total variance scales as 1/q (exactly, for this quadratic): ratio 4 ± sampling
    ratio = float(((est[1] - exact) ** 2).sum(1).mean() / ((est[4] - exact) ** 2).sum(1).mean())
    assert 3.0 < ratio < 5.3
    # the output layer's phases and biases get the exact digital error (no variance)
    last = coordinate_layers(chip) == 1
    assert (est[1][:, last] - exact[last]).abs().max() < 1e-9


def test_node_perturbation_counts_its_downstream_queries():
    chip, phases = _ideal()
    x, target = _batch()
    closure = chip.adjoint_closure(x, _quadratic(target))
    closure(phases, node_q=5, node_mu=0.1, generator=torch.Generator().manual_seed(0))
    assert closure.queries == 3 + 2 * 5 and closure.phase_settings == 1  # one hidden layer


def test_local_goodness_estimates_each_layers_own_gradient():
    """Two groups of coordinates with their own quadratic losses L_l(θ) = ½|A_l θ − b_l|² that
    depend on ALL coordinates: coordinate i must get ∂L_l(i)/∂θ_i (not the total's)."""
    g = torch.Generator().manual_seed(0)
    d = 6
    owner = torch.tensor([0, 0, 0, 1, 1, 1])
    a = torch.randn(2, 5, d, generator=g, dtype=torch.float64)
    b = torch.randn(2, 5, generator=g, dtype=torch.float64)
    theta = torch.randn(d, generator=g, dtype=torch.float64)

    def losses(rows):  # [P, d] → per-layer [P, 2] → per-coordinate [P, d]
        per = 0.5 * ((torch.einsum("lkd,pd->plk", a, rows) - b) ** 2).sum(-1)
        return per[:, owner]

    resid = torch.einsum("lkd,d->lk", a, theta) - b
    full = torch.einsum("lkd,lk->ld", a, resid)  # ∂L_l/∂θ, [2, d]
    expected = full[owner, torch.arange(d)]
    est = LocalGoodness(q=8, mu=0.1, generator=torch.Generator().manual_seed(1))
    samples = torch.stack([est.estimate(losses, theta).grad for _ in range(4000)])
    se = samples.std(0) / math.sqrt(samples.shape[0])
    assert ((samples.mean(0) - expected).abs() / se).max() < 4.5
    assert (expected - full.sum(0)).abs().max() > 0.5  # the test tells local from total gradients
    # variance (exact central differences, Gaussian u): Var ĝ_i = (|∇L_l(i)|² + (∂_i L_l(i))²)/q;
    # the sample variance of 4000 draws (heavy-tailed: ~4.5 % relative standard error) within 12 %
    var = ((full ** 2).sum(1)[owner] + expected ** 2) / 8
    assert ((samples.var(0) / var) - 1).abs().max() < 0.12


def _task(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 16, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (n,), generator=g)
    return ClassificationTask(Dataset("toy", x[:16], y[:16], x[16:], y[16:], 4), batch_size=8, eval_batch_size=5)


def test_forward_forward_closure_and_evaluation_rule():
    spec = NetworkSpec("ff", (tt((4, 4), (4, 4), 2, "relu"), dense(16, 4)))
    chip, phases = _ideal(spec, readout="intensity")
    task = _task()
    x, y = task.data.x_train[:8], task.data.y_train[:8]
    closure = forward_forward_closure(task, chip, (x, y))
    rows = torch.stack((phases, phases + 0.1))
    out = closure(rows)
    assert out.shape == (2, chip.num_phases) and closure.queries == 2
    owner = coordinate_layers(chip)
    # independent reference of layer 0's loss: goodness by hand from the layer readings
    pos, neg = x.clone(), x.clone()
    pos[:, :4] = F.one_hot(y, 4).double()
    wrong = (y + 1 + torch.arange(8) % 3) % 4
    assert bool((wrong != y).all())
    neg[:, :4] = F.one_hot(wrong, 4).double()
    h = chip.measure_layers(torch.cat((pos, neg)), phases)[0][0]  # [16, width]
    gl = h.square().mean(-1)
    gl = gl / gl.mean()
    ref = F.softplus(-4.0 * (gl[:8] - gl[8:])).mean()
    assert abs(float(out[0, owner == 0][0]) - float(ref)) < 1e-10
    # evaluation: the label with the highest total goodness, against a direct computation
    res = evaluate_forward_forward(task, chip, phases)
    scores = []
    for k in range(4):
        xk = task.data.x_test.clone()
        xk[:, :4] = F.one_hot(torch.full((8,), k), 4).double()
        scores.append(torch.stack([l[0].square().mean(-1) for l in chip.measure_layers(xk, phases)], -1))
    s = torch.stack(scores)  # [C, B, L]
    s = (s / s.mean((0, 1), keepdim=True)).sum(-1)
    assert res["metric"] == float((s.argmax(0) == task.data.y_test).double().mean())


def test_trainer_reports_the_forward_forward_accuracy():
    """Through the builder (ideal chip, intensity readout): the run's reported accuracy is the
    forward-forward rule's on the final phases, not the classification task's argmax."""
    from photonic_sim import Experiment
    from photonic_sim.accelerators.cards import load_accelerator_card

    spec = NetworkSpec("ff", (tt((4, 4), (4, 4), 2, "relu"), dense(16, 4)))
    exp = Experiment(devices=CARD, accelerator=load_accelerator_card("tonn_space", overrides={"block_size": 4}),
                     model=spec, task=_task().data, ideal=True, seed=0,
                     training={"strategy": "forward-forward", "strategy_options": {"lr": 0.01, "q": 2}, "steps": 2,
                               "eval_every": 2, "batch_size": 8, "eval_batch_size": 5, "readout": "intensity"})
    result = exp.run()
    assert result.report["metrics"]["final"] == evaluate_forward_forward(exp.task, exp.chip, result.phases)["metric"]


def test_adjoint_strategy_step_is_sgd_on_the_exact_gradient():
    chip, phases = _ideal()
    task = _task(seed=1)
    data = Dataset("toy", torch.rand(16, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2)),
                   torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(3)), task.data.x_test[:, :8],
                   task.data.y_test % 3, 3)
    task = ClassificationTask(data, batch_size=8)
    batch = (data.x_train[:8], data.y_train[:8])
    p = phases.clone().requires_grad_()
    task.losses(chip.measure(batch[0], p, differentiable=True)[None], batch[1])[0].backward()
    strategy = make_strategy("adjoint", phases.clone(), lr=0.05, generator=torch.Generator())
    strategy.step(task.closure(chip, batch, kind="adjoint"))
    assert (strategy.params - (phases - 0.05 * p.grad)).abs().max() < 1e-8


def test_strategies_are_listed_and_labelled():
    for name in ("adjoint", "node-perturbation", "forward-forward"):
        assert name in STRATEGY_NAMES and name in STRATEGIES
    assert STRATEGIES["adjoint"].needs_hardware and STRATEGIES["node-perturbation"].needs_hardware
    assert STRATEGIES["forward-forward"].evaluation == "forward-forward"


def test_goodness_is_normalized_per_layer():
    layers = [torch.ones(1, 4, 3), 5 * torch.ones(1, 4, 2)]
    assert torch.allclose(goodness(layers), torch.ones(1, 4, 2, dtype=torch.float64))


@pytest.mark.parametrize("name", ["adjoint", "node-perturbation"])
def test_in_situ_adjoint_strategies_need_their_closure_kind(name):
    assert STRATEGIES[name].closure_kind == "adjoint"


# ---------------------------------------------------------------------- strategy contracts
# The tapped closures on a known quadratic L(θ) = ½|A(θ − θ*)|²: "adjoint" returns (L, ∇L)
# (node perturbation: + N(0, σ²) noise drawn from the generator the strategy passes, so the
# generator state matters for resume); "forward-forward" returns every coordinate's own
# "layer" loss (two halves of the coordinates, each its own quadratic).
D = 10
_A = torch.randn(2, D, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64) / math.sqrt(D)
_STAR = torch.linspace(0.5, 2.0, D, dtype=torch.float64)
_OWNER = torch.arange(D) >= D // 2


def _layer_losses(rows):
    r = torch.einsum("lkd,pd->plk", _A, rows - _STAR)
    return 0.5 * (r ** 2).sum(-1)  # [P, 2]


def _adjoint_closure(theta, node_q=0, node_mu=0.0, generator=None):
    with torch.enable_grad():  # strategies call closures under no_grad
        t = theta.detach().clone().requires_grad_()
        loss = _layer_losses(t[None]).sum()
        (grad,) = torch.autograd.grad(loss, t)
    if generator is not None:  # stands in for the node-perturbation noise
        grad = grad + 0.01 * torch.randn(grad.shape, generator=generator, dtype=grad.dtype)
    return loss.detach(), grad


def _ff_closure(rows):
    return _layer_losses(rows)[:, _OWNER.long()]


CLOSURES = {"adjoint": _adjoint_closure, "node-perturbation": _adjoint_closure, "forward-forward": _ff_closure}


@pytest.mark.parametrize("name", sorted(CLOSURES))
def test_tapped_strategies_descend_respect_masks_and_resume_bit_identically(name):
    params = torch.zeros(D, dtype=torch.float64)
    mask = torch.arange(D) % 3 != 0
    strat = make_strategy(name, params, lr=0.05, generator=torch.Generator().manual_seed(1), optimizer="adam",
                          mask=mask)
    l0 = float(_layer_losses(params[None]).sum())
    for _ in range(60):
        strat.step(CLOSURES[name])
    assert float(_layer_losses(params[None]).sum()) < 0.7 * l0
    assert bool((params[~mask] == 0).all()) and bool((params[mask] != 0).all())
    saved = strat.state_dict()
    tail_a = [strat.step(CLOSURES[name]) for _ in range(5)]
    after_a = params.clone()
    other = torch.randn(D, dtype=torch.float64)
    b = make_strategy(name, other, lr=0.05, generator=torch.Generator().manual_seed(9), optimizer="adam",
                      mask=mask)
    b.load_state_dict(saved)
    tail_b = [b.step(CLOSURES[name]) for _ in range(5)]
    assert tail_a == tail_b and torch.equal(other, after_a)
