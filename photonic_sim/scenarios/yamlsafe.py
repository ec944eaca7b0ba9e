"""Safe YAML reading: ``yaml.safe_load`` only, with one-line errors.

Before constructing anything the document is *composed* (parsed to nodes, which runs no
constructor) and walked: a tag outside plain YAML (``!!python/object/apply:…``, ``!foo``)
and a key given twice in one mapping are errors naming the key path and line. Malformed
YAML gives the line and column of the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ScenarioError

_PLAIN = "tag:yaml.org,2002:"
# Tags SafeLoader may construct that a scenario can hold (timestamps reach the schema and fail
# there with "expected string").
_ALLOWED_TAGS = {_PLAIN + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")}
_ALLOWED_TEXT = "plain YAML: mappings, lists, strings, numbers, booleans, null"


def read_yaml(path: Path) -> Any:
    """Parse ``path`` with ``yaml.safe_load`` after the node checks above."""
    src = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(src, "<root>", f"cannot read file: {exc}", "a readable UTF-8 YAML file") from None
    return parse_yaml(text, src)


def parse_yaml(text: str, src: str, key: str = "<root>") -> Any:
    """Parse a YAML document (a file's text or a ``--set`` value at ``key``)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check(node, "" if key == "<root>" else key, src, set())
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        problem = exc.problem or exc.context or "syntax error"
        where_key = where if key == "<root>" else f"{key} ({where})"
        raise ScenarioError(src, where_key, f"malformed YAML: {problem}", _ALLOWED_TEXT) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(src, key, f"malformed YAML: {exc}", _ALLOWED_TEXT) from None


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_PLAIN):] if tag.startswith(_PLAIN) else tag


def _check(node: yaml.Node, path: str, src: str, visited: set[int]) -> None:
    if id(node) in visited:  # an alias of a node already checked (also stops recursive anchors)
        return
    visited.add(id(node))
    line = node.start_mark.line + 1
    if node.tag not in _ALLOWED_TAGS:
        raise ScenarioError(
            src, path or "<root>", f"unsafe or unsupported YAML tag '{_show_tag(node.tag)}' (line {line})", _ALLOWED_TEXT
        )
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            _check(key_node, path, src, visited)
            name = str(key_node.value)
            sub = f"{path}.{name}" if path else name
            if name in seen:
                raise ScenarioError(
                    src, sub, f"duplicate key (lines {seen[name]} and {key_node.start_mark.line + 1})", "each key once per mapping"
                )
            seen[name] = key_node.start_mark.line + 1
            _check(value_node, sub, src, visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check(item, f"{path}.{i}" if path else str(i), src, visited)
