"""docs/errors.md, executed: every row's trigger raises exactly its exception with its message.

The table is the single source: a row added to the page is a new test, and a message changed in
the code without the page (or the other way round) fails here.
"""

from __future__ import annotations

import builtins
import importlib.util
import re
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnet
from nnet import nn, optim
from nnet.autograd.engine import GraphReleasedError
from nnet.autograd.lifetime import GraphLifetimeWarning
from nnet.datasets import MNIST
from nnet.datasets.idx import IDXError, read_idx
from nnet.serialization import CheckpointError

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
NNET_ERRORS = {
    e.__name__: e for e in (CheckpointError, IDXError, GraphReleasedError, GraphLifetimeWarning)
}
NNET_ERRORS["LinAlgError"] = np.linalg.LinAlgError  # NumPy's, raised by nnet.linalg
if importlib.util.find_spec("onnx") is not None:
    from nnet.onnx import ExportError

    NNET_ERRORS["ExportError"] = ExportError
HAS_CLI = importlib.util.find_spec("nnet.train") is not None


def table_rows(text: str) -> list[tuple[str, str, str, str]]:
    """(situation, trigger, exception name, message) for every row of every table."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith(("| Situation", "| ---")):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"a row of docs/errors.md does not have 4 cells: {line}"
        situation, trigger, exception, message = cells
        assert trigger[0] == trigger[-1] == "`" and message[0] == message[-1] == "`", line
        rows.append((situation, trigger[1:-1], exception, message[1:-1]))
    return rows


ROWS = table_rows(DOC.read_text(encoding="utf-8"))


def squeeze(text: str) -> str:
    return " ".join(text.split())


def pattern(message: str) -> re.Pattern[str]:
    """The documented message as a regex: literal text, '...' matching anything."""
    parts = [re.escape(p) for p in squeeze(message).split("...")]
    return re.compile(".*".join(parts), re.DOTALL)


def cli(*args: str) -> int:
    from nnet.__main__ import main

    return main(list(args))


def test_the_table_covers_every_kind_of_error():
    situations = {row[0] for row in ROWS}
    assert len(ROWS) >= 60 and len(situations) == len(ROWS)
    exceptions = {row[2] for row in ROWS}
    assert {"ValueError", "TypeError", "RuntimeError", "GraphReleasedError", "CheckpointError",
            "IDXError", "FileNotFoundError", "SystemExit"} <= exceptions  # fmt: skip
    headings = re.findall(r"^## (.+)$", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    for kind in ("Shapes", "Layouts", "Dtypes", "Backward", "Layer arguments",
                 "Optimizer arguments", "Data files", "Checkpoints", "command line"):  # fmt: skip
        assert any(kind in h for h in headings), kind


def test_the_pattern_helper_is_literal_except_for_ellipses():
    assert pattern("a (b) ... c").fullmatch("a (b) anything here c")
    assert not pattern("a (b) c").fullmatch("a b c")
    assert not pattern("shape (3,)").fullmatch("shape (4,)")


@pytest.mark.parametrize(("situation", "trigger", "exception", "message"), ROWS,
                         ids=[row[0] for row in ROWS])  # fmt: skip
def test_row(situation, trigger, exception, message, tmp_path, capsys):
    if "cli(" in trigger and not HAS_CLI:
        pytest.skip("the nnet train command line is not in this build yet")
    if "nnet.onnx" in trigger and "ExportError" not in NNET_ERRORS:
        pytest.skip('ONNX export needs the onnx extra: pip install -e ".[onnx]"')
    expected = NNET_ERRORS.get(exception) or getattr(builtins, exception)
    namespace = {
        "np": np, "nnet": nnet, "nn": nn, "optim": optim, "tmp": tmp_path, "struct": struct,
        "zipfile": zipfile, "read_idx": read_idx, "MNIST": MNIST, "cli": cli,
    }  # fmt: skip
    capsys.readouterr()
    with pytest.raises(BaseException) as info, warnings.catch_warnings():
        if issubclass(expected, Warning):
            warnings.simplefilter("error", expected)  # a warning row is read as raised
        exec(trigger, namespace)
    error = info.value
    assert type(error) is expected, f"{situation}: raised {type(error).__name__}: {error}"
    if isinstance(error, SystemExit):
        assert error.code == 2
        text = capsys.readouterr().err
    else:
        text = str(error)
    assert pattern(message).fullmatch(squeeze(text)), (
        f"{situation}:\n  documented: {squeeze(message)}\n  raised:     {squeeze(text)}"
    )
    if isinstance(error, (CheckpointError, IDXError, FileNotFoundError)) and "tmp" in trigger:
        assert str(tmp_path) in text, "a file error must name the file"


# -- beyond the table: every elementwise op, any pair of shapes that do not broadcast --------------
BINARY = {
    "add": nnet.add, "subtract": nnet.subtract, "multiply": nnet.multiply,
    "divide": nnet.divide, "power": nnet.power, "maximum": nnet.maximum,
    "minimum": nnet.minimum, "where": lambda a, b: nnet.where(np.ones(a.shape, bool), a, b),
    "less": lambda a, b: a < b,
}  # fmt: skip


@given(
    st.sampled_from(sorted(BINARY)),
    hnp.array_shapes(min_dims=1, max_dims=4, min_side=2, max_side=5),
    hnp.array_shapes(min_dims=1, max_dims=4, min_side=2, max_side=5),
    st.booleans(),
)
def test_broadcasting_errors_name_the_op_and_both_shapes(op, a_shape, b_shape, a_is_array):
    try:
        np.broadcast_shapes(a_shape, b_shape)
    except ValueError:
        pass
    else:
        assume(False)
    a = np.ones(a_shape, np.float32) if a_is_array else nnet.ones(a_shape)
    with pytest.raises(ValueError) as info:
        BINARY[op](a, nnet.ones(b_shape))
    message = str(info.value)
    assert message.startswith(f"{op}: shapes ") and "cannot be broadcast together" in message
    assert str(a_shape) in message and str(b_shape) in message
