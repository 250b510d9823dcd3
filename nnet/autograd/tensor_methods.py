"""The methods of :class:`~nnet.autograd.tensor.Tensor` that run an nnet function of the same name
(``t.exp()`` is ``nnet.exp(t)``), indexing and the comparisons, as a base class so that tensor.py
keeps what a tensor is (its slots, attributes, conversions, the arithmetic operators and the in-place
methods). Each is a call to an op: no new primitive, no new derivative.

>>> import nnet
>>> t = nnet.tensor([[1.0, -2.0], [3.0, 4.0]])
>>> t.abs().sum(axis=0).tolist(), t[1].tolist(), (t > 0).tolist()
([4.0, 6.0], [3.0, 4.0], [[True, False], [True, True]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nnet.autograd import ops as _ops
    from nnet.autograd.reduction import Axis
    from nnet.autograd.tensor import Tensor


def bind(ops: Any) -> None:
    """Give these methods nnet's ops. The ops' modules import Tensor, which derives from this class,
    so they cannot be imported here; tensor.py calls this once Tensor exists."""
    globals()["_ops"] = ops


class TensorMethods:
    """Methods that delegate to nnet's ops; see the module docstring."""

    __slots__ = ()

    # comparisons: not differentiable, give bool tensors
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops.compare(np.equal, self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops.compare(np.not_equal, self, other)

    def __lt__(self, other: Any) -> Tensor:
        return _ops.compare(np.less, self, other)

    def __le__(self, other: Any) -> Tensor:
        return _ops.compare(np.less_equal, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _ops.compare(np.greater, self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _ops.compare(np.greater_equal, self, other)

    def __invert__(self) -> Tensor:
        return _ops.compare(np.logical_not, self)

    def __and__(self, other: Any) -> Tensor:
        return _ops.compare(np.logical_and, self, other)

    def __or__(self, other: Any) -> Tensor:
        return _ops.compare(np.logical_or, self, other)

    # -- methods that read naturally on a tensor ---------------------------------------------------
    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        return _ops.sqrt(self)

    def abs(self) -> Tensor:
        return _ops.abs(self)

    def sigmoid(self) -> Tensor:
        return _ops.sigmoid(self)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def pow(self, exponent: Any) -> Tensor:
        """``self ** exponent`` elementwise, with broadcasting (:func:`nnet.power`)."""
        return _ops.power(self, exponent)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        return _ops.clip(self, min, max)

    clamp = clip

    def maximum(self, other: Any) -> Tensor:
        return _ops.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return _ops.minimum(self, other)

    def sin(self) -> Tensor:
        return _ops.sin(self)

    def cos(self) -> Tensor:
        return _ops.cos(self)

    def tan(self) -> Tensor:
        return _ops.tan(self)

    def log1p(self) -> Tensor:
        return _ops.log1p(self)

    def expm1(self) -> Tensor:
        return _ops.expm1(self)

    def square(self) -> Tensor:
        return _ops.square(self)

    def erf(self) -> Tensor:
        return _ops.erf(self)

    def logaddexp(self, other: Any) -> Tensor:
        return _ops.logaddexp(self, other)

    def prod(self, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        return _ops.prod(self, axis, keepdims, **torch_names)

    def cumsum(self, axis: int | None = None, **torch_names: Any) -> Tensor:
        return _ops.cumsum(self, axis, **torch_names)

    def cumprod(self, axis: int | None = None, **torch_names: Any) -> Tensor:
        return _ops.cumprod(self, axis, **torch_names)

    def std(self, axis: Axis = None, ddof: Any = None, keepdims: bool = False, **kw: Any) -> Tensor:
        """Standard deviation, PyTorch's default ``correction=1`` (see :func:`nnet.std`)."""
        return _ops.std(self, axis, ddof, keepdims, **kw)

    def sum(self, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        return _ops.sum(self, axis, keepdims, **torch_names)

    def mean(self, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        return _ops.mean(self, axis, keepdims, **torch_names)

    def var(
        self, axis: Axis = None, ddof: Any = None, keepdims: bool = False, **torch_names: Any
    ) -> Tensor:
        """Variance, PyTorch's default ``correction=1`` (see :func:`nnet.var`)."""
        return _ops.var(self, axis, ddof, keepdims, **torch_names)

    def max(self, dim: Any = None, keepdim: bool = False, **numpy_names: Any) -> Any:
        """The maximum; ``(values, indices)`` along ``dim`` (see :func:`nnet.max`)."""
        return _ops.max(self, dim, keepdim, **numpy_names)

    def min(self, dim: Any = None, keepdim: bool = False, **numpy_names: Any) -> Any:
        """The minimum; ``(values, indices)`` along ``dim`` (see :func:`nnet.min`)."""
        return _ops.min(self, dim, keepdim, **numpy_names)

    def amax(self, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        """Maximum over one or several axes, values only (see :func:`nnet.amax`)."""
        return _ops.amax(self, axis, keepdims, **torch_names)

    def amin(self, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        """Minimum over one or several axes, values only (see :func:`nnet.amin`)."""
        return _ops.amin(self, axis, keepdims, **torch_names)

    def argmax(self, dim: int | None = None, keepdim: bool = False, **numpy_names: Any) -> Tensor:
        """Index of the first maximum along ``dim`` (see :func:`nnet.argmax`)."""
        return _ops.argmax(self, dim, keepdim, **numpy_names)

    def argmin(self, dim: int | None = None, keepdim: bool = False, **numpy_names: Any) -> Tensor:
        """Index of the first minimum along ``dim`` (see :func:`nnet.argmin`)."""
        return _ops.argmin(self, dim, keepdim, **numpy_names)

    def logsumexp(self, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        return _ops.logsumexp(self, axis, keepdims, **torch_names)

    def softmax(self, axis: int = -1, **torch_names: Any) -> Tensor:
        return _ops.softmax(self, axis, **torch_names)

    def log_softmax(self, axis: int = -1, **torch_names: Any) -> Tensor:
        return _ops.log_softmax(self, axis, **torch_names)

    def matmul(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def reshape(self, *shape: Any) -> Tensor:
        return _ops.reshape(self, *shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, *dims: Any) -> Tensor:
        """Swap two dims, ``transpose(dim0, dim1)`` (PyTorch's meaning; NumPy's ``transpose(axes)``
        is :meth:`permute`, and a call with other arguments raises)."""
        return _ops.transpose(self, *dims)

    def permute(self, *dims: Any) -> Tensor:
        return _ops.permute(self, *dims)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        return _ops.swapaxes(self, axis1, axis2)

    def squeeze(self, axis: Axis = None, **torch_names: Any) -> Tensor:
        return _ops.squeeze(self, axis, **torch_names)

    def unsqueeze(self, axis: int) -> Tensor:
        return _ops.unsqueeze(self, axis)

    expand_dims = unsqueeze

    def split(self, split_size: Any, dim: int = 0, **kw: Any) -> list[Tensor]:
        return _ops.split(self, split_size, dim, **kw)

    def chunk(self, chunks: int, dim: int = 0, **kw: Any) -> list[Tensor]:
        return _ops.chunk(self, chunks, dim, **kw)

    def repeat(self, *sizes: Any) -> Tensor:
        return _ops.repeat(self, *sizes)

    def tile(self, *reps: Any) -> Tensor:
        return _ops.tile(self, *reps)

    def repeat_interleave(self, repeats: Any, dim: int | None = None, **kw: Any) -> Tensor:
        return _ops.repeat_interleave(self, repeats, dim, **kw)

    def flip(self, *dims: Any, **kw: Any) -> Tensor:
        return _ops.flip(self, _ops.shape_arg(dims) if dims else None, **kw)

    def roll(self, shifts: Any, dims: Any = None, **kw: Any) -> Tensor:
        return _ops.roll(self, shifts, dims, **kw)

    def sort(self, dim: int = -1, descending: bool = False, **kw: Any) -> Any:
        return _ops.sort(self, dim, descending, **kw)

    def argsort(self, dim: int = -1, descending: bool = False, **kw: Any) -> Tensor:
        return _ops.argsort(self, dim, descending, **kw)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        return _ops.topk(self, k, dim, largest, sorted)

    def gather(self, dim: int, index: Any) -> Tensor:
        return _ops.gather(self, dim, index)

    def scatter_add(self, dim: int, index: Any, src: Any) -> Tensor:
        return _ops.scatter_add(self, dim, index, src)

    def take_along_dim(self, indices: Any, dim: int | None = None) -> Tensor:
        """The values at ``indices`` along ``dim`` (PyTorch's name for :func:`nnet.take_along_axis`)."""
        return _ops.take_along_axis(self, indices, dim)

    def dot(self, other: Any) -> Tensor:
        return _ops.dot(self, other)

    def outer(self, other: Any) -> Tensor:
        return _ops.outer(self, other)

    def tril(self, diagonal: int = 0) -> Tensor:
        return _ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        return _ops.triu(self, diagonal)

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
        return _ops.diagonal(self, offset, dim1, dim2)

    def diag(self, diagonal: int = 0) -> Tensor:
        return _ops.diag(self, diagonal)

    def trace(self) -> Tensor:
        return _ops.trace(self)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return _ops.broadcast_to(self, shape)

    def expand(self, *shape: Any) -> Tensor:
        """A broadcast view to ``shape`` (PyTorch's name for :func:`nnet.broadcast_to`)."""
        return _ops.broadcast_to(self, _ops.shape_arg(shape))


def document_delegates(cls: type, module: Any) -> None:
    """Give each undocumented method that runs the nnet function of its name (``t.exp()`` is
    ``nnet.exp(t)``) that function's summary line and a pointer to it, so that ``help(t.exp)`` and
    the API pages say what it does. Only the summary: the function's examples stay in one place."""
    for name, method in vars(cls).items():
        if name.startswith("_") or not callable(method) or method.__doc__:
            continue
        doc = getattr(getattr(module, name, None), "__doc__", None)
        if doc:
            summary = doc.strip().split("\n\n")[0]
            method.__doc__ = (
                f"{summary}\n\nThe method form of :func:`nnet.{name}` (``nnet.{name}(t, ...)``)."
            )
