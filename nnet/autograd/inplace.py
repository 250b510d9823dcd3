"""In-place operations (``t += u``, ``t.add_(u)``, ``zero_``, ...), with PyTorch's semantics.

* Nothing recorded (no tensor involved requires gradients, or inside ``no_grad``): NumPy writes into
  the tensor's array, and the version counter of its memory goes up (nnet.autograd.version).
* A leaf that requires gradients, outside ``no_grad``: an error, as in PyTorch. Changing it would cut
  it from the graph (the classic ``w -= lr * w.grad`` without ``no_grad``).
* Anything else is recorded: the out-of-place op runs on the tensor as it was (a copy when the op's
  VJP reads that value), the result is written into the tensor's array, and the tensor's history is
  rebased onto the new op (``t.grad_fn`` becomes it; the op keeps the old tensor as ``prior``, so
  that ops recorded earlier still send their gradients to the old version).

A value some recorded op saved for its gradient and then changed in place is caught by backward
(``version.check_node``). See docs/derivations.md#in-place-operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnet.autograd.elementwise import Add, Clip, Div, Mul, Pow, Sub, Where
from nnet.autograd.function import Function
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.pending import settle
from nnet.autograd.tensor import Tensor
from nnet.autograd.version import bump, next_seq

_make = Tensor._make

#: in-place method -> (NumPy ufunc for the unrecorded case, primitive for the recorded one)
_ARITHMETIC: dict[str, tuple[np.ufunc, type[Function]]] = {
    "add_": (np.add, Add),
    "sub_": (np.subtract, Sub),
    "mul_": (np.multiply, Mul),
    "div_": (np.true_divide, Div),
    "pow_": (np.power, Pow),
}


def _value(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _recorded(t: Tensor, *others: Any) -> bool:
    if not grad_enabled.get():
        return False
    return t.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)


def _numpy_error(name: str, t: Tensor, other: Any, e: Exception) -> Exception:
    """NumPy's complaint about an ``out=`` write, restated for the in-place method ``name``."""
    text = str(e)
    if "read-only" in text:
        return ValueError(
            f"{name}: this tensor's memory is read-only (a broadcast view, such as expand's or "
            "broadcast_to's result, repeats one value in many places); copy it first with "
            "nnet.tensor(t) and change the copy"
        )
    if isinstance(e, TypeError):  # NumPy's UFuncTypeError: the result's dtype can't be written
        return TypeError(
            f"{name}: cannot write the result into a tensor of dtype {t.dtype} in place ({text}); "
            "convert the tensor first (t = t.double()) or use the out-of-place operator"
        )
    return ValueError(
        f"{name}: the result would have shape {_broadcast(t, other)} but the tensor changed in "
        f"place has shape {t.shape}; an in-place operation cannot change a tensor's shape"
    )


def _broadcast(t: Tensor, other: Any) -> tuple[int, ...] | str:
    try:
        return np.broadcast_shapes(t.shape, np.shape(_value(other)))
    except ValueError:
        return f"(none: {np.shape(_value(other))} does not broadcast with {t.shape})"


def _check_shape(name: str, t: Tensor, *others: Any) -> None:
    for other in others:
        if other is not None and _broadcast(t, other) != t.shape:
            raise _numpy_error(name, t, other, ValueError("broadcast"))


def _check_leaf(name: str, t: Tensor) -> None:
    if t.requires_grad and t.grad_fn is None:
        raise RuntimeError(
            f"{name}: a leaf tensor that requires grad is used in an in-place operation; wrap the "
            "update in nnet.no_grad() (with nnet.no_grad(): w -= lr * w.grad), as optimizers do"
        )


def _check_view(name: str, t: Tensor) -> None:
    """Refuse to record a change to a view of a tensor that requires gradients: PyTorch rebases
    the viewed tensor's history too (CopySlices); nnet does not, and that tensor's gradient would
    miss the change."""
    fn = t.grad_fn
    if fn is None or fn.inputs is None or t.data.base is None:
        return
    for x in fn.inputs:
        if isinstance(x, Tensor) and x.requires_grad and np.may_share_memory(x.data, t.data):
            raise RuntimeError(
                f"{name}: this tensor is a view of another tensor that requires grad (made by "
                f"{fn.name}); nnet does not carry an in-place change of a view back into the "
                "viewed tensor's graph. Write the out-of-place form (t = t + u) instead"
            )


def _rebase(
    name: str,
    t: Tensor,
    compute: Callable[[Tensor], Tensor],
    copy_prior: bool,
    casting: Any = "same_kind",
) -> Tensor:
    """The recorded case: ``compute(prior)`` out of place, written into ``t``, history rebased."""
    _check_leaf(name, t)
    _check_view(name, t)
    prior = _make(t.data.copy() if copy_prior else t.data, t.requires_grad, t.grad_fn)
    result = compute(prior)
    try:
        np.copyto(t.data, result.data, casting=casting)
    except (ValueError, TypeError) as e:
        raise _numpy_error(name, t, result, e) from None
    bump(t.data)
    node = result.grad_fn
    assert node is not None  # recorded: t or an operand requires grad, and grad mode is on
    # renumbered after the change, so the node counts as recorded after it: its output is t's new
    # value (still later than its inputs' ops, and nothing has consumed it yet)
    node.seq = next_seq()
    node.prior = prior
    t.grad_fn = node
    t.requires_grad = True
    return t


def _operand(name: str, t: Tensor, other: Any) -> Any:
    """``other`` for a recorded op on ``t``: the old value (None) when it is ``t``; a copy when it
    is a constant in ``t``'s memory, which the write would change under the op's saved operand."""
    if other is t:
        return None
    if not isinstance(other, Tensor) or not np.may_share_memory(other.data, t.data):
        return other
    if other.requires_grad:
        raise RuntimeError(
            f"{name}: some elements of the operand and of the tensor changed in place are the "
            "same memory (one is a view of the other); copy the operand first (u * 1)"
        )
    return other.data.copy()


def arithmetic_(name: str, t: Tensor, other: Any, alpha: Any = 1) -> Tensor:
    """``t.add_(other, alpha=)``, ``sub_``, ``mul_``, ``div_``, ``pow_`` and the operators
    ``+=``, ``-=``, ``*=``, ``/=``, ``**=``."""
    settle()  # a pending layer reads its inputs when it runs: before this change, as if eager
    ufunc, op = _ARITHMETIC[name]
    _check_shape(name, t, other)
    if not _recorded(t, other):
        value = _value(other)
        if alpha != 1:
            value = value * alpha
        try:
            ufunc(t.data, value, out=t.data)
        except (ValueError, TypeError) as e:
            raise _numpy_error(name, t, other, e) from None
        bump(t.data)
        return t
    operand_grad = isinstance(other, Tensor) and other.requires_grad
    other = _operand(name, t, other)  # None: t itself, i.e. its value before the change (t += t)
    reads = op.saved_inputs == "all" or (op.saved_inputs == "others" and operand_grad)

    def compute(prior: Tensor) -> Tensor:
        o = prior if other is None else other
        return op.apply(prior, o if alpha == 1 else o * alpha)

    return _rebase(name, t, compute, copy_prior=reads)


def clamp_(t: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """``t.clamp_(min, max)``: limit the values to [min, max] in place."""
    if min is None and max is None:
        raise ValueError("clamp_: give at least one of min and max")
    settle()
    lo, hi = _value(min), _value(max)
    _check_shape("clamp_", t, lo, hi)
    if not _recorded(t):
        try:
            np.clip(t.data, lo, hi, out=t.data)
        except (ValueError, TypeError) as e:
            raise _numpy_error("clamp_", t, lo if hi is None else hi, e) from None
        bump(t.data)
        return t
    return _rebase("clamp_", t, lambda prior: Clip.apply(prior, lo, hi), copy_prior=True)


def assign_(name: str, t: Tensor, value: Any) -> Tensor:
    """``fill_``, ``zero_`` and ``copy_``: every element from ``value`` (broadcast to t's shape,
    converted to its dtype). The gradient goes to ``value`` when it is a tensor; none goes to the
    values replaced."""
    settle()
    _check_shape(name, t, value)
    if not _recorded(t, value):
        try:
            np.copyto(t.data, _value(value), casting="unsafe")
        except (ValueError, TypeError) as e:
            raise _numpy_error(name, t, value, e) from None
        bump(t.data)
        return t
    keep_none = np.zeros(t.shape, dtype=bool)  # where() takes every element from value
    return _rebase(
        name,
        t,
        lambda prior: Where.apply(keep_none, prior, value),
        copy_prior=False,
        casting="unsafe",
    )
