"""Hypothesis strategies for property tests of code built on nnet.

Needs hypothesis, which comes with the test extra (``pip install "nnet[test]"``); nothing else in
nnet imports this module.

>>> from hypothesis import given
>>> from nnet.testing.strategies import broadcastable_shapes
>>> @given(broadcastable_shapes())
... def check(shapes):
...     a, b = shapes
...     assert len(a) <= 3 and len(b) <= 3
>>> check()
"""

from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnet.autograd.tensor import Tensor

__all__ = ["arrays", "broadcastable_shapes", "shapes", "tensors"]

Shape = tuple[int, ...]


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 4
) -> st.SearchStrategy[Shape]:
    """Array shapes with ``min_dims..max_dims`` axes of ``min_side..max_side`` elements each.

    With the default ``min_side=0`` the shapes include empty axes; size-1 axes always can occur.

    >>> from hypothesis import given
    >>> @given(shapes(min_dims=1, max_dims=2, min_side=1, max_side=3))
    ... def check(shape):
    ...     assert 1 <= len(shape) <= 2 and all(1 <= n <= 3 for n in shape)
    >>> check()
    """
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def _elements(dtype: np.dtype, min_value: float, max_value: float) -> st.SearchStrategy[Any]:
    if dtype.kind == "f":
        return st.floats(
            min_value=min_value,
            max_value=max_value,
            allow_nan=False,
            allow_infinity=False,
            allow_subnormal=False,
            # float16/32/64 give 16/32/64; hypothesis itself rejects any other width
            width=cast(Literal[16, 32, 64], dtype.itemsize * 8),
        )
    if dtype.kind in "iu":
        return st.integers(int(np.ceil(min_value)), int(np.floor(max_value)))
    if dtype.kind == "b":
        return st.booleans()
    raise TypeError(f"arrays: unsupported dtype {dtype}")


def arrays(
    shape: Shape | st.SearchStrategy[Shape],
    dtype: Any = np.float64,
    min_value: float = -10.0,
    max_value: float = 10.0,
    unique: bool = False,
) -> st.SearchStrategy[np.ndarray]:
    """NumPy arrays of ``shape`` (a tuple or a strategy), finite values in [min_value, max_value].

    No NaN, no infinity, no subnormals: gradient checks on such values say nothing useful.

    >>> from hypothesis import given
    >>> @given(arrays((2, 3), min_value=0.5, max_value=2.0))
    ... def check(a):
    ...     assert a.shape == (2, 3) and a.dtype == "float64"
    ...     assert ((0.5 <= a) & (a <= 2.0)).all()
    >>> check()
    """
    dt = np.dtype(dtype)
    return hnp.arrays(dt, shape, elements=_elements(dt, min_value, max_value), unique=unique)


def tensors(
    shape: Shape | st.SearchStrategy[Shape] | None = None,
    dtype: Any = np.float64,
    min_value: float = -10.0,
    max_value: float = 10.0,
    requires_grad: bool = False,
) -> st.SearchStrategy[Tensor]:
    """nnet Tensors over :func:`arrays` (any shape from :func:`shapes` when ``shape`` is None).

    >>> from hypothesis import given
    >>> @given(tensors((3,), requires_grad=True))
    ... def check(t):
    ...     assert t.requires_grad and t.is_leaf and t.dtype == "float64"
    >>> check()
    """
    return arrays(shapes() if shape is None else shape, dtype, min_value, max_value).map(
        lambda a: Tensor(a, requires_grad=requires_grad)
    )


def broadcastable_shapes(
    num_shapes: int = 2,
    min_dims: int = 0,
    max_dims: int = 3,
    min_side: int = 0,
    max_side: int = 4,
    base_shape: Shape = (),
) -> st.SearchStrategy[tuple[Shape, ...]]:
    """``num_shapes`` shapes that broadcast together under NumPy's rules: size-1, missing and (with
    ``min_side=0``) empty axes included. Drawn by ``hypothesis.extra.numpy``'s
    ``mutually_broadcastable_shapes``.

    >>> import numpy as np
    >>> from hypothesis import given
    >>> @given(broadcastable_shapes(num_shapes=3))
    ... def check(shapes):
    ...     assert len(shapes) == 3
    ...     np.broadcast_shapes(*shapes)  # never raises
    >>> check()
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes,
        base_shape=base_shape,
        min_dims=min_dims,
        max_dims=max_dims,
        min_side=min_side,
        max_side=max_side,
    ).map(lambda b: tuple(b.input_shapes))
