"""Hypothesis-drawn shapes, strides, paddings and dilations: each layer's forward against the direct
loops and its gradients against central differences (float64, small sizes)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

import nnet
from nnet import nn
from nnet.nn.functional import conv_padding

from . import reference
from .layer_case import layer_gradcheck

sides = st.integers(1, 3)
pairs = st.tuples(sides, sides)
small_pairs = st.tuples(st.integers(1, 2), st.integers(1, 2))


def _fits(shape, kernel, dilation, pads):
    return all(
        d * (k - 1) + 1 <= n + sum(p)
        for n, k, d, p in zip(shape[1:3], kernel, dilation, pads, strict=True)
    )


@given(
    n=st.integers(1, 2),
    hw=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    channels=pairs,
    kernel=pairs,
    stride=small_pairs,
    dilation=small_pairs,
    padding=st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2), pairs),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv2d(n, hw, channels, kernel, stride, dilation, padding, bias, seed):
    shape = (n, *hw, channels[0])
    pads = conv_padding(padding, kernel, dilation)
    assume(_fits(shape, kernel, dilation, pads))
    nnet.manual_seed(seed)
    layer = nn.Conv2d(*channels, kernel, stride, padding, dilation, bias).double()
    x = np.random.default_rng(seed).standard_normal(shape)
    want = reference.conv2d(
        x, layer.weight.numpy(), None if not bias else layer.bias.numpy(), stride, pads, dilation
    )
    np.testing.assert_allclose(layer(nnet.Tensor(x)).numpy(), want, atol=1e-12)
    assert layer_gradcheck(layer, x)


@given(
    n=st.integers(1, 2),
    hw=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    c=st.integers(1, 2),
    kernel=pairs,
    stride=st.one_of(st.none(), small_pairs),
    padding=st.tuples(st.integers(0, 1), st.integers(0, 1)),
    dilation=small_pairs,
    seed=st.integers(0, 2**16),
)
def test_max_pool2d(n, hw, c, kernel, stride, padding, dilation, seed):
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    assume(all(2 * p <= s for p, s in zip(padding, span, strict=True)))
    assume(_fits((n, *hw, c), kernel, dilation, [(p, p) for p in padding]))
    # distinct values: no ties, so central differences are valid
    x = np.random.default_rng(seed).permutation(n * hw[0] * hw[1] * c).reshape(n, *hw, c) * 0.1
    layer = nn.MaxPool2d(kernel, stride, padding, dilation)
    want = reference.pool2d(x, kernel, stride or kernel, padding, np.max, -np.inf, dilation)
    np.testing.assert_array_equal(layer(nnet.Tensor(x)).numpy(), want)
    # a dilated window can fall wholly on padding: -inf, as in PyTorch, and no difference quotient
    assume(np.isfinite(want).all())
    assert layer_gradcheck(layer, x)


@given(
    n=st.integers(1, 2),
    hw=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    c=st.integers(1, 2),
    kernel=pairs,
    stride=st.one_of(st.none(), small_pairs),
    padding=st.tuples(st.integers(0, 1), st.integers(0, 1)),
    count_include_pad=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_avg_pool2d(n, hw, c, kernel, stride, padding, count_include_pad, seed):
    assume(all(2 * p <= k for p, k in zip(padding, kernel, strict=True)))
    assume(_fits((n, *hw, c), kernel, (1, 1), [(p, p) for p in padding]))
    x = np.random.default_rng(seed).standard_normal((n, *hw, c))
    layer = nn.AvgPool2d(kernel, stride, padding, count_include_pad)
    s = stride or kernel
    total = reference.pool2d(x, kernel, s, padding, np.sum, 0.0)
    if count_include_pad:
        want = total / (kernel[0] * kernel[1])
    else:
        ones = np.ones((1, *hw, 1))
        want = total / reference.pool2d(ones, kernel, s, padding, np.sum, 0.0)
    np.testing.assert_allclose(layer(nnet.Tensor(x)).numpy(), want, atol=1e-12)
    assert layer_gradcheck(layer, x)


@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    affine=st.booleans(),
    training=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_batch_norm2d(shape, affine, training, seed):
    assume(not training or shape[0] * shape[1] * shape[2] > 1)
    rng = np.random.default_rng(seed)
    layer = nn.BatchNorm2d(shape[3], affine=affine).double().train(training)
    if affine:
        layer.weight.data[...] = rng.uniform(0.5, 2, shape[3])
        layer.bias.data[...] = rng.standard_normal(shape[3])
    layer.running_var.data[...] = rng.uniform(0.5, 2, shape[3])
    x = rng.standard_normal(shape) * 2
    assert layer_gradcheck(layer, x, atol=1e-4)


@given(n=st.integers(2, 6), c=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_batch_norm1d(n, c, seed):
    x = np.random.default_rng(seed).standard_normal((n, c))
    assert layer_gradcheck(nn.BatchNorm1d(c), x, atol=1e-4)


@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    p=st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_dropout(shape, p, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    assert layer_gradcheck(nn.Dropout(p), x, seed=seed)
