"""Elementwise primitives with NumPy broadcasting. Derivations: docs/derivations.md, "Elementwise".

Operands may be tensors, ndarrays or Python scalars on either side. The arithmetic primitives promote
dtypes as PyTorch does (promotion.py): float32 with int64 stays float32, Python numbers never widen a
tensor, integer true division gives float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.compare import recorded_condition
from nnet.autograd.function import Function
from nnet.autograd.promotion import promote
from nnet.autograd.tensor import Tensor

_make = Tensor._make


class Add(Function):
    """d(a + b) = (g, g). See derivations.md#add-sub-neg."""

    elementwise = True

    promotes = 1
    saved_inputs = "none"

    # the forward is NumPy's ufunc itself: no Python frame of its own on the hottest ops
    forward = staticmethod(np.add)

    def vjp(ctx, grad):
        return grad, grad

    vjp_arrays = vjp  # the rule reads only the gradient: the same code serves arrays


class Sub(Function):
    """d(a - b) = (g, -g). See derivations.md#add-sub-neg."""

    elementwise = True

    promotes = 1
    saved_inputs = "none"

    op_name = "subtract"

    forward = staticmethod(np.subtract)

    def vjp(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)

    vjp_arrays = vjp


class Neg(Function):
    """d(-a) = -g. See derivations.md#add-sub-neg."""

    elementwise = True

    saved_inputs = "none"

    op_name = "negative"

    forward = staticmethod(np.negative)

    def vjp(ctx, grad):
        return (-grad,)

    vjp_arrays = vjp


class Mul(Function):
    """d(a b) = (g b, g a). See derivations.md#mul-div."""

    elementwise = True

    promotes = 1
    saved_inputs = "others"

    op_name = "multiply"

    forward = staticmethod(np.multiply)

    def vjp(ctx, grad):
        a, b = ctx.inputs
        na, nb = ctx.needs_input_grad
        return (grad * b if na else None), (grad * a if nb else None)

    def vjp_arrays(ctx, grad):
        a, b = ctx.inputs
        na, nb = ctx.needs_input_grad
        ga = grad * (b.data if isinstance(b, Tensor) else b) if na else None
        return ga, (grad * (a.data if isinstance(a, Tensor) else a) if nb else None)


class Div(Function):
    """d(a / b) = (g / b, -g a / b^2). See derivations.md#mul-div."""

    elementwise = True

    promotes = 2

    op_name = "divide"

    forward = staticmethod(np.divide)

    def vjp(ctx, grad):
        a, b = ctx.inputs
        na, nb = ctx.needs_input_grad
        ga = grad / b if na else None
        gb = -grad * a / (b * b) if nb else None
        return ga, gb

    def vjp_arrays(ctx, grad):
        a, b = _values(ctx)
        na, nb = ctx.needs_input_grad
        return (grad / b if na else None), (-grad * a / (b * b) if nb else None)


class Pow(Function):
    """d(a^b) = (g b a^(b-1), g a^b log a). See derivations.md#pow.

    Where b = 0 the base's gradient is 0 (not 0 * a^-1, NaN at a = 0): the exponent b - 1 is taken
    from 1 there, so a^(b-1) = 1, and the rule stays finite when differentiated again (PyTorch's mask).
    The exponent's gradient is taken as 0 where a <= 0 (log a is undefined there)."""

    elementwise = True

    promotes = 1

    op_name = "power"

    def forward(ctx, a, b):
        return np.power(a, b)

    def vjp(ctx, grad):
        a, b = ctx.inputs
        na, nb = ctx.needs_input_grad
        ga = grad * b * power(a, _nonzero(b, a) - 1) if na else None
        gb = None
        if nb:
            positive = np.asarray(a.data if isinstance(a, Tensor) else a) > 0
            safe_a = where(positive, a, 1.0)
            gb = where(positive, grad * power(a, b) * log(safe_a), 0.0)
        return ga, gb

    def vjp_arrays(ctx, grad):
        a, b = _values(ctx)
        na, nb = ctx.needs_input_grad
        ga = grad * b * np.power(a, _nonzero(b) - 1) if na else None
        gb = None
        if nb:
            positive = np.asarray(a) > 0
            gb = np.where(positive, grad * np.power(a, b) * np.log(np.where(positive, a, 1.0)), 0.0)
        return ga, gb


def _nonzero(b: Any, a: Any = None) -> Any:
    """The exponent with 0 replaced by 1, for pow's base gradient b a^(b-1): a zero exponent then
    gives 0 * a^0 = 0 instead of 0 * a^-1 (NaN at a = 0). A recorded exponent is replaced only
    where the base is 0 too, so that differentiating b a^(b-1) by b stays a^(b-1) elsewhere."""
    if isinstance(b, Tensor):
        zero = b.data == 0
        if a is not None:  # broadcast: the mask may be larger than b
            zero = zero & (np.asarray(a.data if isinstance(a, Tensor) else a) == 0)
        return where(zero, 1.0, b) if zero.any() else b
    if isinstance(b, np.ndarray):
        return np.where(b == 0, 1, b) if (b == 0).any() else b
    return 1 if b == 0 else b


class Exp(Function):
    """d exp(a) = g exp(a), from the saved output. See derivations.md#exp-log-sqrt."""

    elementwise = True

    saves_output = True

    def forward(ctx, a):
        return np.exp(a)

    def vjp(ctx, grad):
        return (grad * ctx.output,)

    def vjp_arrays(ctx, grad):
        return (grad * ctx.output.data,)


class Log(Function):
    """d log(a) = g / a. See derivations.md#exp-log-sqrt."""

    elementwise = True

    def forward(ctx, a):
        return np.log(a)

    def vjp(ctx, grad):
        return (grad / ctx.inputs[0],)

    def vjp_arrays(ctx, grad):
        return (grad / ctx.inputs[0].data,)


class Sqrt(Function):
    """d sqrt(a) = g / (2 sqrt(a)), from the saved output. See derivations.md#exp-log-sqrt."""

    elementwise = True

    saves_output = True

    def forward(ctx, a):
        return np.sqrt(a)

    def vjp(ctx, grad):
        return (grad / (2.0 * ctx.output),)

    def vjp_arrays(ctx, grad):
        return (grad / (2.0 * ctx.output.data),)


class Abs(Function):
    """d |a| = g sign(a), with abs'(0) = 0. See derivations.md#abs."""

    elementwise = True

    def forward(ctx, a):
        return np.abs(a)

    def vjp(ctx, grad):
        return (grad * np.sign(ctx.inputs[0].data),)

    vjp_arrays = vjp  # reads the input's array: the same code serves arrays


class Maximum(Function):
    """d max(a, b) = (g [a >= b or a is NaN], g [otherwise]): ties go to the first argument, and a
    NaN wins as in the forward. See derivations.md#maximum-minimum."""

    elementwise = True

    promotes = 1

    def forward(ctx, a, b):
        return np.maximum(a, b)

    def vjp(ctx, grad):
        a, b = _values(ctx)
        return _split(ctx, grad, _first_wins(np.greater_equal, a, b))

    vjp_arrays = vjp


class Minimum(Function):
    """d min(a, b) = (g [a <= b or a is NaN], g [otherwise]): ties go to the first argument, and a
    NaN wins as in the forward. See derivations.md#maximum-minimum."""

    elementwise = True

    promotes = 1

    def forward(ctx, a, b):
        return np.minimum(a, b)

    def vjp(ctx, grad):
        a, b = _values(ctx)
        return _split(ctx, grad, _first_wins(np.less_equal, a, b))

    vjp_arrays = vjp


def _first_wins(compare: np.ufunc, a: Any, b: Any) -> np.ndarray:
    """Where maximum/minimum's result is ``a``: it compares at least as extreme, or it is NaN (the
    forward propagates a NaN operand; a NaN ``b`` against a number ``a`` is ``b``'s)."""
    return np.asarray(compare(a, b) | np.isnan(a))


def _value(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _values(ctx: Function) -> tuple[Any, ...]:
    """The inputs as the arrays (or constants) the forward saw."""
    return tuple([x.data if isinstance(x, Tensor) else x for x in ctx.inputs])  # type: ignore[union-attr]


def _split(ctx: Function, grad: Tensor, first: np.ndarray) -> tuple[Tensor | None, Tensor | None]:
    na, nb = ctx.needs_input_grad
    return (grad * first if na else None), (grad * ~first if nb else None)


class Clip(Function):
    """d clip(a, lo, hi) = g [lo <= a <= hi] (bounds are constants). See derivations.md#clip."""

    elementwise = True

    def forward(ctx, a, lo, hi):
        return np.clip(a, lo, hi)

    def vjp(ctx, grad):
        a, lo, hi = ctx.inputs
        inside = np.ones(a.data.shape, dtype=bool)
        if lo is not None:
            inside &= a.data >= _value(lo)
        if hi is not None:
            inside &= a.data <= _value(hi)
        return grad * inside, None, None

    vjp_arrays = vjp


class Where(Function):
    """d where(c, a, b) = (None, g [c], g [not c]). See derivations.md#where."""

    elementwise = True

    saved_inputs = "none"

    def forward(ctx, cond, a, b):
        return np.where(cond, a, b)

    def vjp(ctx, grad):
        cond = np.asarray(_value(ctx.inputs[0]), dtype=bool)
        _, na, nb = ctx.needs_input_grad
        zero = np.zeros((), grad.data.dtype)
        ga = where(cond, grad, zero) if na else None
        gb = where(cond, zero, grad) if nb else None
        return None, ga, gb

    def vjp_arrays(ctx, grad):
        cond = np.asarray(_value(ctx.inputs[0]), dtype=bool)
        _, na, nb = ctx.needs_input_grad
        zero = np.zeros((), grad.dtype)
        return (
            None,
            np.where(cond, grad, zero) if na else None,
            np.where(cond, zero, grad) if nb else None,
        )


class AsType(Function):
    """d astype(a) = astype(g, a.dtype). See derivations.md#astype."""

    elementwise = True

    saved_inputs = "none"

    def forward(ctx, a, dtype):
        return a.astype(dtype)

    def vjp(ctx, grad):
        return grad.astype(ctx.inputs[0].data.dtype), None

    vjp_arrays = vjp


# -- public functions ---------------------------------------------------------------------------
def add(a: Any, b: Any) -> Tensor:
    """``a + b`` with broadcasting."""
    return Add.apply2(a, b)


def subtract(a: Any, b: Any) -> Tensor:
    """``a - b`` with broadcasting."""
    return Sub.apply2(a, b)


def multiply(a: Any, b: Any) -> Tensor:
    """``a * b`` with broadcasting."""
    return Mul.apply2(a, b)


def divide(a: Any, b: Any) -> Tensor:
    """``a / b`` with broadcasting."""
    return Div.apply2(a, b)


def negative(a: Any) -> Tensor:
    """``-a``."""
    return Neg.apply1(a)


def power(a: Any, b: Any) -> Tensor:
    """``a ** b`` with broadcasting."""
    return Pow.apply2(a, b)


def exp(a: Any) -> Tensor:
    """Elementwise e^a.

    >>> import nnet
    >>> nnet.exp(nnet.tensor([0.0])).numpy()
    array([1.], dtype=float32)
    """
    return Exp.apply1(a)


def log(a: Any) -> Tensor:
    """Elementwise natural logarithm."""
    return Log.apply1(a)


def sqrt(a: Any) -> Tensor:
    """Elementwise square root."""
    return Sqrt.apply1(a)


def abs(a: Any) -> Tensor:
    """Elementwise |a|; its derivative at 0 is taken as 0."""
    return Abs.apply1(a)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; where a == b the gradient goes to ``a``."""
    return Maximum.apply2(a, b)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum; where a == b the gradient goes to ``a``."""
    return Minimum.apply2(a, b)


def clip(a: Any, min: Any = None, max: Any = None) -> Tensor:
    """Limit values to [min, max]; the gradient passes where min <= a <= max."""
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    return Clip.apply(a, min, max)


clamp = clip


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``condition`` holds, else ``b``; differentiable in ``a`` and ``b``."""
    # a traced comparison (bool already) stays an input of the node, for nnet.onnx
    recorded = condition if recorded_condition(condition) else None
    if isinstance(condition, Tensor):
        condition = condition.data
    x, y = promote(
        a.data if isinstance(a, Tensor) else a, b.data if isinstance(b, Tensor) else b, False
    )
    a = a.astype(x.dtype) if isinstance(a, Tensor) and x.dtype != a.dtype else a
    b = b.astype(y.dtype) if isinstance(b, Tensor) and y.dtype != b.dtype else b
    return Where.apply(np.asarray(condition, dtype=bool) if recorded is None else recorded, a, b)


def astype(a: Tensor, dtype: Any) -> Tensor:
    """A copy of ``a`` converted to ``dtype``; differentiable between floating dtypes."""
    dtype = np.dtype(dtype)
    if a.requires_grad and dtype.kind != "f":
        return _make(a.data.astype(dtype), False, None)
    return AsType.apply2(a, dtype)
