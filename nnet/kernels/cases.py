"""Arguments that reach each kernel of the registry, for the registry's tests.

``case(draw, rng)`` returns one call's arguments: ``draw(lo, hi)`` picks an integer in [lo, hi]
(hypothesis drives it in tests/kernels/test_registry.py, so failures shrink), ``rng`` fills the
arrays. Tensors are float64 (the comparisons are then exact to rounding); those that take a
gradient have ``requires_grad`` set. Every shape drawn here satisfies its entry's ``applies``.

>>> import numpy as np
>>> x, w, b = linear(lambda lo, hi: lo, np.random.default_rng(0))
>>> x.shape, w.shape, b
((1,), (1, 1), None)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnet.autograd.tensor import Tensor
from nnet.kernels.batchnorm import BatchStats
from nnet.kernels.convrelu import CHANNELS_FIRST_BELOW
from nnet.kernels.im2col import geometry

Draw = Callable[[int, int], int]


def _t(rng: np.random.Generator, shape: tuple[int, ...], grad: bool = True) -> Tensor:
    return Tensor(rng.standard_normal(shape), requires_grad=grad)


def _maybe(draw: Draw, rng: np.random.Generator, shape: tuple[int, ...]) -> Tensor | None:
    return _t(rng, shape) if draw(0, 1) else None


def linear(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    lead = [(), (1,), (5,), (2, 3)][draw(0, 3)]
    n_in, n_out = draw(1, 6), draw(1, 6)
    return _t(rng, (*lead, n_in)), _t(rng, (n_in, n_out)), _maybe(draw, rng, (n_out,))


def conv2d(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """Few channels (column-major patches), many (row-major blocks), or Winograd's sizes."""
    path = draw(0, 2)
    if path == 2:  # the smallest sizes that take Winograd's F(2x2, 3x3)
        n, h, w, cin, cout = 6, 16, draw(16, 17), 16, 64
        geo = geometry((n, h, w, cin), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
        x = _t(rng, (n, h, w, cin))
        return x, _t(rng, (3, 3, cin, cout)), _maybe(draw, rng, (cout,)), geo
    cin = draw(1, 3) if path == 0 else draw(16, 17)
    kernel, stride, dilation = (draw(1, 3), draw(1, 3)), (draw(1, 2), draw(1, 2)), (draw(1, 2), 1)
    pads = ((draw(0, 1), draw(0, 1)), (draw(0, 1), 0))
    h, w = draw(3, 6), draw(3, 6)
    cout = draw(1, 4)
    x = _t(rng, (draw(1, 2), h, w, cin))
    geo = geometry(x.shape, kernel, stride, dilation, pads)
    if min(geo[4]) < 1:  # the kernel does not fit: shrink it to 1x1
        geo = geometry(x.shape, (1, 1), stride, (1, 1), pads)
        kernel = (1, 1)
    return x, _t(rng, (*kernel, cin, cout)), _maybe(draw, rng, (cout,)), geo


def pool_windows(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """An NHWC input (pixels up to 8 float64 take the offset-major layout, wider the strided one;
    a remainder the windows do not cover) and the windows."""
    kernel = (draw(1, 3), draw(1, 3))
    n, oh, ow = draw(1, 3), draw(1, 3), draw(1, 3)
    c = [1, 3, 8, 9][draw(0, 3)]
    shape = (n, oh * kernel[0] + draw(0, 1), ow * kernel[1] + draw(0, 1), c)
    return _t(rng, shape), kernel


def max_pool2d(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    x, kernel = pool_windows(draw, rng)
    return x, kernel, kernel, ((0, 0), (0, 0)), (1, 1)


def relu_max_pool2d(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """An input with ties and zeros, and a max-pool: windows that tile, overlap or pad."""
    from nnet.kernels.registry import run  # the pool the layers run; the registry imports this

    kernel = (draw(1, 3), draw(1, 3))
    stride = (draw(1, 3), draw(1, 3))
    pads = ((draw(0, kernel[0] // 2),) * 2, (draw(0, kernel[1] // 2),) * 2)
    shape = (draw(1, 2), draw(kernel[0], 6), draw(kernel[1], 6), [1, 3, 9][draw(0, 2)])
    x = Tensor(np.round(rng.standard_normal(shape)), requires_grad=True)  # ties and zeros

    def pool(t: Tensor) -> Tensor:
        return run(("max_pool2d",), t, kernel, stride, pads, (1, 1))

    return x, pool


def batch_norm(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    c = draw(1, 5)
    shape = (draw(2, 5), c) if draw(0, 1) else (draw(1, 3), draw(1, 3), draw(2, 3), c)
    return _t(rng, shape), _maybe(draw, rng, (c,)), _maybe(draw, rng, (c,)), 1e-5, BatchStats()


def batch_norm_eval(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """Nothing takes a gradient; the running variance positive."""
    c = draw(1, 5)
    shape = (draw(1, 5), c) if draw(0, 1) else (draw(1, 3), draw(1, 3), draw(1, 3), c)
    x = _t(rng, shape, grad=False)
    mean, var = Tensor(rng.standard_normal(c)), Tensor(rng.uniform(0.5, 2.0, c))
    w, b = (Tensor(rng.standard_normal(c)) if draw(0, 1) else None for _ in range(2))
    return x, mean, var, w, b, 1e-5


def bn_relu_pool(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    kernel = (draw(1, 2), draw(1, 2))
    c = draw(8, 10)  # 64 bytes of float64 or more
    shape = (draw(1, 3), kernel[0] * draw(1, 3), kernel[1] * draw(2, 3), c)
    w, b = _maybe(draw, rng, (c,)), _maybe(draw, rng, (c,))
    return _t(rng, shape), w, b, 1e-5, BatchStats(), kernel


def _block_args(rng: np.random.Generator, x: Tensor, weight: Tensor, draw: Draw, geo: Any,
                kernel: tuple[int, int]) -> tuple[Any, ...]:  # fmt: skip
    cout = weight.shape[3]
    conv_bias, gamma, beta = (_maybe(draw, rng, (cout,)) for _ in range(3))
    return x, weight, conv_bias, gamma, beta, 1e-5, BatchStats(), geo, kernel


def narrow_block(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """An input that takes no gradient and K = KH KW C_in <= C_out."""
    kh, kw, cin = 2 * draw(0, 1) + 1, 2 * draw(0, 1) + 1, draw(1, 2)
    cout = kh * kw * cin + draw(0, 2)
    kernel = (draw(1, 2), draw(1, 2))
    shape = (draw(1, 3), kernel[0] * draw(1, 3), kernel[1] * draw(2, 3), cin)
    geo = geometry(shape, (kh, kw), (1, 1), (1, 1), ((kh // 2,) * 2, (kw // 2,) * 2))
    x = _t(rng, shape, grad=False)
    return _block_args(rng, x, _t(rng, (kh, kw, cin, cout)), draw, geo, kernel)


def winograd_block(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """The smallest sizes whose convolution takes Winograd's F(2x2, 3x3), even H and W."""
    shape = (6, 16, 16 + 2 * draw(0, 1), 16)
    geo = geometry(shape, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    x = _t(rng, shape, grad=bool(draw(0, 1)))
    return _block_args(rng, x, _t(rng, (3, 3, 16, 64)), draw, geo, (2, 2))


def relu_block(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """Winograd's sizes (the input may take a gradient), or the patch path (it takes none, any
    kernel and windows that tile the output); gamma with negative and zero entries."""
    return _relu_block(draw, rng, few=True)


def relu_pool_bn_block(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """:func:`relu_block`'s arguments (the batch norm after the pool), few output channels (the
    channel-first layout) too."""
    return _relu_block(draw, rng, few=True)


def _relu_block(draw: Draw, rng: np.random.Generator, few: bool) -> tuple[Any, ...]:
    if draw(0, 1):
        args = list(winograd_block(draw, rng))
    else:
        kh, kw, cin = 2 * draw(0, 1) + 1, 2 * draw(0, 1) + 1, draw(1, 3)
        # few output channels take conv-relu-pool's channels-first layout, more its offset planes
        planes = draw(CHANNELS_FIRST_BELOW, CHANNELS_FIRST_BELOW + 1)
        cout = draw(1, 4) if few and draw(0, 1) else planes
        kernel = (draw(1, 2), draw(1, 2))
        shape = (draw(1, 3), kernel[0] * draw(1, 3), kernel[1] * draw(2, 3), cin)
        geo = geometry(shape, (kh, kw), (1, 1), (1, 1), ((kh // 2,) * 2, (kw // 2,) * 2))
        x = _t(rng, shape, grad=False)
        args = list(_block_args(rng, x, _t(rng, (kh, kw, cin, cout)), draw, geo, kernel))
    gamma = args[3]
    if gamma is not None and draw(0, 1):
        gamma.data[:: draw(2, 3)] = 0.0  # every y of a window ties: the pool's first offset
    conv_bias = args[2]
    if conv_bias is not None and draw(0, 1):
        # every r far from 0: E[r^2] - mean^2 cancels, the variance is taken from centred values.
        # The bias is 64-70 times its channel's weight norm (the std of z for a unit input), so
        # mean / std stays near 64-100 whatever the weights: a fixed 1e3 over small weights made
        # it 1e6, where both sides' gradients of the conv bias (0 exactly) are rounding noise of
        # different sizes (2e-8 against 1e-13 at seed 2698), above the tolerance
        scale = np.sqrt(np.square(args[1].data).sum(axis=(0, 1, 2)))
        conv_bias.data[...] = (64 + np.abs(conv_bias.data)) * scale
    return tuple(args)


def relu_pool_block(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """:func:`relu_block`'s convolutions and windows, with no batch norm."""
    x, weight, conv_bias, *_, geo, kernel = relu_block(draw, rng)
    return x, weight, conv_bias, geo, kernel


def few_relu_pool_block(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """Few input channels, an input that takes a gradient, a stride-1 convolution with padding
    shorter than the kernel ('same' or none) and windows that tile its output."""
    kh, kw, cin, cout = 2 * draw(0, 1) + 1, 2 * draw(0, 1) + 1, draw(1, 3), draw(1, 4)
    kernel = (draw(1, 2), draw(1, 2))
    shape = (draw(1, 3), kernel[0] * draw(1, 3), kernel[1] * draw(2, 3), cin)
    pads = ((kh // 2,) * 2, (kw // 2,) * 2) if draw(0, 1) else ((0, 0), (0, 0))
    geo = geometry(shape, (kh, kw), (1, 1), (1, 1), pads)
    # 'same' padding when the windows would not tile the output, or one value per channel would
    # be all there is (the registry's _block_tiles declines that)
    one_value = shape[0] * geo[4][0] * geo[4][1] < 2
    if geo[4][0] % kernel[0] or geo[4][1] % kernel[1] or min(geo[4]) < 1 or one_value:
        geo = geometry(shape, (kh, kw), (1, 1), (1, 1), ((kh // 2,) * 2, (kw // 2,) * 2))
    x = _t(rng, shape, grad=True)
    return x, _t(rng, (kh, kw, cin, cout)), _maybe(draw, rng, (cout,)), geo, kernel


def conv_relu_pool(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """Nothing takes a gradient; fewer than 4 input channels take the channel-first layout."""
    kh, kw, cin, cout = draw(1, 3), draw(1, 3), draw(1, 5), draw(1, 4)
    kernel = (draw(1, 2), draw(1, 2))
    shape = (draw(1, 3), draw(2, 7), draw(2, 7), cin)
    pads = ((draw(0, 1), draw(0, 1)), (draw(0, 1), draw(0, 1)))
    geo = geometry(shape, (kh, kw), (1, 1), (1, 1), pads)
    if geo[4][0] < kernel[0] or geo[4][1] < kernel[1]:  # no whole window: a 1x1 convolution
        kh = kw = 1
        geo = geometry(shape, (1, 1), (1, 1), (1, 1), ((1, 1), (1, 1)))
    x = _t(rng, shape, grad=False)
    bias = _t(rng, (cout,), grad=False) if draw(0, 1) else None
    return x, _t(rng, (kh, kw, cin, cout), grad=False), bias, geo, kernel


def softmax_cross_entropy(draw: Draw, rng: np.random.Generator) -> tuple[Any, ...]:
    """Logits against one-hot rows, scaled per row (class weights) or smoothed."""
    n, c = draw(1, 5), draw(1, 6)
    q = np.eye(c)[rng.integers(0, c, n)] * rng.uniform(0.5, 2.0, (n, 1))
    if draw(0, 1):
        q = 0.9 * q + 0.1 / c
    return _t(rng, (n, c)), q, float(draw(1, 2 * n))
