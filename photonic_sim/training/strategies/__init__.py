"""Zeroth-order training on ``torch.optim``: gradient estimators and the strategies built on them.

An *estimator* (:class:`RGE`, :class:`SignRGE`, :class:`CGE`, :class:`SPSA`,
:class:`GaussianForward`, :class:`CoordinateSearch`; :class:`Autograd` is the not-in-situ
reference) sees only the black-box loss closure ``closure(phases[P, d]) -> losses[P]`` (one
row = one chip query; phases in rad), spends its queries in ONE batched call and writes its
gradient estimate (loss per rad) into ``phases.grad``; any ``torch.optim`` optimizer and
``lr_scheduler`` then updates the phases::

    est = RGE(q=16, mu=0.05, two_sided=True, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam([phases], lr=0.01)
    for _ in range(steps):
        loss = est.estimate_(closure, phases, periods=periods)
        opt.step()
        constrain_(phases, periods)   # wrap phases into [0, period)

A *strategy* (``make_strategy(name, params, lr=..., generator=..., mask=..., periods=...,
**options)``, names in :data:`STRATEGIES`) is that loop packaged for recipes:
``optimizer: adam``, ``schedule: cosine`` etc. name the torch.optim classes (see
:mod:`.base`), ``step(closure) -> loss`` does one estimate + update, ``state_dict()`` resumes
bit-identically. ``estimators`` holds the pure estimator functions.
"""
from typing import TYPE_CHECKING

from photonic_sim._lazy import attach

STRATEGY_NAMES = ("zo-rge", "zo-sign-rge", "zo-cge", "hybrid", "spsa", "flops", "mixedtrain", "l2ight-sigma",
                  "tt-subspace", "staged", "fo", "quzo", "grzo", "adjoint", "node-perturbation",
                  "forward-forward", "zo-gn")
"""Recipe names of the strategies (torch-free, for ``photonic-sim list``); :data:`STRATEGIES`
maps each to its class."""

if TYPE_CHECKING:  # the public names, read by attach(); each loads on first use
    from .adjoint import ADJOINT_HARDWARE, Adjoint, InSituAdjoint
    from .base import (COMMON, Estimator, Strategy, advance, constrain_, fill_schedule_length, make_optimizer,
                       make_scheduler)
    from .cge import CGE, ZoCGE
    from .estimators import Estimate
    from .flops import Flops, GaussianForward
    from .fo import Autograd, FirstOrder
    from .forward_forward import ForwardForward, LocalGoodness
    from .gauss_newton import SubspaceGaussNewton, ZoGN
    from .grzo import GRZO, GroupRelative
    from .hybrid import Hybrid
    from .mixedtrain import CoordinateSearch, MixedTrain
    from .node_perturbation import NodePerturbation, NodePerturbationStrategy
    from .quzo import QuantizedRGE, QuZO
    from .options import Option, check_options
    from .registry import STRATEGIES, make_strategy
    from .rge import RGE, SignRGE, ZoRGE, ZoSignRGE
    from .spsa import SPSA, ZoSPSA
    from .staged import Staged
    from .subspace import L2ightSigma, TTSubspace

__all__ = [
    # estimators (write .grad) and their building blocks
    "Estimator", "RGE", "SignRGE", "CGE", "SPSA", "GaussianForward", "CoordinateSearch", "Autograd",
    "Estimate", "Option", "check_options", "constrain_", "QuantizedRGE", "GroupRelative",
    "InSituAdjoint", "NodePerturbation", "LocalGoodness", "ADJOINT_HARDWARE", "SubspaceGaussNewton",
    # strategies (estimator + torch.optim optimizer + lr scheduler)
    "STRATEGIES", "STRATEGY_NAMES", "make_strategy", "Strategy", "make_optimizer", "make_scheduler", "advance",
    "fill_schedule_length", "COMMON", "ZoRGE", "ZoSignRGE", "ZoCGE", "Hybrid", "ZoSPSA", "Flops",
    "MixedTrain", "L2ightSigma", "TTSubspace", "Staged", "FirstOrder", "QuZO", "GRZO", "Adjoint",
    "NodePerturbationStrategy", "ForwardForward", "ZoGN",
]

__getattr__, __dir__ = attach(__name__, __file__)
