"""What can be named in a scenario (for ``photonic-sim list``), without importing torch."""

from __future__ import annotations

from photonic_sim import library
from photonic_sim.cores.spec import PRESETS

from .schema import PDES


def available() -> dict[str, list[str]]:
    """Sorted names by kind: devices, accelerators, training, scenarios, strategies, presets, pdes
    (cards, recipes and scenarios from the search path of :mod:`photonic_sim.library`)."""
    from photonic_sim.training.strategies import STRATEGY_NAMES

    return {
        "devices": library.names("devices"),
        "accelerators": library.names("accelerators"),
        "training": library.names("training"),
        "scenarios": library.names("scenarios"),
        "strategies": sorted(STRATEGY_NAMES),
        "presets": sorted(PRESETS),
        "pdes": list(PDES),
    }
