"""Inference only: a stride-1 convolution, its bias, ReLU and a max-pool (kernel = stride) in one
pass over blocks of images, nothing saved.

Pool window (r, c) takes the maximum of KH_p KW_p convolution outputs, which together read one
(KH_p + KH - 1) x (KW_p + KW - 1) patch of the input at a stride of the pool's kernel (4x4 at stride 2
for a 3x3 convolution and a 2x2 pool). So the patches are copied once per window instead of once per
output pixel (2.25 times fewer values for 3x3 and 2x2), and one product with the kernel placed at
each of the KH_p KW_p offsets of the patch, (patch, KH_p KW_p C_out), gives all of a window's outputs.
The bias and the ReLU come after the maximum (both commute with it), on a quarter of the values.
See derivations.md#conv2d-fused.
"""

from __future__ import annotations

import numpy as np

from nnet.autograd.fused.im2col import Geometry, patch_windows

#: Pool windows per block of images: the block's patches (64 floats each for 4 channels) are
#: multiplied while still in cache.
BLOCK_WINDOWS = 4096


def fits(geo: Geometry, x_shape: tuple[int, ...], kernel: tuple[int, int]) -> bool:
    """Stride 1 and dilation 1 (so a window's outputs read one patch), at least one pool window,
    and at least 4 input channels: with fewer, the window patch's contiguous runs (KW_p + KW - 1
    pixels of C values) are too short to copy fast (1 channel, the seed's first layer: 10.1 ms
    as three ops against 11.9 fused; 4 channels, its second: 9.0 against 5.7)."""
    _, stride, dilation, _, (oh, ow) = geo
    return (
        stride == (1, 1)
        and dilation == (1, 1)
        and oh >= kernel[0]
        and ow >= kernel[1]
        and x_shape[3] >= 4
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
    n, cout = x.shape[0], w.shape[3]
    out_hw = (oh // ph, ow // pw)
    windows = patch_windows(x, ((ph + kh - 1, pw + kw - 1), kernel, (1, 1), pads, out_hw))
    placed = _placed_kernels(w, kernel)
    y = np.empty((n, *out_hw, cout), np.result_type(x, w))
    step = max(1, min(n, BLOCK_WINDOWS // max(1, out_hw[0] * out_hw[1])))
    patches = np.empty((step, *windows.shape[1:]), x.dtype)
    for a in range(0, n, step):
        b = min(n, a + step)
        part = patches[: b - a]
        np.copyto(part, windows[a:b])
        outs = (part.reshape(-1, placed.shape[0]) @ placed).reshape(-1, ph * pw, cout)
        pooled = y[a:b].reshape(-1, cout)
        np.maximum(outs[:, 0], outs[:, 1] if ph * pw > 1 else outs[:, 0], out=pooled)
        for k in range(2, ph * pw):
            np.maximum(pooled, outs[:, k], out=pooled)
        if bias is not None:
            pooled += bias
        np.maximum(pooled, 0, out=pooled)
    return y
