"""The unary elementwise primitives beyond the seed's (sin, cos, tan, ...): forward against NumPy and
PyTorch, gradients (first and second order) by central differences over random shapes with size-1
and empty axes, NumPy ufunc dispatch."""

from __future__ import annotations

import math
import warnings
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
from nnet.testing.strategies import broadcastable_shapes, shapes

PRIMITIVES_TESTED = {P.Sin, P.Cos, P.Tan, P.Log1p, P.Expm1, P.Erf, P.Softplus, P.LogAddExp}

SHAPES = shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
GRAD_SHAPES = shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
GRAD_PAIRS = broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=3)


def erf_by_quadrature(x: np.ndarray) -> np.ndarray:
    """2/sqrt(pi) times the integral of e^(-t^2) over [0, x], by 80-point Gauss-Legendre: a
    reference independent of nnet's erf."""
    nodes, weights = np.polynomial.legendre.leggauss(80)
    t = (nodes.reshape((-1,) + (1,) * x.ndim) + 1) / 2 * x
    w = weights.reshape((-1,) + (1,) * x.ndim)
    return (w * np.exp(-t * t)).sum(0) * x / np.sqrt(np.pi)


@dataclass(frozen=True)
class Unary:
    name: str
    reference: Any  # NumPy, written independently of nnet's forward
    domain: str
    primitive: type[Function]  # the primitive that must be in the graph
    ufunc: np.ufunc | None = None  # the NumPy ufunc that must dispatch to it
    method: bool = True  # a Tensor method of the same name (PyTorch has one)

    def __str__(self) -> str:
        return self.name

    @property
    def nnet_fn(self) -> Any:
        return getattr(nnet, self.name)


def _gelu(a):
    return 0.5 * a * (1 + erf_by_quadrature(a / np.sqrt(2)))


CASES = [
    Unary("sin", np.sin, "real", P.Sin, np.sin),
    Unary("cos", np.cos, "real", P.Cos, np.cos),
    Unary("tan", np.tan, "small", P.Tan, np.tan),
    Unary("log1p", lambda a: np.log(1 + a), "above_minus_one", P.Log1p, np.log1p),
    Unary("expm1", lambda a: np.exp(a) - 1, "real", P.Expm1, np.expm1),
    Unary("square", lambda a: a**2, "real", P.Mul, np.square),
    Unary("erf", erf_by_quadrature, "real", P.Erf),
    Unary("softplus", lambda a: np.log(1 + np.exp(a)), "real", P.Softplus, method=False),
    Unary("silu", lambda a: a / (1 + np.exp(-a)), "real", P.Sigmoid, method=False),
    Unary("gelu", _gelu, "real", P.Erf, method=False),
    Unary("elu", lambda a: np.where(a > 0, a, np.exp(a) - 1), "off_kinks", P.Expm1, method=False),
    Unary("leaky_relu", lambda a: np.where(a > 0, a, 0.01 * a), "off_kinks", P.Where,
          method=False),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data())
def test_forward_matches_numpy_and_keeps_the_dtype(case, data):
    a = data.draw(arrays(SHAPES, case.domain))
    out = case.nnet_fn(nnet.tensor(a))
    # expm1 and log1p are more accurate than their naive references near 0
    np.testing.assert_allclose(out.numpy(), case.reference(a), rtol=1e-9, atol=1e-14)
    assert out.dtype == np.float64
    out32 = case.nnet_fn(nnet.tensor(a.astype(np.float32)))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.numpy(), out.numpy(), rtol=1e-5, atol=1e-6)
    # the method and the ufunc build the same graph
    t = nnet.tensor(a, requires_grad=True)
    ways = [getattr(t, case.name)] if case.method else []
    ways += [lambda: case.ufunc(t)] if case.ufunc is not None else []
    for way in ways:
        y = way()
        assert type(y.grad_fn) is type(case.nnet_fn(t).grad_fn)
        np.testing.assert_array_equal(y.numpy(), out.numpy())


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data(), seed=seeds)
def test_grad(case, data, seed):
    a = data.draw(arrays(GRAD_SHAPES, case.domain))
    check_grad(case.nnet_fn, leaf(a), primitive=case.primitive, seed=seed, second_order=True)


@given(data=st.data(), seed=seeds)
def test_logaddexp_forward_and_grad_with_broadcasting(data, seed):
    sa, sb = data.draw(GRAD_PAIRS)
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    np.testing.assert_allclose(
        nnet.logaddexp(nnet.tensor(a), nnet.tensor(b)).numpy(), np.log(np.exp(a) + np.exp(b)),
        rtol=1e-12,
    )  # fmt: skip
    check_grad(nnet.logaddexp, leaf(a), leaf(b), primitive=P.LogAddExp, seed=seed,
               second_order=True)  # fmt: skip
    const = float(b.flat[0]) if b.size else 0.5
    check_grad(lambda t: np.logaddexp(t, const), leaf(a), primitive=P.LogAddExp, seed=seed)


@pytest.mark.parametrize("beta", [0.5, 2.0])
@given(data=st.data(), seed=seeds)
def test_softplus_beta_and_threshold(beta, data, seed):
    a = data.draw(arrays(GRAD_SHAPES, "off_kinks"))  # beta a never lands on the threshold 1.0
    expected = np.where(beta * a > 1.0, a, np.log1p(np.exp(beta * a)) / beta)
    out = nnet.softplus(nnet.tensor(a), beta=beta, threshold=1.0)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    check_grad(lambda t: nnet.softplus(t, beta, 1.0), leaf(a), primitive=P.Softplus, seed=seed,
               second_order=True)  # fmt: skip


def test_gelu_tanh_approximation():
    a = np.linspace(-4, 4, 17)
    out = nnet.gelu(nnet.tensor(a), approximate="tanh").numpy()
    inner = np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)
    np.testing.assert_allclose(out, 0.5 * a * (1 + np.tanh(inner)), rtol=1e-12)
    check_grad(lambda t: nnet.gelu(t, "tanh"), leaf(a), primitive=P.Tanh, second_order=True)


def test_erf_known_values():
    # Abramowitz and Stegun, table 7.1
    x = nnet.tensor(np.array([0.0, 0.5, 1.0, 2.0, -1.0, 6.0]))
    np.testing.assert_allclose(
        nnet.erf(x).numpy(),
        [0.0, 0.5204998778130465, 0.8427007929497149, 0.9953222650189527, -0.8427007929497149, 1.0],
        rtol=1e-15,
    )


def test_large_inputs_are_exact_and_warning_free():
    big = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = nnet.tensor(big, requires_grad=True)
        ys = [nnet.softplus(x), nnet.elu(x), nnet.silu(x), nnet.gelu(x), nnet.logaddexp(x, x),
              nnet.softplus(x, threshold=None), nnet.erf(x)]  # fmt: skip
        sum(y.sum() for y in ys).backward()
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(
        nnet.softplus(x, threshold=None).numpy(), [0, np.exp(-50.0), np.log(2), 50, 1e4], rtol=1e-15
    )
    np.testing.assert_array_equal(nnet.elu(x).numpy()[[0, 4]], [-1.0, 1e4])


# -- kinks, decided once (docs/derivations.md#kinks) -----------------------------------------------
def _grad_at_zero(fn):
    x = nnet.tensor(np.zeros(1), requires_grad=True)
    fn(x).sum().backward()
    return x.grad.item()


def test_derivatives_at_zero_are_pytorchs():
    assert _grad_at_zero(lambda t: nnet.leaky_relu(t, 0.2)) == 0.2
    assert _grad_at_zero(lambda t: nnet.elu(t, 0.5)) == 0.5
    assert _grad_at_zero(nnet.softplus) == 0.5
    assert _grad_at_zero(nnet.silu) == 0.5
    assert _grad_at_zero(nnet.gelu) == 0.5


def test_bad_arguments_name_the_op():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        nnet.gelu(nnet.ones(2), approximate="fast")
    with pytest.raises(ValueError, match="softplus: beta must be positive"):
        nnet.softplus(nnet.ones(2), beta=0)
    with pytest.raises(
        ValueError, match="logaddexp: shapes \\(2,\\) and \\(3,\\) cannot be broadcast"
    ):
        nnet.logaddexp(nnet.ones(2), nnet.ones(3))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_first_and_second_order_against_torch(case):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).uniform(-0.7, 1.2, (3, 4))
    TF = torch.nn.functional
    TORCH_NAMES = {"softplus": TF.softplus, "silu": TF.silu, "gelu": TF.gelu, "elu": TF.elu,
                   "leaky_relu": TF.leaky_relu}  # fmt: skip
    x = nnet.tensor(a, requires_grad=True)
    y = case.nnet_fn(x)
    (y * y).sum().backward(create_graph=True)
    gx = x.grad
    tx = torch.tensor(a, requires_grad=True)
    ty = TORCH_NAMES.get(case.name, lambda t: getattr(torch, case.name)(t))(tx)
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


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_erf_in_float32_and_float16_is_within_a_few_ulp_of_the_c_library(dtype) -> None:
    """Float32 and float16 take a vectorized approximation (math.erf is element by element):
    within 4 ulp of the C library's erf over a dense grid, tiny values, both signs and infinities."""
    grid = np.concatenate([np.linspace(-10, 10, 20_001), np.geomspace(1e-30, 10, 10_000)])
    x = np.concatenate([grid, -grid, [0.0, np.inf, -np.inf]]).astype(dtype)
    exact = np.array([math.erf(float(v)) for v in x])
    got = nnet.erf(nnet.tensor(x)).numpy()
    assert got.dtype == dtype
    ulps = np.abs(got - exact) / np.spacing(np.abs(exact).astype(dtype))
    assert ulps.max() <= 4
    assert np.isnan(nnet.erf(nnet.tensor(np.array([np.nan], dtype))).item())
