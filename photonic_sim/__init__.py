"""photonic-sim: a simulator for training photonic neural-network chips in situ.

    from photonic_sim import Experiment

    result = Experiment.from_file("quickstart", sets=["training.steps=20"]).run()
    result.write("runs/quickstart")

Layers (imports point down this list, never up):
devices -> circuits -> cores -> accelerators -> chip -> training -> scenarios -> reports -> cli

:class:`Experiment` (the one way a run is assembled: from a scenario or from Python objects)
and :class:`ExperimentResult` are imported on first use, so ``import photonic_sim`` does not
import torch (the command line starts fast).
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from photonic_sim._lazy import attach

if TYPE_CHECKING:  # the public names, read by attach(); each loads on first use
    from photonic_sim.scenarios.experiment import Experiment, ExperimentResult

__all__ = ["Experiment", "ExperimentResult"]

__getattr__, __dir__ = attach(__name__, __file__)
