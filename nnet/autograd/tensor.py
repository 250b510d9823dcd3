"""`Tensor`: a NumPy array that remembers the operation that made it."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nnet.autograd import tensor_methods as _methods
from nnet.autograd.defaults import default_dtype
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.tensor_aliases import TorchAliases
from nnet.devices import CPU, device, split_to_args

if TYPE_CHECKING:
    from nnet.autograd.function import Function

DTypeLike = Any
Axis = int | Sequence[int] | None


def _as_array(data: Any, dtype: DTypeLike = None) -> np.ndarray:
    """NumPy arrays keep their dtype (no copy); Python numbers and lists of floats take the default
    dtype (float32 unless :func:`nnet.set_default_dtype` changed it), like PyTorch."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    if isinstance(data, np.generic):
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data if not _holds_tensors(data) else _unwrap(data))
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype == np.float64:
        return arr.astype(default_dtype.get(), copy=False)
    return arr


def _holds_tensors(data: Any) -> bool:
    return isinstance(data, (list, tuple)) and any(
        isinstance(d, Tensor) or _holds_tensors(d) for d in data
    )


def _unwrap(data: Any) -> Any:
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, (list, tuple)):
        return [_unwrap(d) for d in data]
    return data


_new = object.__new__


def _check_differentiable(dtype: np.dtype, what: str) -> None:
    if dtype.kind != "f":
        raise TypeError(
            f"{what}: only floating-point tensors can require gradients, got dtype {dtype}; "
            "convert first with .float() or .double()"
        )


# The bits of a tensor's ``_retains_grad`` slot: what the backward walk must do with its gradient
# (see tensor_hooks.py). One slot keeps the walk's per-tensor test a single attribute read.
RETAIN = 1  # retain_grad(): keep the gradient of this non-leaf in .grad
HOOKS = 2  # register_hook(): run hooks on the gradient


def _warn_non_leaf_grad(t: Tensor) -> None:
    assert t.grad_fn is not None
    warnings.warn(
        f".grad of a non-leaf tensor (made by {t.grad_fn.name}) is read: backward() fills .grad "
        "only for leaves, so it is None. Call .retain_grad() on this tensor before backward() to "
        "keep its gradient, or read the gradient of the leaf you created",
        UserWarning,
        stacklevel=3,
    )


class Tensor(_methods.TensorMethods, TorchAliases):
    """An n-dimensional array with reverse-mode automatic differentiation.

    ``Tensor(ndarray)`` wraps the array without copying; :func:`nnet.tensor` copies.

    >>> import nnet
    >>> x = nnet.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    Tensor([2., 4., 6.], dtype=float32)
    """

    __slots__ = ("__weakref__", "_grad", "_retains_grad", "data", "grad_fn", "requires_grad")
    __array_priority__ = 1000.0
    __hash__ = object.__hash__  # identity: tensors are keys in gradient tables and dicts

    data: np.ndarray
    _grad: Tensor | None
    grad_fn: Function | None
    requires_grad: bool
    _retains_grad: int  # RETAIN | HOOKS bits (False when neither)

    def __init__(self, data: Any, requires_grad: bool = False, dtype: DTypeLike = None) -> None:
        self.data = _as_array(data, dtype)
        self._grad = None
        self.grad_fn = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(data: np.ndarray, requires_grad: bool, grad_fn: Function | None) -> Tensor:
        """The fast constructor the ops use: no conversion, no checks."""
        t = _new(Tensor)
        t.data = data
        t._grad = None
        t.grad_fn = grad_fn
        t._retains_grad = False
        t.requires_grad = requires_grad
        return t

    # -- attributes -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape, a tuple of ints (``size()`` in PyTorch's spelling)."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """Number of dimensions (``dim()``)."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the data (float32 by default)."""
        return self.data.dtype

    def size(self, dim: int | None = None) -> Any:
        """The shape (PyTorch's meaning), or the length of one ``dim``. NumPy's element count is
        :meth:`numel`."""
        if dim is None:
            return self.data.shape
        return self.data.shape[_ops.shape_axis("size", dim, self.data.ndim)]

    def numel(self) -> int:
        """Number of elements."""
        return self.data.size

    def dim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    @property
    def grad(self) -> Tensor | None:
        """The gradient that backward accumulated here: leaves (and ``retain_grad()`` tensors) only.

        Reading it on a non-leaf that does not retain its gradient warns: it stays ``None``.
        """
        g = self._grad
        if g is None and self.grad_fn is not None and not self._retains_grad & RETAIN:
            _warn_non_leaf_grad(self)
        return g

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        self._grad = value

    @property
    def name(self) -> str | None:
        """A name for traces and drawings (``h.name = "h"``); None unless given."""
        return _show.get_name(self)

    @name.setter
    def name(self, name: str | None) -> None:
        _show.set_name(self, name)

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's memory has seen (shared with its views)."""
        return _versions.version(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors the user made (not results of recorded operations)."""
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        """All axes reversed, as NumPy's and PyTorch's ``.T``."""
        return _ops.reverse_axes(self)

    def t(self) -> Tensor:
        """A matrix transposed (PyTorch's ``t()``); a tensor of 0 or 1 dims is returned as is."""
        if self.data.ndim > 2:
            raise ValueError(
                f"t: expects a tensor of at most 2 dims, got shape {self.shape}; "
                "use .transpose(dim0, dim1) or .permute(*dims)"
            )
        return _ops.reverse_axes(self) if self.data.ndim == 2 else self

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item: only one-element tensors convert to a Python number, got shape {self.shape}"
            )
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def tolist(self) -> Any:
        """The values as nested Python lists (a Python number for a 0-d tensor); no gradient."""
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same array, cut from the graph."""
        return Tensor._make(self.data, False, None)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set whether a leaf records operations for differentiation; returns self."""
        if requires_grad:
            _check_differentiable(self.data.dtype, "requires_grad_")
        elif self.grad_fn is not None:
            raise RuntimeError(
                "requires_grad_(False): this tensor is the result of a recorded operation; "
                "use .detach() to get a copy outside the graph"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def register_post_accumulate_grad_hook(self, hook: Any) -> Any:
        """Run ``hook(self)`` in every backward as soon as this leaf's ``.grad`` is final, while
        the backward goes on (what a data-parallel wrapper starts its communication from).
        Returns a handle whose ``remove()`` takes the hook away; see nnet/autograd/leaf_hooks.py.

        >>> import nnet
        >>> w = nnet.tensor([1.0, 2.0], requires_grad=True)
        >>> handle = w.register_post_accumulate_grad_hook(lambda t: print(t.grad))
        >>> (w * w).sum().backward()
        Tensor([2., 4.], dtype=float32)
        >>> handle.remove()
        """
        from nnet.autograd import leaf_hooks

        return leaf_hooks.register(self, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward; on a leaf, which keeps
        its gradient anyway, it does nothing (``retains_grad`` stays False), as in PyTorch."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require gradients")
        if self.grad_fn is not None:
            self._retains_grad = self._retains_grad | RETAIN

    @property
    def retains_grad(self) -> bool:
        """Whether backward stores this non-leaf's gradient in ``.grad`` (``retain_grad()``)."""
        return bool(self._retains_grad & RETAIN)

    def register_hook(self, hook: Any) -> Any:
        """Run ``hook(grad)`` whenever the gradient with respect to this tensor is computed; a
        Tensor it returns replaces the gradient (for the ops before it, or ``.grad`` on a leaf).
        Returns a handle whose ``remove()`` takes the hook away; see nnet/autograd/tensor_hooks.py.

        >>> import nnet
        >>> x = nnet.tensor([1.0, 2.0], requires_grad=True)
        >>> handle = x.register_hook(lambda g: g * 10)
        >>> (x * x).sum().backward()
        >>> x.grad
        Tensor([20., 40.], dtype=float32)
        >>> handle.remove()
        """
        from nnet.autograd import tensor_hooks

        return tensor_hooks.register(self, hook)

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
        """Accumulate d(self)/d(leaf) times ``gradient`` into every leaf's ``.grad``.

        ``gradient`` may be omitted for a one-element tensor. The graph's saved arrays are released
        afterwards unless ``retain_graph=True``; ``create_graph=True`` records the backward pass itself.
        """
        from nnet.autograd.engine import backward

        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    # -- conversions ------------------------------------------------------------------------------
    def __array__(self, dtype: DTypeLike = None, copy: bool | None = None) -> np.ndarray:
        """The array, for NumPy; refused for a tensor that requires grad while recording, since the
        result would silently leave the graph (``np.array([t, t])``, ``np.sum([t, t])``)."""
        if self.requires_grad and grad_enabled.get():
            from nnet.autograd.numpy_interop import array_refused

            raise array_refused()
        if dtype is None and not copy:
            return self.data
        if copy is None:  # copy only if the dtype needs it (np.asarray(t, dtype))
            return np.asarray(self.data, dtype=dtype)
        return np.array(self.data, dtype=dtype, copy=copy)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from nnet.autograd.numpy_interop import dispatch_ufunc

        return dispatch_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        """NumPy functions on tensors: nnet's op where one exists (``np.sum(t)``), otherwise the
        arrays' result, or a TypeError when a gradient would be lost (see numpy_interop)."""
        from nnet.autograd.numpy_interop import dispatch_function

        return dispatch_function(func, args, kwargs)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Any:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extra = f", dtype={self.dtype}"
        if self.data.size == 0 or self.data.size > np.get_printoptions()["threshold"]:
            extra = f", shape={self.shape}{extra}"  # the values alone do not show it
        if self.grad_fn is not None:
            extra += f", grad_fn=<{self.grad_fn.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def astype(self, dtype: DTypeLike) -> Tensor:
        """A copy converted to ``dtype``; differentiable between floating dtypes."""
        return _ops.astype(self, dtype)

    def float(self) -> Tensor:
        """A float32 copy, recorded (the gradient flows back cast to this tensor's dtype)."""
        return _ops.astype(self, np.float32)

    def double(self) -> Tensor:
        """A float64 copy, recorded (the gradient flows back cast to this tensor's dtype)."""
        return _ops.astype(self, np.float64)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """PyTorch's ``.to(dtype)``, ``.to(device)``, ``.to(device, dtype)`` or ``.to(other)``: the
        tensor itself when nothing changes (nnet's only device is the CPU; others raise)."""
        dtype = split_to_args(args, kwargs, "Tensor.to")
        return self if dtype is None or dtype == self.data.dtype else _ops.astype(self, dtype)

    def cpu(self) -> Tensor:
        """The tensor itself: nnet's tensors live on the CPU."""
        return self

    @property
    def device(self) -> device:
        """The CPU, nnet's only device."""
        return CPU

    def clone(self) -> Tensor:
        """A copy of the values that stays in the graph (its gradient flows to ``self``)."""
        return _ops.AsType.apply(self, self.data.dtype)

    def __format__(self, spec: str) -> str:
        """``f"{loss:.3f}"`` formats a one-element tensor's value; no spec gives the repr."""
        if self.data.size == 1:
            return format(self.data.item(), spec)
        if not spec:
            return repr(self)
        raise TypeError(
            f"unsupported format string {spec!r} for a tensor of shape {self.shape}; "
            "format its elements, or .item() of a one-element tensor"
        )

    # -- arithmetic (the hot path: straight to the primitives) -------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ops.power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.power(other, self)

    def __neg__(self) -> Tensor:
        return _neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    # -- in place (nnet.autograd.inplace: PyTorch's rules, version counters) ---------------------
    def __iadd__(self, other: Any) -> Tensor:
        return _inplace.arithmetic_("add_", self, other)

    def __isub__(self, other: Any) -> Tensor:
        return _inplace.arithmetic_("sub_", self, other)

    def __imul__(self, other: Any) -> Tensor:
        return _inplace.arithmetic_("mul_", self, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return _inplace.arithmetic_("div_", self, other)

    def __ipow__(self, other: Any) -> Tensor:
        return _inplace.arithmetic_("pow_", self, other)

    def __imatmul__(self, other: Any) -> Tensor:
        raise RuntimeError(
            "@=: in-place matmul is not supported (as in PyTorch): the product generally has "
            "another shape. Write a = a @ b"
        )

    def add_(self, other: Any, alpha: Any = 1) -> Tensor:
        """``self += alpha * other`` in place; returns self.

        >>> import nnet
        >>> t = nnet.zeros(2)
        >>> t.add_(nnet.ones(2), alpha=3)
        Tensor([3., 3.], dtype=float32)
        """
        return _inplace.arithmetic_("add_", self, other, alpha)

    def sub_(self, other: Any, alpha: Any = 1) -> Tensor:
        """``self -= alpha * other`` in place; returns self."""
        return _inplace.arithmetic_("sub_", self, other, alpha)

    def mul_(self, other: Any) -> Tensor:
        """``self *= other`` in place; returns self."""
        return _inplace.arithmetic_("mul_", self, other)

    def div_(self, other: Any) -> Tensor:
        """``self /= other`` in place; returns self."""
        return _inplace.arithmetic_("div_", self, other)

    def pow_(self, exponent: Any) -> Tensor:
        """``self **= exponent`` in place; returns self."""
        return _inplace.arithmetic_("pow_", self, exponent)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        """Limit the values to [min, max] in place; returns self."""
        return _inplace.clamp_(self, min, max)

    clip_ = clamp_

    def fill_(self, value: Any) -> Tensor:
        """Set every element to ``value`` (a number or a one-element tensor); returns self."""
        if isinstance(value, Tensor) and value.ndim != 0:
            raise RuntimeError(
                f"fill_: the value must be a number or a 0-d tensor, got shape {value.shape}; "
                "use copy_ to copy a tensor's values"
            )
        return _inplace.assign_("fill_", self, value)

    def zero_(self) -> Tensor:
        """Set every element to 0; returns self."""
        return _inplace.assign_("zero_", self, 0)

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src``'s values (broadcast to this shape, converted to this dtype) in place;
        differentiable with respect to ``src``. Returns self."""
        return _inplace.assign_("copy_", self, src)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError(
            "Tensor does not support item assignment (it would corrupt recorded gradients); "
            "build the new value with nnet.where(mask, value, t), or write to t.data outside the graph"
        )


from nnet.autograd import inplace as _inplace  # noqa: E402 - these need Tensor defined first
from nnet.autograd import ops as _ops  # noqa: E402
from nnet.autograd import show as _show  # noqa: E402
from nnet.autograd import version as _versions  # noqa: E402

# the operators' primitives, bound once: `t * u` is the hottest call in nnet
_add, _sub, _mul, _div, _neg = (
    _ops.Add.apply2, _ops.Sub.apply2, _ops.Mul.apply2, _ops.Div.apply2, _ops.Neg.apply1
)  # fmt: skip


_methods.bind(_ops)
_methods.document_delegates(_methods.TensorMethods, _ops)
