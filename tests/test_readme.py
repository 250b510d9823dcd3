"""The Python examples of the README and of every guide in docs/ run as written.

Each page's ```python blocks run in order in one namespace (a later block may use what an earlier
one defined, as a reader following the page would), in a fresh Python process (a page may switch
global modes, as the teaching guide's ``nnet.set_teaching(True)`` does) started in a scratch folder
(some save files). A block meant to be read, not run, uses another fence (```text, or none). A block
that stops on an optional extra that is not installed (graphviz for ``draw``) keeps what it defined
before, and the page goes on.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = {p.relative_to(ROOT).as_posix(): re.findall(r"```python\n(.*?)```", p.read_text(), re.S)
          for p in PAGES}  # fmt: skip

#: Run in the child: each block in turn; an optional extra's absence ends only its own block.
RUNNER = """
import json, sys
from nnet.viz import GraphvizUnavailable
page, blocks = json.loads(sys.stdin.read())
namespace = {}
for index, block in enumerate(blocks):
    try:
        exec(compile(block, f"{page} example {index}", "exec"), namespace)
    except GraphvizUnavailable:
        continue
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in ("graphviz", "torch", "mpi4py"):
            raise
"""


def test_readme_and_guides_have_examples():
    assert len(BLOCKS["README.md"]) >= 3
    assert len(BLOCKS["docs/nn.md"]) >= 1 and len(BLOCKS["docs/onnx.md"]) >= 3


@pytest.mark.parametrize("page", sorted(p for p, blocks in BLOCKS.items() if blocks))
def test_examples_run(page, tmp_path):
    pytest.importorskip("sklearn")  # the training-loop examples read the bundled digits
    run = subprocess.run(
        [sys.executable, "-c", RUNNER], input=json.dumps([page, BLOCKS[page]]), cwd=tmp_path,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, f"{page}:\n{run.stderr[-3000:]}"


def test_a_failing_example_fails_the_test(tmp_path):
    run = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(["p", ["1 / 0"]]),
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode != 0 and "ZeroDivisionError" in run.stderr and "p example 0" in run.stderr
