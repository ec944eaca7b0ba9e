"""What a run computes, as one hash, and the resume check built on it.

``scenario_identity(scenario)`` hashes the fully resolved scenario — every card and recipe
value it pulls in, the model, the task, the overrides, the seed — and the photonic_sim
version; where the files lie does not count, their content does. A task that reads a data
directory (MNIST) adds each file's name, size and content hash — of the whole file up to
16 MiB, else of its first and last 1 MiB (a gzip file ends in the CRC of all its content; a
raw IDX file larger than that is told apart by size and edges without reading tens of MB
per job). ``compare`` / ``sweep``
name their jobs by it (a changed scenario or card reruns a job) and ``run`` writes it as
``identity.json`` next to its checkpoint, so ``run --resume`` can refuse a checkpoint made
from other inputs (:func:`check_resume`) instead of mixing two runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

IDENTITY_FILE = "identity.json"
_ALLOWED = "(allowed: the scenario, --set values and seed the checkpoint was made with, or a new run)"


class ResumeError(ValueError):
    """A checkpoint that this run must not continue from; the message is one line."""


def scenario_identity(scenario) -> str:
    """Hash of a scenario's resolved inputs and the package version (see module docstring)."""
    import photonic_sim

    resolved = {k: v for k, v in scenario.resolved().items() if k not in ("variants", "description", "source")}
    for card in ("devices", "accelerator"):  # where a file lies is no input; its content is
        resolved[card] = {k: v for k, v in resolved[card].items() if k != "source"}
    data_dir = getattr(scenario.task, "data_dir", None)
    if data_dir:
        resolved["task"] = {k: v for k, v in resolved["task"].items() if k != "data_dir"}
        resolved["data_files"] = _data_stamp(Path(data_dir))
    text = json.dumps({"scenario": resolved, "photonic_sim": photonic_sim.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _data_stamp(directory: Path, whole: int = 16 << 20, edge: int = 1 << 20) -> list:
    """[name, size, sha256] of each file in ``directory``: the hash of the whole file up to
    ``whole`` bytes, else of its first and last ``edge`` bytes."""
    stamp = []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        size = path.stat().st_size
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            if size <= whole:
                digest.update(fh.read())
            else:
                digest.update(fh.read(edge))
                fh.seek(size - edge)
                digest.update(fh.read(edge))
        stamp.append([path.name, size, digest.hexdigest()])
    return stamp


def run_identity(scenario) -> dict:
    """The content of ``identity.json``: the identity hash, the scenario name, seed and version."""
    import photonic_sim

    return {"identity": scenario_identity(scenario), "scenario": scenario.name, "seed": scenario.seed,
            "photonic_sim": photonic_sim.__version__}


def write_identity(directory: str | Path, scenario) -> bytes:
    """Write ``identity.json`` for ``scenario`` into ``directory`` (atomically); returns its bytes."""
    data = json.dumps(run_identity(scenario), sort_keys=True).encode()
    path = Path(directory) / IDENTITY_FILE
    tmp = path.with_name(f".{IDENTITY_FILE}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


def read_identity(directory: str | Path) -> dict | None:
    """``identity.json`` of ``directory``, or None when it is missing or malformed."""
    try:
        made = json.loads((Path(directory) / IDENTITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(made, dict) and isinstance(made.get("identity"), str) and isinstance(made.get("seed"), int)
    return made if ok else None


def check_resume(directory: str | Path, checkpoint_file: str, scenario) -> None:
    """Raise :class:`ResumeError` (one line) unless ``directory`` holds a data-only checkpoint
    made from ``scenario``'s resolved inputs and seed (``CheckpointError`` for a bad file)."""
    from photonic_sim.training.trainer import read_checkpoint

    directory = Path(directory)
    state = read_checkpoint(directory / checkpoint_file)
    made = read_identity(directory)
    if made is None:
        raise ResumeError(f"{directory / IDENTITY_FILE}: missing or unreadable, so the checkpoint's inputs "
                          f"are unknown {_ALLOWED}")
    if made["seed"] != scenario.seed or state["seed"] != scenario.seed:
        raise ResumeError(f"seed: the checkpoint was made with seed {made['seed']}, this run has seed "
                          f"{scenario.seed} {_ALLOWED}")
    if made["identity"] != scenario_identity(scenario):
        raise ResumeError(f"{scenario.path}: the resolved scenario (cards, recipe, overrides) differs from the "
                          f"one checkpoint {directory / checkpoint_file} was made with {_ALLOWED}")
