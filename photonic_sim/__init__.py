"""photonic-sim: a simulator for training photonic neural-network chips in situ.

Layers (imports point down this list, never up):
devices -> circuits -> cores -> accelerators -> chip -> training -> scenarios -> reports -> cli
"""

__version__ = "0.1.0"
