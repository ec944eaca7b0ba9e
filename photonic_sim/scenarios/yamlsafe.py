"""Safe YAML reading for scenarios, recipes and ``--set`` values, with one-line ScenarioErrors.

The checks (plain tags only, no duplicate keys, bounded size, depth and alias expansion,
malformed YAML reported by line and column without echoing the file) are those of
:mod:`photonic_sim.devices.yamlread`, shared with the device and accelerator cards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from photonic_sim.devices import yamlread

from .errors import ScenarioError


def read_yaml(path: Path) -> Any:
    """Parse the YAML file ``path`` safely (see :mod:`photonic_sim.devices.yamlread`)."""
    return yamlread.read_yaml(path, ScenarioError)


def parse_yaml(text: str, src: str, key: str = "<root>") -> Any:
    """Parse a YAML document (a file's text or a ``--set`` value at ``key``)."""
    return yamlread.parse_yaml(text, src, ScenarioError, key)
