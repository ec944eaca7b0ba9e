"""``photonic-sim cost``: device counts, area, energy and latency of one inference.

    photonic-sim cost --accelerator tonn_space --model hjb20 [--devices silicon_thermo_optic]
                      [--layers 1-2] [--json]

``--model`` is one of

* a preset name (``photonic-sim list`` shows them);
* a scenario .yaml whose ``model:`` is a preset name or an inline ``{name, layers: [...]}``;
* a layer list .yaml: ``layers: [{kind: tt, in_modes: [4, 4, 4], out_modes: [4, 4, 4],
  ranks: 4, activation: relu}, {kind: dense, in: 64, out: 10}]`` (optional ``name:``;
  ``in``/``out`` stand for ``in_features``/``out_features``; ``ranks`` an integer or the
  full list [1, r, ..., 1]);
* ``path/to/model.py:factory``: the Python file is EXECUTED (imported as a module, its folder
  on ``sys.path`` so it can import its neighbours) and
  ``factory()`` is called with no arguments; it must return a ``torch.nn.Module`` whose
  ``nn.Linear`` and ``photonic_sim.nn`` layers are priced in registration order (activation
  modules such as ``nn.ReLU`` right after a layer count as its activation). Only give files
  you trust: running that code is the purpose of this form.

``--layers A-B`` keeps layers A..B (1-based, inclusive), e.g. to count a network without its
last dense layer. Bad input: one line on stderr naming the file and key, exit 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any


class _UsageError(ValueError):
    pass


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``cost`` subcommand; its ``func`` returns the exit code."""
    p = subparsers.add_parser("cost", help="hardware counts, area, energy and latency per inference",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accelerator", required=True, metavar="NAME|PATH",
                   help="accelerator card name (photonic-sim list) or a .yaml path")
    p.add_argument("--devices", default="silicon_thermo_optic", metavar="NAME|PATH",
                   help="device card name (photonic-sim list) or a .yaml path (default silicon_thermo_optic)")
    p.add_argument("--model", required=True, metavar="PRESET|FILE.yaml|FILE.py:FACTORY",
                   help="model preset, scenario or layer-list .yaml, or FILE.py:FACTORY "
                        "(executes FILE.py and calls FACTORY(); only for files you trust)")
    p.add_argument("--layers", metavar="A-B", help="keep layers A..B only (1-based, inclusive)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        report = _report(args)
    except _UsageError as exc:
        print(f"photonic-sim cost: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_table(report)
    return 0


def _report(args: argparse.Namespace):
    from photonic_sim.accelerators import estimate, load_accelerator_card
    from photonic_sim.devices.cards import load_device_card

    acc = _load("--accelerator", load_accelerator_card, args.accelerator)
    dev = _load("--devices", load_device_card, args.devices)
    model = _model(args.model)
    if args.layers:
        model = _slice(_as_spec(model), args.layers)
    try:
        return estimate(acc, model, dev)
    except ValueError as exc:
        raise _UsageError(f"--model: {exc}") from None


def _load(flag: str, load: Any, value: str) -> Any:
    try:
        return load(value)
    except ValueError as exc:
        raise _UsageError(f"{flag}: {exc}") from None


def _preview(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _model(text: str) -> Any:
    """A NetworkSpec (preset, scenario or layer-list YAML) or the nn.Module of FILE.py:FACTORY."""
    from photonic_sim.cores.spec import PRESETS, preset

    allowed = (f"allowed: {', '.join(sorted(PRESETS))}, an existing scenario or layer-list .yaml,"
               " or FILE.py:FACTORY")
    if text in PRESETS:
        return preset(text)
    if ".py:" in text:
        return _factory_model(text)
    from photonic_sim.library import is_file

    path = Path(text)
    if not text.endswith((".yaml", ".yml")) or not is_file(path):  # (a name too long for the file system: none)
        raise _UsageError(f"--model: {_preview(text)} is not a preset or an existing .yaml file ({allowed})")
    return _yaml_model(path)


def _yaml_model(path: Path):
    """A scenario's ``model:`` or a layer list ``{name?, layers: [...]}`` (module docstring)."""
    from photonic_sim.scenarios.errors import ScenarioError
    from photonic_sim.scenarios.loader import _network as scenario_network
    from photonic_sim.scenarios.yamlsafe import read_yaml

    src = str(path)
    try:
        raw = read_yaml(path)
        if isinstance(raw, dict) and "model" in raw:
            return scenario_network(raw["model"], src)
        if not isinstance(raw, dict) or "layers" not in raw:
            raise ScenarioError(src, "<root>", "neither a scenario (model: key) nor a layer list (layers: key)",
                                "a mapping with model: or layers:")
        unknown = sorted(set(raw) - {"name", "layers"})
        if unknown:
            raise ScenarioError(src, _preview(unknown[0]), "unknown key in a layer list", "name, layers")
        if not isinstance(raw["layers"], list):
            raise ScenarioError(src, "layers", "expected a list of layers", "a list of {kind, ...} mappings")
        layers = [_layer_item(item, src, i) for i, item in enumerate(raw["layers"])]
        name = raw.get("name", path.stem)
        try:
            return scenario_network({"name": name, "layers": layers}, src)
        except ScenarioError as exc:  # keys relative to this file: layers.N..., not model.layers.N...
            key = exc.key[len("model."):] if exc.key.startswith("model.") else exc.key
            raise ScenarioError(src, key, exc.what, exc.allowed) from None
    except ScenarioError as exc:
        raise _UsageError(f"--model: {exc}") from None


def _layer_item(item: Any, src: str, i: int) -> Any:
    """``in`` / ``out`` → ``in_features`` / ``out_features`` (dense) or a checked product of
    the modes (tt); an integer ``ranks`` → [1, r, ..., r, 1]."""
    from photonic_sim.scenarios.errors import ScenarioError

    if not isinstance(item, dict):
        return item  # the scenario validator words the error
    item = dict(item)
    for short, full in (("in", "in_features"), ("out", "out_features")):
        if short not in item:
            continue
        value = item.pop(short)
        if item.get("kind") == "tt":
            modes = item.get("in_modes" if short == "in" else "out_modes")
            if isinstance(modes, list) and all(isinstance(m, int) for m in modes) and value != math.prod(modes):
                raise ScenarioError(src, f"layers.{i}.{short}", f"{_preview(value)} is not the product of the "
                                    f"{short}_modes ({math.prod(modes)})", "in = prod(in_modes), out = prod(out_modes)")
        else:
            item[full] = value
    ranks, modes = item.get("ranks"), item.get("in_modes")
    if item.get("kind") == "tt" and isinstance(ranks, int) and not isinstance(ranks, bool) and isinstance(modes, list):
        item["ranks"] = [1] + [ranks] * (len(modes) - 1) + [1]
    return item


def _factory_model(text: str) -> Any:
    """Execute FILE.py and return FACTORY() (module docstring); every failure is one line."""
    from photonic_sim.accelerators.mapping import is_module
    from photonic_sim.library import is_file

    file, _, factory = text.rpartition(":")
    path = Path(file)
    form = "allowed: FILE.py:FACTORY with an existing .py file and a function name"
    if not file.endswith(".py") or not is_file(path):
        raise _UsageError(f"--model: {_preview(file)}: no such .py file ({form})")
    if not factory.isidentifier():
        raise _UsageError(f"--model: {path}: factory {_preview(factory)} is not a Python name ({form})")
    # imported like a script: its folder on sys.path (sibling modules), registered in sys.modules
    name = f"_photonic_sim_user_model_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # the user's file: report, never trace back
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _UsageError(f"--model: {path}: running the file raised {type(exc).__name__}: "
                          f"{_preview(str(exc), 80)} (allowed: a file that imports cleanly)") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    fn = getattr(module, factory, None)
    if not callable(fn):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))[:8]
        raise _UsageError(f"--model: {path}: no function {factory!r} (allowed: {', '.join(names) or 'none defined'})")
    try:
        model = fn()
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _UsageError(f"--model: {path}:{factory}(): raised {type(exc).__name__}: {_preview(str(exc), 80)}"
                          " (allowed: a function callable with no arguments)") from None
    if not is_module(model):
        raise _UsageError(f"--model: {path}:{factory}(): returned {type(model).__name__}, not a torch.nn.Module"
                          " (allowed: an nn.Module with nn.Linear / photonic_sim.nn layers)")
    return model


def _as_spec(model: Any):
    from photonic_sim.accelerators.mapping import is_module, spec_from_module

    if not is_module(model):
        return model
    try:
        return spec_from_module(model)
    except ValueError as exc:
        raise _UsageError(f"--model: {exc}") from None


def _slice(net, text: str):
    from photonic_sim.cores.spec import NetworkSpec

    n = len(net.layers)
    try:
        a, b = (int(x) for x in text.split("-"))
    except ValueError:
        a = b = 0
    if not 1 <= a <= b <= n:
        raise _UsageError(f"--layers: {_preview(text)} is not a range A-B with 1 <= A <= B <= {n}"
                          f" (allowed: e.g. 1-{n - 1 or 1})")
    return NetworkSpec(f"{net.name}[layers {a}-{b}]", net.layers[a - 1 : b])


def _rows(report) -> list[tuple[str, list[tuple[str, str]]]]:
    from photonic_sim.reports.units import eng

    d = report.to_dict()
    inf = d["inference"]
    link = d["link"]
    return [
        ("Counts", [(k, f"{v:,}") for k, v in d["counts"].items()]),
        ("Area (mm², × area_overhead)", [(k, f"{v:.4g}") for k, v in d["area_mm2"]["breakdown"].items()]
         + [("total", f"{d['area_mm2']['total']:.4g}")]),
        ("Energy per inference", [(k, eng(v, "J")) for k, v in inf["breakdown"]["energy_j"].items()]
         + [("total", eng(inf["energy_j"], "J"))]),
        ("Latency per inference", [(k, eng(v, "s")) for k, v in inf["breakdown"]["latency_s"].items()]
         + [("total", eng(inf["latency_s"], "s"))]),
        ("Link budget and power", [
            ("critical-path insertion loss", f"{link['insertion_loss_db']:.3g} dB"),
            ("fan-out (optical channels)", f"{link['fanout']:,}"),
            ("laser optical power", f"{link['laser_dbm']:.3g} dBm = {eng(link['laser_optical_w'], 'W')}"),
            ("laser electrical power", eng(link["laser_electrical_w"], "W")),
            ("phase-shifter static power", eng(link["heater_power_w"], "W")),
            ("mean programmed phase", f"{link['heater_mean_phase_rad']:.4g} rad"),
            ("ADC / DAC energy per conversion",
             f"{eng(link['adc_energy_per_conversion_j'], 'J')} / {eng(link['dac_energy_per_conversion_j'], 'J')}"),
            ("symbol rate", eng(d["schedule"]["symbol_rate_hz"], "Hz")),
            ("symbol periods / inference", f"{d['schedule']['symbol_periods']:,}"),
            ("programs / inference", f"{d['schedule']['programs_per_inference']:,}"),
        ]),
    ]


def _print_table(report) -> None:
    title = (f"{report.model} on {report.accelerator} ({report.architecture}, k={report.block_size}, "
             f"{report.readout} readout) with {report.devices}")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        for section, rows in _rows(report):
            print(f"\n{section}")
            for name, value in rows:
                print(f"  {name:<32} {value:>20}")
        return
    table = Table(title=title, show_header=False)
    table.add_column("item")
    table.add_column("value", justify="right")
    for section, rows in _rows(report):
        table.add_row(f"[bold]{section}[/bold]", "")
        for name, value in rows:
            table.add_row(f"  {name}", value)
    Console().print(table)
