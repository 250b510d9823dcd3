"""Matrix multiplication with NumPy's semantics. Derivation: docs/derivations.md, "matmul"."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor


class MatMul(Function):
    """d(A B) = (G B^T, A^T G), with 1-D operands treated as a row (A) or a column (B) and batch axes
    summed by the engine. See derivations.md#matmul."""

    promotes = 1
    saved_inputs = "others"

    def forward(ctx, a, b):
        return np.matmul(a, b)

    def vjp(ctx, grad):
        return _matmul_vjp(ctx, grad, *ctx.inputs)

    def vjp_arrays(ctx, grad):
        a, b = ctx.inputs
        return _matmul_vjp(ctx, grad, a.data, b.data)


def _matmul_vjp(ctx: Function, grad: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """The rule over tensors (recorded) or over arrays: it uses only what both provide."""
    na, nb = ctx.needs_input_grad
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    a2 = a.reshape(1, -1) if a_vec else a
    b2 = b.reshape(-1, 1) if b_vec else b
    g2 = grad
    if a_vec or b_vec:
        shape = grad.shape
        if b_vec:
            shape = shape + (1,)
        if a_vec:
            shape = shape[:-1] + (1,) + shape[-1:]
        g2 = grad.reshape(shape)
    ga = gb = None
    if na:
        ga = g2 @ b2.swapaxes(-1, -2)
        if a_vec:
            ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
    if nb:
        if b2.ndim == 2 and g2.ndim > 2:
            # (..., m, k) inputs against one (k, n) matrix: one big product, not a batch of them
            k, n = a2.shape[-1], g2.shape[-1]
            rows = int(np.prod(a2.shape[:-1]))  # not -1: ambiguous when k or n is 0
            gb = tall_product(a2.reshape(rows, k), g2.reshape(rows, n))
        elif a2.ndim == 2 and g2.ndim == 2:
            gb = tall_product(a2, g2)
        else:
            gb = a2.swapaxes(-1, -2) @ g2
        if b_vec:
            gb = gb.reshape(gb.shape[:-1])
    return ga, gb


# OpenBLAS is slow on A^T B when the shared dimension is huge and the result tiny (a conv kernel's
# gradient: 9 x 78,400 @ 78,400 x 4 took 423 us); a batch of 2,048-row slabs summed afterwards took 98 us.
# With wide results (e.g. 288 x 64) the plain product is as fast or faster, so the split is chosen by shape.
_SLAB = 2048
_SPLIT_MIN_ROWS = 4 * _SLAB
_SPLIT_MAX_OUTPUT = 1024


def tall_product(a: Any, b: Any) -> Any:
    """``a.T @ b`` for 2-D ``a`` (M, K) and ``b`` (M, N), split along M when that is faster; tensors
    (recorded) or arrays alike."""
    m, k = a.shape
    n = b.shape[1]
    if m < _SPLIT_MIN_ROWS or k * n > _SPLIT_MAX_OUTPUT:
        return a.swapaxes(0, 1) @ b
    slabs = m // _SLAB
    head = slabs * _SLAB
    a3 = a[:head].reshape(slabs, _SLAB, k).swapaxes(1, 2)
    out = (a3 @ b[:head].reshape(slabs, _SLAB, n)).sum(axis=0)
    if head < m:
        out = out + a[head:].swapaxes(0, 1) @ b[head:]
    return out


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands, batches and broadcast batch axes.

    >>> import nnet
    >>> (nnet.ones((2, 3)) @ nnet.ones(3)).numpy()
    array([3., 3.], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: operands must have at least one dimension, got shapes {a.shape} and {b.shape}; "
            "use * to multiply by a scalar"
        )
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: {k_a} != {k_b}")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast"
        ) from None
    return MatMul.apply2(a, b)
