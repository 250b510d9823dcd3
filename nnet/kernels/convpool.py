"""Inference only: a stride-1 convolution, its bias, ReLU and a max-pool (kernel = stride) in one
pass over blocks of images, nothing saved.

Pool window (r, c) takes the maximum of KH_p KW_p convolution outputs, which together read one
(KH_p + KH - 1) x (KW_p + KW - 1) patch of the input at a stride of the pool's kernel (4x4 at stride 2
for a 3x3 convolution and a 2x2 pool). So the patches are copied once per window instead of once per
output pixel (2.25 times fewer values for 3x3 and 2x2), and one product with the kernel placed at
each of the KH_p KW_p offsets of the patch, (patch, KH_p KW_p C_out), gives all of a window's outputs.
The bias and the ReLU come after the maximum (both commute with it), on a quarter of the values.
With 4 input channels or more the patches are rows (one per window); with fewer, columns (one row
per patch entry, running along the windows), so that their copy is not a loop over 4-float runs.
See derivations.md#conv2d-fused.
"""

from __future__ import annotations

import numpy as np

from nnet.kernels.channels import relu
from nnet.kernels.im2col import Geometry, patch_windows
from nnet.threads import items_per_block, parallel_for

#: Pool windows per block of images: the block's patches (64 floats each for 4 channels) are
#: multiplied while still in cache.
BLOCK_WINDOWS = 4096
#: Below this many input channels a window's patch rows are too short to copy fast (4 floats for
#: one channel), and the patches are laid out channel-first instead, a row per patch entry, so that
#: the copy runs along output rows (float32, one thread: the seed's first block, 1000 x 28 x 28,
#: 1 -> 4 channels, 9.9 ms as layers, 11.9 by window rows, 5.0 channel-first; its second, 4 -> 8
#: channels, 8.9 as layers, 5.7 by rows, 6.0 channel-first).
ROWS_FROM_CHANNELS = 4
#: Floats of patches and products per block in the channel-first layout.
BLOCK_FLOATS = 2**19


def fits(geo: Geometry, x_shape: tuple[int, ...], kernel: tuple[int, int]) -> bool:
    """Stride 1 and dilation 1 (so a window's outputs read one patch), at least one pool window."""
    _, stride, dilation, _, (oh, ow) = geo
    return (
        stride == (1, 1)
        and dilation == (1, 1)
        and oh >= kernel[0]
        and ow >= kernel[1]
        and x_shape[0] > 0
    )


def _placed_kernels(w: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    """The (KH, KW, C, C_out) kernel at each offset (a, b) of a window's patch, as one
    (patch KH' KW' C, KH_p KW_p C_out) matrix."""
    kh, kw, c, cout = w.shape
    ph, pw = kernel
    placed = np.zeros((ph, pw, ph + kh - 1, pw + kw - 1, c, cout), w.dtype)
    for a in range(ph):
        for b in range(pw):
            placed[a, b, a : a + kh, b : b + kw] = w
    rows = (ph + kh - 1) * (pw + kw - 1) * c
    return np.ascontiguousarray(placed.reshape(ph * pw, rows, cout).transpose(1, 0, 2)).reshape(
        rows, ph * pw * cout
    )


def conv_relu_pool(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, geo: Geometry, kernel: tuple[int, int]
) -> np.ndarray:
    """``max_pool2d(relu(conv2d(x, w) + bias), kernel)`` for NHWC ``x``, the convolution of
    geometry ``geo`` (stride 1, dilation 1)."""
    (kh, kw), _, _, pads, (oh, ow) = geo
    ph, pw = kernel
    n, cin, cout = x.shape[0], x.shape[3], w.shape[3]
    out_hw = (oh // ph, ow // pw)
    windows = patch_windows(x, ((ph + kh - 1, pw + kw - 1), kernel, (1, 1), pads, out_hw))
    placed = _placed_kernels(w, kernel)
    y = np.empty((n, *out_hw, cout), np.result_type(x, w))
    taps = ph * pw
    # a block of images per nnet thread (BLAS on one thread inside each): split, the products and
    # the passes that read them stay on one core, where two BLAS threads each left half of a
    # product in the other core's cache (the seed at batch 1000, two threads: 14.8-16.0 ms a batch
    # with BLAS's threads, 12.9-13.1 with one)
    image_bytes = out_hw[0] * out_hw[1] * (placed.shape[0] + taps * cout) * x.itemsize

    def images(a: int, b: int) -> None:
        first = _channels_first if cin < ROWS_FROM_CHANNELS else _rows_first
        first(windows[a:b], placed, bias, y[a:b], taps)

    parallel_for(images, n, min_block=items_per_block(image_bytes))
    return y


def _rows_first(
    windows: np.ndarray, placed: np.ndarray, bias: np.ndarray | None, y: np.ndarray, taps: int
) -> None:
    """relu(max over the window offsets + bias) into ``y``, each block's patches as rows (one per
    window) multiplied by the placed kernels."""
    n, cout = windows.shape[0], y.shape[3]
    per_image = max(1, y.shape[1] * y.shape[2])
    step = max(1, min(n, BLOCK_WINDOWS // per_image))
    patches = np.empty((step, *windows.shape[1:]), windows.dtype)
    for a in range(0, n, step):
        b = min(n, a + step)
        part = patches[: b - a]
        np.copyto(part, windows[a:b])
        outs = (part.reshape(-1, placed.shape[0]) @ placed).reshape(-1, taps, cout)
        pooled = y[a:b].reshape(-1, cout)
        _max_bias_relu([outs[:, k] for k in range(taps)], bias, pooled)


def _max_bias_relu(outs: list[np.ndarray], bias: np.ndarray | None, pooled: np.ndarray) -> None:
    """pooled = relu(max(outs) + bias), ``bias`` broadcast along pooled's last axis."""
    np.copyto(pooled, outs[0])
    for o in outs[1:]:
        np.maximum(pooled, o, out=pooled)
    if bias is not None:
        pooled += bias
    relu(pooled, out=pooled)


def _channels_first(
    windows: np.ndarray, placed: np.ndarray, bias: np.ndarray | None, y: np.ndarray, taps: int
) -> None:
    """The same, with each block's patches as (entries, windows) rows and the products as
    (taps, C_out, windows): every copy and maximum runs along rows of windows."""
    n, oh, ow = windows.shape[:3]
    cout = y.shape[3]
    rows = placed.shape[0]
    per_image = max(1, oh * ow)
    step = max(1, min(n, BLOCK_FLOATS // ((rows + taps * cout) * per_image)))
    placed_t = np.ascontiguousarray(placed.T)  # (taps C_out, entries)
    column = None if bias is None else bias[:, None]
    patches = np.empty((*windows.shape[3:], step, oh, ow), windows.dtype)
    for a in range(0, n, step):
        b = min(n, a + step)
        part = patches[:, :, :, : b - a]
        np.copyto(part, windows[a:b].transpose(3, 4, 5, 0, 1, 2))
        outs = (placed_t @ part.reshape(rows, -1)).reshape(taps, cout, -1)
        pooled = np.empty(outs.shape[1:], outs.dtype)
        _max_bias_relu(list(outs), column, pooled)
        np.copyto(y[a:b].reshape(-1, cout), pooled.T)
