"""docs/kernels.md holds the table the registry generates."""

from __future__ import annotations

from nnet.kernels import table


def test_docs_table_is_the_registrys() -> None:
    text = table.DOC.read_text(encoding="utf-8")
    assert table.document(text) == text, (
        "docs/kernels.md is out of date: run python -m nnet.kernels.table --write"
    )


def test_the_check_sees_a_stale_table() -> None:
    text = table.DOC.read_text(encoding="utf-8")
    stale = text.replace("`conv2d`", "`convolution`", 1)
    assert stale != text and table.document(stale) != stale
