"""Baselines that are NOT in situ (they read gradients or weights), for reference only.

* ``fo``: first-order training by autograd through the simulator (the strategy
  ``photonic_sim.training.strategies.fo``; the chip is measured with
  ``differentiable=True``, quantizers pass gradients straight through).
* ``weight-map``: train offline on an *ideal software model* of the network (autograd; no
  quantization, noise, bias, crosstalk or coupler errors), then map the learned weights to
  phases by SVD + Clements decomposition (``PhotonicNetwork.from_weights``) and deploy them
  on the real, non-ideal chip without any in-situ correction. This shows what phase bias
  and device errors do to a model that was not trained in situ. With coherent readout the
  mapping is the exact weight round trip; with intensity readout the last pass depends on
  the complex block matrices, so the learned phases are deployed as they are (documented
  departure: the weight round trip would drop the imaginary parts).
"""

from __future__ import annotations

import torch

from photonic_sim.chip import Chip
from photonic_sim.training.strategies import make_strategy
from photonic_sim.training.trainer import Trainer, TrainConfig, TrainResult


def weight_map(network, card, task, config: TrainConfig, *, init: torch.Tensor, lr: float = 0.01,
               readout: str | None = None) -> tuple[torch.Tensor, TrainResult]:
    """Offline training on the ideal model, then mapping → (deployed phases, offline result)."""
    ideal = Chip(network, card, seed=config.seed, readout=readout, ideal=True, dtype=torch.float64)
    params = init.clone().to(torch.float64)
    strategy = make_strategy("fo", params, lr=lr, generator=None)
    offline = Trainer(ideal, task, strategy, TrainConfig(
        steps=config.steps, eval_every=config.eval_every, seed=config.seed, progress=config.progress)).run()
    learned = offline.phases
    if ideal.readout == "coherent":
        learned = network.from_weights(network.weights(learned))
    return learned, offline
