"""What can be named in a scenario (for ``photonic-sim list``)."""

from __future__ import annotations

from photonic_sim.accelerators.cards import list_accelerator_cards
from photonic_sim.cores.spec import PRESETS
from photonic_sim.devices.cards import list_device_cards

from .loader import list_scenarios
from .recipes import list_training_recipes, strategy_names
from .schema import PDES


def available() -> dict[str, list[str]]:
    """Sorted names by kind: devices, accelerators, training, scenarios, strategies, presets, pdes."""
    return {
        "devices": list_device_cards(),
        "accelerators": list_accelerator_cards(),
        "training": list_training_recipes(),
        "scenarios": list_scenarios(),
        "strategies": strategy_names(),
        "presets": sorted(PRESETS),
        "pdes": list(PDES),
    }
