"""The unary elementwise primitives beyond the seed's (sin, cos, tan, ...): forward against NumPy and
PyTorch, gradients (first and second order) by central differences over random shapes with size-1
and empty axes, NumPy ufunc dispatch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from gradtest import arrays, check_grad, leaf, seeds
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd import Function
from nnet.autograd import ops as P
from nnet.testing.strategies import shapes

PRIMITIVES_TESTED = {P.Sin, P.Cos, P.Tan}

SHAPES = shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
GRAD_SHAPES = shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)


@dataclass(frozen=True)
class Unary:
    name: str
    numpy_fn: Any  # the NumPy reference (and the ufunc that must dispatch), or None
    domain: str
    primitive: type[Function]

    def __str__(self) -> str:
        return self.name

    @property
    def nnet_fn(self) -> Any:
        return getattr(nnet, self.name)


CASES = [
    Unary("sin", np.sin, "real", P.Sin),
    Unary("cos", np.cos, "real", P.Cos),
    Unary("tan", np.tan, "small", P.Tan),
]


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data())
def test_forward_matches_numpy_and_keeps_the_dtype(case, data):
    a = data.draw(arrays(SHAPES, case.domain))
    out = case.nnet_fn(nnet.tensor(a))
    np.testing.assert_allclose(out.numpy(), case.numpy_fn(a), rtol=1e-12, atol=1e-300)
    assert out.dtype == np.float64
    out32 = case.nnet_fn(nnet.tensor(a.astype(np.float32)))
    assert out32.dtype == np.float32
    # the method and the ufunc give the same graph node
    t = nnet.tensor(a, requires_grad=True)
    for y in (getattr(t, case.name)(), case.numpy_fn(t)):
        assert type(y.grad_fn) is case.primitive
        np.testing.assert_array_equal(y.numpy(), out.numpy())


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data(), seed=seeds)
def test_grad(case, data, seed):
    a = data.draw(arrays(GRAD_SHAPES, case.domain))
    check_grad(case.nnet_fn, leaf(a), primitive=case.primitive, seed=seed, second_order=True)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_against_torch(case):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).uniform(-1.2, 1.2, (3, 4))
    x = nnet.tensor(a, requires_grad=True)
    y = case.nnet_fn(x)
    (y * y).sum().backward(create_graph=True)
    gx = x.grad
    tx = torch.tensor(a, requires_grad=True)
    ty = getattr(torch, case.name)(tx)
    (tgx,) = torch.autograd.grad((ty * ty).sum(), tx, create_graph=True)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy(), rtol=1e-12)
    # second order: the gradient of the gradient's sum
    (gg,) = nnet.grad(gx.sum(), [x])
    (tgg,) = torch.autograd.grad(tgx.sum(), tx)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-10)


def test_tan_at_a_pole_is_large_not_an_error():
    x = nnet.tensor(np.array([np.pi / 2]), requires_grad=True)
    y = nnet.tan(x)
    y.backward(nnet.ones(1, dtype=np.float64))
    assert abs(y.item()) > 1e15 and x.grad.item() > 1e30
