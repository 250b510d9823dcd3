"""Winograd's F(2x2, 3x3) for a 3x3, stride-1, 'same' convolution over NHWC arrays, and its adjoints.

The image is cut into overlapping 4x4 tiles at a stride of 2 (zero-padded), each giving a 2x2 block
of the output. Per tile, ``Y = A^T [(G w G^T) * (B^T d B)] A``: the 4x4 transforms of the input tile
and of the kernel are multiplied entry by entry and summed over the input channels, which is one
batch of 16 products ``V[xi] @ U[xi]`` of (tiles, C_in) by (C_in, C_out) matrices. That is 16 products
per 4 outputs where the 3x3 kernel takes 36: 2.25 times fewer multiplications than im2col, paid for
with three cheap transforms, each a few whole-array adds over strided slices. A block of images
is transformed at once; its products, and the output transform that reads them, run a chunk of tile
rows at a time, so that each chunk's products are still in cache when transformed.

Signs: row 3 of B^T and column 3 of A^T are negated from Lavin and Gray's matrices (their effects
cancel in the product), so that A's rows are 0/1 selections where they can be: the transforms'
adjoints then start from views instead of negated copies. See derivations.md#conv2d-fused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from nnet.kernels.channels import per_channel
from nnet.threads import blocks, parallel_for

#: Floats a block of images may span across its transforms and products (about 2 MB of float32).
BLOCK_FLOATS = 2**19

#: The same when nnet splits the images over several threads: twice the images per step, so half
#: as many NumPy calls, which the threads contend for the GIL around (each takes it to dispatch).
#: Against 2^19 (whole wide-CNN training steps at two threads, 6 alternating fresh-process pairs
#: per layer order, 2026-12-05): 3.5-6.5% faster under the forced Haswell kernels, a wash
#: (-1.7..+0.6%) under OpenBLAS's own.
SPLIT_BLOCK_FLOATS = 2**20

#: Floats of V's and products (16 (C_in + C_out) per tile) that a step's products and output
#: transform (and, backward, dM's) take at a time: a step's input transforms run whole (few large
#: NumPy calls), its products in chunks of tile rows that stay in a core's cache from the product
#: to the transform after it. On the project's AVX-512 host, OpenBLAS's SkylakeX kernels, one
#: thread: the 16 products of 32 -> 64 channels ran at 130-147 GFLOP/s over 128 tiles, 89-103 over
#: 256 and 48-82 over 512, and A's output transform over 256 tiles took 15x its time over 64.
TILE_FLOATS = 2**18

#: G: the kernel transform's 4x3 matrix (U = G w G^T per input / output channel pair).
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def fits(geo: Any, x_shape: tuple[int, ...]) -> bool:
    """Whether the convolution of geometry ``geo`` is one this module computes: a 3x3 kernel at
    stride 1 and dilation 1 with one pixel of zeros on every side (PyTorch's padding=1, 'same')."""
    kernel, stride, dilation, pads, out = geo
    return (
        kernel == (3, 3)
        and stride == (1, 1)
        and dilation == (1, 1)
        and pads == (1, 1)
        and out == (x_shape[1], x_shape[2])
    )


def _tiles(h: int, w: int) -> tuple[int, int]:
    return (h + 1) // 2, (w + 1) // 2


def kernel_transform(w: np.ndarray) -> np.ndarray:
    """U = G w G^T for a (3, 3, C_in, C_out) kernel, as (16, C_in, C_out)."""
    g = G.astype(w.dtype)
    u = np.tensordot(g, np.tensordot(g, w, axes=(1, 1)), axes=(1, 1))  # (4, 4, C_in, C_out)
    return u.reshape(16, *w.shape[2:])


def kernel_transform_adjoint(du: np.ndarray) -> np.ndarray:
    """The kernel gradient from U's: G^T dU G, (16, C_in, C_out) -> (3, 3, C_in, C_out)."""
    g = G.astype(du.dtype)
    du4 = du.reshape(4, 4, *du.shape[1:])
    return np.tensordot(g, np.tensordot(g, du4, axes=(0, 1)), axes=(0, 1))


def _bt(d: list[Any], out: Any) -> None:
    """B^T along one axis: (d0 - d2, d1 + d2, d2 - d1, d3 - d1) into out[0..3]."""
    np.subtract(d[0], d[2], out=out[0])
    np.add(d[1], d[2], out=out[1])
    np.subtract(d[2], d[1], out=out[2])
    np.subtract(d[3], d[1], out=out[3])


def input_rows(x: np.ndarray) -> np.ndarray:
    """B^T along the rows of every 4x4 tile of the zero-bordered NHWC ``x``: (4, N, th, 2, tw + 1, C),
    the padded columns split by parity (``[..., p, k, :]`` is padded column 2k + p), so that the
    column pass (:func:`input_columns`) reads each tile's four columns as contiguous runs of tw C
    floats rather than runs of C (one image of 32x32x32: 213 -> 199 us with both passes; the
    adjoint 316 -> 247 us; float32, one thread)."""
    n, h, w, c = x.shape
    th, tw = _tiles(h, w)
    padded = np.zeros((n, 2 * th + 2, 2, tw + 1, c), x.dtype)
    odd, even = x[:, :, 1::2], x[:, :, 0::2]  # padded columns 2k and 2k + 1: x's 2k - 1 and 2k
    padded[:, 1 : h + 1, 0, 1 : 1 + odd.shape[2]] = odd
    padded[:, 1 : h + 1, 1, : even.shape[2]] = even
    rows = np.empty((4, n, th, 2, tw + 1, c), x.dtype)
    _bt([padded[:, i : i + 2 * th : 2] for i in range(4)], rows)
    return rows


def input_columns(rows: np.ndarray, out: np.ndarray) -> None:
    """V = B^T d B from :func:`input_rows`' result (or a range of its tile rows) into ``out``,
    (4, 4, N, th, tw, C): the columns of all four row results at once."""
    tw = rows.shape[4] - 1
    # v[a, b] = B^T_b (rows[a]), so ``out`` with its two tap axes swapped is indexed by b first
    d = [rows[..., j % 2, j // 2 : j // 2 + tw, :] for j in range(4)]
    _bt(d, out.swapaxes(0, 1))


def input_transform(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """V = B^T d B for every 4x4 tile d of the zero-bordered NHWC ``x``: (16, N th tw, C), th, tw
    the tile rows and columns, a tile's rows in (n, r, c) order (``out``: a (4, 4, N, th, tw, C)
    array to write into)."""
    n, h, w, c = x.shape
    th, tw = _tiles(h, w)
    v = np.empty((4, 4, n, th, tw, c), x.dtype) if out is None else out
    input_columns(input_rows(x), v)
    return v.reshape(16, n * th * tw, c)


#: A^T (x) A^T: row (a, b) maps a tile's 16 products (i, j) to its output (a, b), A^T's rows being
#: (1, 1, 1, 0) and (0, 1, -1, 1). One product with it is the whole output transform (and its
#: transpose the whole adjoint): one BLAS call per block where the adds took ten NumPy calls and a
#: temporary (64 images of 14x14, 64 channels, blocks of 6 images: 530 -> 421 us on one thread,
#: 616 -> 277 us on two; the adjoint 929 -> 434 and 766 -> 282 us).
_A16 = np.kron(
    [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 1.0]], [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 1.0]]
)


def _by_plane(a: np.ndarray, planes: int) -> np.ndarray:
    """``a`` as a (planes, L) view: its leading axes index ``planes`` planes, each contiguous."""
    return np.reshape(a, (planes, -1), copy=False)


def output_transform(
    m: np.ndarray, shape: tuple[int, ...], out: np.ndarray | None = None, quads: bool = False
) -> np.ndarray:
    """Y = A^T M A for the (16, N th tw, C_out) products ``m``: the NHWC output of ``shape`` (``out``:
    where to write it, when H and W are even); with ``quads``, each tile's 2x2 outputs as four planes
    (2, 2, N, th, tw, C_out) instead, written into ``out`` (planes each contiguous)."""
    n, h, w, k = shape
    th, tw = _tiles(h, w)
    a16 = _A16.astype(m.dtype)
    rows = _by_plane(m, 16)
    if quads and out is not None:
        np.matmul(a16, rows, out=_by_plane(out, 4))
        return out
    q = (a16 @ rows).reshape(2, 2, n, th, tw, k)
    if quads:
        return q
    even = h % 2 == 0 and w % 2 == 0
    y = np.empty((n, 2 * th, 2 * tw, k), m.dtype) if out is None or not even else out
    np.copyto(y.reshape(n, th, 2, tw, 2, k), q.transpose(2, 3, 0, 4, 1, 5))
    if even:
        return y
    if out is None:
        return np.ascontiguousarray(y[:, :h, :w])
    np.copyto(out, y[:, :h, :w])
    return out


def output_transform_adjoint(g: np.ndarray, quads: bool = False) -> np.ndarray:
    """dM = A dY A^T for the NHWC output gradient ``g`` (with ``quads``, for its four planes
    (2, 2, N, th, tw, C_out), each contiguous): (16, N th tw, C_out)."""
    if quads:
        k = g.shape[-1]
        planes = _by_plane(g, 4)
    else:
        n, h, w, k = g.shape
        th, tw = _tiles(h, w)
        if h % 2 or w % 2:
            full = np.zeros((n, 2 * th, 2 * tw, k), g.dtype)
            full[:, :h, :w] = g
            g = full
        planes = g.reshape(n, th, 2, tw, 2, k).transpose(2, 4, 0, 1, 3, 5).reshape(4, -1)
    return (_A16.T.astype(g.dtype) @ planes).reshape(16, -1, k)


def _b_adjoint(q: Any, e: np.ndarray, o: np.ndarray, axis: int) -> None:
    """B d_V B^T's one-axis step with the overlap of neighbouring tiles added and the border dropped:
    tile r's four entries ``q[0..3][r]`` land on padded positions 2r .. 2r + 3, i.e. on output
    positions 2r - 1 .. 2r + 2, whose even ones are ``e[r]`` and odd ones ``o[r]`` (r along
    ``axis``; zeros beyond the image allowed): B's rows are (1, 0, 0, 0), (0, 1, -1, -1),
    (-1, 1, 1, 0), (0, 0, 0, 1)."""
    # output 2r = padded 2r + 1: (q1 - q2 - q3)[r] + q3[r - 1]
    np.subtract(q[1], q[2], out=e)
    e -= q[3]
    # output 2r + 1 = padded 2r + 2: (q1 + q2 - q0)[r] + q0[r + 1]
    np.add(q[1], q[2], out=o)
    o -= q[0]
    lo = [slice(None)] * e.ndim
    hi = [slice(None)] * e.ndim
    lo[axis], hi[axis] = slice(1, None), slice(None, -1)
    e[tuple(lo)] += q[3][tuple(hi)]
    o[tuple(hi)] += q[0][tuple(lo)]


def columns_adjoint(dv6: np.ndarray, cols: np.ndarray) -> None:
    """The column step of the input gradient for (4, 4, N, th, tw, C) V's ``dv6`` (or a range of
    tile rows) into ``cols``, (4, N, th, 2, tw, C): output columns 2k and 2k + 1 as ``[..., 0, k, :]``
    and ``[..., 1, k, :]``, each a contiguous run, for all four tap rows at once."""
    _b_adjoint(dv6.swapaxes(0, 1), cols[..., 0, :, :], cols[..., 1, :, :], axis=3)


def rows_adjoint(
    cols: np.ndarray, shape: tuple[int, ...], out: np.ndarray | None = None
) -> np.ndarray:
    """The input gradient, an NHWC array of ``shape``, from :func:`columns_adjoint`'s ``cols`` of
    every tile row (``out``: where to write it)."""
    n, h, w, c = shape
    th, tw = cols.shape[2], cols.shape[4]
    planes = np.empty((n, th, 2, 2, tw, c), cols.dtype)  # (tile row, row parity, column parity)
    _b_adjoint(cols, planes[:, :, 0], planes[:, :, 1], axis=1)
    planes = planes.reshape(n, 2 * th, 2, tw, c)
    gx = np.empty(shape, cols.dtype) if out is None else out
    np.copyto(gx[:, :, 0::2], planes[:, :h, 0, : (w + 1) // 2])
    np.copyto(gx[:, :, 1::2], planes[:, :h, 1, : w // 2])
    return gx


def input_transform_adjoint(
    dv: np.ndarray, shape: tuple[int, ...], out: np.ndarray | None = None
) -> np.ndarray:
    """The input gradient from V's: each tile's B dV B^T added onto the pixels it was read from
    (entries read from the zero border dropped), as an NHWC array of ``shape`` (``out``: where to
    write it)."""
    n, h, w, c = shape
    th, tw = _tiles(h, w)
    cols = np.empty((4, n, th, 2, tw, c), dv.dtype)
    columns_adjoint(dv.reshape(4, 4, n, th, tw, c), cols)
    return rows_adjoint(cols, shape, out)


def _images_per_block(n: int, tiles: int, channels: int) -> int:
    """Images per block, so that a block's transforms and products (about 16 (C_in + C_out) floats
    per tile) stay in a core's cache between passes; larger steps where the images are split over
    nnet's threads (:data:`SPLIT_BLOCK_FLOATS`)."""
    per_image = max(1, 16 * channels * tiles)
    step = max(1, min(n, BLOCK_FLOATS // per_image))
    parts = blocks(n, step)
    if parts > 1:
        images = -(-n // parts)  # a thread's share, cut into equal steps
        most = max(1, SPLIT_BLOCK_FLOATS // per_image)
        step = max(step, -(-images // -(-images // most)))
    return step


def _tile_rows_per_chunk(tw: int, channels: int, even: bool) -> int:
    """Tile rows per chunk of a step's products and output transforms: at most
    :data:`TILE_FLOATS` floats of V's and products (at least one tile row); chunks may span images.
    Odd image sizes take a step whole (their last tile row and column are cut)."""
    if not even:
        return 2**62
    return max(1, TILE_FLOATS // (16 * channels * tw))


def _chunks(
    a: np.ndarray, rows: int, chunk: int, quads: bool
) -> list[tuple[int, int, np.ndarray, tuple[int, ...] | None]]:
    """``(r0, r1, part, shape)`` for each chunk of ``chunk`` tile rows of a step's NHWC output (or
    output gradient) ``a`` of ``rows`` tile rows (with ``quads``, its four planes): ``part`` a view
    of those rows and ``shape`` the NHWC shape they form as one image; ``[(0, rows, a, None)]``
    when one chunk takes them all."""
    if chunk >= rows:
        return [(0, rows, a, None)]
    if quads:  # (2, 2, n, th, tw, C) as (2, 2, n th, tw, C)
        tiles = np.reshape(a, (2, 2, rows, *a.shape[4:]), copy=False)
    else:  # (n, H, W, C) as (n th, 2, W, C)
        tiles = np.reshape(a, (rows, 2, *a.shape[2:]), copy=False)
    out: list[tuple[int, int, np.ndarray, tuple[int, ...] | None]] = []
    for r0 in range(0, rows, chunk):
        r1 = min(rows, r0 + chunk)
        part = tiles[:, :, r0:r1] if quads else tiles[r0:r1]
        shape = (1, 2 * (r1 - r0), 2 * a.shape[4] if quads else a.shape[2], a.shape[-1])
        out.append((r0, r1, part if quads else np.reshape(part, shape, copy=False), shape))
    return out


class Forward:
    """:func:`conv`'s work, a range of images at a time (:meth:`images`), so that a caller can run
    more of its own per-image work in the same blocks of nnet's threads (convbn.py).

    ``transforms`` (when ``keep``) and ``y`` are filled for the images each call covers; ``step``
    is the images per block whose transforms and products stay in a core's cache."""

    def __init__(
        self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, keep: bool, quads: bool
    ) -> None:
        n, h, wd, cin = x.shape
        cout = w.shape[3]
        self.tiles = _tiles(h, wd)
        th, tw = self.tiles
        self.x, self.bias, self.quads = x, bias, quads
        self.u = kernel_transform(w)
        self.dtype = np.result_type(x, w)
        self.y = np.empty((2, 2, n, th, tw, cout) if quads else (n, h, wd, cout), self.dtype)
        self.step = _images_per_block(n, th * tw, cin + cout)
        self.chunk = _tile_rows_per_chunk(tw, cin + cout, h % 2 == 0 and wd % 2 == 0)
        self.v = np.empty((4, 4, n, th, tw, cin), self.dtype) if keep else None

    def images(self, start: int, stop: int, then: Callable[[int, int], Any] | None = None) -> None:
        """Transforms, products and output of images ``start:stop``, :attr:`step` images at a
        time: each step's input transform whole, its products and output transform in chunks of
        :attr:`chunk` tile rows, which stay in a core's cache between the two; ``then(a, b)``
        after each step, while images ``a:b``'s output is still in cache."""
        x, v, step, (th, tw) = self.x, self.v, self.step, self.tiles
        h, wd, cin = x.shape[1:]
        cout = self.u.shape[2]
        # scratch per call: the transforms when they are not kept, and the products
        scratch = None if v is not None else np.empty((4, 4, step, th, tw, cin), self.dtype)
        m = np.empty((16, min(step * th, self.chunk) * tw, cout), self.dtype)  # one chunk's
        for a in range(start, stop, step):
            b = min(stop, a + step)
            vb = v[:, :, a:b] if v is not None else scratch[:, :, : b - a]  # type: ignore[index]
            vs = input_transform(x[a:b], out=vb)
            ys = self.y[:, :, a:b] if self.quads else self.y[a:b]
            for r0, r1, part, shape in _chunks(ys, (b - a) * th, self.chunk, self.quads):
                ma = np.matmul(vs[:, r0 * tw : r1 * tw], self.u, out=m[:, : (r1 - r0) * tw])
                if self.bias is not None:
                    # A^T e_1 = (1, 1): the bias added to plane (1, 1) reaches a tile's four outputs
                    per_channel(np.add, ma[5], self.bias, out=ma[5])
                shape = shape or (b - a, h, wd, cout)
                output_transform(ma, shape, out=part, quads=self.quads)
            if then is not None:
                then(a, b)

    def transforms(self) -> np.ndarray | None:
        """V, (16, N th tw, C_in), for the kernel gradient (None unless kept)."""
        if self.v is None:
            return None
        return self.v.reshape(16, -1, self.v.shape[-1])


def conv(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, keep: bool = True, quads: bool = False
) -> tuple[np.ndarray | None, np.ndarray]:
    """(V, y): the input transforms (when ``keep``, for the kernel gradient) and the convolution of
    NHWC ``x`` with the (3, 3, C_in, C_out) kernel ``w``, plus ``bias``, a block of images at a time;
    with ``quads`` (even H and W), y as each tile's four output planes (2, 2, N, H/2, W/2, C_out)."""
    f = Forward(x, w, bias, keep, quads)
    parallel_for(f.images, x.shape[0], min_block=f.step)
    return f.transforms(), f.y


class Adjoint:
    """:func:`conv_vjp`'s work, a range of images at a time (:meth:`images`, which returns that
    range's share of dU): dM = A G A^T, then dU = V^T dM and dV = dM U^T, each product's adjoint
    transform a block of images at a time; the output gradient as the four planes with ``quads``.
    ``gx`` is filled for the images each call covers; :meth:`finish` adds the shares of dU."""

    def __init__(
        self,
        v: np.ndarray,
        w: np.ndarray,
        x_shape: tuple[int, ...],
        need_x: bool,
        need_w: bool,
        quads: bool = False,
    ) -> None:
        n, h, wd = x_shape[:3]
        self.cin, self.cout = w.shape[2:]
        th, tw = _tiles(h, wd)
        self.x_shape, self.quads = x_shape, quads
        self.need_x, self.need_w = need_x, need_w
        # contiguous: OpenBLAS's SkylakeX kernels multiplied dM by the transposed view of U 1.4-1.8x
        # slower (16 products of 128 x 64 by 64 x 32, one thread: 116 against 63 us)
        self.ut = np.ascontiguousarray(kernel_transform(w).swapaxes(1, 2))
        self.dtype = np.result_type(v, w)
        self.gx = np.empty(x_shape, self.dtype) if need_x else None
        self.v4 = v.reshape(16, n, th * tw, self.cin)
        self.step = _images_per_block(n, th * tw, self.cin + self.cout)
        self.chunk = _tile_rows_per_chunk(tw, self.cin + self.cout, h % 2 == 0 and wd % 2 == 0)

    def images(
        self,
        g: np.ndarray,
        start: int,
        stop: int,
        first: Callable[[int, int], Any] | None = None,
    ) -> np.ndarray:
        """The input gradient of images ``start:stop`` and their share of dU, for the output
        gradient ``g`` (of all images), :attr:`step` images at a time (the products and the output
        transform's adjoint in chunks of :attr:`chunk` tile rows, as the forward); ``first(a, b)``
        before each step writes images ``a:b`` of ``g``, which the step then reads while they are
        in cache."""
        cin, cout = self.cin, self.cout
        th, tw = _tiles(*self.x_shape[1:3])
        du = np.zeros((16, cin, cout), self.dtype)
        part = np.empty_like(du)
        for a in range(start, stop, self.step):
            b = min(stop, a + self.step)
            if first is not None:
                first(a, b)
            vs = self.v4[:, a:b].reshape(16, -1, cin)
            dv = None if self.gx is None else np.empty(vs.shape, self.dtype)
            gs = g[:, :, a:b] if self.quads else g[a:b]
            for r0, r1, gc, _ in _chunks(gs, (b - a) * th, self.chunk, self.quads):
                dm = output_transform_adjoint(gc, self.quads)
                if self.need_w:
                    np.matmul(vs[:, r0 * tw : r1 * tw].swapaxes(1, 2), dm, out=part)
                    du += part
                if dv is not None:
                    np.matmul(dm, self.ut, out=dv[:, r0 * tw : r1 * tw])
            if dv is not None:
                input_transform_adjoint(dv, (b - a, *self.x_shape[1:]), out=self.gx[a:b])  # type: ignore[index]
        return du

    def finish(self, parts: list[np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(input gradient, kernel gradient) from every range's share of dU, in range order."""
        du = parts[0]
        for p in parts[1:]:
            du += p
        return self.gx, (kernel_transform_adjoint(du) if self.need_w else None)


def conv_vjp(
    g: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    x_shape: tuple[int, ...],
    need_x: bool,
    need_w: bool,
    quads: bool = False,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(input gradient, kernel gradient) of :func:`conv` for the output gradient ``g``, from its saved
    transforms ``v`` (:class:`Adjoint`), a block of images per thread."""
    adj = Adjoint(v, w, x_shape, need_x, need_w, quads)
    return adj.finish(parallel_for(partial(adj.images, g), x_shape[0], min_block=adj.step))
