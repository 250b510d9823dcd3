"""Kernels that split their work over nnet's threads give what one thread gives: blocks of images
small enough that two threads each take several."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
import nnet.nn.functional as F
from nnet.kernels import conv as fused_conv
from nnet.kernels import winograd


@pytest.fixture
def two_threads():
    before = nnet.get_num_threads()
    yield
    nnet.set_num_threads(before)


def _conv_step(x, w, b, g):
    ts = [nnet.Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ts)
    return [y.numpy(), *[t.numpy() for t in nnet.grad(y, ts, g)]]


@pytest.mark.parametrize("path", ["im2col", "winograd"])
def test_conv_on_two_threads_matches_one(path, monkeypatch, two_threads):
    rng = np.random.default_rng(0)
    n, cin, cout = 6, 16, 64 if path == "winograd" else 8
    x = rng.standard_normal((n, 8, 8, cin))
    w, b = rng.standard_normal((3, 3, cin, cout)), rng.standard_normal(cout)
    g = rng.standard_normal((n, 8, 8, cout))
    if path == "winograd":
        monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_PIXELS", 0)
        monkeypatch.setattr(winograd, "BLOCK_FLOATS", 16 * (cin + cout) * 16)  # one image a block
    else:
        monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_CHANNELS", 10**6)
        monkeypatch.setattr(fused_conv, "CHUNK_ROWS", 64)  # one image a block
    results = []
    for threads in (1, 2):
        nnet.set_num_threads(threads)
        results.append(_conv_step(x, w, b, g))
    for a, a0 in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-12, atol=1e-12)
