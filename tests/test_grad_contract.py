"""einsum, tensordot, dot, outer: compositions of transpose, reshape, sum and matmul, against NumPy's
and PyTorch's, gradients (first and second order) over random sizes with size-1 and empty axes,
NumPy dispatch and errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import ops as P

SIDE = st.integers(0, 3)

# (subscripts, letters of each operand): the sizes are drawn per letter
EQUATIONS = [
    "ij,jk->ik", "ij,jk", "bij,bjk->bik", "i,i->", "i,j->ij", "ij->ji", "ij->", "ij->j",
    "bi,bi->b", "ijk,kl->ijl", "ij,kj->ik", "i,ij,j->", "ab,bc,cd->ad", "...ij,...jk->...ik",
    "ij,j", "ijk,ikl->jl", "i,i", "ab,ab->ab",
]  # fmt: skip


def _operands(data, equation):
    lhs = equation.split("->")[0].split(",")
    sizes = {c: data.draw(SIDE) for c in set("".join(lhs)) if c.isalpha()}
    batch = tuple(data.draw(st.lists(SIDE, max_size=2)))
    return [
        data.draw(arrays((batch if "..." in t else ()) + tuple(sizes[c] for c in t if c.isalpha())))
        for t in lhs
    ]


@pytest.mark.parametrize("equation", EQUATIONS)
@given(data=st.data(), seed=seeds)
def test_einsum_matches_numpy_and_differentiates(equation, data, seed):
    xs = _operands(data, equation)
    out = nnet.einsum(equation, *[nnet.tensor(x) for x in xs])
    want = np.einsum(equation, *xs)
    assert out.shape == want.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)
    prim = P.MatMul if "," in equation else P.Transpose if equation == "ij->ji" else P.Sum
    check_grad(lambda *ts: nnet.einsum(equation, *ts), *[leaf(x) for x in xs], primitive=prim,
               seed=seed, second_order=True)  # fmt: skip


@given(data=st.data(), seed=seeds)
def test_tensordot_dot_outer(data, seed):
    a = data.draw(arrays(tuple(data.draw(st.lists(SIDE, min_size=1, max_size=3)))))
    n = data.draw(st.integers(0, a.ndim))
    b = data.draw(arrays(a.shape[a.ndim - n :] + tuple(data.draw(st.lists(SIDE, max_size=2)))))
    np.testing.assert_allclose(nnet.tensordot(nnet.tensor(a), nnet.tensor(b), n).numpy(),
                               np.tensordot(a, b, n), rtol=1e-10, atol=1e-12)  # fmt: skip
    check_grad(lambda x, y: nnet.tensordot(x, y, n), leaf(a), leaf(b), primitive=P.Reshape,
               seed=seed, second_order=True)  # fmt: skip
    c = data.draw(arrays(a.shape[-1:] + tuple(data.draw(st.lists(SIDE, max_size=2))[:1])))
    d3 = data.draw(arrays((2, a.shape[-1], 2)))
    for x, y in [(a, c), (a, d3), (a, np.float64(1.5))]:
        np.testing.assert_allclose(nnet.dot(nnet.tensor(x), nnet.tensor(y)).numpy(), np.dot(x, y),
                                   rtol=1e-10, atol=1e-12)  # fmt: skip
    check_grad(nnet.dot, leaf(a), leaf(d3), primitive=P.MatMul, seed=seed, second_order=True)
    np.testing.assert_allclose(nnet.outer(nnet.tensor(a), nnet.tensor(c)).numpy(), np.outer(a, c))
    check_grad(nnet.outer, leaf(a), leaf(c), primitive=P.Mul, seed=seed, second_order=True)


def test_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    a, b, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    x, y, w = (nnet.tensor(t, requires_grad=True) for t in (a, b, v))
    tx, ty, tw = (torch.tensor(t, requires_grad=True) for t in (a, b, v))
    ours = [nnet.einsum("bij,jk->bki", x, y), nnet.tensordot(x, y, dims=([2], [0])),
            nnet.einsum("...j,j", x, w), w.dot(w), w.outer(v)]  # fmt: skip
    theirs = [torch.einsum("bij,jk->bki", tx, ty), torch.tensordot(tx, ty, dims=([2], [0])),
              torch.einsum("...j,j", tx, tw), tw.dot(tw), tw.outer(torch.tensor(v))]  # fmt: skip
    weights = [rng.standard_normal(o.shape) for o in ours]
    sum((o * c).sum() for o, c in zip(ours, weights, strict=True)).backward()
    sum((o * torch.tensor(c)).sum() for o, c in zip(theirs, weights, strict=True)).backward()
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-12)
    for g, t in [(x.grad, tx.grad), (y.grad, ty.grad), (w.grad, tw.grad)]:
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-12)


def test_numpy_functions_dispatch():
    w = nnet.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    (w * np.dot(w, w)).sum().backward()  # the example: w.grad was [[7, 10], [15, 22]]
    np.testing.assert_array_equal(w.grad.numpy(), [[22, 35], [40, 67]])
    for ours, want in [(np.outer(w, w), np.outer(w.data, w.data)),
                       (np.tensordot(w, w, 1), np.tensordot(w.data, w.data, 1)),
                       (np.einsum("ij,ji", w, w), np.einsum("ij,ji", w.data, w.data))]:  # fmt: skip
        assert isinstance(ours, nnet.Tensor) and ours.requires_grad
        np.testing.assert_allclose(ours.numpy(), want)


def test_bad_input_names_the_op_and_the_problem():
    a = nnet.ones((2, 3))
    with pytest.raises(ValueError, match="einsum: index 'i' repeats within the operand 'ii'"):
        nnet.einsum("ii->i", nnet.ones((2, 2)))
    with pytest.raises(ValueError, match="einsum: 'ij,jk' names 2 operands, 1 were given"):
        nnet.einsum("ij,jk", a)
    with pytest.raises(
        ValueError, match=r"einsum: subscripts 'ijk' do not fit an operand of shape"
    ):
        nnet.einsum("ijk->i", a)
    with pytest.raises(ValueError, match="einsum: output subscripts 'iz'"):
        nnet.einsum("ij->iz", a)
    with pytest.raises(ValueError, match=r"tensordot: axis 1 of \(2, 3\) and axis 0 of \(2, 3\)"):
        nnet.tensordot(a, a, 1)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) do not align"):
        nnet.dot(a, a)


def test_einsum_lengths_must_agree_or_broadcast():
    with pytest.raises(ValueError, match="einsum: index 'j' has length 3 in one operand and 2"):
        nnet.einsum("ij,jk->ik", nnet.ones((2, 3)), nnet.ones((2, 2)))
    out = nnet.einsum("ij,jk->ik", nnet.ones((2, 1)), nnet.ones((4, 2)))
    np.testing.assert_array_equal(out.numpy(), np.full((2, 2), 4.0))
