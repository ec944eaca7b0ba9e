"""Subspace ZO strategies: perturb and update only a caller-chosen subset of the phases.

``l2ight-sigma``: only the Σ (singular-value attenuator) phases of each U·Σ·V† block, keeping
the unitaries fixed (the subspace idea of Gu et al., NeurIPS 2021 "L2ight", run here with a ZO
estimate on the chip instead of in-situ gradients).
``tt-subspace``: only the phases of the photonic blocks that realise TT cores.

Both are :class:`RGE` restricted to ``mask`` (required: the caller knows which phases are
which), default Adam; with n_active ≪ d the estimate's variance (∝ n_active/q) is much lower
than full-space RGE.
"""
from __future__ import annotations

from .base import Strategy
from .rge import RGE


class _MaskedRGE(Strategy):
    estimator_class = RGE
    overrides = {"optimizer": "adam", "q": 10}

    def __init__(self, params, *, lr, generator, mask=None, periods=None, **cfg):
        if mask is None:
            raise ValueError(f"{self.name} needs mask (bool [d]: the phases it may tune)")
        super().__init__(params, lr=lr, generator=generator, mask=mask, periods=periods, **cfg)


class L2ightSigma(_MaskedRGE):
    """RGE on the Σ phases only (mask from the caller); default Adam update."""

    name = "l2ight-sigma"


class TTSubspace(_MaskedRGE):
    """RGE on the TT-core phases only (mask from the caller); default Adam update."""

    name = "tt-subspace"
