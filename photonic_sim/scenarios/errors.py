"""The one error a scenario mistake raises, and the did-you-mean helper.

Every message is ONE line::

    <file>: <key.path>: <what was wrong> (allowed: <values or range>)
"""

from __future__ import annotations

from collections.abc import Iterable

from photonic_sim.devices.cardio import did_you_mean as _did_you_mean
from photonic_sim.devices.yamlread import preview, short_path

__all__ = ["ScenarioError", "did_you_mean", "preview", "short_path"]


class ScenarioError(ValueError):
    """A scenario (or a training recipe, or a ``--set`` override) is wrong; ``str()`` is one line.

    Fields are kept so a caller can re-prefix the key path (``variants.<name>.…``). A key
    path written by the user is cut to a short form (each part at most 40 characters), so a
    message never repeats user data at length; values in ``what`` go through :func:`preview`.
    """

    def __init__(self, file: str, key: str, what: str, allowed: str | None = None):
        key = ".".join(p if len(p) <= 40 else p[:39] + "…" for p in str(key or "<root>").split("."))
        self.file, self.key, self.what, self.allowed = short_path(file), key, what, allowed
        text = f"{self.file}: {self.key}: {what}" + (f" (allowed: {allowed})" if allowed else "")
        super().__init__(" ".join(text.split()))

    def under(self, prefix: str) -> ScenarioError:
        """The same error with its key path moved under ``prefix`` (e.g. ``variants.spsa``)."""
        key = prefix if self.key == "<root>" else f"{prefix}.{self.key}"
        return ScenarioError(self.file, key, self.what, self.allowed)


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice (difflib ratio >= 0.6), or ``""``."""
    return _did_you_mean(word, choices, cutoff=0.6)
