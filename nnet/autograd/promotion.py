"""PyTorch's type promotion for the arithmetic primitives, where NumPy's would differ.

NumPy promotes by value ranges: float32 with int64 gives float64, and so does float32 with a 0-d
float64 array or a NumPy float64 scalar. PyTorch promotes by categories (bool < integer < floating <
complex): an operand of a higher category decides, within one category tensors with dimensions
outrank 0-d tensors, which outrank Python numbers, and a Python number only ever contributes its
category (a float gives the default float32). True division of integers gives float32 too.

>>> import numpy as np
>>> result_dtype(np.ones(2, np.float32), np.ones(2, np.int64))
dtype('float32')
>>> result_dtype(np.ones(2, np.int64), 2.5)
dtype('float32')
"""

from __future__ import annotations

from typing import Any

import numpy as np

_F32 = np.dtype(np.float32)
_C64 = np.dtype(np.complex64)
_I64 = np.dtype(np.int64)
_BOOL = np.dtype(bool)
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _category(dtype: np.dtype | None) -> int:
    return -1 if dtype is None else _CATEGORY.get(dtype.kind, -1)


def _scalar_dtype(value: Any) -> np.dtype | None:
    """What a Python (or NumPy) number contributes: its category's default dtype."""
    if isinstance(value, (bool, np.bool_)):
        return _BOOL
    if isinstance(value, (int, np.integer)):
        return _I64
    if isinstance(value, (float, np.floating)):
        return _F32
    if isinstance(value, (complex, np.complexfloating)):
        return _C64
    return None


def _join(a: np.dtype | None, b: np.dtype) -> np.dtype:
    """PyTorch's ``promote_types``: NumPy's within a category, else the higher category's dtype (a
    float with a complex gives the complex of the wider of the two)."""
    if a is None:
        return b
    ca, cb = _category(a), _category(b)
    if ca == cb:
        return np.promote_types(a, b)
    high, low = (a, b) if ca > cb else (b, a)
    return np.promote_types(high, low) if _category(high) == 3 and _category(low) == 2 else high


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """``higher`` (the higher-priority operands' dtype) wins unless ``lower`` is of a higher category."""
    if higher is None:
        return lower
    if lower is None or _category(lower) <= _category(higher):
        return higher
    if _category(higher) == 2:  # a float with a complex: the complex of the float's width
        return np.promote_types(higher, _C64)
    return lower


def result_dtype(*operands: Any, true_divide: bool = False) -> np.dtype | None:
    """The dtype PyTorch gives an elementwise op of ``operands`` (arrays, numbers); None when an
    operand is something else (lists, objects), which NumPy then handles."""
    dims: np.dtype | None = None
    zero_dims: np.dtype | None = None
    scalars: np.dtype | None = None
    for x in operands:
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in _CATEGORY:
                return None
            if x.ndim:
                dims = _join(dims, x.dtype)
            else:
                zero_dims = _join(zero_dims, x.dtype)
        else:
            s = _scalar_dtype(x)
            if s is None:
                return None
            scalars = _join(scalars, s)
    dtype = _combine(dims, _combine(zero_dims, scalars))
    if true_divide and dtype is not None and _category(dtype) < 2:
        return _F32
    return dtype


def promote(x: Any, y: Any, true_divide: bool) -> tuple[Any, Any]:
    """``x`` and ``y`` converted to PyTorch's result dtype where NumPy would pick another; Python
    numbers stay as they are (NumPy treats them as weak, so they do not widen the result)."""
    dtype = result_dtype(x, y, true_divide=true_divide)
    if dtype is None:
        return x, y
    return _cast(x, dtype), _cast(y, dtype)


def _cast(x: Any, dtype: np.dtype) -> Any:
    if isinstance(x, np.ndarray):
        return x if x.dtype is dtype else x.astype(dtype)
    if isinstance(x, np.generic):  # NumPy scalars are strong in NumPy 2; as a weak Python number
        return x.item()
    return x
