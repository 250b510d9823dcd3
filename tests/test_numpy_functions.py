"""NumPy functions called on tensors (``Tensor.__array_function__``, issue 18, bug 3).

Before it, ``np.dot(w, w)`` and friends went through ``__array__``: a plain array came back and the
gradient was silently wrong. Now each NumPy function either runs nnet's op (and differentiates) or
raises a TypeError naming itself, and ``np.array([t, t])`` refuses a tensor that requires grad.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import nnet
from nnet.testing import gradcheck

RNG = np.random.default_rng(18)
A = RNG.standard_normal((2, 3))
B = RNG.standard_normal((2, 3))
SQUARE = RNG.standard_normal((3, 3))

# (name, function of NumPy-like arrays, inputs): run on arrays it is the reference; on tensors it
# must give the same values and a gradient that central differences confirm.
DISPATCHED: list[tuple[str, Callable[..., Any], tuple[np.ndarray, ...]]] = [
    ("sum", lambda a: np.sum(a), (A,)),
    ("sum axis keepdims", lambda a: np.sum(a, axis=0, keepdims=True), (A,)),
    ("sum dtype", lambda a: np.sum(a, 1, np.float64), (A,)),
    ("mean", lambda a: np.mean(a, axis=(0, 1)), (A,)),
    ("var ddof", lambda a: np.var(a, axis=1, ddof=1), (A,)),
    ("var correction", lambda a: np.var(a, correction=1), (A,)),
    ("std", lambda a: np.std(a, axis=0, ddof=1, keepdims=True), (A,)),
    ("max", lambda a: np.max(a, axis=1), (A,)),
    ("amax", lambda a: np.amax(a), (A,)),
    ("min", lambda a: np.min(a, 0, keepdims=True), (A,)),
    ("amin", lambda a: np.amin(a, axis=-1), (A,)),
    ("reshape", lambda a: np.reshape(a, (3, 2)), (A,)),
    ("reshape -1", lambda a: np.reshape(a, -1), (A,)),
    ("ravel", lambda a: np.ravel(a), (A,)),
    ("transpose", lambda a: np.transpose(a), (A,)),
    ("transpose axes", lambda a: np.transpose(a[None], (2, 0, 1)), (A,)),
    ("swapaxes", lambda a: np.swapaxes(a, 0, 1), (A,)),
    ("moveaxis", lambda a: np.moveaxis(a[None], 0, -1), (A,)),
    ("squeeze", lambda a: np.squeeze(a[None], axis=0), (A,)),
    ("expand_dims", lambda a: np.expand_dims(a, (0, -1)), (A,)),
    ("broadcast_to", lambda a: np.broadcast_to(a, (4, 2, 3)), (A,)),
    ("concatenate", lambda a, b: np.concatenate([a, b], axis=1), (A, B)),
    ("concatenate None", lambda a, b: np.concatenate((a, b), axis=None), (A, B)),
    ("concat", lambda a, b: np.concat([a, b]), (A, B)),
    ("stack", lambda a, b: np.stack([a, b], axis=-1), (A, B)),
    ("hstack", lambda a, b: np.hstack([a, b]), (A, B)),
    ("vstack", lambda a, b: np.vstack([a[0], b]), (A, B)),
    ("where", lambda a, b: np.where(A > 0, a, b), (A, B)),
    ("clip", lambda a: np.clip(a, -0.5, 0.5), (A,)),
    ("clip min max", lambda a: np.clip(a, min=-0.5), (A,)),
    ("pad", lambda a: np.pad(a, 1, constant_values=2.0), (A,)),
    ("pad widths", lambda a: np.pad(a, ((0, 1), (2, 0))), (A,)),
    ("take", lambda a: np.take(a, [2, 0, 2]), (A,)),
    ("take axis", lambda a: np.take(a, [1, 1], axis=1), (A,)),
    ("matmul", lambda a: np.matmul(a, SQUARE), (A,)),
    ("inner", lambda a, b: np.inner(a, b), (A, B)),
    ("inner 1-d", lambda a, b: np.inner(a[0], b), (A, B)),
    ("average", lambda a: np.average(a, axis=1), (A,)),
    ("average weights", lambda a, b: np.average(a, axis=0, weights=b * b + 1), (A, B)),
]


@pytest.mark.parametrize("name, fn, inputs", DISPATCHED, ids=[c[0] for c in DISPATCHED])
def test_numpy_functions_run_nnet_ops_and_differentiate(name, fn, inputs):
    expected = fn(*inputs)
    tensors = [nnet.Tensor(x.copy(), requires_grad=True) for x in inputs]
    out = fn(*tensors)
    assert isinstance(out, nnet.Tensor) and out.requires_grad, name
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    assert gradcheck(fn, *tensors)


def test_the_issues_polynomial_of_a_matrix_product_has_the_right_gradient():
    # (w * (w @ w)).sum(): d/dw = w @ w + w.T @ w + w @ w.T elementwise sums (the issue's example)
    w = nnet.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    np.sum(w * np.matmul(w, w)).backward()
    np.testing.assert_allclose(w.grad.numpy(), [[22, 35], [40, 67]])


# Every function the issue found dropping the graph: each now either differentiates correctly
# (when nnet has the op and dispatches it) or raises a TypeError that names it.
DROPPED_BEFORE: list[tuple[str, Callable[..., Any]]] = [
    ("np.dot", lambda w: np.dot(w, w)),
    ("np.transpose", lambda w: np.transpose(w)),
    ("np.reshape", lambda w: np.reshape(w, (4,))),
    ("np.concatenate", lambda w: np.concatenate([w, w])),
    ("np.stack", lambda w: np.stack([w, w])),
    ("np.where", lambda w: np.where(SQUARE[:2, :2] > 0, w, 0.0)),
    ("np.clip", lambda w: np.clip(w, 1.5, 3.5)),
    ("np.expand_dims", lambda w: np.expand_dims(w, 0)),
    ("np.std", lambda w: np.std(w)),
    ("np.cumsum", lambda w: np.cumsum(w)),
    ("np.outer", lambda w: np.outer(w, w)),
    ("np.tensordot", lambda w: np.tensordot(w, w)),
    ("np.einsum", lambda w: np.einsum("ij,jk->ik", w, w)),
    ("np.trace", lambda w: np.trace(w)),
    ("np.linalg.norm", lambda w: np.linalg.norm(w)),
]


@pytest.mark.parametrize("name, fn", DROPPED_BEFORE, ids=[c[0] for c in DROPPED_BEFORE])
def test_numpy_functions_never_silently_drop_the_graph(name, fn):
    w = nnet.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=np.float64, requires_grad=True)
    try:
        out = fn(w)
    except TypeError as e:
        assert name in str(e) and "t.detach()" in str(e)
        return
    assert isinstance(out, nnet.Tensor) and out.requires_grad, f"{name} left the graph"
    assert gradcheck(fn, w)


def test_an_undispatched_function_names_the_nnet_alternative():
    w = nnet.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with pytest.raises(
        TypeError, match=r"np\.diff on a Tensor that requires grad.*t\[\.\.\., 1:\]"
    ):
        np.diff(w)
    with pytest.raises(TypeError, match=r"np\.convolve .*nnet has no op.*Function"):
        np.convolve(w[0], w[1])


def test_without_a_gradient_to_lose_numpy_functions_run_on_the_array():
    x = nnet.tensor([1.0, 3.0, 6.0])
    np.testing.assert_array_equal(np.diff(x), [2.0, 3.0])
    w = nnet.tensor([1.0, 3.0, 6.0], requires_grad=True)
    with nnet.no_grad():
        np.testing.assert_array_equal(np.diff(w), [2.0, 3.0])


def test_functions_without_a_gradient_return_numpys_result():
    w = nnet.tensor([[1.0, 5.0], [3.0, 4.0]], requires_grad=True)
    assert np.argmax(w) == 1 and np.shape(w) == (2, 2) and np.ndim(w) == 2
    assert np.allclose(w, w) and np.array_equal(w, w)
    np.testing.assert_array_equal(np.where(w > 3)[0], [0, 1])


def test_out_is_accepted_as_none_and_refused_otherwise():
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    assert float(np.sum(w, out=None)) == 3.0
    with pytest.raises(TypeError, match=r"np\.sum\(\.\.\., out=\.\.\.\).*drop out="):
        np.sum(w, out=np.empty(()))
    with pytest.raises(TypeError, match=r"np\.max on a Tensor does not support initial=, where="):
        np.max(w, where=np.array([True, False]), initial=0.0)
    with pytest.raises(TypeError, match=r"np\.pad on a Tensor does not support mode="):
        np.pad(w, 1, mode="reflect")


def test_numpy_on_a_list_of_tensors_that_require_grad_refuses():
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    for call in (lambda: np.array([w, w]), lambda: np.sum([w, w]), lambda: np.asarray(w)):
        with pytest.raises(TypeError, match=r"requires grad.*leave the graph.*detach\(\)"):
            call()
    np.testing.assert_array_equal(nnet.stack([w, w]).sum(0).numpy(), [2.0, 4.0])


def test_numpy_arrays_of_tensors_without_a_gradient_still_convert():
    x = nnet.tensor([1.0, 2.0])
    np.testing.assert_array_equal(np.array([x, x]), [[1.0, 2.0], [1.0, 2.0]])
    assert np.asarray(x) is x.data
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    with nnet.no_grad():
        assert float(np.sum([w, w])) == 6.0
    assert np.asarray(w.detach()) is w.data
