"""Layers computed when their result is first needed, so that a run of them called one at a time
(a define-by-run ``Module.forward``) reaches the same fused kernels as an ``nn.Sequential``.

Inside a module's call, the layers that a fused kernel can start or continue (convolution, batch
norm, ReLU, max-pooling: nnet/kernels/chains.py says which) return a :class:`Pending` tensor: its
shape and dtype are known, its value is not computed yet. Its ``data`` slot holds the
:class:`Step` that will compute it: the layer, its input (perhaps pending too) and its arguments.
The first read of ``.data`` or ``.grad_fn`` (any op that uses it does this) resolves the run of
pending steps that ends at it, fusing what the kernel registry can fuse, and turns the tensor into
an ordinary :class:`~nnet.autograd.Tensor` (``__class__`` assignment: the two share one layout).

What this keeps exact:

* A step is fused into the next one only if nothing but that next step holds its tensor (its
  reference count says so): a tensor a user kept (``z = conv(x)``, a residual branch, a tensor
  whose ``retain_grad`` or hooks must see its gradient) is computed on its own, with its own node,
  and the rest of the run starts from it. An intermediate nobody can reach cannot be observed.
* Each step runs in the grad mode it was called in, and its arguments are the ones it was called
  with (parameters are updated in place only by optimizers, after the call has ended).
* Nothing stays pending after the outermost module call returns: its result is resolved, then every
  pending tensor still alive, then the batch norms whose results were dropped unread (so that their
  running statistics move as they would have). An in-place op resolves every pending tensor first.

>>> import nnet
>>> from nnet import nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
>>> type(net(nnet.ones((1, 4, 4, 1)))).__name__  # resolved when the outermost call returns
'Tensor'
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import numpy as np

from nnet.autograd.anomaly import anomaly_enabled
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.tensor import Tensor

_data_slot = Tensor.__dict__["data"]
_grad_fn_slot = Tensor.__dict__["grad_fn"]


class Step:
    """One pending layer: its name, its input tensor, its other arguments, the grad mode it was
    called in, and whether its side effects (batch norm's running statistics) have happened."""

    __slots__ = ("applied", "args", "dtype", "layer", "recording", "shape", "src")

    def __init__(self, layer: str, src: Tensor, args: tuple, shape: tuple[int, ...],
                 dtype: np.dtype, recording: bool) -> None:  # fmt: skip
        self.layer = layer
        self.src = src
        self.args = args
        self.shape = shape
        self.dtype = dtype
        self.recording = recording
        self.applied = False


class _Call:
    """The pending tensors of one outermost module call (weakly) and its batch-norm steps."""

    __slots__ = ("effects", "tensors")

    def __init__(self) -> None:
        self.tensors: list[weakref.ReferenceType[Tensor]] = []
        self.effects: list[Step] = []


_open: ContextVar[_Call | None] = ContextVar("nnet_pending_call", default=None)

#: Resolves a pending tensor (set by nnet/kernels/chains.py, which knows the kernels): computes the
#: run of steps ending at it and stores the value, node and class of an ordinary tensor.
_resolver: Callable[[Tensor], None] | None = None
#: Runs one batch-norm step whose result nobody read, for its running statistics only.
_effect: Callable[[Step], None] | None = None


#: Whether the fused kernels are on (nnet.kernels.mode's context variable, set with the resolver:
#: the kernels import this module, so it cannot import them).
_fused: ContextVar[bool] | None = None


def set_resolver(resolve: Callable[[Tensor], None], effect: Callable[[Step], None],
                 fused: ContextVar[bool]) -> None:  # fmt: skip
    global _resolver, _effect, _fused
    _resolver, _effect, _fused = resolve, effect, fused


def _resolve(t: Tensor) -> None:
    assert _resolver is not None
    _resolver(t)


class Pending(Tensor):
    """A tensor whose value is computed on first use (see the module docstring)."""

    __slots__ = ()

    @property  # type: ignore[override]
    def data(self) -> np.ndarray:
        _resolve(self)
        return _data_slot.__get__(self)  # type: ignore[no-any-return]

    @data.setter
    def data(self, value: np.ndarray) -> None:
        _resolve(self)
        _data_slot.__set__(self, value)

    @property  # type: ignore[override]
    def grad_fn(self) -> Any:
        _resolve(self)
        return _grad_fn_slot.__get__(self)

    @grad_fn.setter
    def grad_fn(self, fn: Any) -> None:
        _grad_fn_slot.__set__(self, fn)

    @property
    def shape(self) -> tuple[int, ...]:
        return step_of(self).shape

    @property
    def ndim(self) -> int:
        return len(step_of(self).shape)

    @property
    def dtype(self) -> np.dtype:
        return step_of(self).dtype

    def numel(self) -> int:
        return int(np.prod(step_of(self).shape))


def step_of(t: Tensor) -> Step:
    """The step a pending tensor holds in its ``data`` slot."""
    return _data_slot.__get__(t)  # type: ignore[no-any-return]


def deferring() -> bool:
    """Whether a layer called now may return a pending tensor: inside a module's call, with the
    fused kernels on and anomaly detection off (which wants each op where it was called)."""
    return (
        _open.get() is not None
        and _fused is not None
        and _fused.get()
        and not anomaly_enabled.get()
    )


def defer(layer: str, src: Tensor, args: tuple, shape: tuple[int, ...], needs: bool) -> Tensor:
    """A pending tensor for ``layer`` applied to ``src`` with ``args``; ``needs``: whether any
    tensor argument requires a gradient (the result does when recording)."""
    call = _open.get()
    assert call is not None
    recording = grad_enabled.get()
    step = Step(layer, src, args, shape, src.dtype, recording)
    t = object.__new__(Pending)
    _data_slot.__set__(t, step)
    _grad_fn_slot.__set__(t, None)
    t._grad = None
    t._retains_grad = False
    t.requires_grad = needs and recording
    call.tensors.append(weakref.ref(t))
    if layer in ("batch_norm", "sync_batch_norm"):
        call.effects.append(step)
    return t


def resolved(t: Tensor, value: Tensor) -> None:
    """Make pending ``t`` the ordinary tensor ``value`` computed for it: its array and node (whose
    saved output, if any, becomes ``t``); ``t``'s own ``retain_grad`` and hooks stay."""
    _data_slot.__set__(t, value.data)
    fn = _grad_fn_slot.__get__(value)
    _grad_fn_slot.__set__(t, fn)
    t.requires_grad = value.requires_grad
    if fn is not None and fn._output is not None:
        fn._output = weakref.ref(t)
    t.__class__ = Tensor


def settle() -> None:
    """Resolve every pending tensor of the current call that is still alive, in creation order
    (an in-place op calls this before it writes)."""
    call = _open.get()
    if call is None:
        return
    for ref in call.tensors:
        t = ref()
        if t is not None and type(t) is Pending:
            _resolve(t)
    call.tensors.clear()


def _settle_result(out: Any) -> None:
    if type(out) is Pending:
        _resolve(out)
    elif isinstance(out, (tuple, list)):
        for o in out:
            _settle_result(o)
    elif isinstance(out, dict):
        for o in out.values():
            _settle_result(o)


def outermost(forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """Run an outermost module call: layers inside it may defer; on return nothing is pending."""
    call = _Call()
    token = _open.set(call)
    try:
        out = forward(*args, **kwargs)
        _settle_result(out)
        settle()
        for step in call.effects:
            if not step.applied:
                assert _effect is not None
                _effect(step)
        return out
    finally:
        _open.reset(token)


def is_open() -> bool:
    """Whether a module call is running (an inner call needs no bookkeeping of its own)."""
    return _open.get() is not None
