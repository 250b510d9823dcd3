"""The Python examples of the README and of every guide in docs/ run as written.

Each page's ```python blocks run in order in one namespace (a later block may use what an earlier
one defined, as a reader following the page would), in a scratch folder (some save files). A block
meant to be read, not run, uses another fence (```text, or none). A block that stops on an optional
extra that is not installed (graphviz for ``draw``) keeps what it defined before, and the page goes on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnet.viz import GraphvizUnavailable

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = {p.relative_to(ROOT).as_posix(): re.findall(r"```python\n(.*?)```", p.read_text(), re.S)
          for p in PAGES}  # fmt: skip
#: Imports that come from an extra of nnet (or from outside it) rather than from the test extra.
OPTIONAL = {"graphviz", "torch", "mpi4py"}


def test_readme_and_guides_have_examples():
    assert len(BLOCKS["README.md"]) >= 3
    assert len(BLOCKS["docs/nn.md"]) >= 1 and len(BLOCKS["docs/onnx.md"]) >= 3


@pytest.mark.parametrize("page", sorted(p for p, blocks in BLOCKS.items() if blocks))
def test_examples_run(page, tmp_path, monkeypatch):
    pytest.importorskip("sklearn")  # the training-loop examples read the bundled digits
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for index, block in enumerate(BLOCKS[page]):
        try:
            exec(compile(block, f"{page} example {index}", "exec"), namespace)
        except GraphvizUnavailable:
            continue
        except ModuleNotFoundError as e:
            if not (e.name and e.name.split(".")[0] in OPTIONAL):
                raise
