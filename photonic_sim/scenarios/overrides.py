"""Dotted-key overrides: ``--set key.path=value`` and the ``overrides:`` block of a scenario.

``parse_set("training.steps=50")`` → ``("training.steps", 50)``: the value is parsed as a YAML
scalar / list / mapping with ``yaml.safe_load`` (so ``6`` is an int, ``[1,2]`` a list,
``mnist`` a string, ``null`` None).

``apply_set(raw, key, value)`` routes a key into the scenario mapping:

* ``devices.<k>``, ``accelerator.<k>``, ``training.<k>`` (a component name followed by more
  keys) → ``overrides.<component>["<k>"]`` (a dotted key of the card / recipe);
* ``overrides.<component>.<k>`` → the same;
* anything else (``seed``, ``task.kind``, ``devices``, ``model.layers.0.activation``) sets
  that path in the scenario itself, creating mappings as needed (an integer part indexes a
  list).
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ScenarioError, preview
from .schema import COMPONENTS
from .yamlsafe import parse_yaml

_SET_FORM = "key.path=value, e.g. training.steps=50 or task.kind=mnist"
MAX_SET_CHARS = 4096  # one --set is a key and a short value; the value is never echoed at length


def parse_set(text: str, src: str) -> tuple[str, Any]:
    """Split and parse one ``--set`` argument (errors name ``src``, the scenario file)."""
    text = str(text)
    key, sep, value = text.partition("=")
    key = key.strip()
    if len(text) > MAX_SET_CHARS:
        raise ScenarioError(src, f"--set {key[:40] if sep else preview(text)}", f"longer than {MAX_SET_CHARS} characters",
                            f"a key.path=value of at most {MAX_SET_CHARS} characters")
    if not sep or not key or any(not p for p in key.split(".")):
        raise ScenarioError(src, f"--set {preview(text)}", "expected key.path=value", _SET_FORM)
    return key, parse_yaml(value, src, key=f"--set {key}")


def apply_sets(raw: dict, pairs: list[tuple[str, Any]] | dict[str, Any], src: str, where: str = "--set ") -> dict:
    """A deep copy of ``raw`` with every (key, value) applied (see module docstring)."""
    out = copy.deepcopy(raw)
    for key, value in (pairs.items() if isinstance(pairs, dict) else pairs):
        apply_set(out, str(key), value, src, where)
    return out


def apply_set(raw: dict, key: str, value: Any, src: str, where: str = "--set ") -> None:
    parts = key.split(".")
    if parts[0] == "overrides" and len(parts) > 2 and parts[1] in COMPONENTS:
        parts = parts[1:]
    if parts[0] in COMPONENTS and len(parts) > 1:
        block = raw.setdefault("overrides", {})
        if not isinstance(block, dict):
            raise ScenarioError(src, f"{where}{key}", "'overrides' in the file is not a mapping", "a mapping")
        comp = block.setdefault(parts[0], {})
        if not isinstance(comp, dict):
            raise ScenarioError(src, f"{where}{key}", f"'overrides.{parts[0]}' in the file is not a mapping", "a mapping")
        comp[".".join(parts[1:])] = value
        return
    node: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        here = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                raise ScenarioError(src, f"{where}{key}", f"{here}: no list item {preview(part)}", f"0 .. {len(node) - 1}")
            idx: Any = int(part)
        elif isinstance(node, dict):
            idx = part
            if not last and not isinstance(node.get(part), (dict, list)):
                if part in node and node[part] is not None:
                    raise ScenarioError(
                        src, f"{where}{key}", f"{here} is {preview(node[part])}, not a mapping", f"{here}=value"
                    )
                node[part] = {}
        else:  # a list item that is a scalar
            raise ScenarioError(src, f"{where}{key}", f"{here} is not a mapping", f"{here}=value")
        if last:
            node[idx] = value
        else:
            node = node[idx]


def set_dotted(data: dict, key: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``key = "a.b.c"``, creating mappings (a recipe override).

    An integer part indexes a list that is already there (``strategy_options.stages.1.steps``:
    the second stage's steps of a staged recipe); it never creates or extends one.

    Raises ``KeyError((prefix, what, allowed))`` when a prefix holds neither a mapping nor a
    list, or names no item of the list it indexes.
    """
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KeyError((here, "names no item of the list",
                                f"0 .. {len(node) - 1}" if node else "no index: the list is empty"))
            part = int(part)
        elif not last and node.get(part) is None:
            node[part] = {}
        if last:
            node[part] = value
            return
        if not isinstance(node[part], (dict, list)):
            raise KeyError((here, "holds a value, not a mapping", f"{here}=value"))
        node = node[part]
