"""Conv2d, ReLU, MaxPool2d in one pass when nothing records (inference), against the layers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nnet
from nnet import nn
from nnet.kernels import convpool, use_fused
from nnet.nn.functional import conv_padding


def _outputs(model, x):
    with nnet.no_grad():
        y = model(nnet.Tensor(x))
        with use_fused(False):
            y0 = model(nnet.Tensor(x))
    assert y.grad_fn is None
    return y.numpy(), y0.numpy()


@given(
    n=st.integers(1, 3),
    hw=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    cin=st.integers(1, 5),  # both layouts: channel-first below ROWS_FROM_CHANNELS
    cout=st.integers(1, 3),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.sampled_from(["same", "valid", 1, (0, 2)]),
    pool=st.sampled_from([1, 2, 3, (2, 1)]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_the_layers(n, hw, cin, cout, kernel, padding, pool, bias, seed):
    """Pools whose windows leave a remainder of the conv's output, padding on either side."""
    pads = conv_padding(padding, kernel, (1, 1))
    out = [hw[a] + sum(pads[a]) - kernel[a] + 1 for a in (0, 1)]
    p = (pool, pool) if isinstance(pool, int) else pool
    assume(out[0] >= p[0] and out[1] >= p[1])
    model = nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, bias=bias), nn.ReLU(), nn.MaxPool2d(pool)
    ).double()
    x = np.random.default_rng(seed).standard_normal((n, *hw, cin))
    y, y0 = _outputs(model, x)
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cin", [1, 4])
@pytest.mark.parametrize("images", [1, 2])
def test_blocks_of_images(monkeypatch, cin, images):
    """Blocks of one and of two images (five leave a shorter last block), in both layouts."""
    monkeypatch.setattr(convpool, "BLOCK_WINDOWS", 9 * images)  # 9 windows an image
    monkeypatch.setattr(convpool, "BLOCK_FLOATS", (16 * cin + 4 * 3) * 9 * images)
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Conv2d(cin, 3, 3), nn.ReLU(), nn.MaxPool2d(2)).double()
    y, y0 = _outputs(model, rng.standard_normal((5, 6, 7, cin)))
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)


def test_nan_and_float32():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 8, 8, 4)).astype(np.float32)
    x[0, 3, 3, 0] = np.nan
    model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.ReLU(), nn.MaxPool2d(2))
    y, y0 = _outputs(model, x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(y), np.isnan(y0))
    assert np.isnan(y).any()
    np.testing.assert_allclose(y, y0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["recording", "stride", "dilation", "eval_seed_network"])
def test_where_it_applies(monkeypatch, case):
    rng = np.random.default_rng(3)
    cin = 4
    conv = nn.Conv2d(
        cin, 2, 3, stride=2 if case == "stride" else 1, dilation=2 if case == "dilation" else 1
    )
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))
    x = nnet.Tensor(rng.standard_normal((2, 8, 8, cin)).astype(np.float32))
    if case == "recording":
        y = model(x)
        assert y.grad_fn is not None  # the layers, recorded
        return
    calls = []
    real = convpool.conv_relu_pool
    monkeypatch.setattr(convpool, "conv_relu_pool", lambda *a: calls.append(1) or real(*a))
    with nnet.no_grad():
        if case == "eval_seed_network":
            seed = nn.Sequential(
                nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4),
                nn.Conv2d(4, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(8),
            ).eval()  # fmt: skip
            seed(nnet.Tensor(rng.standard_normal((2, 28, 28, 1)).astype(np.float32)))
        else:
            model(x)
    # both of the seed network's blocks; stride 2 and dilation 2 stay layers
    assert len(calls) == (2 if case == "eval_seed_network" else 0)
