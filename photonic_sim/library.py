"""Where the card, recipe and scenario libraries live, and the search path for a lab's own.

Four kinds of library file are found by a bare name (``tonn_space``, ``quickstart``):

========================  =========================================
kind                      what the ``<name>.yaml`` files are
========================  =========================================
``devices``               device cards
``accelerators``          accelerator cards
``training``              training recipes
``scenarios``             scenarios
========================  =========================================

A bare name (no ``/``, no ``.yaml``/``.yml`` suffix) is looked up, in this order:

1. every folder of the environment variable ``PHOTONIC_SIM_PATH`` (folders separated by
   :data:`os.pathsep`, ``:`` on Linux and macOS), as ``<folder>/<kind>/<name>.yaml``, first
   folder first, so a lab can keep its own card library and shadow a built-in one;
2. the built-in library shipped with the package.

Anything else (``my_cards/chip.yaml``, ``./x.yaml``, a :class:`~pathlib.Path`) is a path and is
used as given. The built-in library is the top-level ``devices/``, ``accelerators/``,
``training/`` and ``scenarios/`` folders of a source checkout (and of an editable install); a
wheel carries a copy of them as ``photonic_sim/builtin/<kind>/`` (see ``setup.py``).

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

KINDS = ("devices", "accelerators", "training", "scenarios")
"""The library kinds, each a folder of ``<name>.yaml`` files."""

ENV_VAR = "PHOTONIC_SIM_PATH"
"""Environment variable holding the user search path (:data:`os.pathsep`-separated folders)."""

_PACKAGE = Path(__file__).resolve().parent


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown library kind {kind!r} (allowed: {', '.join(KINDS)})")


def builtin_dir(kind: str) -> Path:
    """The folder of the built-in ``kind`` library: the copy inside an installed wheel
    (``photonic_sim/builtin/<kind>``) when there is one, else ``<checkout>/<kind>``."""
    _check(kind)
    installed = _PACKAGE / "builtin" / kind
    return installed if installed.is_dir() else _PACKAGE.parent / kind


def user_dirs(kind: str) -> list[Path]:
    """The ``<folder>/<kind>`` folders named by ``PHOTONIC_SIM_PATH``, in order (empty entries
    are skipped; ``~`` is expanded; folders that do not exist are kept, they simply hold
    nothing)."""
    _check(kind)
    entries = os.environ.get(ENV_VAR, "").split(os.pathsep)
    return [expand(e) / kind for e in entries if e.strip()]


def expand(path: str | Path) -> Path:
    """``path`` with a leading ``~`` / ``~user`` expanded; left as written when there is no
    such home directory (the caller then reports the path as missing)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # "Could not determine home directory": ~nosuchuser
        return Path(path)


def is_file(path: str | Path) -> bool:
    """``Path(path).is_file()``, False for a path the OS cannot even look up (a name longer
    than the file system allows, a NUL character) instead of an exception."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: str | Path) -> bool:
    """``Path(path).is_dir()``, False for a path the OS cannot look up (see :func:`is_file`)."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def search_dirs(kind: str) -> list[Path]:
    """Every folder a bare ``kind`` name is looked up in, first match wins: the user search
    path, then the built-in library."""
    return [*user_dirs(kind), builtin_dir(kind)]


def is_name(name_or_path: str | Path) -> bool:
    """True when ``name_or_path`` is a bare library name rather than a path."""
    if isinstance(name_or_path, Path):
        return False
    text = str(name_or_path)
    return not ("/" in text or os.sep in text or text.endswith((".yaml", ".yml")))


def find(kind: str, name: str) -> Path | None:
    """The file ``<name>.yaml`` of the first search folder that has it, or None."""
    for folder in search_dirs(kind):
        path = folder / f"{name}.yaml"
        if is_file(path):
            return path
    return None


def names(kind: str) -> list[str]:
    """Sorted names of every ``kind`` file on the search path (a name shadowed by an earlier
    folder is listed once)."""
    found: set[str] = set()
    for folder in search_dirs(kind):
        if is_dir(folder):
            found.update(p.stem for p in folder.glob("*.yaml") if is_file(p))
    return sorted(found)


def locate(kind: str, name_or_path: str | Path) -> str | Path:
    """The path of a bare name found on the search path; anything else (a path, or a name that
    is nowhere) is returned unchanged so the caller's loader reports it in its own words."""
    if is_name(name_or_path):
        path = find(kind, str(name_or_path))
        if path is not None:
            return path
    return name_or_path


__all__ = ["ENV_VAR", "KINDS", "builtin_dir", "expand", "find", "is_dir", "is_file", "is_name", "locate", "names",
           "search_dirs", "user_dirs"]
