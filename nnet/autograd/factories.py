"""Tensor constructors. Random ones draw from nnet's own generator (:func:`nnet.manual_seed`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnet.autograd.defaults import default_dtype
from nnet.autograd.shape import shape_arg
from nnet.autograd.tensor import Tensor, _as_array
from nnet.random import get_generator


def _dtype(dtype: Any) -> np.dtype:
    return default_dtype.get() if dtype is None else np.dtype(dtype)


def _holds_graph(data: Any) -> bool:
    if isinstance(data, Tensor):
        return data.requires_grad
    return isinstance(data, (list, tuple)) and any(_holds_graph(d) for d in data)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python floats take the default dtype, float32).

    The copy is a new leaf: tensors inside ``data`` lose their graph, as in PyTorch, and a warning
    says so when one of them requires grad (``nnet.stack`` keeps the graph).

    >>> import nnet
    >>> nnet.tensor([1, 2.5]).dtype
    dtype('float32')
    """
    if _holds_graph(data):
        warnings.warn(
            "nnet.tensor copies the values of tensors that require grad, and gradients will not "
            "flow back to them; to keep the graph use nnet.stack([...]) (or the tensor itself), "
            "to copy on purpose t.detach().clone()",
            UserWarning,
            stacklevel=2,
        )
    return Tensor(np.array(_as_array(data, dtype)), requires_grad=requires_grad)


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros, of the default dtype (float32) unless ``dtype`` says otherwise."""
    return Tensor(np.zeros(shape_arg(shape), _dtype(dtype)), requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones, of the default dtype (float32) unless ``dtype`` says otherwise."""
    return Tensor(np.ones(shape_arg(shape), _dtype(dtype)), requires_grad)


def full(shape: Sequence[int] | int, fill_value: float, dtype: Any = None,
         requires_grad: bool = False) -> Tensor:  # fmt: skip
    """A tensor filled with ``fill_value``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(np.full(shape, fill_value, _dtype(dtype)), requires_grad)


def zeros_like(t: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and, unless given, the dtype) of ``t``."""
    a = t.data if isinstance(t, Tensor) else np.asarray(t)
    return Tensor(np.zeros(a.shape, dtype or a.dtype), requires_grad)


def ones_like(t: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and, unless given, the dtype) of ``t``."""
    a = t.data if isinstance(t, Tensor) else np.asarray(t)
    return Tensor(np.ones(a.shape, dtype or a.dtype), requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Evenly spaced values in [start, stop); integers give int64 unless ``dtype`` is set."""
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and values.dtype == np.float64:
        dtype = default_dtype.get()
    return Tensor(values if dtype is None else values.astype(dtype), requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """The identity matrix (n x m)."""
    return Tensor(np.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from nnet's generator."""
    dt = _dtype(dtype)
    return Tensor(get_generator().random(shape_arg(shape), dtype=dt), requires_grad)


def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from nnet's generator."""
    dt = _dtype(dtype)
    return Tensor(get_generator().standard_normal(shape_arg(shape), dtype=dt), requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:  # fmt: skip
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (default dtype).

    >>> import nnet
    >>> nnet.linspace(0, 1, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    return Tensor(np.linspace(start, end, steps).astype(_dtype(dtype)), requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory and dtype (PyTorch's ``from_numpy``).

    >>> import numpy as np, nnet
    >>> nnet.from_numpy(np.arange(3)).dtype
    dtype('int64')
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}")
    return Tensor(array)


def randperm(n: int, dtype: Any = np.int64, requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64) from nnet's generator.

    >>> import nnet
    >>> sorted(nnet.randperm(4).tolist())
    [0, 1, 2, 3]
    """
    return Tensor(get_generator().permutation(n).astype(dtype), requires_grad)


def allclose(
    a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """Whether ``|a - b| <= atol + rtol |b|`` everywhere (PyTorch's and NumPy's defaults).

    >>> import nnet
    >>> nnet.allclose(nnet.ones(2), nnet.ones(2) + 1e-9)
    True
    """
    return bool(
        np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, equal_nan=equal_nan)
    )
