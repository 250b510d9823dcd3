"""The convolution over few input channels (below im2col.COLUMN_MAJOR_BELOW), with its patches
channel-major, by blocks of images over nnet's threads.

The patch matrix is stored as (KH KW, C_in, M) planes (im2col.py), so that every copy and add runs
along output rows. A block of images per thread, each block a few long NumPy calls: its patches
as one copy out of the windows view, their product and the bias in the forward; in the VJP its
share of the kernel gradient P^T G and its input gradient (:func:`input_grad_shifted`). The VJP's
blocks are the forward's, so each thread reads the patches its own core wrote. Calls of a few
microseconds would hand the GIL between the cores at every step; these take tens to hundreds.
The seed's second convolution, (100, 14, 14, 4) -> 8 channels, micro under ``chrt -f 10``:
patches and product 396 us on one thread, 246 on two.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnet.autograd.linalg import tall_product
from nnet.kernels.channels import per_channel
from nnet.kernels.im2col import Geometry, padded, patch_windows
from nnet.threads import blas_for, items_per_block, parallel_for


def _min_block(k: int, cout: int, pixels: int, itemsize: int) -> int:
    """Images per block: an image's patches and outputs, :func:`nnet.threads.items_per_block`."""
    return items_per_block((k + cout) * pixels * itemsize)


def patches(x: np.ndarray, geo: Geometry, out: np.ndarray) -> None:
    """The patches of NHWC ``x`` into ``out``, (KH, KW, C_in, N, OH, OW), as one copy out of the
    windows view."""
    np.copyto(out, patch_windows(x, geo).transpose(3, 4, 5, 0, 1, 2))


def patch_rows(x: np.ndarray, geo: Geometry, out: np.ndarray) -> None:
    """The patches of NHWC ``x`` into ``out``, (N, OH, OW, KH, KW, C) with its last three axes
    contiguous: the (M, K) patch matrix, rows contiguous. ``geo`` has dilation 1 along the width.

    At dilation 1 the KW taps of a patch row are KW neighbouring pixels, KW C contiguous values of
    the padded input: copied as one opaque item each, the copy moves KH items per output pixel
    where the float copy (``patch_windows``) loops over runs of KW C floats and the channel-major
    one over output rows read C floats apart. The seed's second convolution, (100, 14, 14, 4),
    micro under ``chrt -f 10``: 147 us (168 with cold caches) against 243 (376) channel-major,
    and its product with the kernel 124 against 144 us."""
    n, c = x.shape[0], x.shape[3]
    (kh, kw), (sh, sw), (dh, _), _, (oh, ow) = geo
    src = np.ascontiguousarray(padded(x, geo), out.dtype)
    if out.size == 0:
        return
    run = np.dtype((np.void, kw * c * src.itemsize))
    s0, s1, s2, _ = src.strides
    items = np.ndarray((n, oh, ow, kh), run, src, 0, (s0, sh * s1, sw * s2, dh * s1))
    np.copyto(out.reshape(n, oh, ow, kh, kw * c).view(run)[..., 0], items)


def patch_rows_offset_major(
    x: np.ndarray, geo: Geometry, kernel: tuple[int, int], out: np.ndarray
) -> None:
    """:func:`patch_rows` with the rows in the window-offset-major order of a following max-pool
    with windows ``kernel`` tiling the output: ``out`` (KH_p KW_p, N, OH / KH_p, OW / KW_p, K), its
    last axis contiguous (a wider row may hold more, e.g. a column of ones), so that the product
    with the kernel writes the pool's offset planes (pool.offset_major) directly."""
    n, c = x.shape[0], x.shape[3]
    (kh, kw), (sh, sw), (dh, _), _, (oh, ow) = geo
    ph, pw = kernel
    qh, qw = oh // ph, ow // pw
    src = np.ascontiguousarray(padded(x, geo), out.dtype)
    if out.size == 0:
        return
    run = np.dtype((np.void, kw * c * src.itemsize))
    s0, s1, s2, _ = src.strides
    strides = (s0, ph * sh * s1, sh * s1, pw * sw * s2, sw * s2, dh * s1)
    items = np.ndarray((n, qh, ph, qw, pw, kh), run, src, 0, strides)
    target = np.reshape(out, (ph, pw, n, qh, qw, kh, kw * c), copy=False).view(run)[..., 0]
    np.copyto(target, items.transpose(2, 4, 0, 1, 3, 5))


def forward(x: np.ndarray, w2: np.ndarray, bias: np.ndarray | None,
            geo: Geometry) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(patches as an (M, K) view of (KH KW, C_in, M) memory, NHWC output) of the convolution of
    ``x`` with the (K, C_out) kernel ``w2``."""
    n, cin = x.shape[0], x.shape[3]
    (kh, kw), (oh, ow) = geo[0], geo[4]
    k, cout = w2.shape
    pixels = oh * ow
    buf = np.empty((kh, kw, cin, n, oh, ow), x.dtype)
    cols = buf.reshape(k, n * pixels)
    y = np.empty((n * pixels, cout), np.result_type(x, w2))

    def images(start: int, stop: int) -> None:
        patches(x[start:stop], geo, buf[:, :, :, start:stop])
        rows = slice(start * pixels, stop * pixels)
        np.matmul(cols[:, rows].T, w2, out=y[rows])
        if bias is not None:
            per_channel(np.add, y[rows], bias, out=y[rows])

    with blas_for(cols.size * cout):  # the seed's few channels: one thread (threads.py)
        parallel_for(images, n, min_block=_min_block(k, cout, pixels, x.itemsize))
    return cols.T, y.reshape(n, oh, ow, cout)


def shifts_fit(geo: Geometry) -> bool:
    """Stride 1, dilation 1 and padding shorter than the kernel: every tap of the convolution is a
    fixed shift on the grid of padded pixels (:func:`input_grad_shifted`)."""
    (kh, kw), stride, dilation, (pt, pl), _ = geo
    return stride == (1, 1) and dilation == (1, 1) and pt < kh and pl < kw


#: Bytes at which :func:`input_grad_from_grid` starts its product's output: OpenBLAS writes the
#: (KH KW C_in, L) result of a short product faster from a cache-line boundary. The seed's second
#: convolution, (36, 8) x (8, 25600), one thread, under ``chrt -f 10``: 345 us at offset 0 mod 64,
#: 435-460 us at the 15 other float offsets (both the forced Haswell and OpenBLAS's own kernels;
#: NumPy's large arrays start 16 bytes past a page).
OUTPUT_ALIGN = 64


def aligned_empty(shape: tuple[int, ...], dtype: Any, align: int = OUTPUT_ALIGN) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts at a multiple of ``align`` bytes."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    raw = np.empty(size + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start : start + size].view(dtype).reshape(shape)


def shift_grid(g_shape: tuple[int, ...], geo: Geometry, dtype: np.dtype) -> np.ndarray:
    """An (N, OH + KH - 1, OW + KW - 1, C_out) grid for :func:`input_grad_from_grid`, zero where no
    output pixel lies: the caller fills ``grid[:, :OH, :OW]`` with the output gradient."""
    (kh, kw), _, _, _, (oh, ow) = geo
    grid = np.empty((g_shape[0], oh + kh - 1, ow + kw - 1, g_shape[-1]), dtype)
    # np.zeros fills its memory holding the GIL (calloc): only the border needs the zeros
    grid[:, oh:] = 0
    grid[:, :oh, ow:] = 0
    return grid


def input_grad_shifted(g2: np.ndarray, w2: np.ndarray, out: np.ndarray, geo: Geometry) -> None:
    """col2im(G W^T) into ``out``, (N, H, W, C_in), for geometry :func:`shifts_fit`, from the
    (N OH OW, C_out) output gradient ``g2`` and the (KH KW C_in, C_out) kernel ``w2``
    (:func:`input_grad_from_grid`)."""
    oh, ow = geo[4]
    n, cout = out.shape[0], g2.shape[1]
    grid = shift_grid((n, cout), geo, g2.dtype)
    grid[:, :oh, :ow] = g2.reshape(n, oh, ow, cout)
    input_grad_from_grid(grid, w2, out, geo)


def input_grad_from_grid(grid: np.ndarray, w2: np.ndarray, out: np.ndarray, geo: Geometry) -> None:
    """col2im(G W^T) into ``out``, (N, H, W, C_in), for geometry :func:`shifts_fit`, from the
    output gradient G placed on a :func:`shift_grid` and the (KH KW C_in, C_out) kernel ``w2``.

    On a grid of (OH + KH - 1) x (OW + KW - 1) padded pixels per image, flattened, tap (i, j) of
    output pixel q reads grid pixel q + i GW + j. So with G placed on that grid (zeros on the
    rows and columns no output owns) and W G^T taken there, (KH KW, C_in, L), each tap's share
    is one add of whole (C_in, L) rows at its shift: nine adds over runs of L floats, where the
    plain col2im adds runs of OW floats (the seed's second convolution: W G^T and col2im 586 ->
    339 us). An output pixel's taps stay inside its own image's grid; the extra pixels carry 0."""
    (kh, kw), _, _, (pt, pl), _ = geo
    n, h, w, cin = out.shape
    gh, gw, cout = grid.shape[1:]
    length = n * gh * gw
    shares = aligned_empty((kh * kw * cin, length), np.result_type(w2, grid))
    np.matmul(w2[: kh * kw * cin], grid.reshape(length, cout).T, out=shares)
    shares = shares.reshape(kh * kw, cin, length)
    acc = np.empty((cin, length + (kh - 1) * gw + kw - 1), shares.dtype)
    acc[:, :length] = shares[0]  # tap (0, 0) is at shift 0
    acc[:, length:] = 0
    for t in range(1, kh * kw):
        at = (t // kw) * gw + t % kw
        acc[:, at : at + length] += shares[t]
    # grid pixel (y + pt, x + pl) is input pixel (y, x): the padding shorter than the kernel, the
    # input fits inside the grid (OH + KH - 1 = H + pt + pb), rows past it get nothing
    planes = acc[:, :length].reshape(cin, n, gh, gw)[:, :, pt : pt + h, pl : pl + w]
    # a channel at a time: the whole transpose loops over runs of C_in floats (the seed's second
    # convolution, C_in = 4: 51 -> 27 us)
    for c in range(cin):
        out[..., c] = planes[c]


def vjp(cols: np.ndarray, g2: np.ndarray, w2: np.ndarray, shape: tuple[int, ...], geo: Geometry,
        need_x: bool, need_w: bool) -> tuple[np.ndarray | None, np.ndarray | None]:  # fmt: skip
    """(input gradient, (K, C_out) kernel gradient) of :func:`forward` for geometry
    :func:`shifts_fit`, the output gradient ``g2`` as (M, C_out); None where not needed."""
    n = shape[0]
    k, cout = w2.shape
    pixels = g2.shape[0] // max(1, n)
    gx = np.empty(shape, np.result_type(g2, w2)) if need_x else None

    def images(start: int, stop: int) -> np.ndarray | None:
        rows = slice(start * pixels, stop * pixels)
        if gx is not None:
            input_grad_shifted(g2[rows], w2, gx[start:stop], geo)
        return tall_product(cols[rows], g2[rows]) if need_w else None

    with blas_for(cols.size * cout):
        parts = parallel_for(images, n, min_block=_min_block(k, cout, pixels, g2.itemsize))
    if not need_w:
        return gx, None
    gw: np.ndarray = parts[0]  # type: ignore[assignment]  # need_w: every block returned its sum
    for part in parts[1:]:
        gw = gw + part
    return gx, gw
