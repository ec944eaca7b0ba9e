"""``photonic-sim cost``: device counts, area, energy and latency of one inference.

    photonic-sim cost --accelerator tonn_space --model hjb20 [--devices silicon_thermo_optic]
                      [--layers 1-2] [--json]

``--model`` is a preset name or a scenario .yaml whose ``model:`` is a preset name or an
inline ``{name, layers: [...]}`` (scenario format); ``--layers A-B`` keeps layers A..B (1-based, inclusive),
e.g. to count a network without its last dense layer. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from photonic_sim.accelerators.cards import list_accelerator_cards, load_accelerator_card
from photonic_sim.accelerators.cost import CostReport, estimate
from photonic_sim.cores.spec import PRESETS, NetworkSpec, dense, preset, tt
from photonic_sim.devices.cards import list_device_cards, load_device_card


class _UsageError(ValueError):
    pass


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``cost`` subcommand; its ``func`` returns the exit code."""
    p = subparsers.add_parser("cost", help="hardware counts, area, energy and latency per inference",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accelerator", required=True, metavar="NAME|PATH",
                   help=f"accelerator card ({', '.join(list_accelerator_cards())}) or a .yaml path")
    p.add_argument("--devices", default="silicon_thermo_optic", metavar="NAME|PATH",
                   help=f"device card ({', '.join(list_device_cards())}) or a .yaml path")
    p.add_argument("--model", required=True, metavar="PRESET|SCENARIO_FILE",
                   help=f"model preset ({', '.join(sorted(PRESETS))}) or a scenario .yaml with a model: key")
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


def _report(args: argparse.Namespace) -> CostReport:
    acc = _load("--accelerator", load_accelerator_card, args.accelerator)
    dev = _load("--devices", load_device_card, args.devices)
    net = _model(args.model)
    if args.layers:
        net = _slice(net, args.layers)
    try:
        return estimate(acc, net, dev)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


def _load(flag: str, load: Any, value: str) -> Any:
    try:
        return load(value)
    except ValueError as exc:
        raise _UsageError(f"{flag}: {exc}") from None


def _model(text: str) -> NetworkSpec:
    allowed = f"allowed: {', '.join(sorted(PRESETS))}, or an existing scenario .yaml with a model: key"
    if text in PRESETS:
        return preset(text)
    path = Path(text)
    if not text.endswith((".yaml", ".yml")) or not path.is_file():
        raise _UsageError(f"--model: {text!r} is not a preset or an existing scenario .yaml ({allowed})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise _UsageError(f"--model: {path}: not valid YAML ({allowed})") from None
    if not isinstance(raw, dict) or "model" not in raw:
        raise _UsageError(f"--model: {path}: no 'model:' key ({allowed})")
    return _scenario_model(raw["model"], path)


def _scenario_model(spec: Any, path: Path) -> NetworkSpec:
    """A scenario's ``model:``: a preset name or an inline ``{name, layers: [...]}``."""
    if isinstance(spec, str) and spec in PRESETS:
        return preset(spec)
    build = {"tt": lambda d: tt(d.pop("in_modes"), d.pop("out_modes"), d.pop("ranks"), **d),
             "dense": lambda d: dense(d.pop("in_features"), d.pop("out_features"), **d)}
    try:
        layers = []
        for item in spec["layers"]:
            item = dict(item)
            layers.append(build[item.pop("kind")](item))
        return NetworkSpec(str(spec["name"]), tuple(layers))
    except (KeyError, TypeError, ValueError) as exc:
        raise _UsageError(
            f"--model: {path}: model: cannot build a network ({type(exc).__name__}: {exc})"
            f" (allowed: a preset name ({', '.join(sorted(PRESETS))}) or a mapping with name and layers"
            " of kind tt {in_modes, out_modes, ranks} / dense {in_features, out_features})"
        ) from None


def _slice(net: NetworkSpec, text: str) -> NetworkSpec:
    n = len(net.layers)
    try:
        a, b = (int(x) for x in text.split("-"))
    except ValueError:
        a = b = 0
    if not 1 <= a <= b <= n:
        raise _UsageError(f"--layers: {text!r} is not a range A-B with 1 <= A <= B <= {n} (allowed: e.g. 1-{n - 1 or 1})")
    return NetworkSpec(f"{net.name}[layers {a}-{b}]", net.layers[a - 1 : b])


_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
             (1e-12, "p"), (1e-15, "f"))


def eng(value: float, unit: str) -> str:
    """``value`` in engineering notation with an SI prefix, e.g. eng(3.2e-11, 'J') → '32 pJ'."""
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value / 1e-15:.4g} f{unit}"


def _rows(report: CostReport) -> list[tuple[str, list[tuple[str, str]]]]:
    d = report.to_dict()
    inf = d["inference"]
    return [
        ("Counts", [(k, f"{v:,}") for k, v in d["counts"].items()]),
        ("Area (mm², × area_overhead)", [(k, f"{v:.4g}") for k, v in d["area_mm2"]["breakdown"].items()]
         + [("total", f"{d['area_mm2']['total']:.4g}")]),
        ("Energy per inference", [(k, eng(v, "J")) for k, v in inf["breakdown"]["energy_j"].items()]
         + [("total", eng(inf["energy_j"], "J"))]),
        ("Latency per inference", [(k, eng(v, "s")) for k, v in inf["breakdown"]["latency_s"].items()]
         + [("total", eng(inf["latency_s"], "s"))]),
        ("Link budget and power", [
            ("critical-path insertion loss", f"{d['link']['insertion_loss_db']:.3g} dB"),
            ("fan-out (optical channels)", f"{d['link']['fanout']:,}"),
            ("laser optical power", f"{d['link']['laser_dbm']:.3g} dBm = {eng(d['link']['laser_optical_w'], 'W')}"),
            ("laser electrical power", eng(d["link"]["laser_electrical_w"], "W")),
            ("phase-shifter static power", eng(d["link"]["heater_power_w"], "W")),
            ("symbol rate", eng(d["schedule"]["symbol_rate_hz"], "Hz")),
            ("symbol periods / inference", f"{d['schedule']['symbol_periods']:,}"),
            ("programs / inference", f"{d['schedule']['programs_per_inference']:,}"),
        ]),
    ]


def _print_table(report: CostReport) -> None:
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
