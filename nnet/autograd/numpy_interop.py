"""NumPy called on tensors: ufuncs (``np.exp(t)``) and functions (``np.sum(t)``) dispatch to nnet's ops.

Two tables say what happens, and new ops join by adding an entry:

* ``_UFUNCS``: a ufunc and the nnet function it runs (``np.exp: ops.exp``).
* ``FUNCTIONS`` (numpy_functions.py): a NumPy function and an adapter taking NumPy's signature and
  returning a Tensor (``np.mean: _mean``). ``out=None`` is accepted; anything that would write outside
  the graph is refused.

A NumPy function in neither table runs on the arrays (a plain ndarray result, as before) when nothing
needs a gradient; when a tensor argument requires one, it raises a TypeError naming the function and what
to use instead (``_ALTERNATIVES``), because the result would silently leave the graph (PyTorch refuses
these calls too). ``_ARRAY_ONLY`` lists the functions whose result carries no gradient (shapes, indices,
comparisons): they always run on the arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnet.autograd import ops
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.numpy_functions import FUNCTIONS, unwrap
from nnet.autograd.tensor import Tensor

_UFUNCS: dict[np.ufunc, Callable[..., Tensor]] = {
    np.add: ops.add,
    np.subtract: ops.subtract,
    np.multiply: ops.multiply,
    np.true_divide: ops.divide,
    np.power: ops.power,
    np.negative: ops.negative,
    np.exp: ops.exp,
    np.log: ops.log,
    np.sqrt: ops.sqrt,
    np.absolute: ops.abs,
    np.tanh: ops.tanh,
    np.maximum: ops.maximum,
    np.minimum: ops.minimum,
    np.matmul: ops.matmul,
    np.sin: ops.sin,
    np.cos: ops.cos,
    np.tan: ops.tan,
    np.log1p: ops.log1p,
    np.expm1: ops.expm1,
    np.square: ops.square,
    np.logaddexp: ops.logaddexp,
}
_COMPARISONS = {
    np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal,
    np.logical_not, np.logical_and, np.logical_or, np.isfinite, np.isnan, np.isinf, np.sign,
}  # fmt: skip


def dispatch_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    if method == "__call__" and not kwargs:
        fn = _UFUNCS.get(ufunc)
        if fn is not None:
            return fn(*inputs)
        if ufunc in _COMPARISONS:
            return ops.compare(ufunc, *inputs)
    supported = ", ".join(sorted(f"np.{u.__name__}" for u in _UFUNCS))
    raise TypeError(
        f"nnet: np.{ufunc.__name__}{'' if method == '__call__' else '.' + method}"
        f"{' with ' + ', '.join(kwargs) if kwargs else ''} is not differentiable on a Tensor. "
        f"Use the nnet function instead (nnet.{ufunc.__name__} where it exists, e.g. nnet.sum for "
        f"np.add.reduce), or apply it to t.data outside the graph. Dispatched ufuncs: {supported}"
    )


#: Functions whose result carries no gradient: they run on the arrays and return NumPy's result.
_ARRAY_ONLY: set[Callable[..., Any]] = {
    np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero,
    np.flatnonzero, np.count_nonzero, np.any, np.all, np.allclose, np.isclose, np.array_equal,
    np.array_equiv, np.result_type, np.shares_memory, np.may_share_memory, np.searchsorted,
    np.array_repr, np.array_str, np.array2string, np.iscomplexobj, np.isrealobj,
}  # fmt: skip

#: What to use instead of a differentiable NumPy function nnet does not dispatch.
_ALTERNATIVES: dict[Callable[..., Any], str] = {
    np.diff: "t[..., 1:] - t[..., :-1] (slicing is differentiable)",
    np.nan_to_num: "nnet.where(t == t, t, 0.0) (NaN is the value not equal to itself)",
    np.cross: "the products of components, e.g. a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]",
}


def _needs_graph(values: Sequence[Any]) -> bool:
    for v in values:
        if isinstance(v, Tensor):
            if v.requires_grad:
                return True
        elif isinstance(v, (list, tuple)) and _needs_graph(v):
            return True
    return False


def numpy_name(func: Callable[..., Any]) -> str:
    """``np.linalg.norm`` for numpy.linalg.norm: the name a user typed."""
    module = getattr(func, "__module__", None) or "numpy"
    module = "np" + module[len("numpy") :] if module.startswith("numpy") else module
    return f"{module}.{getattr(func, '__name__', repr(func))}"


def dispatch_function(func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_function__``: nnet's op for ``func``, the arrays' result, or a clear error."""
    adapter = FUNCTIONS.get(func)
    if adapter is not None:
        return adapter(*args, **kwargs)
    if func in _ARRAY_ONLY or not (grad_enabled.get() and _needs_graph((*args, *kwargs.values()))):
        return func(*unwrap(args), **{k: unwrap(v) for k, v in kwargs.items()})
    name = numpy_name(func)
    alternative = _ALTERNATIVES.get(func)
    use = (
        f"use {alternative} instead"
        if alternative
        else "nnet has no op for it: build it from nnet's functions or write a Function with its "
        "VJP (nnet.autograd.Function)"
    )
    raise TypeError(
        f"{name} on a Tensor that requires grad: NumPy would compute it on the array and the result "
        f"would silently leave the graph; {use}. For the values alone, call {name} on t.detach()"
    )


def array_refused() -> TypeError:
    """The error for ``np.array(t)`` / ``np.asarray`` of a tensor that requires grad."""
    return TypeError(
        "NumPy asked for the array of a tensor that requires grad (np.array, np.asarray, or a NumPy "
        "function given a list of tensors such as np.sum([a, b])): the result would silently leave "
        "the graph. Keep it in nnet (nnet.stack([a, b]).sum(0)), or take t.detach().numpy() for the "
        "values alone"
    )
