"""Elementwise primitives for stable logs, exponentials and smooth activations (log1p, expm1, erf,
softplus, logaddexp) and the activations composed from them and the seed's primitives (square, silu,
gelu, elu, leaky_relu). Derivations: docs/derivations.md, "Special functions"."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnet.autograd.activation import sigmoid, tanh
from nnet.autograd.elementwise import exp, where
from nnet.autograd.function import Function
from nnet.autograd.tensor import Tensor

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)
# NumPy has no erf. Float64 (and integer) inputs get the C library's, one element at a time (exact,
# about 0.1-0.4 us each); float32 and float16 get the vectorized approximation below (in float32).
_erf_objects = np.frompyfunc(math.erf, 1, 1)
# erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), for z >= 0: the Chebyshev fit of Numerical Recipes
# (section 6.2, "erfcc"), fractional error below 1.2e-7 everywhere; P's coefficients from t^0 up.
_ERFC_P = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
           1.48851587, -0.82215223, 0.17087277)  # fmt: skip
# erf(z) = z (2/sqrt(pi)) sum_n (-1)^n z^2n / (n! (2n + 1)) for |z| < 1/2, where 1 - erfc loses the
# relative precision; seven terms leave under 3e-8 there.
_ERF_SERIES = tuple(
    _TWO_OVER_SQRT_PI * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(7)
)
# Elements per pass: 16 K float32 keep the ~30 temporaries of a block in the core's cache (measured
# 7.4 ms per million elements against 13 ms at 64 K and 18 ms unblocked; math.erf element by
# element: 68 ms).
_ERF_BLOCK = 16384


def _erf_block(z: np.ndarray) -> np.ndarray:
    """erf of a 1-d float32 array, within 4 ulp (tests/test_grad_unary.py)."""
    dtype = np.float32
    a = np.abs(z)
    t = dtype(1.0) / (dtype(1.0) + dtype(0.5) * a)
    p = np.full_like(a, _ERFC_P[-1])
    for c in _ERFC_P[-2::-1]:
        p *= t
        p += dtype(c)
    p -= a * a
    np.exp(p, out=p)
    p *= t
    erf_big = dtype(1.0) - p
    a2 = a * a
    s = np.full_like(a, _ERF_SERIES[-1])
    for c in _ERF_SERIES[-2::-1]:
        s *= a2
        s += dtype(c)
    s *= a
    return np.copysign(np.where(a < 0.5, s, erf_big), z)


def _erf(a: np.ndarray) -> np.ndarray:
    if a.dtype not in (np.float32, np.float16):
        dtype = a.dtype if a.dtype.kind == "f" else np.float64
        return np.asarray(_erf_objects(a), dtype=dtype)  # a 0-d input gives a Python float
    flat = a.reshape(-1).astype(np.float32, copy=False)
    out = np.empty_like(flat)
    for i in range(0, flat.size, _ERF_BLOCK):
        out[i : i + _ERF_BLOCK] = _erf_block(flat[i : i + _ERF_BLOCK])
    return out.reshape(a.shape).astype(a.dtype, copy=False)


class Log1p(Function):
    """d log(1 + a) = g / (1 + a). See derivations.md#log1p-expm1."""

    elementwise = True

    def forward(ctx, a):
        return np.log1p(a)

    def vjp(ctx, grad):
        return (grad / (1.0 + ctx.inputs[0]),)

    def vjp_arrays(ctx, grad):
        return (grad / (1.0 + ctx.inputs[0].data),)


class Expm1(Function):
    """d (e^a - 1) = g (y + 1), from the saved output y. See derivations.md#log1p-expm1."""

    elementwise = True

    saves_output = True

    def forward(ctx, a):
        return np.expm1(a)

    def vjp(ctx, grad):
        return (grad * (ctx.output + 1.0),)

    def vjp_arrays(ctx, grad):
        return (grad * (ctx.output.data + 1.0),)


class Erf(Function):
    """d erf(a) = g 2/sqrt(pi) e^(-a^2). See derivations.md#erf."""

    elementwise = True

    def forward(ctx, a):
        return _erf(np.asarray(a))

    def vjp(ctx, grad):
        a = ctx.inputs[0]
        return (grad * (_TWO_OVER_SQRT_PI * exp(-(a * a))),)

    def vjp_arrays(ctx, grad):
        a = ctx.inputs[0].data
        return (grad * (_TWO_OVER_SQRT_PI * np.exp(-(a * a))),)


class Softplus(Function):
    """d log(1 + e^a) = g sigmoid(a). See derivations.md#softplus."""

    elementwise = True

    def forward(ctx, a):
        return np.logaddexp(0.0, a)  # a Python float never up-casts: float32 stays float32

    def vjp(ctx, grad):
        return (grad * sigmoid(ctx.inputs[0]),)


class LogAddExp(Function):
    """d log(e^a + e^b) = (g sigmoid(a - b), g sigmoid(b - a)). See derivations.md#logaddexp."""

    elementwise = True

    def forward(ctx, a, b):
        return np.logaddexp(a, b)

    def vjp(ctx, grad):
        a, b = ctx.inputs
        na, nb = ctx.needs_input_grad
        d = a - b
        return (grad * sigmoid(d) if na else None), (grad * sigmoid(-d) if nb else None)


# -- public functions ---------------------------------------------------------------------------
def log1p(a: Any) -> Tensor:
    """Elementwise log(1 + a), accurate for tiny ``a``.

    >>> import nnet
    >>> nnet.log1p(nnet.tensor([1e-20], dtype=nnet.float64)).item()
    1e-20
    """
    return Log1p.apply1(a)


def expm1(a: Any) -> Tensor:
    """Elementwise e^a - 1, accurate for tiny ``a``.

    >>> import nnet
    >>> nnet.expm1(nnet.tensor([1e-20], dtype=nnet.float64)).item()
    1e-20
    """
    return Expm1.apply1(a)


def erf(a: Any) -> Tensor:
    """Elementwise error function, 2/sqrt(pi) times the integral of e^(-t^2) from 0 to ``a``.

    >>> import nnet
    >>> round(nnet.erf(nnet.tensor([1.0], dtype=nnet.float64)).item(), 6)
    0.842701
    """
    return Erf.apply1(a)


def logaddexp(a: Any, b: Any) -> Tensor:
    """Elementwise log(e^a + e^b) with broadcasting, without overflow.

    >>> import nnet
    >>> nnet.logaddexp(nnet.tensor([1000.0]), nnet.tensor([1000.0])).numpy()
    array([1000.6932], dtype=float32)
    """
    return LogAddExp.apply2(a, b)


def softplus(a: Any, beta: float = 1.0, threshold: float | None = 20.0) -> Tensor:
    """Elementwise log(1 + e^(beta a)) / beta, as PyTorch: the identity where beta a > threshold.

    >>> import nnet
    >>> nnet.softplus(nnet.tensor([0.0, 100.0])).numpy()
    array([  0.6931472, 100.       ], dtype=float32)
    """
    if beta <= 0:
        raise ValueError(f"softplus: beta must be positive, got {beta}")
    a = a if isinstance(a, Tensor) else Tensor(a)
    z = a if beta == 1 else a * beta
    y = Softplus.apply1(z)
    if beta != 1:
        y = y / beta
    if threshold is None:
        return y
    return where(z.data > threshold, a, y)


def square(a: Any) -> Tensor:
    """Elementwise a^2, as ``a * a`` (exact, and its VJP 2 g a needs no power).

    >>> import nnet
    >>> nnet.square(nnet.tensor([-3.0])).numpy()
    array([9.], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    return a * a


def silu(a: Any) -> Tensor:
    """Elementwise a sigmoid(a) (also called swish).

    >>> import nnet
    >>> nnet.silu(nnet.tensor([0.0])).numpy()
    array([0.], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    return a * sigmoid(a)


def gelu(a: Any, approximate: str = "none") -> Tensor:
    """Elementwise a Phi(a), Phi the standard normal CDF; ``approximate="tanh"`` uses PyTorch's
    tanh formula, 0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3))), much faster than erf here.

    >>> import nnet
    >>> nnet.gelu(nnet.tensor([0.0, 1.0], dtype=nnet.float64)).numpy().round(6)
    array([0.      , 0.841345])
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    if approximate == "tanh":
        return 0.5 * a * (1.0 + tanh(_SQRT_2_OVER_PI * (a + 0.044715 * (a * a * a))))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * a * (1.0 + erf(a * _SQRT_HALF))


def elu(a: Any, alpha: float = 1.0) -> Tensor:
    """Elementwise a where a > 0, else alpha (e^a - 1); the derivative at 0 is alpha, as PyTorch.

    >>> import nnet
    >>> nnet.elu(nnet.tensor([-1e4, 2.0])).numpy()
    array([-1.,  2.], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    positive = a.data > 0
    # expm1 only of the non-positive part: e^a of a large a would be inf, and 0 * inf in the VJP of
    # the branch `where` did not select would be NaN
    return where(positive, a, alpha * expm1(where(positive, 0.0, a)))


def leaky_relu(a: Any, negative_slope: float = 0.01) -> Tensor:
    """Elementwise a where a > 0, else ``negative_slope`` a; the derivative at 0 is
    ``negative_slope``, as PyTorch.

    >>> import nnet
    >>> nnet.leaky_relu(nnet.tensor([-2.0, 3.0]), 0.5).numpy()
    array([-1.,  3.], dtype=float32)
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    return where(a.data > 0, a, a * negative_slope)
