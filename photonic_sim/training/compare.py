"""Strategy comparison: several strategies × seeds on one setup → rows and a summary.

    rows = compare(ClassificationRun(dataset="digits", steps=300), ["hybrid", "fo"], [0, 1, 2])
    table = summarize(rows)

``build_run(strategy, seed) -> row`` does one run; it must be picklable when ``workers > 1``
(jobs go to a local ``ProcessPoolExecutor`` with the *spawn* context, so each worker imports
the package afresh and seeds itself from ``seed``). :class:`ClassificationRun` is such a
callable, built from plain data (names, numbers, dicts). A job that raises becomes a row with
an ``error`` field (and NaN numbers), never dropped.

Row (one run): ``strategy``, ``seed``, ``metric`` (the metric's name, e.g. "accuracy"),
``metric_final`` (last evaluation on the test split, through the noisy chip), ``queries``
(training queries in the chip ledger; evaluation excluded), ``training_energy_j``,
``training_latency_s`` (cost model over the training ledger; NaN without an accelerator),
``wall_s``, ``history`` (list of ``[queries, metric]`` at every evaluation, for the
convergence figure), plus ``in_situ`` and ``stopped``.
"""

from __future__ import annotations

import math
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_context
from typing import Any

import torch

ROW_KEYS = ("strategy", "seed", "metric", "metric_final", "queries", "training_energy_j",
            "training_latency_s", "wall_s", "history")
_NAN_ROW = {"metric_final": math.nan, "queries": math.nan, "training_energy_j": math.nan,
            "training_latency_s": math.nan, "wall_s": math.nan}
NETWORKS = ("tonn", "dense")
DATASETS = ("digits", "mnist")


def result_row(strategy: str, seed: int, result, metric: str, *, in_situ: bool = True,
               cost: Callable[[dict], tuple[float, float]] | None = None) -> dict:
    """A comparison row from a ``TrainResult`` (see module docstring)."""
    energy, latency = cost(result.ledger) if cost is not None else (math.nan, math.nan)
    history = [[int(h["queries"]), float(h["metric"])] for h in result.history if "metric" in h]
    return {"strategy": strategy, "seed": int(seed), "metric": metric,
            "metric_final": float(result.final.get("metric", math.nan)),
            "queries": int(result.ledger.get("queries", 0)), "training_energy_j": float(energy),
            "training_latency_s": float(latency), "wall_s": float(result.wall_s), "history": history,
            "in_situ": bool(in_situ), "stopped": result.stopped}


def linear_cost(accelerator, model, devices) -> Callable[[dict], tuple[float, float]]:
    """``ledger totals -> (energy_j, latency_s)`` of ``accelerators.training_cost``, priced once:
    that model is linear in (queries, phase_settings, samples) with no constant term, so three
    unit ledgers give exact coefficients and every later call is three multiply-adds (the
    trainer prices every history row)."""
    from photonic_sim.accelerators import training_cost

    keys = ("queries", "phase_settings", "samples")
    coef = []
    for key in keys:
        unit = training_cost(accelerator, model, devices, {k: float(k == key) for k in keys})
        coef.append((unit["energy_j"], unit["latency_s"]))

    def price(ledger: dict) -> tuple[float, float]:
        n = [float(ledger[k]) for k in keys]
        return (sum(c[0] * v for c, v in zip(coef, n)), sum(c[1] * v for c, v in zip(coef, n)))

    return price


def _job(build_run, strategy: str, seed: int, metric: str) -> dict:
    t0 = time.perf_counter()
    try:
        row = build_run(strategy, seed)
    except Exception as exc:  # a failed job is reported, never dropped
        return {"strategy": strategy, "seed": int(seed), "metric": metric, **_NAN_ROW,
                "wall_s": time.perf_counter() - t0, "history": [],
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    return row


def pool_map(fn: Callable, items: Sequence, *, workers: int = 1, on_error: Callable,
             on_done: Callable[[dict], None] | None = None) -> list:
    """``fn(item)`` for every item, results in item order.

    ``workers > 1``: a spawn-context process pool (torch single-threaded in each worker so
    they do not oversubscribe the cores); ``fn`` and the items must pickle. A worker that
    dies yields ``on_error(item, exc)`` instead of a result. ``on_done(result)`` is called as
    each one finishes (completion order), e.g. to save it at once.
    """
    results: list = [None] * len(items)

    def finish(i: int, result) -> None:
        results[i] = result
        if on_done is not None:
            on_done(result)

    if workers <= 1:
        for i, item in enumerate(items):
            finish(i, fn(item))
        return results
    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # the worker itself died (or the job did not pickle)
                result = on_error(items[i], exc)
            finish(i, result)
    return results


def _job_item(build_run, metric: str, item: tuple[str, int]) -> dict:
    return _job(build_run, item[0], item[1], metric)


def compare(build_run: Callable[[str, int], dict], strategies: Sequence[str], seeds: Sequence[int],
            workers: int = 1) -> list[dict]:
    """Run ``build_run(strategy, seed)`` for every pair; rows in (strategy, seed) order.

    ``workers > 1``: a process pool (:func:`pool_map`; each job seeds itself through
    ``seed``). ``workers = 1`` runs in this process.
    """
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers: {workers!r} is out of range (allowed: integer >= 1)")
    if not strategies or not seeds:
        raise ValueError("strategies / seeds: need at least one of each")
    metric = getattr(build_run, "metric", "metric")
    jobs = [(s, int(seed)) for s in strategies for seed in seeds]

    def died(item, exc):
        return {"strategy": item[0], "seed": item[1], "metric": metric, **_NAN_ROW, "history": [],
                "error": f"{type(exc).__name__}: {exc}"}

    return pool_map(partial(_job_item, build_run, metric), jobs, workers=workers, on_error=died)


def _mean_std(values: list[float]) -> tuple[float, float]:
    good = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not good:
        return math.nan, math.nan
    return statistics.fmean(good), (statistics.stdev(good) if len(good) > 1 else 0.0)


def summarize(rows: Sequence[dict], group_by: Sequence[str] = ("strategy",)) -> list[dict]:
    """Per group of rows sharing the ``group_by`` values (first-appearance order): the group
    keys, n runs, failed runs (rows with ``error``), metric_final mean ± std (sample std, 0 for
    one run; NaN when no run has a finite value), mean queries / energy / latency / wall over
    the successful runs (NaN where none has a finite value)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in group_by), []).append(r)
    out = []
    for key, mine in groups.items():
        ok = [r for r in mine if "error" not in r]
        metric = next((r["metric"] for r in ok if r.get("metric")), mine[0].get("metric", "metric"))
        mean, std = _mean_std([r.get("metric_final") for r in ok])
        entry = {**dict(zip(group_by, key)), "metric": metric, "runs": len(mine),
                 "failed": len(mine) - len(ok), "metric_mean": mean, "metric_std": std}
        for cost in ("queries", "training_energy_j", "training_latency_s", "wall_s"):
            entry[cost] = _mean_std([r.get(cost) for r in ok])[0]
        out.append(entry)
    return out


@dataclass(frozen=True)
class ClassificationRun:
    """One classification run per ``(strategy, seed)``, built from plain data (picklable).

    * data: ``dataset`` "digits" (embedded) or "mnist" (``data_dir`` with IDX files);
      ``test_fraction`` (None: the loader's default); the split uses ``split_seed`` (the same
      test set for every run).
    * chip: ``model`` (a preset name or a ``NetworkSpec``), ``network`` "tonn" (TT layers on
      photonic tensor cores) or "dense" (``DenseONN``: every layer as a blocked dense
      matrix), ``devices`` card name plus ``device_overrides`` (dotted keys), ``readout``.
      ``seed`` sets the chip (manufacturing draws and noise), the initial phases, the
      strategy's generator and the mini-batch order.
    * training: ``steps``, ``batch_size``, ``eval_every``, ``eval_batch_size``,
      ``logit_scale``, ``loss``, ``patience``; ``options[strategy]`` are the strategy's
      options (``lr`` required; ``mask`` may name a mask kind of ``chip.controls()``, e.g.
      "S" or "tt"; ``l2ight-sigma`` defaults to "S", ``tt-subspace`` to "tt" plus the
      electronic biases, as in ``scenarios.execute``).
    * ``weight-map`` (not in situ): offline training on the ideal model
      (``options["weight-map"]``: lr, steps), mapped and deployed; 0 chip training queries.
      ``"<base>+<strategy>"`` (e.g. "weight-map+hybrid"): in-situ training started from the
      mapped phases instead of random ones.
    * cost: ``accelerator`` card name (None: energy/latency NaN) → training energy/latency
      of the training ledger.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    test_fraction: float | None = None
    split_seed: int = 0
    model: Any = "digits"
    network: str = "tonn"
    devices: str = "silicon_thermo_optic"
    device_overrides: dict = field(default_factory=dict)
    readout: str | None = None
    accelerator: str | None = "tonn_space"
    steps: int = 300
    batch_size: int = 64
    eval_every: int = 25
    eval_batch_size: int = 512
    logit_scale: float = 10.0
    loss: str = "cross_entropy"
    patience: int | None = None
    options: dict = field(default_factory=dict)
    metric: str = "accuracy"

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset: {self.dataset!r} is not one of {DATASETS}")
        if self.network not in NETWORKS:
            raise ValueError(f"network: {self.network!r} is not one of {NETWORKS}")
        if self.dataset == "mnist" and not self.data_dir:
            raise ValueError("data_dir: required for dataset 'mnist' (a directory with IDX files)")

    # -------------------------------------------------------------- building blocks
    def spec(self):
        from photonic_sim.cores.spec import preset

        return preset(self.model) if isinstance(self.model, str) else self.model

    def load_data(self):
        from photonic_sim.training.data import load_digits, load_mnist

        kw = {} if self.test_fraction is None else {"test_fraction": self.test_fraction}
        if self.dataset == "digits":
            return load_digits(seed=self.split_seed, **kw)
        return load_mnist(self.data_dir, seed=self.split_seed, **kw)

    def card(self):
        from photonic_sim.devices import load_device_card

        return load_device_card(self.devices, overrides=dict(self.device_overrides))

    def network_obj(self):
        from photonic_sim.cores.photonic import TONN, DenseONN

        return (TONN if self.network == "tonn" else DenseONN)(self.spec())

    def chip(self, seed: int, network=None):
        from photonic_sim.chip import Chip

        return Chip(network if network is not None else self.network_obj(), self.card(), seed=seed,
                    readout=self.readout)

    def task(self, dataset=None):
        from photonic_sim.training.tasks import ClassificationTask

        return ClassificationTask(dataset if dataset is not None else self.load_data(),
                                  batch_size=self.batch_size, eval_batch_size=self.eval_batch_size,
                                  logit_scale=self.logit_scale, loss=self.loss)

    def config(self, seed: int, steps: int | None = None):
        from photonic_sim.training.trainer import TrainConfig

        return TrainConfig(steps=steps or self.steps, eval_every=self.eval_every, patience=self.patience,
                           seed=seed)

    def cost(self, network) -> Callable[[dict], tuple[float, float]] | None:
        if self.accelerator is None:
            return None
        return linear_cost(self.accelerator, network.spec, self.card())

    def strategy(self, name: str, params: torch.Tensor, chip, seed: int):
        from photonic_sim.training.strategies import fill_schedule_length, make_strategy

        opts = dict(self.options.get(name, {}))
        ctl = chip.controls()
        mask = opts.pop("mask", {"l2ight-sigma": "S", "tt-subspace": "tt"}.get(name))
        if isinstance(mask, str):
            mask = ctl["masks"][mask] | (ctl["masks"]["bias"] if name == "tt-subspace" else False)
        gen = torch.Generator().manual_seed(seed + 104729)
        if name == "fo":
            gen = None
        fill_schedule_length(opts, self.steps)
        return make_strategy(name, params, generator=gen, periods=ctl["periods"], mask=mask, **opts)

    # -------------------------------------------------------------- one run
    def __call__(self, strategy: str, seed: int) -> dict:
        from photonic_sim.training.baselines import weight_map
        from photonic_sim.training.trainer import Trainer

        torch.manual_seed(seed)
        data = self.load_data()
        task = self.task(data)
        network = self.network_obj()
        chip = self.chip(seed, network)
        cost = self.cost(network)
        base, _, insitu = strategy.partition("+")
        if base == "weight-map":
            wm = dict(self.options.get("weight-map", {}))
            init = chip.init_phases(torch.Generator().manual_seed(seed))
            t0 = time.perf_counter()
            phases, _ = weight_map(network, self.card(), task, self.config(seed, wm.pop("steps", None)),
                                   init=init, lr=wm.pop("lr", 0.01), readout=self.readout)
            if not insitu:
                deployed = task.evaluate(chip, phases)
                return {"strategy": strategy, "seed": int(seed), "metric": self.metric,
                        "metric_final": deployed["metric"], "queries": 0, "training_energy_j": 0.0,
                        "training_latency_s": 0.0, "wall_s": time.perf_counter() - t0,
                        "history": [[0, deployed["metric"]]], "in_situ": False,
                        "stopped": "offline training on the ideal model, mapped, deployed"}
            params, name = phases.clone(), insitu
        else:
            params, name = chip.init_phases(torch.Generator().manual_seed(seed)), strategy
        strat = self.strategy(name, params, chip, seed)
        result = Trainer(chip, task, strat, self.config(seed), cost=cost).run()
        return result_row(strategy, seed, result, self.metric, in_situ=strat.in_situ, cost=cost)
