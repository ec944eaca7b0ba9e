"""The one error a scenario mistake raises, and the did-you-mean helper.

Every message is ONE line::

    <file>: <key.path>: <what was wrong> (allowed: <values or range>)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ScenarioError(ValueError):
    """A scenario (or a training recipe, or a ``--set`` override) is wrong; ``str()`` is one line.

    Fields are kept so a caller can re-prefix the key path (``variants.<name>.…``).
    """

    def __init__(self, file: str, key: str, what: str, allowed: str | None = None):
        self.file, self.key, self.what, self.allowed = str(file), key or "<root>", what, allowed
        text = f"{self.file}: {self.key}: {what}" + (f" (allowed: {allowed})" if allowed else "")
        super().__init__(" ".join(text.split()))

    def under(self, prefix: str) -> ScenarioError:
        """The same error with its key path moved under ``prefix`` (e.g. ``variants.spsa``)."""
        key = prefix if self.key == "<root>" else f"{prefix}.{self.key}"
        return ScenarioError(self.file, key, self.what, self.allowed)


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
