"""Strategy comparison: several strategies × seeds on one setup → rows and a summary.

    rows = compare(build_run, ["hybrid", "fo"], [0, 1, 2])
    table = summarize(rows)

``build_run(strategy, seed) -> row`` does one run; it must be picklable when ``workers > 1``
(jobs go to a local ``ProcessPoolExecutor`` with the *spawn* context, so each worker imports
the package afresh and seeds itself from ``seed``). The usual one builds a
:class:`photonic_sim.Experiment` from plain data (names, numbers, dicts) and returns
``experiment.run().row()``. A job that raises becomes a row with an ``error`` field (and NaN
numbers), never dropped.

Row (one run): ``strategy``, ``seed``, ``metric`` (the metric's name, e.g. "accuracy"),
``metric_final`` (last evaluation on the test split, through the noisy chip), ``queries``
(training queries in the chip ledger; evaluation excluded), ``training_energy_j``,
``training_latency_s`` (cost model over the training ledger),
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
from functools import partial
from multiprocessing import get_context

ROW_KEYS = ("strategy", "seed", "metric", "metric_final", "queries", "training_energy_j",
            "training_latency_s", "wall_s", "history")
_NAN_ROW = {"metric_final": math.nan, "queries": math.nan, "training_energy_j": math.nan,
            "training_latency_s": math.nan, "wall_s": math.nan}


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
    import os

    from .workers import init_worker  # workers end with this process (no orphans after a kill)

    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=get_context("spawn"),
                             initializer=init_worker, initargs=(1, os.getpid())) as pool:
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
