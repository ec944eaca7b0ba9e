"""Safe, bounded YAML reading for every input file (device and accelerator cards, scenarios,
training recipes) and every ``--set`` value.

``yaml.safe_load`` semantics, plus checks that run before anything is constructed:

* the file is at most :data:`MAX_BYTES` and UTF-8; its text has at most :data:`MAX_ITEMS`
  separators (commas and line breaks: a bound on the number of entries, checked in C before
  parsing), so a 10⁶-element list is refused in milliseconds;
* the document is *composed* (parsed to nodes with libyaml when present; no constructor runs)
  and walked: a tag outside plain YAML (``!!python/object/apply:…``, ``!foo``), a key that
  is not a plain scalar, a key given twice in one mapping, nesting deeper than
  :data:`MAX_DEPTH` and more than :data:`MAX_NODES` nodes once aliases are expanded (a
  "billion laughs" document) are errors naming the key path;
* malformed YAML gives the line and column of the problem, never the offending line's text.

Errors are built by the caller's ``fail(file, key, what, allowed)`` (a :class:`ScenarioError`
for scenarios and recipes, a :class:`CardError` for cards), so each kind of file keeps its
one-line message format. No message echoes the file's content beyond a short preview.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # 1 MiB: shipped cards and scenarios are a few KiB
MAX_ITEMS = 20_000  # commas + line breaks in one document
MAX_DEPTH = 32  # nested mappings / lists
MAX_NODES = 50_000  # nodes after alias expansion

Fail = Callable[[str, str, str, str], Exception]

_PLAIN = "tag:yaml.org,2002:"
# Tags SafeLoader may construct that an input file can hold (timestamps reach the schema and
# fail there with "expected string").
_ALLOWED_TAGS = {_PLAIN + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")}
ALLOWED_TEXT = "plain YAML: mappings, lists, strings, numbers, booleans, null"


class _CLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe loading (libyaml when present) that also reads YAML 1.2 exponent floats."""


class _PyLoader(yaml.SafeLoader):
    """The pure-Python twin of :class:`_CLoader` (its error marks suit one-line values)."""


# YAML 1.1 reads 1e-9 and 1E+300 as strings (its floats need a '.'); a card value or a --set
# written that way is meant as a number, as in YAML 1.2 and JSON.
_EXP_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
for _loader in (_CLoader, _PyLoader):
    _loader.add_implicit_resolver(_PLAIN + "float", _EXP_FLOAT, list("-+0123456789"))


def preview(value: Any, limit: int = 40) -> str:
    """A short repr of a user value for an error message: at most ``limit`` characters, '…'
    where cut. Its cost is bounded by ``limit`` whatever the value's size: a string is cut
    before repr(), a list or mapping shows its first items only, an integer of hundreds of
    digits shows its size, an unknown object its type (repr() is never called on a whole
    user value)."""
    text = _short(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 1] + "…"


MAX_PATH_SHOWN = 200  # characters of a file path in a message; a longer one is cut in the middle


def short_path(path: object, limit: int = MAX_PATH_SHOWN) -> str:
    """``path`` as text, cut in the middle (``[...]``) when longer than ``limit``, control
    characters escaped (``\\x00``): a message names the file, but never repeats a path of
    thousands of characters (the file name at its end stays) nor writes raw bytes to a terminal."""
    text = str(path)
    if len(text) > limit:
        head = (limit - 5) // 2
        text = f"{text[:head]}[...]{text[len(text) - (limit - 5 - head):]}"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short(value: Any, budget: int) -> str:
    """A repr of ``value`` that is complete when shorter than ``budget``, else at least
    ``budget`` characters long (so the caller sees it was cut)."""
    if value is None or isinstance(value, (bool, float, complex, datetime.date, datetime.time)):
        return repr(value)
    if isinstance(value, int):
        bits = value.bit_length()
        return repr(value) if bits <= 128 else f"<an integer of about {int(bits * 0.30103) + 1} digits>"
    if isinstance(value, (str, bytes)):
        return repr(value[:budget])
    if isinstance(value, (list, tuple, dict)):
        is_map = isinstance(value, dict)
        parts, used = [], 2
        for item in (value.items() if is_map else value):
            if used >= budget:
                parts.append("…")
                break
            text = (f"{_short(item[0], budget - used)}: {_short(item[1], budget - used)}" if is_map
                    else _short(item, budget - used))
            parts.append(text)
            used += len(text) + 2
        ends = "{}" if is_map else ("()" if isinstance(value, tuple) else "[]")
        return ends[0] + ", ".join(parts) + ends[1]
    return f"<{type(value).__name__}>"


def read_yaml(path: str | Path, fail: Fail) -> Any:
    """Read and parse the YAML file ``path`` (see module docstring)."""
    src = str(path)
    need = f"a readable UTF-8 YAML file of at most {MAX_BYTES // 1024} KiB"
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise fail(src, "<root>", f"cannot read file: {exc.strerror or type(exc).__name__}", need) from None
    if len(data) > MAX_BYTES:
        raise fail(src, "<root>", f"file is larger than {MAX_BYTES // 1024} KiB", need)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(src, "<root>", f"not UTF-8 text (byte {exc.start} cannot be decoded)", need) from None
    return parse_yaml(text, src, fail)


def parse_yaml(text: str, src: str, fail: Fail, key: str = "<root>") -> Any:
    """Parse a YAML document: a file's text, or a ``--set`` value at ``key``."""
    items = text.count(",") + text.count("\n")
    if items > MAX_ITEMS:
        raise fail(src, key, f"too many entries ({items} commas and line breaks)",
                   f"at most {MAX_ITEMS} entries in one document")
    # libyaml (C) parses files; a --set value (a few characters) goes through the pure-Python
    # parser, whose error marks point into the one line rather than past its end.
    loader = _CLoader(text) if key == "<root>" else _PyLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except (yaml.YAMLError, RecursionError, ValueError) as exc:
            raise _error(exc, src, fail, key) from None
        if node is None:
            return None
        _Walk(src, fail).check(node, "" if key == "<root>" else key)
        try:
            return loader.construct_document(node)
        except (yaml.YAMLError, RecursionError, ValueError) as exc:  # ValueError: an integer of > 4300 digits
            raise _error(exc, src, fail, key) from None
    finally:
        loader.dispose()


def _error(exc: Exception, src: str, fail: Fail, key: str) -> Exception:
    """The one-line error for an exception of the YAML library (no text of the file in it)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        problem = _cut(exc.problem or exc.context or "syntax error")
        return fail(src, where if key == "<root>" else f"{key} ({where})", f"malformed YAML: {problem}", ALLOWED_TEXT)
    if isinstance(exc, RecursionError):
        return fail(src, key, "malformed YAML: nested too deeply", f"at most {MAX_DEPTH} levels of nesting")
    if isinstance(exc, yaml.YAMLError):
        return fail(src, key, f"malformed YAML: {_cut(str(exc))}", ALLOWED_TEXT)
    return fail(src, key, f"unreadable value: {_cut(str(exc))}", ALLOWED_TEXT)


def _cut(text: str, limit: int = 80) -> str:
    """A message from the YAML library, on one line and at most ``limit`` characters."""
    text = " ".join(str(text)[: limit * 4].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Walk:
    """One pass over the composed node graph (see the module docstring)."""

    def __init__(self, src: str, fail: Fail):
        self.src, self.fail = src, fail
        self.sizes: dict[int, int] = {}  # expanded node count per node (aliases counted again)
        self.open: set[int] = set()  # nodes being walked (an alias to one of them is a cycle)

    def check(self, node: yaml.Node, path: str, depth: int = 0) -> int:
        """Check ``node`` and return its expanded size; raises through ``fail``."""
        nid = id(node)
        if nid in self.sizes:  # an alias of a node already checked
            return self.sizes[nid]
        where = path or "<root>"
        line = node.start_mark.line + 1
        if nid in self.open:
            raise self.fail(self.src, where, f"recursive alias (line {line})", ALLOWED_TEXT)
        if depth > MAX_DEPTH:
            raise self.fail(self.src, where, f"nested more than {MAX_DEPTH} levels deep (line {line})",
                            f"at most {MAX_DEPTH} levels of nesting")
        if node.tag not in _ALLOWED_TAGS:
            tag = "!!" + node.tag[len(_PLAIN):] if node.tag.startswith(_PLAIN) else node.tag
            raise self.fail(self.src, where, f"unsafe or unsupported YAML tag {preview(tag)} (line {line})", ALLOWED_TEXT)
        if node.tag in (_PLAIN + "int", _PLAIN + "float") and len(node.value) > 64:
            raise self.fail(self.src, where, f"a number written with {len(node.value)} characters (line {line})",
                            "numbers of at most 64 characters")
        self.open.add(nid)
        size = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(self.src, where, f"a key is a list or mapping (line {key_node.start_mark.line + 1})",
                                    "plain keys: names, numbers")
                size += self.check(key_node, path, depth + 1)
                name = key_node.value
                shown = name if len(name) <= 40 else name[:39] + "…"
                sub = f"{path}.{shown}" if path else shown
                if name in seen:
                    raise self.fail(self.src, sub, f"duplicate key (lines {seen[name]} and {key_node.start_mark.line + 1})",
                                    "each key once per mapping")
                seen[name] = key_node.start_mark.line + 1
                size += self.check(value_node, sub, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                size += self.check(item, f"{path}.{i}" if path else str(i), depth + 1)
        self.open.discard(nid)
        if size > MAX_NODES:
            raise self.fail(self.src, where, f"more than {MAX_NODES} values once aliases are expanded (line {line})",
                            f"at most {MAX_NODES} values; anchors/aliases that do not multiply the document")
        self.sizes[nid] = size
        return size
