"""Lazy package exports (PEP 562), so ``photonic-sim --help`` / ``list`` never import torch.

A package's ``__init__`` lists its public names ONCE, as imports under ``if TYPE_CHECKING:``
(what static tools — type checkers, the API reference — read). :func:`attach` reads that block
from the file and returns the module ``__getattr__`` / ``__dir__`` that import each name from
its submodule on first use (then cache it on the package)::

    from typing import TYPE_CHECKING

    from photonic_sim._lazy import attach

    if TYPE_CHECKING:
        from .cards import DeviceCard, load_device_card

    __all__ = ["DeviceCard", "load_device_card"]
    __getattr__, __dir__ = attach(__name__, __file__)
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path


def type_checking_exports(init_file: str | Path) -> dict[str, str]:
    """``{public name: module}`` from the ``if TYPE_CHECKING:`` imports of ``init_file``."""
    tree = ast.parse(Path(init_file).read_text(encoding="utf-8"))
    where: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom):
                    for alias in imp.names:
                        where[alias.asname or alias.name] = "." * imp.level + (imp.module or "")
    return where


def attach(package: str, init_file: str | Path) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package`` (its ``__name__``) whose names are
    the ``TYPE_CHECKING`` imports of ``init_file`` (its ``__file__``)."""
    where = type_checking_exports(init_file)

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
