"""``run_scenario``: the CLI's and the job runner's entry to :class:`Experiment` (the one
assembly path, ``scenarios/experiment.py``).

It returns a plain :class:`RunRecord` (report dict, metric history, phases per mesh,
checkpoint bytes); writing them to disk is the reports layer's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .experiment import Experiment
from .loader import Scenario


@dataclass
class RunRecord:
    """Everything a finished run produced (plain data)."""

    report: dict
    history: list[dict]
    phases_by_mesh: dict[str, np.ndarray]
    checkpoint: bytes | None


def run_scenario(scenario: Scenario, *, checkpoint_dir: Path | None = None, resume: bool = False,
                 progress: bool = False) -> RunRecord:
    """Train (unless ``task.kind`` is none), evaluate, and cost the whole run:
    ``Experiment.from_scenario(scenario).run(...)`` as a :class:`RunRecord`."""
    result = Experiment.from_scenario(scenario).run(checkpoint_dir=checkpoint_dir, resume=resume, progress=progress)
    return RunRecord(result.report, result.history, result.phases_by_mesh, result.checkpoint)
