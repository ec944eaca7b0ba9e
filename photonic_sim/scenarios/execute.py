"""Turn a validated :class:`Scenario` into a chip, a task, a strategy, and a finished run.

``run_scenario`` returns plain records (report dict, metric history, phases per mesh,
checkpoint bytes); writing them to disk is the reports layer's job (the CLI glues the two).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from photonic_sim.accelerators import estimate, training_cost
from photonic_sim.chip import Chip
from photonic_sim.cores import DenseONN, TONN
from photonic_sim.training.data import load_digits, load_mnist
from photonic_sim.training.strategies import fill_schedule_length, make_strategy
from photonic_sim.training.tasks import ClassificationTask
from photonic_sim.training.trainer import CHECKPOINT_FILE, Trainer, TrainConfig

from .loader import Scenario

SUBSPACE_MASKS = {"l2ight-sigma": "S", "tt-subspace": "tt"}


@dataclass
class RunRecord:
    """Everything a finished run produced (plain data)."""

    report: dict
    history: list[dict]
    phases_by_mesh: dict[str, np.ndarray]
    checkpoint: bytes | None


def build_network(scenario: Scenario):
    """TONN (space/time) or DenseONN, as the accelerator card's architecture says."""
    acc = scenario.accelerator_card
    if acc.architecture == "dense_onn":
        return DenseONN(scenario.network, acc.block_size)
    if acc.architecture == "tonn_time":
        return TONN(scenario.network, acc.block_size, "time", min(acc.num_cores or 1, _num_blocks(scenario)))
    return TONN(scenario.network, acc.block_size, "space")


def _num_blocks(scenario: Scenario) -> int:
    return TONN(scenario.network, scenario.accelerator_card.block_size).num_blocks


def readout_for(scenario: Scenario) -> str:
    """Recipe readout, else the accelerator card's, else the device card's; PINNs need
    signed outputs, so a PDE task defaults to coherent readout."""
    recipe, acc = scenario.recipe, scenario.accelerator_card
    if recipe.readout:
        return recipe.readout
    if scenario.task.kind == "pde":
        return "coherent"
    return acc.readout or scenario.device_card.photodetector.readout


def build_chip(scenario: Scenario, network=None) -> Chip:
    """PDE tasks run in float64 with the task's ``exact_readout`` choice: Stein estimates
    amplify per-reading errors (docs/pinn.md)."""
    network = network if network is not None else build_network(scenario)
    pde = scenario.task.kind == "pde"
    return Chip(network, scenario.device_card, seed=scenario.seed, readout=readout_for(scenario),
                exact_readout=pde and scenario.task.exact_readout,
                dtype=torch.float64 if pde else torch.float32)


def build_task(scenario: Scenario):
    task, recipe = scenario.task, scenario.recipe
    if task.kind in ("digits", "mnist"):
        data = load_digits(scenario.seed, task.test_fraction) if task.kind == "digits" else \
            load_mnist(task.data_dir, scenario.seed, task.test_fraction)
        return ClassificationTask(data, batch_size=recipe.batch_size, eval_batch_size=recipe.eval_batch_size,
                                  logit_scale=recipe.logit_scale, loss=recipe.loss)
    if task.kind == "pde":
        from photonic_sim.training.pinn import PINNTask

        return PINNTask(task.pde, estimator=task.estimator, sigma=task.sigma, level=task.level,
                        mc_samples=task.mc_samples, collocation=task.collocation, test_points=task.test_points,
                        residual_points=task.residual_points, eval_level=task.eval_level, seed=scenario.seed)
    raise ValueError(f"task.kind: {task.kind!r} has no training task")


def build_strategy(scenario: Scenario, chip: Chip, params: torch.Tensor):
    recipe = scenario.recipe
    options = dict(recipe.strategy_options)
    lr = options.pop("lr", 0.01)
    controls = chip.controls()
    if recipe.strategy == "fo":
        return make_strategy("fo", params, lr=lr, generator=None, **options)
    mask = controls["masks"][SUBSPACE_MASKS[recipe.strategy]] if recipe.strategy in SUBSPACE_MASKS else None
    if recipe.strategy == "tt-subspace":
        mask = mask | controls["masks"]["bias"]
    gen = torch.Generator().manual_seed(scenario.seed + 1)
    fill_schedule_length(options, recipe.steps)
    return make_strategy(recipe.strategy, params, lr=lr, generator=gen, mask=mask, periods=controls["periods"],
                         **options)


def cost_only(scenario: Scenario) -> dict:
    """Counts, area and per-inference energy / latency (no training)."""
    return estimate(scenario.accelerator_card, scenario.network, scenario.device_card).to_dict()


def run_scenario(scenario: Scenario, *, checkpoint_dir: Path | None = None, resume: bool = False,
                 progress: bool = False) -> RunRecord:
    """Train (unless ``task.kind`` is none), evaluate, and cost the whole run."""
    cost = cost_only(scenario)
    base = {"scenario": scenario.name, "variant": scenario.variant, "seed": scenario.seed,
            "task": scenario.task.model_dump(mode="json"), "counts": cost["counts"],
            "area_mm2": cost["area_mm2"], "inference": cost["inference"]}
    acc, dev, spec = scenario.accelerator_card, scenario.device_card, scenario.network
    if scenario.task.kind == "none":
        zero = training_cost(acc, spec, dev, {"queries": 0, "phase_settings": 0, "samples": 0})
        report = {**base, "metrics": {"name": "none", "final": None, "best": None, "history_file": "metrics.csv"},
                  "training": {"queries": 0, "energy_j": 0.0, "latency_s": 0.0,
                               "breakdown": zero["breakdown"], "wall_s": 0.0}}
        return RunRecord(report, [], {}, None)

    network = build_network(scenario)
    chip = build_chip(scenario, network)
    task = build_task(scenario)
    params = chip.init_phases(torch.Generator().manual_seed(scenario.seed))
    strategy = build_strategy(scenario, chip, params)
    recipe = scenario.recipe

    def priced(ledger: dict) -> tuple[float, float]:
        c = training_cost(acc, spec, dev, ledger)
        return c["energy_j"], c["latency_s"]

    stop = recipe.early_stopping
    config = TrainConfig(steps=recipe.steps, eval_every=recipe.eval_every, seed=scenario.seed, progress=progress,
                         patience=stop.patience if stop else None, min_delta=stop.min_delta if stop else 0.0,
                         checkpoint_every=recipe.checkpoint_every or None)
    trainer = Trainer(chip, task, strategy, config, checkpoint_dir=checkpoint_dir, cost=priced)
    result = trainer.run(resume=resume)
    tc = training_cost(acc, spec, dev, result.ledger)
    final = result.final.get("metric")
    report = {**base,
              "metrics": {"name": task.metric_name, "final": _finite(final), "best": _finite(result.best),
                          "higher_is_better": task.higher_is_better, "history_file": "metrics.csv",
                          **{k: _finite(v) for k, v in result.final.items() if k != "metric"}},
              "training": {"queries": int(result.ledger["queries"]), "energy_j": tc["energy_j"],
                           "latency_s": tc["latency_s"], "breakdown": tc["breakdown"], "wall_s": result.wall_s,
                           "strategy": recipe.strategy, "steps": trainer.step, "stopped": result.stopped,
                           "ledger": result.ledger, "eval_ledger": result.eval_ledger}}
    history = [_history_row(r) for r in result.history]
    ckpt = None
    if checkpoint_dir is not None and (Path(checkpoint_dir) / CHECKPOINT_FILE).is_file():
        ckpt = (Path(checkpoint_dir) / CHECKPOINT_FILE).read_bytes()
    return RunRecord(report, history, phases_by_mesh(network, result.phases), ckpt)


def phases_by_mesh(network, phases: torch.Tensor) -> dict[str, np.ndarray]:
    """Phases of each hardware matrix as a [blocks, phases-per-block] array (for heatmaps)."""
    out: dict[str, np.ndarray] = {}
    nb = network.block.num_phases
    ph = phases.detach().to(torch.float64).cpu().numpy()
    for name, sl in network.slices().items():
        if not name.endswith(".U"):
            continue
        matrix = name.split(".block(")[0]
        start = sl.start
        out.setdefault(matrix, []).append(ph[start : start + nb])
    return {name: np.stack(rows) for name, rows in out.items()}


def _history_row(row: dict) -> dict:
    return {"step": row["step"], "queries": row["queries"], "loss": _finite(row["loss"]),
            "metric": _finite(row.get("metric")), "energy_j": row.get("energy_j"),
            "latency_s": row.get("latency_s")}


def _finite(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
