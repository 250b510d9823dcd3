"""NumPy ufuncs applied to tensors (``np.exp(t)``, ``np.add(a, t)``) dispatch to nnet's ops."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nnet.autograd import ops

if TYPE_CHECKING:
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
