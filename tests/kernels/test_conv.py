"""The fused convolution (and its im2col / col2im pair) against the composition: pad, windows,
reshape, matmul, + bias."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nnet
import nnet.nn.functional as F
from nnet.kernels import Col2ImPadded, Conv2d, Im2Col, use_fused
from nnet.kernels import conv as fused_conv
from nnet.kernels.im2col import COLUMN_MAJOR_BELOW, im2col_array
from nnet.nn.functional import conv_padding
from nnet.testing import gradcheck, gradgradcheck

#: The fused primitives whose gradients this file checks (tests/fused/test_coverage.py).
FUSED_TESTED = (Conv2d, Im2Col, Col2ImPadded)

pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))
small_pairs = st.tuples(st.integers(1, 2), st.integers(1, 2))
# both layouts of the patch matrix: column-major below COLUMN_MAJOR_BELOW channels, row-major above
channels = st.sampled_from([1, 2, 3, COLUMN_MAJOR_BELOW, COLUMN_MAJOR_BELOW + 1])


def _fits(shape, kernel, dilation, pads):
    return all(
        d * (k - 1) + 1 <= n + sum(p)
        for n, k, d, p in zip(shape[1:3], kernel, dilation, pads, strict=True)
    )


def _run(fused, x, w, b, g, **kw):
    ts = [nnet.Tensor(a.copy(), requires_grad=True) for a in (x, w, b)]
    with use_fused(fused):
        y = F.conv2d(ts[0], ts[1], ts[2], **kw)
    assert (type(y.grad_fn) is Conv2d) == fused
    return y.numpy(), [t.numpy() for t in nnet.grad(y, ts, g)]


@given(
    n=st.integers(1, 2),
    hw=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    cin=channels,
    cout=st.integers(1, 3),
    kernel=pairs,
    stride=small_pairs,
    dilation=small_pairs,
    padding=st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2), small_pairs),
    seed=st.integers(0, 2**16),
)
def test_matches_composition(n, hw, cin, cout, kernel, stride, dilation, padding, seed):
    shape = (n, *hw, cin)
    assume(_fits(shape, kernel, dilation, conv_padding(padding, kernel, dilation)))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((*kernel, cin, cout))
    b = rng.standard_normal(cout)
    x_before = x.copy()
    kw = {"stride": stride, "padding": padding, "dilation": dilation}
    with use_fused(False):
        y0 = F.conv2d(nnet.Tensor(x), nnet.Tensor(w), nnet.Tensor(b), **kw).numpy()
    g = rng.standard_normal(y0.shape)
    y, grads = _run(True, x, w, b, g, **kw)
    y0, grads0 = _run(False, x, w, b, g, **kw)
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(x, x_before)


def test_float32_stays_float32_and_matches():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 9, 8, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    g = rng.standard_normal((4, 9, 8, 5)).astype(np.float32)
    y, grads = _run(True, x, w, b, g)
    y0, grads0 = _run(False, x, w, b, g)
    assert y.dtype == np.float32 and all(a.dtype == np.float32 for a in grads)
    np.testing.assert_allclose(y, y0, rtol=1e-5, atol=1e-5)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk_rows", [1, 20, 48])
@pytest.mark.parametrize(
    "geometry", [{}, {"stride": 2, "padding": 1}, {"dilation": (2, 1), "padding": "valid"}]
)
def test_blocks_of_images_match_composition(monkeypatch, chunk_rows, geometry):
    """The wide layout's forward and input gradient run a block of images at a time: of five
    images with 24 (or 6, or 4) output pixels each, blocks of 1, 2 and 3 images, each leaving a
    shorter last block, and a single block of all five."""
    monkeypatch.setattr(fused_conv, "CHUNK_ROWS", chunk_rows)
    rng = np.random.default_rng(chunk_rows)
    x = rng.standard_normal((5, 6, 4, COLUMN_MAJOR_BELOW))
    w = rng.standard_normal((3, 3, COLUMN_MAJOR_BELOW, 3))
    b = rng.standard_normal(3)
    with use_fused(False):
        y0 = F.conv2d(nnet.Tensor(x), nnet.Tensor(w), nnet.Tensor(b), **geometry).numpy()
    g = rng.standard_normal(y0.shape)
    y, grads = _run(True, x, w, b, g, **geometry)
    y0, grads0 = _run(False, x, w, b, g, **geometry)
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cin", [2, COLUMN_MAJOR_BELOW])
@pytest.mark.parametrize("stride,padding", [(1, "same"), (2, 1)])
def test_gradcheck_and_second_order(cin, stride, padding):
    rng = np.random.default_rng(cin)
    x = nnet.Tensor(rng.standard_normal((2, 5, 4, cin)), requires_grad=True)
    w = nnet.Tensor(rng.standard_normal((3, 2, cin, 2)), requires_grad=True)
    b = nnet.Tensor(rng.standard_normal(2), requires_grad=True)

    def f(x, w, b):
        y = F.conv2d(x, w, b, stride=stride, padding=padding)
        assert type(y.grad_fn) is Conv2d
        return y * y  # nonlinear, so the second derivatives reach every path

    assert gradcheck(f, x, w, b)
    assert gradgradcheck(f, x, w, b)


def test_no_bias_and_input_without_gradient():
    rng = np.random.default_rng(1)
    x = nnet.Tensor(rng.standard_normal((2, 6, 6, 1)))
    w = nnet.Tensor(rng.standard_normal((3, 3, 1, 4)), requires_grad=True)
    y = F.conv2d(x, w)
    (gw,) = nnet.grad(y.sum(), [w])
    with use_fused(False):
        (gw0,) = nnet.grad(F.conv2d(x, w).sum(), [w])
    np.testing.assert_allclose(gw.numpy(), gw0.numpy(), rtol=1e-5)


@pytest.mark.parametrize("cin", [1, COLUMN_MAJOR_BELOW])
def test_patch_matrix_is_a_view_in_both_layouts(cin):
    x = np.random.default_rng(0).standard_normal((2, 5, 5, cin))
    patches = im2col_array(x, ((3, 3), (1, 1), (1, 1), (1, 1), (5, 5)))
    assert patches.shape == (50, 9, cin)
    assert np.shares_memory(patches.reshape(50, 9 * cin), patches)


@pytest.mark.parametrize("cin", [3, COLUMN_MAJOR_BELOW])
def test_im2col_and_col2im_are_adjoint(cin):
    """<im2col(x), c> = <x, col2im(c)> for random x and c: the identity their VJPs rely on."""
    rng = np.random.default_rng(cin)
    geo = ((3, 2), (2, 1), (1, 2), (1, 2), (3, 4))
    x = rng.standard_normal((2, 5, 6, cin))
    cols = Im2Col.apply(nnet.Tensor(x), geo).numpy()
    c = rng.standard_normal(cols.shape)
    back = Col2ImPadded.apply(nnet.Tensor(c), x.shape, geo).numpy()
    assert np.isclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)
    assert gradcheck(lambda t: Im2Col.apply(t, geo) ** 2, nnet.Tensor(x, requires_grad=True))


@pytest.mark.parametrize("cin", [1, 4, 5, COLUMN_MAJOR_BELOW])
@pytest.mark.parametrize("stride", [1, 2])
def test_forward_without_recording_matches_composition(cin, stride):
    """Under no_grad a few channels take the row-order blocks the wide path uses."""
    rng = np.random.default_rng(cin + stride)
    x = nnet.Tensor(rng.standard_normal((3, 7, 6, cin)))
    w = nnet.Tensor(rng.standard_normal((3, 3, cin, 5)))
    b = nnet.Tensor(rng.standard_normal(5))
    with nnet.no_grad():
        y = F.conv2d(x, w, b, stride=stride)
        with use_fused(False):
            y0 = F.conv2d(x, w, b, stride=stride)
    np.testing.assert_allclose(y.numpy(), y0.numpy(), rtol=1e-12, atol=1e-12)
