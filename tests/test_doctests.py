"""Every example in nnet's docstrings runs (what ``pytest --doctest-modules nnet`` would do).

A module whose import, or whose examples, need an optional extra that is not installed is skipped,
with the missing package named as the reason.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
import re

import pytest

import nnet

MODULES = [
    "nnet",
    *sorted(
        m.name
        for m in pkgutil.walk_packages(nnet.__path__, prefix="nnet.")
        if not m.name.endswith("__main__")
    ),
]
_MISSING = re.compile(r"No module named '([\w.]+)'")


def _skip_if_an_extra_is_missing(name: str, text: str) -> None:
    missing = {m.split(".")[0] for m in _MISSING.findall(text)} - {"nnet"}
    if missing:
        pytest.skip(f"{name} needs {', '.join(sorted(missing))}, from an extra not installed")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        _skip_if_an_extra_is_missing(name, str(e))
        raise
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    out = io.StringIO()
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    if result.failed:
        _skip_if_an_extra_is_missing(name, out.getvalue())
    assert result.failed == 0, f"doctests failed in {name}:\n{out.getvalue()}"
