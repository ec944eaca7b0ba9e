"""The documentation site builds with warnings as errors, and the API reference is complete.

``mkdocs build --strict`` (MkDocs + mkdocstrings, config ``mkdocs.yml``) into a temporary
folder; then every name in the ``__all__`` of each package documented under ``docs/api/``
must have an entry in its page. Skipped, with the reason, when MkDocs is not installed (the
``dev`` and ``docs`` extras install it, so CI runs it). The build takes ~10-20 s: it is the
only check that the documentation CI publishes is complete and free of warnings.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# API page (docs/api/<page>.md) -> the packages whose __all__ it documents
API_PAGES = {
    "index": ["photonic_sim"],
    "devices": ["photonic_sim.devices"],
    "circuits": ["photonic_sim.circuits"],
    "cores": ["photonic_sim.cores"],
    "accelerators": ["photonic_sim.accelerators"],
    "chip": ["photonic_sim.chip", "photonic_sim.backend", "photonic_sim.calibration"],
    "nn": ["photonic_sim.nn"],
    "training": ["photonic_sim.training", "photonic_sim.training.strategies", "photonic_sim.training.pde"],
    "scenarios": ["photonic_sim.scenarios", "photonic_sim.scenarios.distributed"],
    "reports": ["photonic_sim.reports"],
    "library": ["photonic_sim.library"],
}


def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_pages(item)]
    if isinstance(node, dict):
        return [p for value in node.values() for p in _nav_pages(value)]
    return []


def _public_names(module) -> list[str]:
    """``__all__``, else the public classes and functions the module defines itself."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [n for n, obj in vars(module).items()
            if not n.startswith("_") and callable(obj) and getattr(obj, "__module__", None) == module.__name__]


def _config() -> dict:
    # mkdocs.yml may hold python-name tags (none today); a plain safe load is enough here
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = set(_nav_pages(_config()["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == nav, {"not in nav": sorted(pages - nav), "missing": sorted(nav - pages)}
    assert {f"api/{name}.md" for name in API_PAGES} <= nav


def test_docs_point_at_nothing_outside_the_repository():
    for page in DOCS.rglob("*.md"):
        text = page.read_text()
        for marker in ("/work/", "/tmp/", "DESIGN.md"):
            assert marker not in text, f"{page.relative_to(ROOT)} mentions {marker}"


def test_code_cites_the_repository_docs_not_an_unshipped_note():
    """Docstrings and card refs point at sections of docs/ (e.g. docs/physics.md#conventions),
    and every such anchor exists on its page."""
    anchors = {}
    for page in DOCS.rglob("*.md"):
        heads = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
        anchors[page.relative_to(ROOT).as_posix()] = {
            re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-") for h in heads}
    for folder in ("photonic_sim", "tests", "benchmarks", "examples", "devices", "accelerators", "training", "scenarios"):
        for path in [*(ROOT / folder).rglob("*.py"), *(ROOT / folder).rglob("*.yaml")]:
            text = path.read_text()
            if path.name != "test_docs.py":
                assert "DESIGN §" not in text, path
            for page, anchor in re.findall(r"(docs/[a-z_/]+\.md)#([a-z0-9-]+)", text):
                assert anchor in anchors.get(page, set()), f"{path.relative_to(ROOT)}: {page}#{anchor}"


def test_site_builds_strict_and_the_api_reference_lists_every_public_name(site):
    assert (site / "index.html").is_file()
    for page, packages in API_PAGES.items():
        html = site / "api" / ("index.html" if page == "index" else f"{page}/index.html")
        ids = set(re.findall(r'id="([^"]+)"', html.read_text()))
        for name in packages:
            module = importlib.import_module(name)
            missing = []
            for public in _public_names(module):
                obj = getattr(module, public)
                where = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
                # a constant re-exported lazily has no __module__: any entry of that name counts
                if f"{name}.{public}" not in ids and where not in ids and not any(i.endswith(f".{public}") for i in ids):
                    missing.append(public)
            assert not missing, f"docs/api/{page}.md lacks {name}: {missing}"


def test_the_strategy_guide_code_runs_and_its_estimator_trains_the_quadratic():
    """docs/howto/strategy.md's estimator and its check on a quadratic, run as written (the
    third block, a full training run, is what examples/ cover)."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "howto" / "strategy.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    scope: dict = {}
    exec(compile(blocks[0] + blocks[1], "docs/howto/strategy.md", "exec"), scope)  # our own docs, not data
    torch = scope["torch"]
    start = float(scope["closure"](torch.zeros(1, 50, dtype=torch.float64)))
    end = float(scope["closure"](scope["phases"].detach()[None]))
    assert start > 100 and end < 0.1, (start, end)  # the page says ~1.5e2 -> ~2e-2
    with pytest.raises(ValueError, match="q"):
        scope["Antithetic"](q=0)


def test_every_public_name_has_a_docstring():
    """Issue 20: every name in photonic_sim.__all__ and in the documented subpackages' __all__
    has a docstring (data constants — name lists, tables — are documented by their module)."""
    import inspect

    missing = []
    for packages in API_PAGES.values():
        for name in packages:
            module = importlib.import_module(name)
            for public in getattr(module, "__all__", []):
                obj = getattr(module, public)
                if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj)
                        or callable(obj) and hasattr(obj, "__wrapped__")):
                    continue
                doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
                auto = inspect.isclass(obj) and (doc or "").startswith(f"{obj.__name__}(")  # dataclass default
                if not (doc or "").strip() or auto:
                    missing.append(f"{name}.{public}")
    assert not missing, missing
