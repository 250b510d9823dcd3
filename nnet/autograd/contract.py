"""Tensor contractions composed from transpose, reshape, sum and matmul: einsum, tensordot, dot,
outer. Derivations: docs/derivations.md, "Contractions"."""

from __future__ import annotations

import builtins
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnet.autograd.linalg import matmul
from nnet.autograd.reduction import sum
from nnet.autograd.shape import broadcast_to, permute, reshape
from nnet.autograd.tensor import Tensor


def _as_tensor(a: Any) -> Tensor:
    return a if isinstance(a, Tensor) else Tensor(a)


def _parse(subscripts: str, operands: Sequence[Tensor]) -> tuple[list[str], str]:
    """Each operand's letters and the output's, with every ``...`` spelled out in spare capitals
    (aligned from the right, as broadcasting) and NumPy's implicit output when there is no ``->``."""
    spec = subscripts.replace(" ", "")
    lhs, arrow, out = spec.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(
            f"einsum: {subscripts!r} names {len(inputs)} operands, {len(operands)} were given"
        )
    spare = [c for c in string.ascii_uppercase if c not in spec]
    widest = 0
    for term, t in zip(inputs, operands, strict=True):
        if "..." in term:
            widest = max(widest, t.ndim - len(term.replace("...", "")))
    ell = "".join(spare[:widest])
    letters = []
    for term, t in zip(inputs, operands, strict=True):
        named = term.replace("...", "")
        if not all(c in string.ascii_letters for c in named) or term.count("...") > 1:
            raise ValueError(f"einsum: cannot parse the operand subscripts {term!r}")
        k = t.ndim - len(named)
        if ("..." not in term and k) or k < 0:
            raise ValueError(
                f"einsum: subscripts {term!r} do not fit an operand of shape {t.shape}"
            )
        letters.append(term.replace("...", ell[widest - k :] if k else ""))
    if arrow:
        out = out.replace("...", ell)
    else:
        counts = "".join(letters)
        out = ell + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in ell))
    if len(set(out)) != len(out) or any(c not in "".join(letters) for c in out):
        raise ValueError(f"einsum: output subscripts {out!r} repeat a letter or name a missing one")
    return letters, out


def _contract(a: Tensor, la: str, b: Tensor, lb: str, keep: set[str]) -> tuple[Tensor, str]:
    """One pairwise step: the letters of both not in ``keep`` are summed, the shared kept letters
    are batch axes, and the rest is one batched matmul."""
    for x, lx, other in ((0, la, lb), (1, lb, la)):
        alone = [i for i, c in enumerate(lx) if c not in other and c not in keep]
        if alone:
            t = sum(a if x == 0 else b, tuple(alone))
            rest = "".join(c for i, c in enumerate(lx) if i not in alone)
            a, la = (t, rest) if x == 0 else (a, la)
            b, lb = (b, lb) if x == 0 else (t, rest)
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    a_only = [c for c in la if c not in lb]
    b_only = [c for c in lb if c not in la]
    size = dict(zip(la, a.shape, strict=True))
    for c, n in zip(lb, b.shape, strict=True):
        m = size.setdefault(c, n)
        if m != n and 1 not in (m, n):
            raise ValueError(
                f"einsum: index {c!r} has length {m} in one operand and {n} in another"
            )
        size[c] = builtins.max(m, n)
    a = broadcast_to(a, tuple(size[c] for c in la))
    b = broadcast_to(b, tuple(size[c] for c in lb))

    def n_of(cs: list[str]) -> int:
        return int(np.prod([size[c] for c in cs]))

    a3 = reshape(permute(a, *[la.index(c) for c in batch + a_only + summed]),
                 (n_of(batch), n_of(a_only), n_of(summed)))  # fmt: skip
    b3 = reshape(permute(b, *[lb.index(c) for c in batch + summed + b_only]),
                 (n_of(batch), n_of(summed), n_of(b_only)))  # fmt: skip
    out = reshape(matmul(a3, b3), tuple(size[c] for c in batch + a_only + b_only))
    return out, "".join(batch + a_only + b_only)


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation with NumPy's subscripts (``"ij,jk->ik"``, ``"...ij,...jk"``, implicit
    output), as a chain of transposes, sums and batched matmuls, contracted left to right. A letter
    repeated within one operand (a diagonal) is not supported: use :func:`nnet.diagonal` first.

    >>> import nnet
    >>> nnet.einsum("ij,j->i", nnet.ones((2, 3)), nnet.ones(3)).numpy()
    array([3., 3.], dtype=float32)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: needs at least one operand")
    ts = [_as_tensor(t) for t in operands]
    letters, out = _parse(subscripts, ts)
    for term in letters:
        twice = sorted({c for c in term if term.count(c) > 1})
        if twice:
            raise ValueError(
                f"einsum: index {twice[0]!r} repeats within the operand {term!r} (a diagonal), which "
                "nnet does not support; take nnet.diagonal first, or contract a product with eye"
            )
    acc, la = ts[0], letters[0]
    for k in range(1, len(ts)):
        keep = set(out).union(*letters[k + 1 :])
        acc, la = _contract(acc, la, ts[k], letters[k], keep)
    summed = tuple(i for i, c in enumerate(la) if c not in out)
    if summed:
        acc = sum(acc, summed)
        la = "".join(c for c in la if c in out)
    return permute(acc, *[la.index(c) for c in out]) if la != out else acc


def tensordot(a: Any, b: Any, dims: Any = 2, **kw: Any) -> Tensor:
    """Sum of products over the last ``dims`` axes of ``a`` and the first of ``b``, or over the two
    listed axis sequences (PyTorch's ``dims``, NumPy's ``axes``).

    >>> import nnet
    >>> nnet.tensordot(nnet.ones((2, 3)), nnet.ones((3, 4)), dims=1).shape
    (2, 4)
    """
    dims = kw.pop("axes", dims)
    if kw:
        raise TypeError(f"tensordot: unexpected argument(s) {sorted(kw)}")
    a, b = _as_tensor(a), _as_tensor(b)
    if isinstance(dims, (int, np.integer)):
        n = int(dims)
        if not 0 <= n <= min(a.ndim, b.ndim):
            raise ValueError(
                f"tensordot: cannot contract {n} axes of shapes {a.shape} and {b.shape}"
            )
        axes_a: list[Any] = list(range(a.ndim - n, a.ndim))
        axes_b: list[Any] = list(range(n))
    else:
        axes_a, axes_b = ([x] if isinstance(x, (int, np.integer)) else list(x) for x in dims)
    if len(axes_a) != len(axes_b):
        raise ValueError(f"tensordot: {len(axes_a)} axes of a against {len(axes_b)} of b")
    axes_a = [int(x) % max(a.ndim, 1) for x in axes_a]
    axes_b = [int(x) % max(b.ndim, 1) for x in axes_b]
    for x, y in zip(axes_a, axes_b, strict=True):
        if a.shape[x] != b.shape[y]:
            raise ValueError(
                f"tensordot: axis {x} of {a.shape} and axis {y} of {b.shape} differ in length"
            )
    letters = iter(string.ascii_letters)
    la = [next(letters) for _ in range(a.ndim)]
    lb = [next(letters) for _ in range(b.ndim)]
    for x, y in zip(axes_a, axes_b, strict=True):
        lb[y] = la[x]
    out = [c for c in la if c not in lb] + [c for c in lb if c not in la]
    return einsum(f"{''.join(la)},{''.join(lb)}->{''.join(out)}", a, b)


def dot(a: Any, b: Any) -> Tensor:
    """NumPy's dot: a product with a 0-d operand, the inner product of vectors, matmul for a matrix
    or a vector on the right, and the sum over a's last and b's second-to-last axis otherwise.

    >>> import nnet
    >>> nnet.dot(nnet.tensor([1.0, 2.0]), nnet.tensor([3.0, 4.0])).item()
    11.0
    """
    a, b = _as_tensor(a), _as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, ([-1], [-2]))


def outer(a: Any, b: Any) -> Tensor:
    """The outer product of the flattened ``a`` and ``b``: ``out[i, j] = a[i] b[j]``.

    >>> import nnet
    >>> nnet.outer(nnet.tensor([1.0, 2.0]), nnet.tensor([3.0, 4.0])).numpy()
    array([[3., 4.],
           [6., 8.]], dtype=float32)
    """
    a, b = _as_tensor(a), _as_tensor(b)
    return reshape(a, (a.numel(), 1)) * reshape(b, (1, b.numel()))
