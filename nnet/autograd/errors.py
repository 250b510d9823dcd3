"""Errors that name the nnet op: NumPy's own messages restated with the op and its operands.

:meth:`Function.apply` routes every forward's ValueError and TypeError through :func:`operand_error`
(a ``try`` costs nothing in CPython 3.11 until something is raised). Messages that already name
their op (``"conv2d: ..."``) pass through unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_NAMED = re.compile(r"^[a-z_][a-z0-9_]*: ")


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"{x.shape} {x.dtype}"
    return f"a Python {type(x).__name__}" if not isinstance(x, np.generic) else f"{x.dtype} scalar"


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def operand_error(op: str, e: Exception, *operands: Any) -> Exception:
    """NumPy's error ``e`` from ``op`` restated with the op's name and its operands' shapes.

    >>> import numpy as np
    >>> try:
    ...     np.ones(3) + np.ones(4)
    ... except ValueError as e:
    ...     print(operand_error("add", e, np.ones(3), np.ones(4)))  # doctest: +ELLIPSIS
    add: shapes (3,) and (4,) cannot be broadcast together (aligned from the right, ...
    """
    if _NAMED.match(str(e)):
        return e
    if isinstance(e, ValueError) and "broadcast" in str(e):
        shapes = _listing([str(np.shape(x)) for x in operands])
        return ValueError(
            f"{op}: shapes {shapes} cannot be broadcast together (aligned from the right, "
            "each pair of sizes must be equal or one of them 1); reshape or unsqueeze an operand"
        )
    kind = TypeError if isinstance(e, TypeError) else ValueError  # NumPy's subclasses need more
    return kind(f"{op}: cannot apply to {_listing([_describe(x) for x in operands])}: {e}")
