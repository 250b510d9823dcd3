"""Conv2d, BatchNorm2d, ReLU and MaxPool2d fused (batch norm folded into the convolution's product
through the patch covariance) against the four layers run one after another."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import nnet
import nnet.nn.functional as F
from nnet import nn
from nnet.kernels import (
    BatchStats,
    ConvBatchNormReluPool,
    WinogradBatchNormReluPool,
    bnpool,
    use_fused,
)
from nnet.kernels import conv as fused_conv
from nnet.kernels.conv import WINOGRAD_MIN_CHANNELS
from nnet.nn.functional import conv_padding
from nnet.testing import gradcheck, gradgradcheck

#: The fused primitives whose gradients this file checks (tests/fused/test_coverage.py).
FUSED_TESTED = (ConvBatchNormReluPool, WinogradBatchNormReluPool)


def _model(cin, cout, kernel, pool, bias=True, affine=True, **conv):
    model = nn.Sequential(
        nn.Conv2d(cin, cout, kernel, bias=bias, **conv),
        nn.BatchNorm2d(cout, affine=affine),
        nn.ReLU(),
        nn.MaxPool2d(pool),
    ).double()
    if affine:
        model[1].weight.data[...] = np.linspace(-1.5, 2.0, cout)  # a negative scale too
        model[1].bias.data[...] = np.linspace(0.5, -0.5, cout)
    return model


def _run(fused, x, g_seed, steps=1, **kw):
    nnet.manual_seed(0)
    model = _model(**kw)
    xt = nnet.Tensor(x.copy())
    for _ in range(steps):  # later steps see the moved running statistics
        with use_fused(fused):
            y = model(xt)
    assert (type(y.grad_fn) is ConvBatchNormReluPool) == fused
    g = np.random.default_rng(g_seed).standard_normal(y.shape)
    params = list(model.parameters())
    grads = [a.numpy() for a in nnet.grad(y, params, g)]
    return y.numpy(), grads, [b.numpy().copy() for b in model.buffers()]


def _compare(x, rtol=1e-8, **kw):
    (y, grads, bufs), (y0, grads0, bufs0) = (_run(f, x, 1, steps=2, **kw) for f in (True, False))
    np.testing.assert_allclose(y, y0, rtol=1e-9, atol=1e-10)
    for a, a0 in zip(grads, grads0, strict=True):
        # the conv bias's gradient is exactly 0 fused, rounding noise in the composition
        np.testing.assert_allclose(a, a0, rtol=rtol, atol=1e-8)
    for b, b0 in zip(bufs, bufs0, strict=True):
        np.testing.assert_allclose(b, b0, rtol=1e-10, atol=1e-12)


@given(
    n=st.integers(1, 3),
    hw=st.tuples(st.integers(2, 8), st.integers(2, 8)),
    cin=st.integers(1, 2),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    extra=st.integers(0, 3),
    stride=st.integers(1, 2),
    padding=st.sampled_from(["same", "valid", 1]),
    pool=st.sampled_from([1, 2, (1, 2)]),
    bias=st.booleans(),
    affine=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_composition(n, hw, cin, kernel, extra, stride, padding, pool, bias, affine, seed):
    assume(not (padding == "same" and stride > 1))
    pads = conv_padding(padding, kernel, (1, 1))
    out = [(hw[a] + sum(pads[a]) - kernel[a]) // stride + 1 for a in (0, 1)]
    p = (pool, pool) if isinstance(pool, int) else pool
    assume(min(out) >= 1 and out[0] % p[0] == 0 and out[1] % p[1] == 0 and n * out[0] * out[1] > 1)
    cout = kernel[0] * kernel[1] * cin + extra
    x = np.random.default_rng(seed).standard_normal((n, *hw, cin)) + 0.5
    _compare(
        x, cin=cin, cout=cout, kernel=kernel, pool=pool, bias=bias, affine=affine,
        stride=stride, padding=padding,
    )  # fmt: skip


def test_ties_and_constant_channels():
    """An image of few values: pool windows with ties, and channels whose output is constant
    (variance 0, so everything rests on eps)."""
    x = np.random.default_rng(4).integers(0, 2, (3, 6, 6, 1)).astype(np.float64)
    x[0] = 1.0
    _compare(x, cin=1, cout=9, kernel=3, pool=2)
    _compare(np.zeros((2, 4, 4, 1)), cin=1, cout=4, kernel=2, pool=2)


def test_wide_network_block_in_float32():
    rng = np.random.default_rng(5)
    x = rng.random((8, 28, 28, 1), dtype=np.float32)
    out = []
    for fused in (True, False):
        nnet.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        with use_fused(fused):
            y = model(nnet.Tensor(x))
        g = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
        grads = nnet.grad(y, list(model.parameters()), g)
        out.append((y.numpy(), [a.numpy() for a in grads]))
    assert out[0][0].dtype == np.float32 and all(a.dtype == np.float32 for a in out[0][1])
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-4, atol=1e-4)
    scale = max(np.abs(a0).max() for a0 in out[1][1])
    for a, a0 in zip(out[0][1], out[1][1], strict=True):
        # the conv bias's: exactly 0 fused, float32 rounding noise in the composition
        np.testing.assert_allclose(a, a0, rtol=1e-3, atol=1e-4 * scale)
    assert not out[0][1][1].any()


def test_gradcheck_and_second_order():
    rng = np.random.default_rng(2)
    x = nnet.Tensor(rng.standard_normal((2, 4, 4, 1)))
    w = nnet.Tensor(rng.standard_normal((2, 2, 1, 5)), requires_grad=True)
    b = nnet.Tensor(rng.standard_normal(5), requires_grad=True)
    gamma = nnet.Tensor(rng.standard_normal(5), requires_grad=True)
    beta = nnet.Tensor(rng.standard_normal(5), requires_grad=True)
    geo = F.conv_geometry(x, w, 1, "same", 1)

    def f(w, b, gamma, beta):
        y = F.conv_batch_norm_relu_max_pool2d(
            x, w, b, geo, None, None, gamma, beta, 0.1, 1e-5, (2, 2)
        )
        assert type(y.grad_fn) is ConvBatchNormReluPool
        return y * y  # nonlinear, so the second derivatives reach every path

    assert gradcheck(f, w, b, gamma, beta)
    assert gradgradcheck(f, w, b, gamma, beta)


@pytest.mark.parametrize("case", ["input_grad", "wide_kernel", "eval", "untiled", "not_fused"])
def test_falls_back_to_the_layers(case):
    rng = np.random.default_rng(3)
    x = nnet.Tensor(rng.standard_normal((2, 5 if case == "untiled" else 4, 4, 1)))
    if case == "input_grad":
        x.requires_grad = True
    nnet.manual_seed(0)
    model = _model(1, 4 if case == "wide_kernel" else 9, 3, 2)
    if case == "eval":
        model.eval()
    with use_fused(case != "not_fused"):
        y = model(x)
    assert type(y.grad_fn) is not ConvBatchNormReluPool
    nnet.manual_seed(0)
    model = _model(1, 4 if case == "wide_kernel" else 9, 3, 2)
    if case == "eval":
        model.eval()
    with use_fused(False):
        y0 = model(x)
    np.testing.assert_allclose(y.numpy(), y0.numpy(), rtol=1e-10, atol=1e-12)


def test_functional_falls_back_to_the_layers_kernels():
    """Where no kernel takes the whole block (an untiled image), the functional runs the
    convolution, batch norm, ReLU and pool each by its own kernel, not the registry's composition
    of primitives, with the composition's values and gradients."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 5, 4, 1))
    w0, gamma0 = rng.standard_normal((3, 3, 1, 3)), rng.standard_normal(3)
    g = rng.standard_normal((2, 2, 2, 3))
    out = []
    for fused in (True, False):
        w, gamma = nnet.Tensor(w0, requires_grad=True), nnet.Tensor(gamma0, requires_grad=True)
        geo = F.conv_geometry(nnet.Tensor(x), w, 1, "same", 1)
        with use_fused(fused):
            y = F.conv_batch_norm_relu_max_pool2d(
                x, w, None, geo, None, None, gamma, None, 0.1, 1e-5, (2, 2)
            )
        if fused:
            assert type(y.grad_fn).__name__ == "MaxPool2d"
            assert type(y.grad_fn.inputs[0].grad_fn.inputs[0].grad_fn).__name__ == "BatchNorm"
        out.append((y.numpy(), *(a.numpy() for a in nnet.grad(y, [w, gamma], g))))
    for a, a0 in zip(out[0], out[1], strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-9, atol=1e-12)


def test_bad_input_names_the_layer():
    model = nn.Sequential(nn.Conv2d(1, 9, 3), nn.BatchNorm2d(9), nn.ReLU(), nn.MaxPool2d(2))
    with pytest.raises(ValueError, match=r"Conv2d\(1 -> 9\) expects input"):
        model(nnet.zeros((2, 4, 4, 3)))
    with pytest.raises(TypeError, match=r"Conv2d\(1 -> 9\): the input has dtype float64"):
        model(nnet.zeros((2, 4, 4, 1), dtype="float64"))


# -- the Winograd block: a wide convolution whose input takes a gradient -------------------------


@pytest.fixture
def small_winograd(monkeypatch):
    """Test sizes are far below the shapes where Winograd and the fused block pay."""
    monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_PRODUCT", 0)
    monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_PIXELS", 0)
    monkeypatch.setattr(bnpool, "MIN_PIXEL_BYTES", 0)


def _wide_run(fused, x, cout, bias, affine, g_seed):
    nnet.manual_seed(0)
    model = _model(x.shape[-1], cout, 3, 2, bias=bias, affine=affine)
    xt = nnet.Tensor(x.copy(), requires_grad=True)
    for _ in range(2):  # the second step sees the moved running statistics
        with use_fused(fused):
            y = model(xt)
    assert (type(y.grad_fn) is WinogradBatchNormReluPool) == fused
    g = np.random.default_rng(g_seed).standard_normal(y.shape)
    grads = [a.numpy() for a in nnet.grad(y, [xt, *model.parameters()], g)]
    return y.numpy(), grads, [b.numpy().copy() for b in model.buffers()]


def _compare_wide(x, cout, bias=True, affine=True, seed=1):
    (y, grads, bufs), (y0, grads0, bufs0) = (
        _wide_run(f, x, cout, bias, affine, seed) for f in (True, False)
    )
    np.testing.assert_allclose(y, y0, rtol=1e-9, atol=1e-10)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-8, atol=1e-8)  # conv bias: 0 against ~1e-16
    for b, b0 in zip(bufs, bufs0, strict=True):
        np.testing.assert_allclose(b, b0, rtol=1e-10, atol=1e-12)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # it only sets constants
@given(
    n=st.integers(1, 3),
    tiles=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    cout=st.integers(1, 3),
    bias=st.booleans(),
    affine=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_winograd_block_matches_composition(small_winograd, n, tiles, cout, bias, affine, seed):
    shape = (max(n, 2), 2 * tiles[0], 2 * tiles[1], WINOGRAD_MIN_CHANNELS)
    x = np.random.default_rng(seed).standard_normal(shape)
    _compare_wide(x, cout, bias, affine, seed)


def test_winograd_block_ties(small_winograd):
    x = np.random.default_rng(6).integers(0, 2, (2, 4, 6, WINOGRAD_MIN_CHANNELS)).astype(float)
    _compare_wide(x, 3)


def test_winograd_block_gradcheck_and_second_order(small_winograd):
    rng = np.random.default_rng(8)
    cin = WINOGRAD_MIN_CHANNELS
    x = nnet.Tensor(rng.standard_normal((2, 2, 4, cin)), requires_grad=True)
    w = nnet.Tensor(rng.standard_normal((3, 3, cin, 2)) * 0.3, requires_grad=True)
    b = nnet.Tensor(rng.standard_normal(2), requires_grad=True)
    gamma = nnet.Tensor(rng.standard_normal(2), requires_grad=True)
    beta = nnet.Tensor(rng.standard_normal(2), requires_grad=True)
    geo = F.conv_geometry(x, w, 1, "same", 1)

    def f(x, w, b, gamma, beta):
        y = F.conv_batch_norm_relu_max_pool2d(
            x, w, b, geo, None, None, gamma, beta, 0.1, 1e-5, (2, 2)
        )
        assert type(y.grad_fn) is WinogradBatchNormReluPool
        return y * y

    assert gradcheck(f, x, w, b, gamma, beta)
    assert gradgradcheck(f, x, w, b, gamma, beta)


def test_wide_cnn_second_block_in_float32():
    """With the default thresholds the wide CNN's second block takes it, in float32."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((64, 14, 14, 32)).astype(np.float32)
    out = []
    for fused in (True, False):
        nnet.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
        xt = nnet.Tensor(x, requires_grad=True)
        with use_fused(fused):
            y = model(xt)
        assert (type(y.grad_fn) is WinogradBatchNormReluPool) == fused
        g = np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
        grads = nnet.grad(y, [xt, *model.parameters()], g)
        out.append((y.numpy(), [a.numpy() for a in grads]))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-4, atol=1e-4)
    scale = max(np.abs(a0).max() for a0 in out[1][1])
    for a, a0 in zip(out[0][1], out[1][1], strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-3, atol=1e-4 * scale)
    assert not out[0][1][2].any()  # the conv bias's gradient: exactly 0 fused


@pytest.mark.parametrize("create_graph", [False, True])
def test_a_direct_call_with_an_input_that_needs_a_gradient_is_told_why_not(create_graph):
    rng = np.random.default_rng(4)
    x = nnet.Tensor(rng.standard_normal((2, 4, 4, 1)), requires_grad=True)
    w = nnet.Tensor(rng.standard_normal((2, 2, 1, 5)), requires_grad=True)
    geo = F.conv_geometry(x, w, 1, "same", 1)
    # the layers never choose this op for such an input (the registry); a direct caller can
    y = ConvBatchNormReluPool.apply(x, w, None, None, None, 1e-5, BatchStats(), geo, (2, 2))
    with pytest.raises(RuntimeError, match=r"computes no gradient for its input.*Sequential"):
        nnet.grad(y.sum(), [x, w], create_graph=create_graph)
