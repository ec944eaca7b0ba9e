"""Training strategies: zeroth-order in-situ optimizers over a batched loss closure.

``make_strategy(name, params, lr=..., generator=..., mask=None, periods=None, **cfg)``
builds one of ``STRATEGIES``; see ``base`` for the common contract and options and
``estimators`` for the pure estimator functions.
"""
from __future__ import annotations

from torch import Tensor

from .base import Strategy, did_you_mean, fill_schedule_length
from .cge import ZoCGE
from .flops import Flops
from .fo import FirstOrder
from .hybrid import Hybrid
from .mixedtrain import MixedTrain
from .rge import ZoRGE, ZoSignRGE
from .spsa import SPSA
from .staged import Staged
from .subspace import L2ightSigma, TTSubspace

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (ZoRGE, ZoSignRGE, ZoCGE, Hybrid, SPSA, Flops, MixedTrain, L2ightSigma,
                TTSubspace, Staged, FirstOrder)
}


def make_strategy(name: str, params: Tensor, **cfg) -> Strategy:
    """Build strategy ``name`` on ``params``; ValueError on an unknown name or option."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; allowed: {sorted(STRATEGIES)}."
                         f"{did_you_mean(name, STRATEGIES)}")
    return STRATEGIES[name](params, **cfg)


__all__ = ["STRATEGIES", "make_strategy", "fill_schedule_length", "Strategy", "ZoRGE", "ZoSignRGE", "ZoCGE", "Hybrid",
           "SPSA", "Flops", "MixedTrain", "L2ightSigma", "TTSubspace", "Staged", "FirstOrder"]
