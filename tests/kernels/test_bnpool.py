"""Batch norm, ReLU and max-pool fused (and ReLU moved after the pool) against the three layers run
one after another: values, gradients, running statistics, ties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnet
import nnet.nn.functional as F
from nnet import nn
from nnet.autograd.activation import Relu
from nnet.kernels import BatchNormReluPool, bnpool, use_fused
from nnet.testing import gradcheck, gradgradcheck


@pytest.fixture(autouse=True)
def narrow_pixels_fuse(request, monkeypatch):
    """Test images have a few channels, narrower than where the fused op pays."""
    if "default_rule" not in request.node.name:
        monkeypatch.setattr(bnpool, "MIN_PIXEL_BYTES", 0)


#: The fused primitives whose gradients this file checks (tests/fused/test_coverage.py).
FUSED_TESTED = (BatchNormReluPool,)


def _block(c, kernel, affine=True, momentum=0.1):
    return nn.Sequential(
        nn.BatchNorm2d(c, affine=affine, momentum=momentum), nn.ReLU(), nn.MaxPool2d(kernel)
    ).double()


def _run(fused, model, x, g, params):
    xt = nnet.Tensor(x.copy(), requires_grad=True)
    with use_fused(fused):
        y = model(xt)
    grads = nnet.grad(y, [xt, *params], g)
    return y, [a.numpy() for a in grads]


def _compare(x, kernel, affine, g_seed, momentum=0.1):
    c = x.shape[-1]
    results = []
    for fused in (True, False):
        model = _block(c, kernel, affine, momentum)
        if affine:
            model[0].weight.data[...] = np.linspace(-1.5, 2.0, c)  # a negative scale too
            model[0].bias.data[...] = np.linspace(0.5, -0.5, c)
        out_shape = (x.shape[0], x.shape[1] // kernel[0], x.shape[2] // kernel[1], c)
        g = np.random.default_rng(g_seed).standard_normal(out_shape)
        y, grads = _run(fused, model, x, g, list(model.parameters()))
        assert (type(y.grad_fn) is BatchNormReluPool) == fused
        stats = [b.numpy().copy() for b in model.buffers()]
        results.append((y.numpy(), grads, stats))
    return results


@given(
    n=st.integers(1, 3),
    tiles=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    c=st.integers(1, 4),
    affine=st.booleans(),
    scale=st.floats(1e-2, 1e2),
    seed=st.integers(0, 2**16),
)
def test_matches_composition(n, tiles, kernel, c, affine, scale, seed):
    shape = (n, tiles[0] * kernel[0], tiles[1] * kernel[1], c)
    if shape[0] * shape[1] * shape[2] < 2:
        shape = (2, *shape[1:])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale + rng.standard_normal(c)
    x_before = x.copy()
    (y, grads, stats), (y0, grads0, stats0) = _compare(x, kernel, affine, seed)
    np.testing.assert_allclose(y, y0, rtol=1e-10, atol=1e-10)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-8, atol=1e-10 * max(1.0, 1 / scale))
    # Sums in another order differ by ~eps * scale: a running mean near zero has no relative accuracy.
    for s, s0 in zip(stats, stats0, strict=True):
        np.testing.assert_allclose(s, s0, rtol=1e-12, atol=1e-14 * max(1.0, scale) ** 2)
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("kernel", [(2, 2), (1, 3)])
def test_ties_route_to_the_first_maximum(kernel):
    """Few distinct values: most windows hold ties, and whole windows are negative after the norm."""
    rng = np.random.default_rng(7)
    x = rng.integers(-1, 2, (3, 4, 6, 2)).astype(np.float64)
    (y, grads, _), (y0, grads0, _) = _compare(x, kernel, True, 1)
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-9, atol=1e-12)


def test_gradcheck_and_second_order():
    rng = np.random.default_rng(2)
    x = nnet.Tensor(rng.standard_normal((2, 4, 4, 3)), requires_grad=True)
    w = nnet.Tensor(rng.standard_normal(3), requires_grad=True)
    b = nnet.Tensor(rng.standard_normal(3), requires_grad=True)

    def f(x, w, b):
        y = F.batch_norm_relu_max_pool2d(x, None, None, w, b, 0.1, 1e-5, 2)
        assert type(y.grad_fn) is BatchNormReluPool
        return y * y  # nonlinear, so the second derivatives reach every path

    assert gradcheck(f, x, w, b)
    assert gradgradcheck(f, x, w, b)


@pytest.mark.parametrize(
    "case", ["eval", "untiled", "subclass", "padded_pool", "not_fused", "functional_untiled"]
)
def test_falls_back_to_the_layers(case):
    """Where the fused op does not apply, the layers run one by one, with their own results."""
    rng = np.random.default_rng(3)
    x = nnet.Tensor(rng.standard_normal((2, 5 if "untiled" in case else 4, 4, 3)))

    class MyReLU(nn.ReLU):
        def forward(self, x):  # its own forward runs as written
            return x.clamp(min=0)

    relu = MyReLU() if case == "subclass" else nn.ReLU()
    pool = nn.MaxPool2d(2, padding=1) if case == "padded_pool" else nn.MaxPool2d(2)
    model = nn.Sequential(nn.BatchNorm2d(3), relu, pool).double()
    if case == "eval":
        model.eval()
    if case == "functional_untiled":
        y = F.batch_norm_relu_max_pool2d(x, None, None, None, None, 0.1, 1e-5, 2)
    else:
        with use_fused(case != "not_fused"):
            y = model(x)
    assert type(y.grad_fn) is not BatchNormReluPool
    with use_fused(False):
        y0 = model(x) if case != "functional_untiled" else nn.MaxPool2d(2)(nn.ReLU()(
            F.batch_norm(x, None, None, None, None, True, 0.1, 1e-5)))  # fmt: skip
    np.testing.assert_allclose(y.numpy(), y0.numpy(), rtol=1e-12)


def test_bad_input_names_the_layer():
    model = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\) expects input"):
        model(nnet.zeros((2, 4, 4, 5)))


@pytest.mark.parametrize(
    "values", [(-1.0, 0.0, 1.0), (-0.0, 0.0), (-np.inf, 0.0, np.inf), (0.0, np.nan)]
)
@pytest.mark.parametrize(
    "pool", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1}]
)
def test_relu_after_the_pool_matches(values, pool):
    """ReLU then MaxPool2d runs as the pool then ReLU: same values and gradients, also for ties,
    signed zeros, infinities and NaN, and for overlapping, padded windows."""
    rng = np.random.default_rng(len(values))
    x = rng.choice(np.array(values), (2, 4, 6, 3))
    model = nn.Sequential(nn.ReLU(), nn.MaxPool2d(**pool))
    out = []
    for fused in (True, False):
        xt = nnet.Tensor(x, requires_grad=True)
        with use_fused(fused):
            y = model(xt)
        assert (type(y.grad_fn) is Relu) == fused
        g = np.random.default_rng(0).standard_normal(y.shape)
        (gx,) = nnet.grad(y, [xt], g)
        out.append((y.numpy(), gx.numpy()))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


@pytest.mark.parametrize(
    "c,dtype,wanted", [(16, "float32", True), (8, "float32", False), (8, "float64", True)]
)
def test_default_rule(c, dtype, wanted):
    model = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)).to(dtype)
    y = model(nnet.zeros((2, 4, 4, c), dtype=dtype))
    assert (type(y.grad_fn) is BatchNormReluPool) == wanted


def _graph_types(y):
    """The primitives from ``y`` back along each node's first recorded input."""
    types, fn = [], y.grad_fn
    while fn is not None:
        types.append(type(fn).__name__)
        inputs = [t for t in fn.inputs if isinstance(t, nnet.Tensor) and t.grad_fn is not None]
        fn = inputs[0].grad_fn if inputs else None
    return types


def test_default_rule_functional_falls_back_to_the_layers_kernels():
    """Where no kernel takes the whole run (narrow pixels), the functional runs batch norm, ReLU
    and the pool each by its own kernel, not the registry's composition of primitives (5x slower
    at 100x28x28x4), with the composition's values, gradients and running statistics."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 6, 4)).astype(np.float32)
    w0 = rng.standard_normal(4).astype(np.float32)
    g = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    out = []
    for fused in (True, False):
        xt, w = nnet.Tensor(x, requires_grad=True), nnet.Tensor(w0, requires_grad=True)
        mean, var = nnet.zeros(4), nnet.ones(4)
        with use_fused(fused):
            y = F.batch_norm_relu_max_pool2d(xt, mean, var, w, None, 0.1, 1e-5, 2)
        if fused:
            assert _graph_types(y) == ["MaxPool2d", "Relu", "BatchNorm"]
        gx, gw = nnet.grad(y, [xt, w], g)
        out.append((y.numpy(), gx.numpy(), gw.numpy(), mean.numpy(), var.numpy()))
    for a, a0 in zip(out[0], out[1], strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-5, atol=1e-6)
