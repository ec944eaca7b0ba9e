"""The built-in libraries ship with the package, and the PHOTONIC_SIM_PATH search path.

* A wheel built from the source carries every card, recipe and scenario of the top-level
  ``devices/``, ``accelerators/``, ``training/``, ``scenarios/`` folders (and the sdist carries
  the folders themselves), built from a copy of the tree so the checkout gets no ``build/``.
* (slow) That wheel, installed non-editable into a fresh venv, runs the two acceptance
  commands of issue 20 from an empty directory.
* The search path: a lab's folders are searched before the built-ins, by every loader.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from photonic_sim import library

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "photonic_sim", *library.KINDS)


def _builtin_files(root: Path = ROOT) -> dict[str, set[str]]:
    return {kind: {p.name for p in (root / kind).glob("*.yaml")} for kind in library.KINDS}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", library.ENV_VAR)}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory) -> Path:
    """The files a build reads, copied out of the checkout."""
    dst = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "builtin"))
        else:
            shutil.copy2(src, dst / name)
    return dst


@pytest.fixture(scope="module")
def wheel(source_copy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source_copy), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out)],
        check=True, env=_clean_env(), cwd=out, timeout=300,
    )
    (whl,) = out.glob("photonic_sim-*.whl")
    return whl


def test_wheel_carries_every_library_file(wheel, source_copy):
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind, files in _builtin_files(source_copy).items():
        assert files, f"no built-in {kind}"
        packed = {n.rsplit("/", 1)[1] for n in names if n.startswith(f"photonic_sim/builtin/{kind}/")}
        assert packed == files, kind
    assert "photonic_sim/reports/schema.json" in names
    modules = {p.relative_to(source_copy).as_posix() for p in (source_copy / "photonic_sim").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert not any("__pycache__" in n for n in names)


def _sdist(source: Path, out: Path) -> Path:
    """Build the sdist of ``source`` into ``out`` with setuptools' PEP 517 hook."""
    subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"],
        check=True, cwd=source, env=_clean_env(), timeout=120, capture_output=True,
    )
    (sdist,) = out.glob("photonic_sim-*.tar.gz")
    return sdist


def test_sdist_carries_the_library_folders(source_copy, tmp_path):
    sdist = _sdist(source_copy, tmp_path / "dist")
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for kind, files in _builtin_files(source_copy).items():
        assert {f"{kind}/{f}" for f in files} <= names, kind
    assert {"setup.py", "pyproject.toml", "photonic_sim/library.py"} <= names


@pytest.mark.slow
def test_a_wheel_built_from_the_sdist_carries_the_library(source_copy, tmp_path):
    """What ``pip install photonic_sim-*.tar.gz`` does: unpack the sdist, build a wheel from it."""
    sdist = _sdist(source_copy, tmp_path / "dist")
    with tarfile.open(sdist) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # our own sdist either way
        tar.extractall(tmp_path / "unpacked", **safe)
    (tree,) = (tmp_path / "unpacked").iterdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp_path / "wheel")],
        check=True, env=_clean_env(), cwd=tmp_path, timeout=300,
    )
    (whl,) = (tmp_path / "wheel").glob("photonic_sim-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for kind, files in _builtin_files(source_copy).items():
        assert {f"photonic_sim/builtin/{kind}/{f}" for f in files} <= names, kind


_EXTRAS = ("ray", "simphony", "jax", "jaxlib", "sax", "klujax", "neuroptica")
_BLOCK_EXTRAS = f"""import sys


class _BlockExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {_EXTRAS!r}:
            raise ImportError(name + " belongs to an optional extra")
        return None


sys.meta_path.insert(0, _BlockExtras())
"""


@pytest.mark.slow
def test_installed_wheel_runs_the_acceptance_commands_from_an_empty_directory(wheel, tmp_path):
    """A fresh venv (no system site-packages; the dependencies come from this venv's
    site-packages through a .pth line, whose own .pth files, the editable finder among them,
    are not processed), ``pip install --no-deps`` of the wheel, then issue 20's two commands
    from an empty directory (~30-60 s on 2 shared cores), with the packages of the optional
    extras (ray, simphony, jax, ...) made unimportable: the quickstart needs none of them."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    Path(purelib, "_host_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, env=_clean_env(), timeout=300,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    env = _clean_env()
    # the quickstart needs no extra: the installed commands run with the extras' packages unimportable
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(_BLOCK_EXTRAS)
    cli_env = _clean_env(PYTHONPATH=str(blocker))
    where = subprocess.run(
        [str(py), "-c", "import photonic_sim, photonic_sim.library as l; print(photonic_sim.__file__);"
         " print(l.builtin_dir('scenarios')); print(','.join(l.names('scenarios')))"],
        check=True, capture_output=True, text=True, cwd=empty, env=env,
    ).stdout.split("\n")
    assert Path(where[0]).is_relative_to(venv) and Path(where[1]).is_relative_to(venv), where
    assert where[2].split(",") == sorted(Path(f).stem for f in _builtin_files()["scenarios"])

    cli = str(venv / "bin" / "photonic-sim")
    cost = subprocess.run(
        [cli, "cost", "--accelerator", "tonn_space", "--model", "hjb20", "--json"],
        capture_output=True, text=True, cwd=empty, env=cli_env, timeout=300,
    )
    assert cost.returncode == 0, cost.stderr[-2000:]
    # the same command through the checkout's package gives the same answer
    here = subprocess.run(
        [sys.executable, "-c", "from photonic_sim.cli import main; main()", "cost", "--accelerator",
         "tonn_space", "--model", "hjb20", "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=True,
    )
    assert json.loads(cost.stdout) == json.loads(here.stdout)

    run = subprocess.run(
        [cli, "run", "quickstart", "--out", "r", "--set", "training.steps=2"],
        capture_output=True, text=True, cwd=empty, env=cli_env, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((empty / "r" / "report.json").read_text())
    assert report["scenario"] == "quickstart"
    assert sorted(p.name for p in empty.iterdir()) == ["r"]


# ----------------------------------------------------------------- the search path


def _card(kind: str, name: str) -> dict:
    return yaml.safe_load((library.builtin_dir(kind) / f"{name}.yaml").read_text())


def _write(folder: Path, kind: str, name: str, data: dict) -> Path:
    (folder / kind).mkdir(parents=True, exist_ok=True)
    path = folder / kind / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_builtin_dir_is_the_checkout_folder_here():
    for kind in library.KINDS:
        assert library.builtin_dir(kind) == ROOT / kind
        assert library.search_dirs(kind) == [ROOT / kind]  # PHOTONIC_SIM_PATH unset by the fixture


@pytest.fixture(autouse=True)
def _no_user_path(monkeypatch):
    monkeypatch.delenv(library.ENV_VAR, raising=False)


def test_search_path_is_searched_first_in_order(tmp_path, monkeypatch):
    from photonic_sim.accelerators.cards import list_accelerator_cards, load_accelerator_card
    from photonic_sim.devices.cards import list_device_cards, load_device_card

    first, second, missing = tmp_path / "lab", tmp_path / "group", tmp_path / "nowhere"
    card = _card("devices", "silicon_thermo_optic")
    builtin_bits = card["phase_shifter"]["bits"]["value"]
    card["phase_shifter"]["bits"]["value"] = builtin_bits - 2
    _write(first, "devices", "silicon_thermo_optic", card)          # shadows the built-in
    card["phase_shifter"]["bits"]["value"] = builtin_bits - 1
    _write(second, "devices", "silicon_thermo_optic", card)         # shadowed by `first`
    _write(second, "devices", "lab_chip", card)                     # only in `second`
    acc = _card("accelerators", "tonn_space")
    acc["block_size"] = 4
    _write(second, "accelerators", "lab_tonn", acc)
    monkeypatch.setenv(library.ENV_VAR, os.pathsep.join([str(first), "", str(missing), str(second)]))

    assert library.search_dirs("devices") == [first / "devices", missing / "devices", second / "devices", ROOT / "devices"]
    assert library.find("devices", "silicon_thermo_optic") == first / "devices" / "silicon_thermo_optic.yaml"
    assert load_device_card("silicon_thermo_optic").phase_shifter.bits == builtin_bits - 2
    assert load_device_card("lab_chip").phase_shifter.bits == builtin_bits - 1
    assert load_device_card("mems_phase_shifter").source == str(ROOT / "devices" / "mems_phase_shifter.yaml")
    # a path is a path: the built-in file itself, not the shadowing one
    builtin = ROOT / "devices" / "silicon_thermo_optic.yaml"
    assert load_device_card(builtin).phase_shifter.bits == builtin_bits
    assert list_device_cards() == sorted({"lab_chip", *(p.stem for p in (ROOT / "devices").glob("*.yaml"))})
    assert "lab_tonn" in list_accelerator_cards()
    assert load_accelerator_card("lab_tonn").block_size == 4


def test_a_lab_scenario_uses_lab_cards_and_recipes_by_name(tmp_path, monkeypatch):
    from photonic_sim.scenarios.loader import list_scenarios, load_scenario
    from photonic_sim.scenarios.recipes import list_training_recipes

    lab = tmp_path / "lab"
    recipe = _card("training", "hybrid_zo")
    recipe["steps"] = 3
    _write(lab, "training", "lab_recipe", recipe)
    _write(lab, "devices", "lab_chip", _card("devices", "mems_phase_shifter"))
    scenario = _card("scenarios", "quickstart")
    scenario.update(name="lab_quick", devices="lab_chip", training="lab_recipe")
    scenario.pop("overrides", None)
    _write(lab, "scenarios", "lab_quick", scenario)
    monkeypatch.setenv(library.ENV_VAR, str(lab))

    assert "lab_quick" in list_scenarios() and "quickstart" in list_scenarios()
    assert "lab_recipe" in list_training_recipes()
    sc = load_scenario("lab_quick")
    assert sc.path == lab / "scenarios" / "lab_quick.yaml"
    assert sc.recipe.steps == 3
    assert sc.device_card.source == str(lab / "devices" / "lab_chip.yaml")


def test_names_paths_and_kinds():
    assert library.is_name("quickstart")
    for not_a_name in ("./quickstart", "quickstart.yaml", "a/b", "x.yml", Path("quickstart")):
        assert not library.is_name(not_a_name)
        assert library.locate("scenarios", not_a_name) is not_a_name
    assert library.locate("scenarios", "no_such_scenario") == "no_such_scenario"
    assert library.locate("scenarios", "quickstart") == ROOT / "scenarios" / "quickstart.yaml"
    assert library.find("training", "no_such_recipe") is None
    with pytest.raises(ValueError, match="unknown library kind 'cards'"):
        library.names("cards")


# ----------------------------------------------------------------- install commands


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [line for line in text.splitlines() if line.startswith("python3 -m venv .venv")]


def test_ci_runs_exactly_the_readme_test_command():
    quickstart, tests = _readme_commands()[:2]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("python3 -m venv")]
    assert ci == [tests]
    assert tests.endswith("python -m pytest -q") and '-e ".[dev]"' in tests
    # the quickstart installs no extra (no Ray, simphony, JAX) and runs the built-in scenario by name
    assert "pip install -q -c constraints.txt -e . &&" in quickstart and "[" not in quickstart
    assert "photonic-sim run quickstart " in quickstart


def test_dev_extra_installs_the_docs_build():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras["docs"]) <= set(extras["dev"])
    assert not any(name.split(">")[0].split("=")[0] in {"ray", "simphony", "jax"}
                   for name in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def test_benchmarks_and_examples_use_only_the_public_api():
    """Issue 20: benchmarks and examples are written against the public API a user has: every
    ``from photonic_sim... import name`` names a public module (no ``_``-prefixed part) and a name
    in that module's ``__all__`` (or a public submodule), no script reads a private attribute
    (``obj._name``) of the package's objects, and none edits ``sys.path`` to import another one."""
    import ast
    import importlib.util

    scripts = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("examples/*.py")])
    assert len(scripts) > 10
    bad = []
    for path in scripts:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "photonic_sim":
                parts = node.module.split(".")
                module = importlib.import_module(node.module)
                public = getattr(module, "__all__", None)
                for alias in node.names:
                    submodule = importlib.util.find_spec(f"{node.module}.{alias.name}") is not None \
                        if hasattr(module, "__path__") else False
                    if any(p.startswith("_") for p in [*parts, alias.name]) or (
                            public is not None and alias.name not in public and not submodule):
                        bad.append(f"{where}: from {node.module} import {alias.name}")
            elif isinstance(node, ast.Import):
                bad += [f"{where}: import {a.name}" for a in node.names
                        if a.name.split(".")[0] == "photonic_sim" and any(p.startswith("_") for p in a.name.split("."))]
            elif (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                  and node.value.id == "sys"):
                bad.append(f"{where}: sys.path")
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                  and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                bad.append(f"{where}: private attribute .{node.attr}")
    assert not bad, bad
