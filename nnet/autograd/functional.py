"""Derivatives of functions, not of tensors: ``torch.autograd.functional``'s API over nnet's engine.

Each takes a function ``f`` of one tensor or a tuple of tensors and returns what PyTorch's function of
the same name returns, in the same structure: a lone tensor where ``f`` takes (or returns) a lone
tensor, a tuple per input (or output) where it takes (or returns) a tuple.

* :func:`vjp` ``v^T J`` and :func:`jacobian` ``J`` (one reverse pass per output element) use the
  engine directly;
* :func:`jvp` ``J v`` has no forward mode to run on: it takes the VJP ``u -> J^T u`` as a function
  of a dummy ``u`` (recorded with ``create_graph``), which is linear in ``u`` with Jacobian ``J^T``;
  its VJP with ``v`` is ``(J^T)^T v = J v`` (docs/derivations.md#jvp-by-two-vjps);
* :func:`hessian` is the Jacobian of the gradient; :func:`vhp` ``v^T H`` differentiates
  ``<grad f, v>``; :func:`hvp` ``H v`` is :func:`jvp` of the gradient (equal to vhp when ``H`` is
  symmetric, as it is for twice continuously differentiable ``f``).

Inputs are taken as constants of a fresh graph (detached, then marked ``requires_grad``); with
``create_graph=True`` an input that already requires gradients stays connected, so the results can
be differentiated again with respect to it.

>>> import nnet
>>> from nnet.autograd.functional import jacobian, hvp
>>> jacobian(lambda x: x * x, nnet.tensor([1.0, 2.0])).numpy()
array([[2., 0.],
       [0., 4.]], dtype=float32)
>>> _, hv = hvp(lambda x: (x**3).sum(), nnet.tensor([1.0, 2.0]), nnet.tensor([1.0, 1.0]))
>>> hv.numpy()
array([ 6., 12.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnet.autograd.engine import grad
from nnet.autograd.grad_mode import enable_grad
from nnet.autograd.tensor import Tensor

Tensors = Tensor | tuple[Tensor, ...]
Func = Callable[..., Any]


def _as_tuple(x: Any, what: str, op: str) -> tuple[bool, tuple[Tensor, ...]]:
    """``(was_tuple, tensors)``: one tensor or a tuple/list of them, anything else an error."""
    is_tuple = isinstance(x, (tuple, list))
    items = tuple(x) if is_tuple else (x,)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            where = f"{what}[{i}]" if is_tuple else what
            raise TypeError(
                f"{op}: {where} must be a Tensor, got {type(t).__name__}; wrap arrays with "
                "nnet.tensor(...)"
            )
    return is_tuple, items


def _packed(items: Sequence[Any], is_tuple: bool) -> Any:
    return tuple(items) if is_tuple else items[0]


def _prepared(inputs: tuple[Tensor, ...], create_graph: bool, op: str) -> tuple[Tensor, ...]:
    """The inputs as leaves of a fresh graph; under ``create_graph`` an input that requires
    gradients is passed through an identity op instead, so the results stay connected to it."""
    out = []
    for i, t in enumerate(inputs):
        if t.dtype.kind != "f":
            raise TypeError(
                f"{op}: inputs[{i}] has dtype {t.dtype}; derivatives need floating-point inputs "
                "(convert with .float() or .double())"
            )
        if create_graph and t.requires_grad:
            with enable_grad():
                out.append(t + 0.0)
        else:
            out.append(t.detach().requires_grad_())
    return tuple(out)


def _call(func: Func, inputs: tuple[Tensor, ...], op: str) -> tuple[bool, tuple[Tensor, ...]]:
    with enable_grad():
        result = func(*inputs)
    return _as_tuple(result, "the function's output", op)


def _grads(
    outputs: Sequence[Tensor],
    inputs: Sequence[Tensor],
    grad_outputs: Sequence[Tensor],
    create_graph: bool,
    retain_graph: bool,
) -> list[Tensor]:
    """``sum_k grad_outputs[k]^T d outputs[k] / d inputs``, zeros for an input nothing depends on."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
    found: Sequence[Tensor | None] = [None] * len(inputs)
    if pairs:
        with enable_grad():
            found = grad(
                [o for o, _ in pairs],
                list(inputs),
                [g for _, g in pairs],
                retain_graph=retain_graph or create_graph,
                create_graph=create_graph,
                allow_unused=True,
            )
    return [
        Tensor._make(np.zeros_like(x.data), False, None) if g is None else g
        for x, g in zip(inputs, found, strict=True)
    ]


def _vectors(
    v: Any, like: tuple[Tensor, ...], what: str, op: str, create_graph: bool
) -> tuple[Tensor, ...]:
    """``v`` checked against ``like`` (shapes); None allowed only for one one-element tensor."""
    if v is None:
        if len(like) != 1 or like[0].numel() != 1:
            shapes = [t.shape for t in like]
            raise ValueError(
                f"{op}: v can be omitted only when the {what} is a single one-element tensor; "
                f"the {what} has shapes {shapes}, so pass v with those shapes"
            )
        return (Tensor._make(np.ones_like(like[0].data), False, None),)
    _, vs = _as_tuple(v, "v", op)
    if len(vs) != len(like) or any(a.shape != b.shape for a, b in zip(vs, like, strict=False)):
        raise ValueError(
            f"{op}: v has shapes {[t.shape for t in vs]} but the {what} has shapes "
            f"{[t.shape for t in like]}; pass one tensor of the same shape per {what} tensor"
        )
    return tuple(t if create_graph else t.detach() for t in vs)


def _finished(ts: Sequence[Tensor], create_graph: bool) -> list[Tensor]:
    return list(ts) if create_graph else [t.detach() for t in ts]


def vjp(
    func: Func, inputs: Tensors, v: Tensors | None = None, create_graph: bool = False
) -> tuple[Any, Any]:
    """``(func(inputs), v^T J)``: the vector-Jacobian product, one result per input.

    Parameters
    ----------
    func : callable
        Takes the input tensors as positional arguments, returns a tensor or a tuple of them.
    inputs : Tensor or tuple of Tensor
    v : Tensor or tuple of Tensor, optional
        One tensor per output, of its shape; may be omitted for a single one-element output.
    create_graph : bool
        Record the computation, so the results can be differentiated again.

    >>> import nnet
    >>> out, g = vjp(lambda x: 3 * x, nnet.ones(2), nnet.tensor([1.0, 2.0]))
    >>> g.numpy()
    array([3., 6.], dtype=float32)
    """
    in_tuple, xs = _as_tuple(inputs, "inputs", "vjp")
    xs = _prepared(xs, create_graph, "vjp")
    out_tuple, ys = _call(func, xs, "vjp")
    vs = _vectors(v, ys, "output", "vjp", create_graph)
    res = _grads(ys, xs, vs, create_graph, retain_graph=create_graph)
    return (
        _packed(_finished(ys, create_graph), out_tuple),
        _packed(_finished(res, create_graph), in_tuple),
    )


def _jvp(
    ys: tuple[Tensor, ...], xs: tuple[Tensor, ...], vs: tuple[Tensor, ...], create_graph: bool
) -> list[Tensor]:
    """``J v`` by two VJPs: ``g(u) = J^T u`` recorded for a dummy ``u``, then ``d<g(u), v>/du``."""
    us = tuple(Tensor._make(np.zeros_like(y.data), True, None) for y in ys)
    gs = _grads(ys, xs, us, create_graph=True, retain_graph=True)
    return _grads(gs, us, vs, create_graph, retain_graph=create_graph)


def jvp(
    func: Func, inputs: Tensors, v: Tensors | None = None, create_graph: bool = False
) -> tuple[Any, Any]:
    """``(func(inputs), J v)``: the Jacobian-vector product, one result per output.

    Computed by the double-VJP trick (docs/derivations.md#jvp-by-two-vjps), so it costs two reverse
    passes; ``v`` holds one tensor per input, of its shape (optional for one one-element input).

    >>> import nnet
    >>> out, jv = jvp(lambda x: x * x, nnet.tensor([1.0, 2.0]), nnet.tensor([1.0, 1.0]))
    >>> jv.numpy()
    array([2., 4.], dtype=float32)
    """
    _, xs = _as_tuple(inputs, "inputs", "jvp")
    xs = _prepared(xs, create_graph, "jvp")
    vs = _vectors(v, xs, "input", "jvp", create_graph)
    out_tuple, ys = _call(func, xs, "jvp")
    res = _jvp(ys, xs, vs, create_graph)
    return (
        _packed(_finished(ys, create_graph), out_tuple),
        _packed(_finished(res, create_graph), out_tuple),
    )


def _jacobian_rows(
    ys: tuple[Tensor, ...], xs: tuple[Tensor, ...], create_graph: bool
) -> list[list[Tensor]]:
    """``J[i][j]`` of shape ``ys[i].shape + xs[j].shape``, one reverse pass per output element."""
    from nnet.autograd.shape import stack

    table: list[list[Tensor]] = []
    for i, y in enumerate(ys):
        rows: list[list[Tensor]] = [[] for _ in xs]
        for k in range(y.numel()):
            onehot = np.zeros(y.numel(), y.dtype)
            onehot[k] = 1
            gos = [
                Tensor._make(
                    onehot.reshape(y.shape) if m == i else np.zeros_like(o.data), False, None
                )
                for m, o in enumerate(ys)
            ]
            for j, g in enumerate(_grads(ys, xs, gos, create_graph, retain_graph=True)):
                rows[j].append(g)
        table.append(
            [
                stack(r).reshape(y.shape + x.shape)
                if r
                else Tensor._make(np.zeros(y.shape + x.shape, x.dtype), False, None)
                for r, x in zip(rows, xs, strict=True)
            ]
        )
    return table


def _nested(table: list[list[Tensor]], out_tuple: bool, in_tuple: bool) -> Any:
    return _packed([_packed(row, in_tuple) for row in table], out_tuple)


def jacobian(func: Func, inputs: Tensors, create_graph: bool = False) -> Any:
    """The Jacobian of ``func`` at ``inputs``: entry ``[i][j]`` has shape
    ``outputs[i].shape + inputs[j].shape``; a level of the nesting is dropped where ``func`` takes
    or returns a lone tensor (as in PyTorch).

    >>> import nnet
    >>> jacobian(lambda x, y: x * y, (nnet.tensor([2.0]), nnet.tensor([3.0])))[1].numpy()
    array([[2.]], dtype=float32)
    """
    in_tuple, xs = _as_tuple(inputs, "inputs", "jacobian")
    xs = _prepared(xs, create_graph, "jacobian")
    out_tuple, ys = _call(func, xs, "jacobian")
    table = _jacobian_rows(ys, xs, create_graph)
    return _nested([_finished(r, create_graph) for r in table], out_tuple, in_tuple)


def _scalar(func: Func, xs: tuple[Tensor, ...], op: str) -> Tensor:
    out_tuple, ys = _call(func, xs, op)
    if out_tuple or ys[0].numel() != 1:
        shapes = [y.shape for y in ys]
        raise ValueError(
            f"{op}: the function must return a single one-element tensor (a scalar loss), got "
            f"{'a tuple of ' if out_tuple else ''}shape{'s' if out_tuple else ''} "
            f"{shapes if out_tuple else shapes[0]}; reduce it, e.g. with .sum()"
        )
    return ys[0]


def _gradient(y: Tensor, xs: tuple[Tensor, ...]) -> list[Tensor]:
    """``grad y`` per input, recorded so it can be differentiated again."""
    one = Tensor._make(np.ones_like(y.data), False, None)
    return _grads([y], xs, [one], create_graph=True, retain_graph=True)


def hessian(func: Func, inputs: Tensors, create_graph: bool = False) -> Any:
    """The Hessian of a scalar ``func``: entry ``[i][j]`` has shape ``inputs[i].shape +
    inputs[j].shape`` (a lone tensor for a lone input), the Jacobian of its gradient.

    >>> import nnet
    >>> hessian(lambda x: (x[0] * x[1]), nnet.tensor([1.0, 2.0])).numpy()
    array([[0., 1.],
           [1., 0.]], dtype=float32)
    """
    in_tuple, xs = _as_tuple(inputs, "inputs", "hessian")
    xs = _prepared(xs, create_graph, "hessian")
    gs = _gradient(_scalar(func, xs, "hessian"), xs)
    table = _jacobian_rows(tuple(gs), xs, create_graph)
    return _nested([_finished(r, create_graph) for r in table], in_tuple, in_tuple)


def vhp(func: Func, inputs: Tensors, v: Tensors | None = None, create_graph: bool = False) -> Any:
    """``(func(inputs), v^T H)`` for a scalar ``func``: the gradient of ``<grad f, v>``.

    >>> import nnet
    >>> _, r = vhp(lambda x: (x * x).sum(), nnet.ones(2), nnet.tensor([1.0, 3.0]))
    >>> r.numpy()
    array([2., 6.], dtype=float32)
    """
    in_tuple, xs = _as_tuple(inputs, "inputs", "vhp")
    xs = _prepared(xs, create_graph, "vhp")
    vs = _vectors(v, xs, "input", "vhp", create_graph)
    y = _scalar(func, xs, "vhp")
    res = _grads(_gradient(y, xs), xs, vs, create_graph, retain_graph=create_graph)
    return (_finished([y], create_graph)[0], _packed(_finished(res, create_graph), in_tuple))


def hvp(func: Func, inputs: Tensors, v: Tensors | None = None, create_graph: bool = False) -> Any:
    """``(func(inputs), H v)`` for a scalar ``func``: :func:`jvp` of its gradient.

    >>> import nnet
    >>> _, r = hvp(lambda x: (x * x).sum(), nnet.ones(2), nnet.tensor([1.0, 3.0]))
    >>> r.numpy()
    array([2., 6.], dtype=float32)
    """
    in_tuple, xs = _as_tuple(inputs, "inputs", "hvp")
    xs = _prepared(xs, create_graph, "hvp")
    vs = _vectors(v, xs, "input", "hvp", create_graph)
    y = _scalar(func, xs, "hvp")
    res = _jvp(tuple(_gradient(y, xs)), xs, vs, create_graph)
    return (_finished([y], create_graph)[0], _packed(_finished(res, create_graph), in_tuple))
