"""The documentation site (mkdocs.yml) builds with ``mkdocs build --strict``, and every public name
it documents has a docstring."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
API_PAGES = sorted((ROOT / "docs" / "api").glob("*.md"))
#: The modules whose reference pages the site renders (docs/api/*.md, one `::: module` each).
API_MODULES = [
    m for page in API_PAGES for m in re.findall(r"^::: ([\w.]+)$", page.read_text(), re.M)
]


def _needs_docs_extra() -> None:
    for package in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(package, reason='the docs extra: pip install -e ".[docs]"')


def _mkdocs(folder: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=folder, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip


def test_site_builds_strict(tmp_path):
    _needs_docs_extra()
    run = _mkdocs(ROOT, tmp_path / "site")
    assert run.returncode == 0, run.stdout + run.stderr
    home = (tmp_path / "site" / "index.html").read_text()
    assert "Deploying: ONNX export" in home  # the README's overview is the home page
    nn_page = (tmp_path / "site" / "api" / "nn" / "index.html").read_text()
    for name in ("nnet.nn.Conv2d", "nnet.nn.BatchNorm2d", "nnet.nn.Sequential"):
        assert f'id="{name}"' in nn_page, name


def test_a_broken_link_fails_the_build(tmp_path):
    """The site's link validation, on a copy of one guide with a link to a page that is not there."""
    _needs_docs_extra()
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    small = {k: config[k] for k in ("site_name", "docs_dir", "strict", "validation")}
    small["nav"] = [{"Optim": "optim.md"}]
    (tmp_path / "docs").mkdir()
    text = (ROOT / "docs" / "optim.md").read_text()
    (tmp_path / "docs" / "optim.md").write_text(text + "\nSee [the missing page](missing.md).\n")
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(small))
    run = _mkdocs(tmp_path, tmp_path / "site")
    assert run.returncode != 0 and "missing.md" in run.stdout + run.stderr


def test_the_reference_covers_the_public_packages():
    """Every package of nnet a user imports has a reference page, listed in the nav (guides need
    not be: mkdocs_hooks.py adds each docs/*.md to the nav's Guides)."""
    packages = {p.parent.name for p in (ROOT / "nnet").glob("*/__init__.py")}
    internal = {"train"}  # the command line's code; its reference is `nnet --help`
    documented = {m.split(".")[1] for m in API_MODULES if m.count(".") == 1}
    missing = packages - internal - documented
    assert not missing, f"packages without a page in docs/api: {missing}"
    assert {"nnet", "nnet.nn.functional", "nnet.optim.lr_scheduler", "nnet.viz"} <= set(API_MODULES)
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in API_PAGES:
        assert f"api/{page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"


def public_names(module: ModuleType) -> list[str]:
    """``__all__``, or the names the module defines that do not start with an underscore."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, o in vars(module).items() if not n.startswith("_")
                 and getattr(o, "__module__", None) == module.__name__]  # fmt: skip
    return list(names)


def undocumented(module: ModuleType) -> list[str]:
    """The module itself and each public function and class of it that has no docstring."""
    missing = [] if inspect.getdoc(module) else [module.__name__]
    for name in public_names(module):
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            doc = (obj.__doc__ or "").strip()
            # a dataclass without a docstring gets its signature as one
            if not doc or (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")):
                missing.append(f"{module.__name__}.{name}")
    return missing


@pytest.mark.parametrize("name", API_MODULES)
def test_every_public_name_has_a_docstring(name):
    extras = {"nnet.onnx": "onnx", "nnet.distributed": "mpi4py"}
    if name in extras:
        pytest.importorskip(extras[name], reason="an extra of nnet that is not installed")
    missing = undocumented(importlib.import_module(name))
    assert not missing, (
        f"public names without a docstring (the API reference shows them): {missing}"
    )


def undocumented_members(cls: type) -> list[str]:
    """The public methods and properties of ``cls`` (defined in nnet) with no docstring of their
    own or inherited (``inspect.getdoc`` looks up the base classes, as ``help`` does)."""
    missing = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        member = vars(owner)[name] if owner is not None else None
        if owner is None or not owner.__module__.startswith("nnet"):
            continue
        if (inspect.isfunction(member) or isinstance(member, property)) and not inspect.getdoc(
            getattr(cls, name)
        ):
            missing.append(f"{cls.__name__}.{name}")
    return missing


@pytest.mark.parametrize("name", API_MODULES)
def test_every_public_method_has_a_docstring(name):
    """``help(t.exp)`` and the reference pages say what each method does."""
    extras = {"nnet.onnx": "onnx", "nnet.distributed": "mpi4py"}
    if name in extras:
        pytest.importorskip(extras[name], reason="an extra of nnet that is not installed")
    module = importlib.import_module(name)
    classes = [getattr(module, n) for n in public_names(module)]
    missing = [m for c in classes if inspect.isclass(c) for m in undocumented_members(c)]
    assert not missing, f"public methods without a docstring: {missing}"


def test_the_docstring_check_finds_a_missing_one():
    module = ModuleType("fake", "A module.")

    def documented() -> None:
        """Here."""

    def bare() -> None:
        pass

    class Bare:
        pass

    module.__all__ = ["documented", "bare", "Bare"]  # type: ignore[attr-defined]
    module.documented, module.bare, module.Bare = documented, bare, Bare  # type: ignore[attr-defined]
    assert undocumented(module) == ["fake.bare", "fake.Bare"]
