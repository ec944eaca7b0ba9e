"""photonic-sim: a simulator for training photonic neural-network chips in situ.

    from photonic_sim import Experiment

    result = Experiment.from_file("quickstart", sets=["training.steps=20"]).run()
    result.write("runs/quickstart")

Layers (imports point down this list, never up):
devices -> circuits -> cores -> accelerators -> chip -> training -> scenarios -> reports -> cli

:class:`Experiment` (the one way a run is assembled: from a scenario or from Python objects)
and :class:`ExperimentResult` are imported on first use, so ``import photonic_sim`` does not
import torch (the command line starts fast).

Allocator. On glibc Linux, importing the package sets two malloc parameters (``mallopt``) so
that freed signal buffers are reused instead of being returned to the kernel and faulted in
again: ``M_MMAP_THRESHOLD`` 32 MiB (glibc's ceiling; blocks below it come from the heap, not
a fresh ``mmap``) and ``M_TRIM_THRESHOLD`` 1 GiB (free heap memory is kept up to that much).
A quickstart ZO step faulted ~1 400 fresh pages and an HJB ZO step ~21 000 without it (3-4 ms
and ~10 % of the step in system time; ``benchmarks/bench_step.py``, column ``faults``);
results are bit-identical either way. ``PHOTONIC_SIM_NO_MALLOPT=1`` leaves the allocator as
it is; so does any other C library (``tune_allocator`` returns False there).
"""

__version__ = "0.1.0"

import os
import sys
from typing import TYPE_CHECKING

from photonic_sim._lazy import attach

if TYPE_CHECKING:  # the public names, read by attach(); each loads on first use
    from photonic_sim.scenarios.experiment import Experiment, ExperimentResult

__all__ = ["Experiment", "ExperimentResult"]

__getattr__, __dir__ = attach(__name__, __file__)


def tune_allocator() -> bool:
    """Set glibc's mmap and trim thresholds (module docstring, "Allocator"); True when set.
    Called once at import; does nothing (False) off glibc Linux or with
    ``PHOTONIC_SIM_NO_MALLOPT`` set (not "" or "0")."""
    if sys.platform != "linux" or os.environ.get("PHOTONIC_SIM_NO_MALLOPT", "") not in ("", "0"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: their own allocators
            return False
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) & bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


ALLOCATOR_TUNED = tune_allocator()
