"""The fused convolution's Winograd path (3x3, stride 1, 'same', wide inputs) against the
composition, and its transforms against their adjoints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnet
import nnet.nn.functional as F
from nnet.kernels import Conv2d, use_fused, winograd
from nnet.kernels import conv as fused_conv
from nnet.kernels.conv import WINOGRAD_MIN_CHANNELS
from nnet.testing import gradcheck, gradgradcheck


@pytest.fixture(autouse=True)
def small_shapes_take_winograd(monkeypatch):
    """Test sizes are far below the shapes where Winograd pays; the channel count still decides."""
    monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_PRODUCT", 0)
    monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_PIXELS", 0)


wide = st.sampled_from([WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_CHANNELS + 1])


def _grads(fused, x, w, b, g, need=(True, True, True)):
    ts = [
        None if a is None else nnet.Tensor(a.copy(), requires_grad=r)
        for a, r in zip((x, w, b), need, strict=True)
    ]
    with use_fused(fused):
        y = F.conv2d(ts[0], ts[1], ts[2], padding="same")
    assert (type(y.grad_fn) is Conv2d) == fused
    if fused:
        assert y.grad_fn.winograd
    wanted = [t for t in ts if t is not None and t.requires_grad]
    return y.numpy(), [t.numpy() for t in nnet.grad(y, wanted, g)]


@given(
    n=st.integers(1, 3),
    hw=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    cin=wide,
    cout=st.integers(1, 4),
    bias=st.booleans(),
    need=st.sampled_from([(True, True, True), (True, False, False), (False, True, False)]),
    seed=st.integers(0, 2**16),
)
def test_matches_composition(n, hw, cin, cout, bias, need, seed):
    """Even and odd sizes (odd ones pad the last tile row and column), one pixel to seven."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *hw, cin))
    w = rng.standard_normal((3, 3, cin, cout))
    b = rng.standard_normal(cout) if bias else None
    g = rng.standard_normal((n, *hw, cout))
    x_before, w_before = x.copy(), w.copy()
    need = (need[0], need[1], need[2] and bias)
    if not any(need):
        need = (True, False, False)
    y, grads = _grads(True, x, w, b, g, need)
    y0, grads0 = _grads(False, x, w, b, g, need)
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
    assert len(grads) == len(grads0) == sum(need)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(w, w_before)


def test_float32_stays_float32_and_matches():
    rng = np.random.default_rng(0)
    cin = WINOGRAD_MIN_CHANNELS * 2
    x = rng.standard_normal((4, 14, 14, cin)).astype(np.float32)
    w = (rng.standard_normal((3, 3, cin, 8)) * 0.1).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    g = rng.standard_normal((4, 14, 14, 8)).astype(np.float32)
    y, grads = _grads(True, x, w, b, g)
    y0, grads0 = _grads(False, x, w, b, g)
    assert y.dtype == np.float32 and all(a.dtype == np.float32 for a in grads)
    np.testing.assert_allclose(y, y0, rtol=1e-4, atol=1e-5)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("tile_floats", [1, 2_000, 2**18])
@pytest.mark.parametrize("block_floats", [1, 30_000, 10**9])
@pytest.mark.parametrize("hw", [(6, 4), (5, 3)])
def test_blocks_of_images_match_composition(monkeypatch, block_floats, tile_floats, hw):
    """Forward and backward run a block of images at a time: blocks of one image, of two (five
    images leave a shorter last block), and all five at once; their products in chunks of one
    tile row, of two (across images, a shorter last chunk), or whole (odd sizes always whole)."""
    monkeypatch.setattr(winograd, "BLOCK_FLOATS", block_floats)
    monkeypatch.setattr(winograd, "TILE_FLOATS", tile_floats)
    rng = np.random.default_rng(block_floats)
    cin = WINOGRAD_MIN_CHANNELS
    x = rng.standard_normal((5, *hw, cin))
    w = rng.standard_normal((3, 3, cin, 3))
    b = rng.standard_normal(3)
    g = rng.standard_normal((5, *hw, 3))
    y, grads = _grads(True, x, w, b, g)
    y0, grads0 = _grads(False, x, w, b, g)
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-12, atol=1e-12)
    with nnet.no_grad():
        y1 = F.conv2d(nnet.Tensor(x), nnet.Tensor(w), nnet.Tensor(b))
    np.testing.assert_allclose(y1.numpy(), y0, rtol=1e-12, atol=1e-12)


def test_gradcheck_and_second_order():
    rng = np.random.default_rng(3)
    cin = WINOGRAD_MIN_CHANNELS
    x = nnet.Tensor(rng.standard_normal((2, 3, 4, cin)), requires_grad=True)
    w = nnet.Tensor(rng.standard_normal((3, 3, cin, 2)), requires_grad=True)
    b = nnet.Tensor(rng.standard_normal(2), requires_grad=True)

    def f(x, w, b):
        y = F.conv2d(x, w, b)
        assert type(y.grad_fn) is Conv2d and y.grad_fn.winograd
        return y * y  # nonlinear, so the second derivatives reach every path

    assert gradcheck(f, x, w, b)
    assert gradgradcheck(f, x, w, b)


@pytest.mark.parametrize(
    "geometry",
    [
        {"stride": 2, "padding": 1},
        {"padding": "valid"},
        {"dilation": 2, "padding": "same"},
    ],
)
def test_other_geometries_take_im2col(geometry):
    x = nnet.Tensor(np.ones((1, 6, 6, WINOGRAD_MIN_CHANNELS)), requires_grad=True)
    w = nnet.Tensor(np.ones((3, 3, WINOGRAD_MIN_CHANNELS, 2)))
    assert not F.conv2d(x, w, **geometry).grad_fn.winograd
    narrow = nnet.Tensor(np.ones((1, 6, 6, WINOGRAD_MIN_CHANNELS - 1)), requires_grad=True)
    w = nnet.Tensor(np.ones((3, 3, WINOGRAD_MIN_CHANNELS - 1, 2)))
    assert not F.conv2d(narrow, w).grad_fn.winograd


@pytest.mark.parametrize(
    "shape,cout,wanted",
    [
        ((64, 14, 14, 32), 64, True),  # the wide CNN's conv2
        ((8, 14, 14, 32), 32, True),
        ((64, 14, 14, 16), 16, True),
        ((64, 14, 14, 16), 4, False),  # C_in C_out below WINOGRAD_MIN_PRODUCT
        ((16, 7, 7, 32), 32, False),  # fewer output pixels than WINOGRAD_MIN_PIXELS
        ((64, 14, 14, 8), 128, False),  # fewer input channels than WINOGRAD_MIN_CHANNELS
    ],
)
def test_default_rule(monkeypatch, shape, cout, wanted):
    monkeypatch.undo()
    x = nnet.Tensor(np.zeros(shape, np.float32), requires_grad=True)
    w = nnet.Tensor(np.zeros((3, 3, shape[3], cout), np.float32))
    assert F.conv2d(x, w).grad_fn.winograd == wanted


@pytest.mark.parametrize("hw", [(4, 6), (5, 3), (1, 1)])
def test_transforms_and_adjoints(hw):
    """<T(a), c> = <a, T*(c)> for each transform the VJP uses, and the kernel's pair."""
    rng = np.random.default_rng(sum(hw))
    n, c, k = 2, 3, 4
    th, tw = (hw[0] + 1) // 2, (hw[1] + 1) // 2
    x = rng.standard_normal((n, *hw, c))
    cv = rng.standard_normal((16, n * th * tw, c))
    assert np.isclose(
        np.sum(winograd.input_transform(x) * cv),
        np.sum(x * winograd.input_transform_adjoint(cv, x.shape)),
        rtol=1e-12,
    )
    m = rng.standard_normal((16, n * th * tw, k))
    gy = rng.standard_normal((n, *hw, k))
    assert np.isclose(
        np.sum(winograd.output_transform(m, gy.shape) * gy),
        np.sum(m * winograd.output_transform_adjoint(gy)),
        rtol=1e-12,
    )
    w = rng.standard_normal((3, 3, c, k))
    du = rng.standard_normal((16, c, k))
    assert np.isclose(
        np.sum(winograd.kernel_transform(w) * du),
        np.sum(w * winograd.kernel_transform_adjoint(du)),
        rtol=1e-12,
    )


@pytest.mark.parametrize("quads", [False, True])
def test_products_run_in_chunks_that_fit_tile_floats(monkeypatch, quads):
    """A step of images whose transforms and products pass TILE_FLOATS (the conv2d benchmark's 32x32
    images, 32 -> 64 channels) multiplies them a chunk of tile rows at a time, forward and backward,
    each chunk's V's and products within TILE_FLOATS; the results are the unchunked ones."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 32, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 32, 64)) * 0.1).astype(np.float32)
    g = rng.standard_normal((2, 2, 2, 16, 16, 64) if quads else (2, 32, 32, 64)).astype(np.float32)
    monkeypatch.setattr(winograd, "BLOCK_FLOATS", 10**9)  # both images in one step
    monkeypatch.setattr(winograd, "TILE_FLOATS", 10**9)
    v, y = winograd.conv(x, w, None, quads=quads)
    whole = winograd.conv_vjp(g, v, w, x.shape, True, True, quads)
    monkeypatch.setattr(winograd, "TILE_FLOATS", 2**18)
    tiles: list[int] = []
    real_matmul = np.matmul

    def matmul(a, b, *args, **kwargs):
        if a.ndim == 3 and a.shape[0] == 16:  # the 16 products of a chunk: record its tiles
            tiles.append(max(a.shape[1], b.shape[1]))
        return real_matmul(a, b, *args, **kwargs)

    monkeypatch.setattr(winograd.np, "matmul", matmul)
    v2, y2 = winograd.conv(x, w, None, quads=quads)
    forward = list(tiles)
    chunked = winograd.conv_vjp(g, v2, w, x.shape, True, True, quads)
    monkeypatch.undo()
    assert forward and all(16 * 96 * t <= 2**18 for t in tiles)
    assert sum(forward) == 2 * 16 * 16
    np.testing.assert_allclose(y2, y, rtol=1e-5, atol=1e-5)
    for a, b in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_saves_the_input_transforms_only_when_recording():
    rng = np.random.default_rng(5)
    cin = WINOGRAD_MIN_CHANNELS
    x = nnet.Tensor(rng.standard_normal((2, 4, 4, cin)).astype(np.float32), requires_grad=True)
    w = nnet.Tensor(rng.standard_normal((3, 3, cin, 2)).astype(np.float32))
    y = F.conv2d(x, w)
    (v,) = y.grad_fn.saved
    assert v.shape == (16, 2 * 2 * 2, cin) and v.dtype == np.float32
    y.sum().backward()
    assert y.grad_fn.saved == ()


def test_steps_are_larger_and_even_when_the_images_are_split():
    """Split over two threads, each thread's images are cut into equal steps of at most
    SPLIT_BLOCK_FLOATS; on one thread the steps stay within BLOCK_FLOATS."""
    before = nnet.get_num_threads()
    try:
        per_image = 16 * (32 + 64) * 49  # the wide CNN's second block: 14x14 images, 32 -> 64
        nnet.set_num_threads(1)
        one = winograd._images_per_block(64, 49, 96)
        assert one == winograd.BLOCK_FLOATS // per_image
        nnet.set_num_threads(2)
        split = winograd._images_per_block(64, 49, 96)
        assert one < split <= winograd.SPLIT_BLOCK_FLOATS // per_image
        steps = -(-32 // split)  # a thread's 32 images: its steps differ by under an image
        assert steps * split - 32 < steps
        rng = np.random.default_rng(7)
        x = rng.standard_normal((64, 14, 14, 32)).astype(np.float32)
        w = rng.standard_normal((3, 3, 32, 64)).astype(np.float32)
        _, y2 = winograd.conv(x, w, None)
        nnet.set_num_threads(1)
        _, y1 = winograd.conv(x, w, None)
        np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-4)  # other product sizes round apart
    finally:
        nnet.set_num_threads(before)


def test_the_input_gradients_kernel_factor_is_contiguous():
    """dV = dM U^T multiplies by a C-contiguous U^T: OpenBLAS's SkylakeX kernels ran the product
    against the transposed view of U 1.4-1.8x slower."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 4, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 8)).astype(np.float32)
    v, _ = winograd.conv(x, w, None)
    adj = winograd.Adjoint(v, w, x.shape, True, True)
    assert adj.ut.shape == (16, 8, 16) and adj.ut.flags.c_contiguous
