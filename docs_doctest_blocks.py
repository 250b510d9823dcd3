"""A griffe extension for the documentation site (mkdocs.yml): doctest examples in docstrings become
``pycon`` code blocks. Outside a numpy-style "Examples" section, Markdown would read ``>>>`` as
nested quotes and ``[0]`` in an example as a cross-reference."""

from __future__ import annotations

from typing import Any

from griffe import Extension


def fence_doctests(text: str) -> str:
    """Wrap each run of ``>>>`` / ``...`` lines and the output lines after them (up to the next
    blank line) in a ``pycon`` code fence at the example's indentation."""
    out: list[str] = []
    inside = False
    for line in text.split("\n"):
        starts = line.lstrip().startswith(">>>")
        if starts and not inside:
            out.append(line[: len(line) - len(line.lstrip())] + "```pycon")
            inside = True
        elif inside and not line.strip():
            out.append(out_indent(out) + "```")
            inside = False
        out.append(line)
    if inside:
        out.append(out_indent(out) + "```")
    return "\n".join(out)


def out_indent(lines: list[str]) -> str:
    """The indentation of the fence that opened the current block."""
    for line in reversed(lines):
        if line.lstrip().startswith("```pycon"):
            return line[: len(line) - len(line.lstrip())]
    return ""


class DoctestBlocks(Extension):
    """Fence the doctests of every docstring griffe loads, before mkdocstrings renders them."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        doc = getattr(obj, "docstring", None)
        if doc is not None and ">>>" in doc.value and "```" not in doc.value:
            doc.value = fence_doctests(doc.value)
