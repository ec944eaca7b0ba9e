"""The black box, enforced: a strategy's loss closure exposes calling it and its counters only.

What "not reachable" means here (``photonic_sim.chip.ChipClosure``): starting from the
closure a task hands a strategy, no object found by the ordinary routes below is the chip,
its network, its readout chain or noise generator, the task's loss function, or any object
whose attributes or closure cells hold the chip. The routes, walked breadth first to depth 3
by :func:`reachable` without the ``gc`` module:

* every name in ``dir(obj)`` read with ``getattr`` (this covers ``__class__`` and its
  methods, ``__self__``, ``__func__``, ``__wrapped__``, ``__dict__``, properties, slots,
  a ``functools.partial``'s ``func`` / ``args`` / ``keywords``, ``__defaults__``);
* ``__closure__`` cells (``cell_contents``), ``vars(obj)``, the items of tuples, lists, sets
  and dicts (mapping proxies included), the referent of a weak reference;
* ``inspect.getclosurevars(f)`` of functions and methods: its ``nonlocals``, ``builtins``
  and ``unbound``;
* pickling and copying (``pickle``, ``copy.copy``, ``copy.deepcopy``, ``__reduce_ex__``)
  must refuse.

Not walked, by definition (they reach everything in the process, not this closure's chip,
and are documented as out of scope in ``ChipClosure``): module objects and module
namespaces (``__globals__``, ``__builtins__``, ``getclosurevars(...).globals``: what any
code reaches by ``import``), ``gc``, frames and tracebacks, ``ctypes``. The walker is checked
to find the chip through each of the old routes (a plain nested function, a bound method, a
``functools.partial``), so a pass is not a walker that sees nothing.

Also here: every strategy still takes one step through the new closure (``fo`` through the
differentiable one; tests/test_pinn.py checks its gradient against a central difference),
the closure's counters equal the chip ledger, and a chip resumes bit for bit from its
``state_dict``.
"""
import copy
import functools
import inspect
import io
import pickle
import types
import warnings
import weakref

import pytest
import torch

from photonic_sim import chip as chip_module
from photonic_sim.chip import Chip, ChipClosure
from photonic_sim.cores.photonic import PhotonicNetwork, TONN
from photonic_sim.cores.spec import NetworkSpec, dense, tt
from photonic_sim.devices import ReadoutChain, load_device_card
from photonic_sim.training.data import Dataset
from photonic_sim.training.pinn import PINNTask
from photonic_sim.training.strategies import STRATEGIES, make_strategy
from photonic_sim.training.tasks import ClassificationTask
from photonic_sim.training.trainer import task_closure

CARD = load_device_card("silicon_thermo_optic")
SPEC = NetworkSpec("bb", (tt((2, 4), (4, 2), 2, "relu"), dense(8, 3)))
SKIP_NAMES = {"__globals__", "__builtins__"}  # module namespaces: reachable by import anyway


def _children(obj):
    """Objects one ordinary step from ``obj`` (module docstring)."""
    if isinstance(obj, (types.ModuleType, str, bytes, int, float, complex, bool)) or obj is None:
        return  # modules are namespaces (out of scope); scalars hold nothing
    for name in dir(obj):
        if name in SKIP_NAMES:
            continue
        try:
            yield getattr(obj, name)
        except Exception:  # noqa: BLE001 — a property that refuses is not a route
            continue
    cells = getattr(obj, "__closure__", None)
    for cell in cells if isinstance(cells, tuple) else ():
        try:
            yield cell.cell_contents
        except ValueError:  # empty cell
            pass
    if isinstance(obj, types.CellType):
        try:
            yield obj.cell_contents
        except ValueError:
            pass
    try:
        yield from vars(obj).values()
    except TypeError:
        pass
    if isinstance(obj, (tuple, list, set, frozenset)):
        yield from obj
    if isinstance(obj, (dict, types.MappingProxyType)):
        yield from obj.keys()
        yield from obj.values()
    if isinstance(obj, weakref.ref):
        yield obj()
    if isinstance(obj, (types.FunctionType, types.MethodType)):
        try:
            cv = inspect.getclosurevars(obj)
        except (TypeError, ValueError):
            return
        yield from cv.nonlocals.values()
        yield from cv.builtins.values()
        yield from cv.unbound


def reachable(root, depth: int = 3) -> list:
    """Every object reached from ``root`` in at most ``depth`` steps of ``_children``."""
    seen = {id(root): root}
    frontier = [root]
    with warnings.catch_warnings():  # reading every attribute of a tensor trips deprecation warnings
        warnings.simplefilter("ignore")
        for _ in range(depth):
            nxt = []
            for obj in frontier:
                for child in _children(obj):
                    if id(child) not in seen:
                        seen[id(child)] = child  # kept alive, so ids stay unique
                        nxt.append(child)
            frontier = nxt
    return list(seen.values())


def _holds(obj, target) -> bool:
    """True when ``obj``'s attributes or closure cells hold ``target`` directly."""
    try:
        if any(v is target for v in vars(obj).values()):
            return True
    except TypeError:
        pass
    cells = getattr(obj, "__closure__", None)
    for cell in cells if isinstance(cells, tuple) else ():
        try:
            if cell.cell_contents is target:
                return True
        except ValueError:
            pass
    return False


def _leaks(found: list, chip: Chip, task, extra=()) -> list[str]:
    """What of the chip (or anything holding it) ``found`` contains, as readable names."""
    secret = {id(chip): "chip", id(chip._net): "network", id(chip._readout_chain): "readout chain",
              id(chip._gen): "noise generator", id(task): "task"}
    secret.update({id(o): name for name, o in extra})
    out = []
    for obj in found:
        if id(obj) in secret:
            out.append(secret[id(obj)])
        elif isinstance(obj, (Chip, PhotonicNetwork, ReadoutChain, chip_module._ClosureState)):
            out.append(type(obj).__name__)
        elif _holds(obj, chip):
            out.append(f"a {type(obj).__name__} holding the chip")
    return out


def _inputs(b, n=8, seed=0):
    return torch.rand(b, n, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture
def setup():
    net = TONN(SPEC)
    chip = Chip(net, CARD, seed=0)
    phases = chip.init_phases(torch.Generator().manual_seed(0))
    x = _inputs(30)
    data = Dataset("toy", x[:20], torch.arange(20) % 3, x[20:], torch.arange(10) % 3, 3)
    task = ClassificationTask(data, batch_size=8)
    batch = task.sample_batch(torch.Generator().manual_seed(2))
    return chip, task, batch, phases


# ------------------------------------------------------------------ the walker sees real leaks
def test_walker_finds_the_chip_through_the_old_routes(setup):
    """Positive controls: a plain nested function (the closure before this change), a bound
    method and a ``functools.partial`` all lead to the chip within depth 3."""
    chip, task, (x, y), _ = setup

    def plain(params):
        return task.losses(chip.measure(x, params), y)

    for leaky in (plain, chip.measure, functools.partial(chip.measure, x)):
        assert "chip" in _leaks(reachable(leaky), chip, task)


# ------------------------------------------------------------------ ... and none in the closure
@pytest.mark.parametrize("differentiable", [False, True])
def test_chip_not_reachable_from_the_closure(setup, differentiable):
    chip, task, batch, phases = setup
    f = task.closure(chip, batch, differentiable=differentiable)
    assert isinstance(f, ChipClosure)
    f(phases[None])  # a used closure (its counters moved) hides the chip as well
    found = reachable(f)
    assert len(found) > 1000  # the walk really went through the class, its methods and their parts
    assert type(f).__call__ in found and type(f).queries in found
    assert _leaks(found, chip, task, extra=[("batch inputs", batch[0]), ("ledger", chip.ledger)]) == []


def test_pinn_closure_hides_the_chip():
    spec = NetworkSpec("p", (dense(2, 8, "tanh"), dense(8, 1)))
    chip = Chip(TONN(spec, block_size=4), CARD, seed=0, readout="coherent", exact_readout=True,
                dtype=torch.float64)
    phases = chip.init_phases(torch.Generator().manual_seed(0))
    task = PINNTask("black_scholes", collocation=4, test_points=8, residual_points=4)
    f = task.closure(chip, task.sample_batch(torch.Generator().manual_seed(1)))
    losses = f(phases[None].repeat(2, 1))
    assert losses.shape == (2,) and f.calls == 1 and f.queries == 2
    assert _leaks(reachable(f), chip, task) == []


def test_closure_has_no_state_of_its_own_and_refuses_pickling(setup):
    chip, task, batch, phases = setup
    f = task.closure(chip, batch)
    for route in ("__dict__", "__closure__", "__self__", "__func__", "__wrapped__", "__weakref__"):
        assert not hasattr(f, route), route
    with pytest.raises(TypeError):
        vars(f)
    with pytest.raises(AttributeError):
        f.queries = 0  # counters are read-only
    with pytest.raises(AttributeError):
        f.anything = chip  # no attribute can be added
    with pytest.raises(TypeError):
        weakref.ref(f)
    with pytest.raises(TypeError, match="inspect|function|built-in|Python"):
        inspect.getclosurevars(f)  # not a function: nothing to introspect
    assert inspect.getclosurevars(type(f).__call__).nonlocals == {}
    for attempt in (lambda: pickle.dumps(f), lambda: torch.save(f, io.BytesIO()), lambda: copy.copy(f),
                    lambda: copy.deepcopy(f), lambda: f.__reduce_ex__(2), lambda: f.__reduce__()):
        with pytest.raises(TypeError, match="cannot be pickled"):
            attempt()
    with pytest.raises(TypeError, match="subclassed"):
        type("Open", (ChipClosure,), {})


def test_closure_counters_follow_the_ledger(setup):
    chip, task, batch, phases = setup
    f = task.closure(chip, batch)
    before = chip.ledger.totals()
    settings = phases + 0.01 * torch.arange(4.0, dtype=phases.dtype)[:, None]
    assert f(settings).shape == (4,)
    f(phases[None])
    f(phases[None])  # the same vector again: a query, but no new phase setting
    led = chip.ledger.totals()
    assert (f.calls, f.queries, f.phase_settings) == (3, 6, 5)
    assert f.queries == led["queries"] - before["queries"]
    assert f.phase_settings == led["phase_settings"] - before["phase_settings"]
    assert repr(f) == "<ChipClosure: 3 calls, 6 queries, 5 phase settings>"
    g = task.closure(chip, batch)  # counters are per closure
    assert (g.calls, g.queries, g.phase_settings) == (0, 0, 0)


def test_closure_state_lives_as_long_as_the_closure(setup):
    chip, task, batch, phases = setup
    n = len(chip_module._CLOSURES)
    f = task.closure(chip, batch)
    assert len(chip_module._CLOSURES) == n + 1
    del f
    assert len(chip_module._CLOSURES) == n


# ------------------------------------------------------------------ strategies through the closure
def _options(name, chip):
    masks = chip.controls()["masks"]
    opts = {"lr": 0.01}
    if name == "zo-cge":
        opts["coords_per_step"] = 5
    if name in ("hybrid", "flops"):
        opts["q"] = 4
    if name in ("l2ight-sigma", "tt-subspace"):
        opts["mask"] = masks["S" if name == "l2ight-sigma" else "tt"]
    if name == "staged":
        opts["stages"] = [dict(strategy="zo-sign-rge", steps=1, q=4)]
    return opts


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_steps_through_the_closure(setup, name):
    """One step of each strategy (``make_strategy``) on a tiny chip through ``task.closure``:
    a finite loss, the queries it spent equal the closure's counters, phases move."""
    chip, task, batch, _ = setup
    ctl = chip.controls()
    params = chip.init_phases(torch.Generator().manual_seed(0))
    start = params.detach().clone()
    strategy = make_strategy(name, params, generator=torch.Generator().manual_seed(1), periods=ctl["periods"],
                             **_options(name, chip))
    f = task_closure(task, chip, batch, strategy)  # the closure kind the strategy names
    before = chip.ledger.queries
    loss = float(strategy.step(f))
    assert torch.isfinite(torch.tensor(loss))
    assert f.calls == 1 and f.queries == chip.ledger.queries - before > 0
    assert not torch.equal(strategy.params.detach(), start) or name == "mixedtrain"


# ------------------------------------------------------------------ resume from state_dict
@pytest.mark.parametrize("kw", [{}, {"readout": "coherent", "dtype": torch.float64}])
def test_state_dict_resumes_bit_for_bit(kw, tmp_path):
    """Measure, save ``state_dict`` with torch.save, build a fresh chip (and network) with the
    same arguments, load it with ``weights_only=True``: the next readings (fused path and the
    differentiable torch path), ledger and block gains equal the original chip's."""
    def build():
        return Chip(TONN(SPEC), CARD, seed=4, **kw)

    a = build()
    ph = a.init_phases(torch.Generator().manual_seed(1))  # sets the network's block gains
    x = _inputs(9, seed=5)
    settings = ph + 0.05 * torch.randn(3, ph.numel(), generator=torch.Generator().manual_seed(6), dtype=ph.dtype)
    a.measure(x, settings)
    a.set_phases(ph)
    path = tmp_path / "chip.pt"
    torch.save(a.state_dict(), path)
    b = build()
    assert not torch.equal(b._net.block_scales, a._net.block_scales)  # a fresh network knows no gains
    b.load_state_dict(torch.load(path, weights_only=True))
    fresh = build()
    fresh.init_phases(torch.Generator().manual_seed(1))
    fresh.set_phases(ph)
    out = [[c.measure(x, settings), c.measure(x), c.measure(x, settings[:1], differentiable=True)]
           for c in (a, b, fresh)]
    for ra, rb, rc in zip(*out):
        assert torch.equal(ra, rb) and not torch.equal(ra, rc)  # without the saved noise state: other readings
    assert a.ledger.totals() == b.ledger.totals() != fresh.ledger.totals()
    assert torch.equal(a._net.block_scales, b._net.block_scales)
    assert torch.equal(a.state_dict()["generator"], b.state_dict()["generator"])


def test_state_dict_of_another_network_is_refused():
    a = Chip(TONN(SPEC), CARD, seed=0)
    other = Chip(TONN(NetworkSpec("o", (dense(8, 3),))), CARD, seed=0)
    with pytest.raises(ValueError, match="another network"):
        other.load_state_dict(a.state_dict())


def test_network_converts_through_the_readout_chain_only(setup):
    """The network never calls back into the chip: given only the chip's readout chain it
    reads what ``measure`` reads (a chip with the same seed; fused path)."""
    chip, _, _, phases = setup
    twin = Chip(chip._net, CARD, seed=0)
    x = _inputs(6, seed=7)
    expected = twin.measure(x, phases)
    realised = chip._realise(phases[None].to(torch.float64), False)
    got = chip._net.forward(x.to(chip.dtype), realised, readout=chip._readout_chain, kappa=chip._kappa,
                            normalize=True, final_intensity=True, dtype=chip.dtype)[0]
    assert torch.equal(got, expected)
    counts = chip._readout_chain.take_counts()
    assert counts["adc_conversions"] > 0 and counts["dac_conversions"] > 0
    assert chip._readout_chain.take_counts() == dict.fromkeys(counts, 0)


def test_imports_point_one_way():
    """devices → circuits → cores → chip: no module of devices/, circuits/ or cores/ imports
    the chip (or anything above it), so the network cannot call back into the chip."""
    import ast
    from pathlib import Path

    root = Path(chip_module.__file__).parent
    above = ("photonic_sim.chip", "photonic_sim.training", "photonic_sim.scenarios", "photonic_sim.reports",
             "photonic_sim.cli", "photonic_sim.accelerators", "photonic_sim.nn")
    files = [f for sub in ("devices", "circuits", "cores") for f in sorted((root / sub).glob("*.py"))]
    assert len(files) > 10
    bad = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):  # from photonic_sim import chip → photonic_sim.chip
                names = [f"{node.module}.{a.name}" if node.module == "photonic_sim" else node.module or ""
                         for a in node.names]
            else:
                continue
            bad += [f"{f.name}: {n}" for n in names if n.startswith(above)]
    assert bad == []


# ------------------------------------------------------------------ the readout chain as a device
def test_readout_chain_conversions_and_counts():
    """E/O: the DAC rounds to k/(2^(b−1) − 1) (a hand-computed level); exact conversion reads
    Re y (coherent) or |y|² (intensity). O/E: a noisy coherent read of y is 2R·P_ch·Re y
    within 6σ of its analytic homodyne noise plus an LSB. Counts collect and reset."""
    chain = ReadoutChain.from_card(CARD, generator=torch.Generator().manual_seed(0), readout="intensity")
    half = 2 ** (CARD.dac.bits - 1) - 1
    v = torch.tensor([[0.3, -1.7, 1.0]], dtype=torch.float64)
    assert torch.equal(chain.encode(v), torch.tensor([[round(0.3 * half) / half, -1.0, 1.0]],
                                                     dtype=torch.complex128))
    y = torch.tensor([[0.6 + 0.2j, -0.3 - 0.4j]], dtype=torch.complex128)
    exact = ReadoutChain.from_card(CARD, readout="intensity", exact=True)
    torch.testing.assert_close(exact.detect(y, final=True), torch.tensor([[0.4, 0.25]], dtype=torch.float64),
                               rtol=0, atol=1e-15)
    assert torch.equal(exact.detect(y, final=False), y.real)
    many = y.expand(20000, 2)
    reading = chain.detect(many, final=False)  # intermediate: coherent whatever the final mode
    det, pch = chain.detector, chain.channel_power
    scale, floor = det.homodyne_noise(pch)
    sigma = torch.sqrt(scale * y.abs() ** 2 + floor) / (2 * det.responsivity * pch)  # reading units
    lsb = det.adc_grid(bipolar=True)[0] / (2 * det.tia_gain * det.responsivity * pch)
    assert ((reading - y.real).abs() <= 6 * sigma + lsb).all()
    torch.testing.assert_close(reading.std(0), sigma[0], rtol=0.05, atol=lsb)
    assert chain.take_counts() == {"dac_conversions": 3, "adc_conversions": 40000, "clipped": 0}
    assert chain.take_counts() == {"dac_conversions": 0, "adc_conversions": 0, "clipped": 0}


def test_readout_chain_differentiable_is_straight_through():
    """differentiable=True: the noisy, quantized reading with the gradient of the exact one
    (d Re y = 1 coherent, d |y|² = 2 Re y and 2 Im y intensity)."""
    chain = ReadoutChain.from_card(CARD, generator=torch.Generator().manual_seed(1))
    re = torch.tensor([0.5, -0.2], dtype=torch.float64, requires_grad=True)
    im = torch.tensor([0.1, 0.3], dtype=torch.float64, requires_grad=True)
    for final, want in ((False, (torch.ones(2), torch.zeros(2))), (True, (2 * re.detach(), 2 * im.detach()))):
        reading = chain.detect(torch.complex(re, im), final=final, differentiable=True)
        gre, gim = torch.autograd.grad(reading.sum(), (re, im))
        assert torch.equal(gre, want[0].double()) and torch.equal(gim, want[1].double())
        exact = re.detach() if not final else re.detach() ** 2 + im.detach() ** 2
        assert not torch.equal(reading.detach(), exact)  # the value is the noisy reading


@pytest.mark.parametrize("kw,match", [({"final_readout": "phase"}, "readout"),
                                      ({"full_scale_amplitude": 0.0}, "full_scale_amplitude"),
                                      ({"generator": None}, "generator")])
def test_readout_chain_rejects_bad_settings(kw, match):
    from photonic_sim.devices import Modulator, Photodetector

    args = {"generator": torch.Generator(), **kw}
    with pytest.raises(ValueError, match=match):
        ReadoutChain(Modulator.from_card(CARD), Photodetector.from_card(CARD), **args)
