"""Every example in nnet's docstrings runs (what ``pytest --doctest-modules nnet`` would do).

A module whose import needs an optional extra that is not installed is skipped, with the reason.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

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


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] == "nnet":
            raise
        pytest.skip(f"{name} needs {e.name}, an optional extra that is not installed")
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest(s) failed in {name}"
