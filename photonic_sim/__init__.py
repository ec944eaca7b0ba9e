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

_LAZY = {"Experiment": "photonic_sim.scenarios.experiment", "ExperimentResult": "photonic_sim.scenarios.experiment"}

__all__ = ["Experiment", "ExperimentResult"]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
