"""PyTorch's spellings of tensor methods that nnet's ops already compute (``x.add(y)``, ``x.eq(y)``,
``x.long()``, ``x.mm(y)``, ``x.masked_fill(mask, v)``, ...), as a base class of
:class:`~nnet.autograd.tensor.Tensor` so that tensor.py keeps nnet's own methods. Each is a
composition of existing ops: no new primitive, no new derivative; the differentiable ones
differentiate through the ops they call.

>>> import nnet
>>> x = nnet.tensor([[1.0, -2.0], [3.0, 4.0]])
>>> x.add(1, alpha=2).tolist(), x.gt(0).long().tolist(), x.masked_fill(x < 0, 0.0).tolist()
([[3.0, 0.0], [5.0, 6.0]], [[1, 0], [1, 1]], [[1.0, 0.0], [3.0, 4.0]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from nnet.autograd.tensor import Tensor


def _t(x: Any) -> Tensor:
    return cast("Tensor", x)


def _scaled(other: Any, alpha: Any) -> Any:
    return other if alpha == 1 else other * alpha


class TorchAliases:
    """Methods under PyTorch's names; see the module docstring."""

    __slots__ = ()

    # -- arithmetic and comparisons: the operators, by name ---------------------------------------
    def add(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """``self + alpha * other``."""
        return _t(self) + _scaled(other, alpha)

    def sub(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """``self - alpha * other``."""
        return _t(self) - _scaled(other, alpha)

    def mul(self, other: Any) -> Tensor:
        """``self * other``, with broadcasting."""
        return _t(self) * other

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        """``self / other``; PyTorch's ``rounding_mode`` is not built (it has no gradient there)."""
        if rounding_mode is not None:
            raise NotImplementedError(
                f"Tensor.div: rounding_mode={rounding_mode!r} is not built; use "
                "(a / b).detach().numpy() with np.floor / np.trunc for the values"
            )
        return _t(self) / other

    def neg(self) -> Tensor:
        """``-self``."""
        return -_t(self)

    def eq(self, other: Any) -> Tensor:
        """``self == other`` elementwise, as a bool tensor (no gradient)."""
        return _t(self) == other

    def ne(self, other: Any) -> Tensor:
        """``self != other`` elementwise, as a bool tensor (no gradient)."""
        return _t(self) != other

    def lt(self, other: Any) -> Tensor:
        """``self < other`` elementwise, as a bool tensor (no gradient)."""
        return _t(self) < other

    def le(self, other: Any) -> Tensor:
        """``self <= other`` elementwise, as a bool tensor (no gradient)."""
        return _t(self) <= other

    def gt(self, other: Any) -> Tensor:
        """``self > other`` elementwise, as a bool tensor (no gradient)."""
        return _t(self) > other

    def ge(self, other: Any) -> Tensor:
        """``self >= other`` elementwise, as a bool tensor (no gradient)."""
        return _t(self) >= other

    # -- products with PyTorch's shape rules ------------------------------------------------------
    def mm(self, other: Any) -> Tensor:
        """The matrix product of two 2-D tensors (``torch.mm``: no broadcasting)."""
        return _checked_product("mm", _t(self), other, 2)

    def bmm(self, other: Any) -> Tensor:
        """The batched matrix product of two 3-D tensors with the same batch (``torch.bmm``)."""
        return _checked_product("bmm", _t(self), other, 3)

    # -- shapes and dtypes of other tensors -------------------------------------------------------
    def expand_as(self, other: Any) -> Tensor:
        """Broadcast to ``other``'s shape."""
        return _t(self).expand(*other.shape)

    def view_as(self, other: Any) -> Tensor:
        """Reshaped to ``other``'s shape."""
        return _t(self).reshape(other.shape)

    def type_as(self, other: Any) -> Tensor:
        """Converted to ``other``'s dtype."""
        return _t(self).to(other.dtype)

    def contiguous(self) -> Tensor:
        """The tensor itself: its values do not depend on the memory layout (NumPy copies a
        strided array when an op needs it)."""
        return _t(self)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        """The slices along ``dim``, without it (differentiable)."""
        t = _t(self)
        if not -t.ndim <= dim < t.ndim:
            raise IndexError(f"unbind: dim {dim} is out of range for a tensor with {t.ndim} dims")
        dim %= t.ndim
        return tuple(t[(slice(None),) * dim + (i,)] for i in range(t.shape[dim]))

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """``value`` where ``mask`` is true, the tensor elsewhere (differentiable in both)."""
        from nnet.autograd.ops import where

        m = mask.data if hasattr(mask, "data") else np.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"masked_fill: the mask must be a bool tensor, got {m.dtype}")
        t = _t(self)
        return where(m, value, t).to(t.dtype)

    # -- new tensors like this one (no graph) -----------------------------------------------------
    def new_zeros(self, *size: Any, dtype: Any = None) -> Tensor:
        """Zeros of ``size``, in this tensor's dtype unless ``dtype`` is given (no graph)."""
        return _t(self).new_full(_size(size), 0, dtype=dtype)

    def new_ones(self, *size: Any, dtype: Any = None) -> Tensor:
        """Ones of ``size``, in this tensor's dtype unless ``dtype`` is given (no graph)."""
        return _t(self).new_full(_size(size), 1, dtype=dtype)

    def new_full(self, size: Any, fill_value: Any, *, dtype: Any = None) -> Tensor:
        """``fill_value`` in ``size``, in this tensor's dtype unless ``dtype`` is given (no graph)."""
        from nnet.autograd.tensor import Tensor

        return Tensor(np.full(_size((size,)), fill_value, dtype=dtype or _t(self).dtype))

    def new_tensor(self, data: Any, *, dtype: Any = None) -> Tensor:
        """A leaf holding a copy of ``data``, in this tensor's dtype unless ``dtype`` is given."""
        from nnet.autograd.tensor import Tensor

        values = data.detach().numpy() if isinstance(data, Tensor) else data
        return Tensor(np.array(values, dtype=dtype or _t(self).dtype))

    # -- truth over dims (no gradient) ------------------------------------------------------------
    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Whether all values are true (nonzero), over ``dim`` or all (no gradient)."""
        from nnet.autograd.tensor import Tensor

        return Tensor(np.all(_t(self).data, axis=dim, keepdims=keepdim))

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Whether any value is true (nonzero), over ``dim`` or all (no gradient)."""
        from nnet.autograd.tensor import Tensor

        return Tensor(np.any(_t(self).data, axis=dim, keepdims=keepdim))

    # -- dtype conversions (last: `int` and `bool` would shadow the builtins above) ----------------
    def long(self) -> Tensor:
        """Converted to int64 (no gradient)."""
        return _t(self).to(np.int64)

    def half(self) -> Tensor:
        """Converted to float16."""
        return _t(self).to(np.float16)

    def byte(self) -> Tensor:
        """Converted to uint8 (no gradient)."""
        return _t(self).to(np.uint8)

    def int(self) -> Tensor:
        """Converted to int32 (no gradient)."""
        return _t(self).to(np.int32)

    def bool(self) -> Tensor:
        """Converted to bool (no gradient)."""
        return _t(self).to(np.bool_)


def _size(size: tuple[Any, ...]) -> tuple[int, ...]:
    """PyTorch's ``*size`` or ``(size,)``: ``new_zeros(2, 3)`` and ``new_zeros((2, 3))``."""
    if len(size) == 1 and isinstance(size[0], tuple | list):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _checked_product(op: str, a: Tensor, b: Any, ndim: int) -> Tensor:
    shape_b = getattr(b, "shape", np.shape(b))
    if a.ndim != ndim or len(shape_b) != ndim or (ndim == 3 and a.shape[0] != shape_b[0]):
        what = "two 2-D tensors" if ndim == 2 else "two 3-D tensors with the same batch size"
        raise ValueError(
            f"{op}: expected {what}, got shapes {a.shape} and {tuple(shape_b)}; use matmul "
            f"(or @) for broadcasting products"
        )
    return a @ b
