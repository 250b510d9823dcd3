"""Linear algebra beyond matmul: inverse, solve, determinant (primitives) and norms (compositions),
batched over leading axes as NumPy. Derivations: docs/derivations.md, "Linear algebra"."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.elementwise import abs, power, sqrt, where
from nnet.autograd.extrema import amax, amin
from nnet.autograd.function import Function
from nnet.autograd.linalg import matmul
from nnet.autograd.reduction import sum
from nnet.autograd.tensor import Tensor


def _mT(x: Any) -> Any:
    """The batched transpose of the last two axes (tensors and arrays alike)."""
    return x.swapaxes(-1, -2)


def _singular(op: str, a: np.ndarray) -> np.linalg.LinAlgError:
    return np.linalg.LinAlgError(
        f"{op}: a matrix of the {a.shape} input is singular (not invertible); check it, or add a "
        "small multiple of the identity (a + eps * nnet.eye(n))"
    )


class Inv(Function):
    """d inv(A) = -Y^T G Y^T with Y = inv(A) the saved output. See derivations.md#inverse."""

    saves_output = True

    def forward(ctx, a):
        try:
            return np.linalg.inv(a)
        except np.linalg.LinAlgError:
            raise _singular("inv", a) from None

    def vjp(ctx, grad):
        yt = _mT(ctx.output)
        return (-matmul(matmul(yt, grad), yt),)


class Solve(Function):
    """X = A^-1 B: d = (-G_B X^T, G_B) with G_B = solve(A^T, G). See derivations.md#solve."""

    saves_output = True

    def forward(ctx, a, b):
        try:
            return np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            raise _singular("solve", a) from None

    def vjp(ctx, grad):
        a, _ = ctx.inputs
        na, _nb = ctx.needs_input_grad
        gb = Solve.apply(_mT(a), grad)
        return (-matmul(gb, _mT(ctx.output)) if na else None), gb


class Det(Function):
    """d det(A) = g det(A) A^-T. See derivations.md#determinant."""

    saves_output = True

    def forward(ctx, a):
        return np.linalg.det(a)

    def vjp(ctx, grad):
        (a,) = ctx.inputs
        if a.data.size and (ctx.output.data == 0).any():
            raise np.linalg.LinAlgError(
                f"det: the gradient at a singular matrix (det 0) of the {a.data.shape} input is "
                "not supported (it needs the adjugate); perturb the matrix"
            )
        scale = (grad * ctx.output).reshape(grad.shape + (1, 1))
        return (scale * _mT(inv(a)),)


# -- public functions ---------------------------------------------------------------------------
def _square(op: str, a: Any) -> Tensor:
    a = a if isinstance(a, Tensor) else Tensor(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: needs square matrices in the last two axes, got shape {a.shape}")
    return a


def inv(a: Any) -> Tensor:
    """The inverse of each square matrix in the last two axes.

    >>> import nnet
    >>> nnet.linalg.inv(nnet.tensor([[2.0, 0.0], [0.0, 4.0]])).numpy()
    array([[0.5 , 0.  ],
           [0.  , 0.25]], dtype=float32)
    """
    return Inv.apply(_square("inv", a))


def solve(a: Any, b: Any) -> Tensor:
    """X with A X = B, for square A (batched); a 1-D ``b`` is one right-hand side (NumPy's rule).

    >>> import nnet
    >>> nnet.linalg.solve(nnet.tensor([[2.0, 0.0], [0.0, 4.0]]), nnet.tensor([1.0, 1.0])).numpy()
    array([0.5 , 0.25], dtype=float32)
    """
    a = _square("solve", a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    vector = b.ndim == 1
    column = b.reshape(-1, 1) if vector else b
    if column.ndim < 2 or column.shape[-2] != a.shape[-1]:
        raise ValueError(
            f"solve: b of shape {b.shape} does not match A of shape {a.shape} (b needs "
            f"{a.shape[-1]} rows)"
        )
    x = Solve.apply(a, column)
    return x.reshape(x.shape[:-1]) if vector else x


def det(a: Any) -> Tensor:
    """The determinant of each square matrix in the last two axes.

    >>> import nnet
    >>> nnet.linalg.det(nnet.tensor([[2.0, 1.0], [1.0, 3.0]])).item()
    5.0
    """
    return Det.apply(_square("det", a))


def _root_of_sum(s: Tensor, p: float) -> Tensor:
    """s^(1/p), with a zero gradient (not 0 * inf) where s is 0 (the double where of std)."""
    nonzero = s.data != 0
    safe = where(nonzero, s, 1.0)
    root = sqrt(safe) if p == 2 else power(safe, 1.0 / p)
    return where(nonzero, root, 0.0)


def _vector_norm(a: Tensor, ord: Any, axis: Any, keepdims: bool) -> Tensor:
    if ord in (None, 2):
        return _root_of_sum(sum(a * a, axis, keepdims), 2)
    if ord == 1:
        return sum(abs(a), axis, keepdims)
    if ord == np.inf:
        return amax(abs(a), axis, keepdims)
    if ord == -np.inf:
        return amin(abs(a), axis, keepdims)
    if isinstance(ord, (int, float)) and ord > 1:
        return _root_of_sum(sum(power(abs(a), float(ord)), axis, keepdims), ord)
    raise ValueError(
        f"norm: vector ord {ord!r} is not supported; use None/2, 1, inf, -inf or a number > 1"
    )


def _matrix_norm(a: Tensor, ord: Any, axes: tuple[int, int], keepdims: bool) -> Tensor:
    if ord == "fro":
        return _root_of_sum(sum(a * a, axes, keepdims), 2)
    r, c = axes
    # 1 / -1: the largest / smallest column sum of |a|; inf / -inf: the same over rows
    if ord in (1, -1, np.inf, -np.inf):
        inner, outer = (r, c) if ord in (1, -1) else (c, r)
        sums = sum(abs(a), inner, True)
        pick = amax if ord > 0 else amin
        out = pick(sums, outer, True)
        return (
            out
            if keepdims
            else out.reshape(tuple(n for i, n in enumerate(out.shape) if i not in axes))
        )
    raise ValueError(
        f"norm: matrix ord {ord!r} is not supported (2, -2 and 'nuc' need singular values); use "
        "'fro', 1, -1, inf or -inf"
    )


def norm(a: Any, ord: Any = None, dim: Any = None, keepdim: bool = False, **kw: Any) -> Tensor:
    """PyTorch's linalg.norm (NumPy's ``axis=`` / ``keepdims=`` accepted): the 2-norm of the
    flattened tensor by default; a vector norm over one ``dim``, a matrix norm over two (or of a
    matrix when ``ord`` is given). Its gradient at 0 is 0, as PyTorch's.

    >>> import nnet
    >>> nnet.linalg.norm(nnet.tensor([3.0, 4.0])).item()
    5.0
    """
    dim = kw.pop("axis", dim)
    keepdim = kw.pop("keepdims", keepdim)
    if kw:
        raise TypeError(f"norm: unexpected argument(s) {sorted(kw)}")
    a = a if isinstance(a, Tensor) else Tensor(a)
    if isinstance(dim, (int, np.integer)):
        dim = (int(dim),)
    if dim is None:
        if ord is None:
            return _vector_norm(a, None, None, bool(keepdim))
        if a.ndim not in (1, 2):
            raise ValueError(
                f"norm: with ord={ord!r}, give dim for a tensor of {a.ndim} dimensions (1 or 2 "
                "mean a vector or a matrix norm)"
            )
        dim = tuple(range(a.ndim))
    if not all(-a.ndim <= d < a.ndim for d in dim):
        raise ValueError(f"norm: dim {dim} is out of range for a tensor of shape {a.shape}")
    axes = tuple(int(d) % a.ndim for d in dim)
    if len(set(axes)) != len(axes) or len(axes) not in (1, 2):
        raise ValueError(f"norm: dim {dim} must be one or two distinct axes of shape {a.shape}")
    if len(axes) == 1:
        return _vector_norm(a, ord, axes, bool(keepdim))
    return _matrix_norm(a, "fro" if ord is None else ord, (axes[0], axes[1]), bool(keepdim))
