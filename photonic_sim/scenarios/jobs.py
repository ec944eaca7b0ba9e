"""Many runs of one scenario (strategy comparisons, parameter sweeps) on a local process
pool (default) or on Ray.

A job is plain data (scenario path + ``--set`` overrides + a label + the identity of its
inputs), so it pickles to any worker. Its identity (:func:`scenario_identity`) is a hash of
the fully resolved scenario — every card and recipe value it pulls in, the overrides, the
seed — and the package version, not of the path and the ``--set`` strings: editing the
scenario or a card gives new identities, so the job runs again. Each finished job is saved
as ``<results_dir>/<job id>.json`` (atomically); a restarted sweep reuses the rows whose
file exists (``on_done`` sees them with ``cached: True``, so the caller can say so). A job
that fails becomes a row with an ``error`` field — reported, never dropped, and tried again
on restart. A worker that finds the scenario changed since the job was planned fails the
job rather than run other inputs under its name.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from photonic_sim.training.compare import pool_map
from photonic_sim.training.strategies import STRATEGIES
from photonic_sim.training.strategies.base import COMMON
from photonic_sim.training.trainer import stop_status

from .errors import ScenarioError
from .identity import scenario_identity
from .loader import load_scenario

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    scenario: str
    sets: tuple[str, ...]
    label: dict = field(default_factory=dict)
    identity: str = ""  # scenario_identity of what the job runs; see job()
    variant: str | None = None  # run this entry of the scenario's variants: instead of the base

    @property
    def id(self) -> str:
        text = json.dumps([self.identity or [self.scenario, list(self.sets)], self.label], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def job(scenario_path: str | Path, sets: Iterable[str], label: dict, variant: str | None = None) -> Job:
    """A :class:`Job` whose identity is the hash of its resolved inputs (validates them)."""
    sets = tuple(sets)
    scenario = _pick(load_scenario(scenario_path, list(sets)), variant)
    return Job(str(scenario_path), sets, dict(label), scenario_identity(scenario), variant)


def _pick(scenario, variant: str | None):
    if variant is None:
        return scenario
    if variant not in scenario.variants:
        raise ScenarioError(str(scenario.path), f"variants.{variant}", "no such variant",
                            ", ".join(sorted(scenario.variants)) or "none")
    return scenario.variants[variant]


def strategy_sets(scenario_path: str, strategy: str, sets: Iterable[str] = ()) -> list[str]:
    """``--set`` lines that switch a scenario's recipe to ``strategy``, keeping the recipe's
    options that the new strategy accepts (lr, q, mu, optimizer, ...)."""
    if strategy not in STRATEGIES:
        from .errors import did_you_mean

        raise ScenarioError("--strategies", strategy, "unknown strategy",
                            ", ".join(sorted(STRATEGIES)) + did_you_mean(strategy, STRATEGIES))
    base = load_scenario(scenario_path, list(sets))
    allowed = set(COMMON) | set(STRATEGIES[strategy].defaults) | {"lr"}
    options = {k: v for k, v in base.recipe.strategy_options.items() if k in allowed}
    if strategy == "fo":
        options = {k: v for k, v in options.items() if k in ("lr", "optimizer")}
    # YAML, not JSON: json writes 1e-05, which YAML 1.1 (the --set parser) reads as a string
    text = yaml.safe_dump(options, default_flow_style=True, width=math.inf, sort_keys=False).strip()
    return [f"training.strategy={strategy}", f"training.strategy_options={text}"]


def run_job(job: Job) -> dict:
    """Run one job in this process → a result row (plain data)."""
    import torch

    from .execute import run_scenario

    torch.set_num_threads(int(os.environ.get("PHOTONIC_SIM_JOB_THREADS", "1")))
    t0 = time.perf_counter()
    row: dict = {**job.label, "job": job.id}
    try:
        scenario = _pick(load_scenario(job.scenario, list(job.sets)), job.variant)
        if job.identity and scenario_identity(scenario) != job.identity:
            raise ScenarioError(job.scenario, "<root>", "the scenario or a card it uses changed since the job "
                                "was planned", "run the command again")
        record = run_scenario(scenario)
    except Exception as exc:  # a failed job is a row, never a lost job
        row.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=3),
                   wall_s=time.perf_counter() - t0)
        return row
    rep = record.report
    row.update(
        metric=rep["metrics"]["name"], metric_final=rep["metrics"]["final"], metric_best=rep["metrics"]["best"],
        higher_is_better=rep["metrics"].get("higher_is_better", True),
        queries=rep["training"]["queries"], training_energy_j=rep["training"]["energy_j"],
        training_latency_s=rep["training"]["latency_s"], wall_s=rep["training"]["wall_s"],
        inference_energy_j=rep["inference"]["energy_j"], inference_latency_s=rep["inference"]["latency_s"],
        mzi_blocked=rep["counts"]["mzi_blocked"], area_mm2=rep["area_mm2"]["total"],
        history=[[h["queries"], h["metric"]] for h in record.history if h.get("metric") is not None],
        stopped=rep["training"].get("stopped", "completed"),
        status=stop_status(rep["training"].get("stopped", "completed")),
    )
    return row


def run_jobs(jobs: list[Job], *, results_dir: Path, workers: int = 1, backend: str = "local",
             ray_address: str | None = None, on_done: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every job not already finished in ``results_dir``; rows come back in job order."""
    if backend not in BACKENDS:
        raise ValueError(f"--backend: {backend!r} is not one of {BACKENDS}")
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict] = {}
    todo = []
    for job in jobs:
        cached = _cached_row(results_dir / f"{job.id}.json", job)
        if cached is None:
            todo.append(job)
            continue
        done[job.id] = cached
        if on_done:
            on_done(cached)

    def finish(row: dict) -> None:
        if "error" not in row:
            tmp = results_dir / f".{row['job']}.json.tmp"
            tmp.write_text(json.dumps(row))
            tmp.replace(results_dir / f"{row['job']}.json")
        done[row["job"]] = row
        if on_done:
            on_done(row)

    if todo:
        if backend == "ray":
            _run_ray(todo, finish, ray_address)
        else:
            pool_map(run_job, todo, workers=workers, on_done=finish,
                     on_error=lambda job, exc: {**job.label, "job": job.id,
                                                "error": f"worker failed: {type(exc).__name__}: {exc}"})
    return [done[job.id] for job in jobs]


def _cached_row(path: Path, job: Job) -> dict | None:
    """The saved row of ``job`` (with ``cached: True``), or None when there is none or it is
    unreadable (then the job runs again)."""
    if not path.is_file():
        return None
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or row.get("job") != job.id or "error" in row:
        return None
    return {**row, "cached": True}


def _run_ray(jobs: list[Job], finish, address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray: Ray is not installed (pip install 'photonic-sim[ray]')") from None
    address = address or os.environ.get("RAY_ADDRESS") or None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PHOTONIC_SIM_JOB_THREADS": os.environ.get("PHOTONIC_SIM_JOB_THREADS", "1")}})
    try:
        remote = ray.remote(run_job)
        pending = {remote.remote(job): job for job in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    finish(ray.get(ref))
                except Exception as exc:
                    finish({**job.label, "job": job.id, "error": f"ray task failed: {type(exc).__name__}: {exc}"})
    finally:
        if started:
            ray.shutdown()


def job_dicts(jobs: list[Job]) -> list[dict]:
    return [asdict(j) | {"id": j.id} for j in jobs]
