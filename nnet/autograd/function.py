"""`Function`: the base of every primitive. A forward over arrays, a VJP over tensors (and arrays).

A primitive subclasses :class:`Function` and defines

* ``forward(ctx, *arrays, **params) -> ndarray``: the value, computed with NumPy. Tensor arguments arrive as
  their arrays; constants (Python scalars, ndarrays) arrive as they are.
* ``vjp(ctx, grad) -> tuple``: one gradient per positional argument (``None`` where there is none),
  written with nnet's own ops so that ``create_graph=True`` can differentiate it again. ``ctx.inputs`` holds
  the original arguments (tensors or constants), ``ctx.needs_input_grad`` says which need a gradient, and
  ``ctx.output`` is the result tensor when the class sets ``saves_output = True``.
* optionally ``vjp_arrays(ctx, grad) -> tuple``: the same rule over NumPy arrays, which the engine runs
  when nothing is being recorded (the usual backward); without it, ``vjp`` runs on wrapped arrays.

The engine reduces each returned gradient to its input's shape (undoing broadcasting) and checks the count,
so a VJP never calls ``unbroadcast`` itself.

>>> import numpy as np, nnet
>>> class Cube(nnet.autograd.Function):
...     def forward(ctx, x):
...         return x**3
...     def vjp(ctx, grad):
...         (x,) = ctx.inputs
...         return (grad * 3 * x * x,)
>>> x = nnet.tensor([2.0], requires_grad=True)
>>> Cube.apply(x).backward(nnet.ones(1))
>>> x.grad.numpy()
array([12.], dtype=float32)
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from types import MethodType
from typing import Any

import numpy as np

from nnet.autograd.anomaly import anomaly_enabled, on_apply
from nnet.autograd.errors import operand_error
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.promotion import promote
from nnet.autograd.tensor import Tensor
from nnet.autograd.version import next_seq as _next_seq

_new_tensor = Tensor._make
_new = object.__new__
_ndarray = np.ndarray
_F32 = np.dtype(np.float32)
_WEAK = frozenset((float, int))  # Python numbers: NumPy keeps a float array's dtype, as PyTorch


class Function:
    """A recorded operation: one node of the graph (PyTorch's ``grad_fn``)."""

    # Slots for what every recorded node holds; __dict__ (created only when first written) for what
    # a primitive keeps beside them (ctx.axis, ...). An instance dict per node cost 4% of an op.
    __slots__ = (
        "__dict__", "__weakref__", "_output", "drawn_grad", "drawn_inputs", "inputs",
        "needs_input_grad", "seq",
    )  # fmt: skip

    #: Set on a subclass whose VJP reads its own result through ``ctx.output``.
    saves_output = False
    #: Set on a binary arithmetic primitive to promote its operands' dtypes as PyTorch does (see
    #: promotion.py): 1, or 2 for true division (integers give float32).
    promotes = 0
    #: The public function's name, for error messages (default: the class name in lower case).
    op_name: str | None = None
    #: Which tensor inputs the VJP reads the values of, so that backward can refuse values changed
    #: in place since: "all" (the safe default), "none" (shapes at most: add, reshape, sum), or
    #: "others" (an input is read only for another input's gradient: mul, matmul).
    saved_inputs = "all"
    #: Set on an elementwise primitive, whose array inputs broadcast to its output, so none is larger
    #: than the output: backward then keeps a small output's inputs for drawings without looking.
    elementwise = False

    inputs: tuple[Any, ...] | None
    needs_input_grad: tuple[bool, ...]
    saved: tuple[Any, ...] = ()  # save_for_backward's values, in the instance dict when set
    _non_differentiable = False  # mark_non_differentiable's flag, in the instance dict when set
    seq: int  # creation order: larger than the seq of every op that made an input (see engine)
    prior: Tensor  # set by in-place ops only: the tensor as it was before (nnet.autograd.inplace)
    # what backward keeps for drawings (nnet/autograd/sketch.py); unset until a backward passes
    drawn_grad: Any  # the output's gradient (an array), None when too big to keep
    drawn_inputs: tuple[Any, ...]  # the inputs once released, big ones sketched
    drawn_record: dict[int, Any]  # on a backward's root only: its leaves' gradients
    _output: weakref.ReferenceType[Tensor] | None
    #: ``apply(a)`` and ``apply(a, b)`` without keyword parameters, as functions of each class's own
    #: (made by ``_unary_apply`` and ``_binary_apply``): the operators and most public functions
    #: call them, skipping apply's packing of its arguments.
    apply1: Callable[[Any], Tensor]
    apply2: Callable[[Any, Any], Tensor]

    def forward(self, *args: Any, **params: Any) -> np.ndarray:
        """The op's value from the input arrays (and keyword parameters); every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(ctx, *arrays)")

    def vjp(self, grad: Tensor) -> tuple[Tensor | None, ...] | Tensor | None:
        """The gradients with respect to the inputs from the output's gradient ``grad``, as
        tensors (recorded under ``create_graph``); every subclass defines it (derivations.md)."""
        raise NotImplementedError(f"{type(self).__name__} must define vjp(ctx, grad)")

    def vjp_arrays(self, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """The VJP over plain arrays, run by a backward that records nothing (no ``create_graph``).

        ``grad`` is an ndarray and so is each returned gradient. This default runs :meth:`vjp` on
        tensors wrapping the arrays; a primitive overrides it with the same rule written in NumPy,
        which skips an op's worth of bookkeeping per product (see derivations.md#array-vjps).
        """
        grads: Any = self.vjp(_new_tensor(grad, False, None))
        if grads.__class__ is not tuple:
            grads = tuple(grads) if isinstance(grads, list) else (grads,)
        return tuple([None if g is None else g.data for g in grads])

    def hook_vjp(self, vjp: Any) -> None:
        """Route this node's backward through ``vjp`` (a wrapper of the current one, taking and
        returning tensors), in both walks: anomaly checks and tracing use it."""
        self.vjp = vjp  # type: ignore[method-assign]
        self.vjp_arrays = MethodType(Function.vjp_arrays, self)  # type: ignore[method-assign]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__ and "vjp" not in cls.__dict__:
            from nnet.autograd.torch_function import adapt

            adapt(cls)  # PyTorch's spelling: static forward(ctx, *tensors) and backward(ctx, grad)
        cls.apply1 = staticmethod(_unary_apply(cls))  # type: ignore[assignment]
        cls.apply2 = staticmethod(_binary_apply(cls))  # type: ignore[assignment]

    def save_for_backward(self, *values: Any) -> None:
        """Keep what the VJP needs beyond the inputs; released right after the VJP runs."""
        self.saved = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """PyTorch's name for what :meth:`save_for_backward` kept (inputs as the graph's tensors)."""
        from nnet.autograd.torch_function import saved_tensors

        return saved_tensors(self)

    def mark_non_differentiable(self, *outputs: Any) -> None:
        """PyTorch's: the output carries no gradient (the result is returned detached)."""
        self._non_differentiable = True

    @property
    def output(self) -> Tensor:
        """The tensor this node computed, for a ``saves_output`` primitive's VJP (held weakly)."""
        ref = self._output
        out = ref() if ref is not None else None
        if out is None:
            raise RuntimeError(f"{type(self).__name__}: its output is gone or was never saved")
        return out

    @property
    def released(self) -> bool:
        """Whether a backward without ``retain_graph`` has used and dropped this node's inputs."""
        return self.inputs is None

    @property
    def name(self) -> str:
        """The op's name in traces, drawings and errors (the class name)."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    @classmethod
    def apply(cls, *args: Any, **params: Any) -> Tensor:
        """Run forward on the arguments' arrays and, when recording, link the result into the graph."""
        if not params:
            n = len(args)
            if n == 2:
                return cls.apply2(*args)
            if n == 1:
                return cls.apply1(*args)
        ctx = _new(cls)
        try:
            out = ctx.forward(*[a.data if isinstance(a, Tensor) else a for a in args], **params)
            needs = tuple([isinstance(a, Tensor) and a.requires_grad for a in args])
        except (ValueError, TypeError) as e:
            operands = [a.data if isinstance(a, Tensor) else a for a in args if a is not None]
            raise operand_error(cls.op_name or cls.__name__.lower(), e, *operands) from None
        if type(out) is not _ndarray:
            out = np.asarray(out)
        if anomaly_enabled.get():
            on_apply(ctx, args, out)
        if True in needs and grad_enabled.get() and not ctx._non_differentiable:
            ctx.inputs = args
            ctx.needs_input_grad = needs
            ctx.seq = _next_seq()
            # Tensor._make spelled out: a call less on every recorded op
            result = _new(Tensor)
            result.data = out
            result._grad = None
            result.grad_fn = ctx
            result._retains_grad = False
            result.requires_grad = True
            ctx._output = weakref.ref(result) if cls.saves_output else None
            return result
        return _new_tensor(out, False, None)


# needs_input_grad as shared constants, so recording allocates one object less per op
_ONE, _BOTH, _FIRST, _SECOND = (True,), (True, True), (True, False), (False, True)


def _unary_apply(cls: type[Function]) -> Any:
    """``cls.apply1``: ``cls.apply(a)`` as a function of its own (see :func:`_binary_apply`)."""
    name = cls.op_name or cls.__name__.lower()
    saves_output = cls.saves_output
    plain = cls.__init__ is object.__init__ and cls.__new__ is object.__new__  # type: ignore[misc]

    def apply1(a: Any) -> Tensor:
        ctx = cls() if plain else _new(cls)
        ta = isinstance(a, Tensor)
        try:
            out = ctx.forward(a.data if ta else a)
        except (ValueError, TypeError) as e:
            raise operand_error(name, e, *([] if a is None else [a.data if ta else a])) from None
        if type(out) is not _ndarray:
            out = np.asarray(out)
        if anomaly_enabled.get():
            on_apply(ctx, (a,), out)
        if ta and a.requires_grad and grad_enabled.get() and not ctx._non_differentiable:
            ctx.inputs = (a,)
            ctx.needs_input_grad = _ONE
            ctx.seq = _next_seq()
            result = _new(Tensor)  # Tensor._make spelled out: a call less on every recorded op
            result.data = out
            result._grad = None
            result.grad_fn = ctx
            result._retains_grad = False
            result.requires_grad = True
            ctx._output = weakref.ref(result) if saves_output else None
            return result
        return _new_tensor(out, False, None)

    apply1.__doc__ = f"``{cls.__name__}.apply(a)``, without apply's packing of its argument."
    return apply1


def _binary_apply(cls: type[Function]) -> Any:
    """``cls.apply2``: ``cls.apply(a, b)`` as a function of its own, with what it reads of the class
    (promotion, output saving, name) taken once. ``t * u`` is the hottest call in nnet: this skips
    apply's argument packing, a dict and class lookups per op (about 10% of an op's forward)."""
    p = cls.promotes
    true_division = p == 2
    name = cls.op_name or cls.__name__.lower()
    saves_output = cls.saves_output
    # a plain class constructs faster by its call than by object.__new__
    plain = cls.__init__ is object.__init__ and cls.__new__ is object.__new__  # type: ignore[misc]

    def apply2(a: Any, b: Any) -> Tensor:
        ctx = cls() if plain else _new(cls)
        ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
        x, y = a.data if ta else a, b.data if tb else b
        try:
            # PyTorch's promotion where NumPy's differs. The common cases, where the two agree
            # (float arrays of one dtype, a float array and a Python number), are settled here.
            if p:
                kx, ky = type(x), type(y)
                if kx is _ndarray:
                    dx = x.dtype
                    if not (
                        (y.dtype is dx if ky is _ndarray else ky in _WEAK)
                        and (dx is _F32 or dx.kind == "f")
                    ):
                        x, y = promote(x, y, true_division)
                elif not (ky is _ndarray and kx in _WEAK and y.dtype.kind == "f"):
                    x, y = promote(x, y, true_division)
            out = ctx.forward(x, y)
        except (ValueError, TypeError) as e:
            operands = [v.data if isinstance(v, Tensor) else v for v in (a, b) if v is not None]
            raise operand_error(name, e, *operands) from None
        if type(out) is not _ndarray:
            out = np.asarray(out)
        if anomaly_enabled.get():
            on_apply(ctx, (a, b), out)
        ra = ta and a.requires_grad
        rb = tb and b.requires_grad
        if (ra or rb) and grad_enabled.get() and not ctx._non_differentiable:
            ctx.inputs = (a, b)
            ctx.needs_input_grad = (_BOTH if rb else _FIRST) if ra else _SECOND
            ctx.seq = _next_seq()
            result = _new(Tensor)  # Tensor._make spelled out: a call less on every recorded op
            result.data = out
            result._grad = None
            result.grad_fn = ctx
            result._retains_grad = False
            result.requires_grad = True
            ctx._output = weakref.ref(result) if saves_output else None
            return result
        return _new_tensor(out, False, None)

    apply2.__doc__ = f"``{cls.__name__}.apply(a, b)``, without apply's packing of its arguments."
    return apply2


Function.apply1 = staticmethod(_unary_apply(Function))  # type: ignore[assignment]
Function.apply2 = staticmethod(_binary_apply(Function))  # type: ignore[assignment]
