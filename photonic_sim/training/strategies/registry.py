"""Strategy classes by recipe name (:data:`STRATEGIES`) and :func:`make_strategy`."""

from __future__ import annotations

from torch import Tensor

from . import STRATEGY_NAMES
from .adjoint import Adjoint
from .base import Strategy, did_you_mean
from .cge import ZoCGE
from .flops import Flops
from .fo import FirstOrder
from .forward_forward import ForwardForward
from .gauss_newton import ZoGN
from .grzo import GRZO
from .hybrid import Hybrid
from .mixedtrain import MixedTrain
from .node_perturbation import NodePerturbationStrategy
from .quzo import QuZO
from .rge import ZoRGE, ZoSignRGE
from .spsa import ZoSPSA
from .staged import Staged
from .subspace import L2ightSigma, TTSubspace

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (ZoRGE, ZoSignRGE, ZoCGE, Hybrid, ZoSPSA, Flops, MixedTrain, L2ightSigma,
                TTSubspace, Staged, FirstOrder, QuZO, GRZO, Adjoint, NodePerturbationStrategy, ForwardForward,
                ZoGN)
}
"""Strategy classes by recipe name (the keys are :data:`STRATEGY_NAMES`)."""

if tuple(STRATEGIES) != STRATEGY_NAMES:  # pragma: no cover - a new class must be named in both
    raise ImportError(f"strategies: classes {tuple(STRATEGIES)} differ from STRATEGY_NAMES {STRATEGY_NAMES}")


def make_strategy(name: str, params: Tensor, **cfg) -> Strategy:
    """Build strategy ``name`` on ``params`` (1-D phases, rad, updated in place) with
    ``lr``, ``generator`` (torch.Generator; all random draws), optional ``mask`` (bool [d])
    and ``periods`` ([d], rad) and the strategy's options; ValueError (one line) on an unknown
    name or option, or a value out of range."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; allowed: {sorted(STRATEGIES)}."
                         f"{did_you_mean(name, STRATEGIES)}")
    return STRATEGIES[name](params, **cfg)
