"""The registry of kernels: the one place that says which kernel runs a layer (or a run of layers)
and when.

Each :class:`Kernel` entry declares the layers it replaces, the composition of primitives it is
equal to (compositions.py, its oracle), when it applies, the fast function and the graph node it
records (the :class:`~nnet.autograd.Function` whose ``vjp_arrays`` is its array VJP and whose
``vjp`` is its recorded VJP, hand-written and tested equal to the composition's), and a generator of
arguments that reach it. tests/kernels/test_registry.py runs every entry against its composition:
values, array VJPs, recorded VJPs and second derivatives; an entry cannot exist without its case.

:func:`run` is what a layer calls: the first entry for its layers that applies, else the
composition. :func:`select` is the same choice for a caller that runs the layers one by one when
no kernel applies (:class:`~nnet.nn.Sequential`'s fusion).

>>> import nnet
>>> from nnet.kernels import registry
>>> registry.select(("linear",), nnet.ones((2, 3)), nnet.ones((3, 4)), None).name
'linear'
>>> [k.name for k in registry.REGISTRY if k.layers == ("conv2d", "batch_norm", "relu", "max_pool2d")]
['conv_bn_relu_pool_narrow', 'conv_bn_relu_pool_winograd']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnet.autograd.activation import Relu
from nnet.autograd.function import Function
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.ops import relu
from nnet.autograd.tensor import Tensor
from nnet.kernels import bnpool, cases, compositions, convpool, convrelu, fewpool
from nnet.kernels.batchnorm import BatchNorm, batch_norm_eval, batch_norm_train
from nnet.kernels.bnpool import MIN_PIXEL_BYTES, BatchNormReluPool, batch_norm_relu_pool
from nnet.kernels.conv import (
    WINOGRAD_MIN_CHANNELS,
    WINOGRAD_MIN_PIXELS,
    WINOGRAD_MIN_PRODUCT,
    Conv2d,
    conv2d,
    takes_winograd,
)
from nnet.kernels.convbn import ConvBatchNormReluPool, WinogradBatchNormReluPool
from nnet.kernels.convpoolbn import ConvReluPoolBatchNorm
from nnet.kernels.convrelu import ConvReluBatchNormPool, ConvReluPool
from nnet.kernels.crossentropy import SoftmaxCrossEntropy, softmax_cross_entropy
from nnet.kernels.fewpool import FewChannelConvReluPool
from nnet.kernels.im2col import Geometry
from nnet.kernels.linear import Linear, linear
from nnet.kernels.mode import fused_enabled
from nnet.kernels.pool import MaxPool2d, max_pool2d

Layers = tuple[str, ...]


@dataclass(frozen=True)
class Kernel:
    """One kernel: what it replaces, when, and how it runs (see the module docstring)."""

    #: Unique name (the docs table and the tests use it).
    name: str
    #: The layers (functional names, in order) it computes at once.
    layers: Layers
    #: The graph node it records, which exporters and checkers map; None for a kernel that runs
    #: only when nothing is recorded (its result is a constant).
    node: type[Function] | None
    #: The fast function: the same arguments and value as ``composition``.
    run: Callable[..., Tensor]
    #: The composition of primitives it replaces (compositions.py): the oracle.
    composition: Callable[..., Tensor]
    #: Whether it computes these arguments (shapes, dtypes, modes); the caller has checked them.
    applies: Callable[..., bool]
    #: ``applies`` in words, for the table in docs/kernels.md.
    when: str
    #: ``case(draw, rng)``: arguments that reach the kernel, ``draw(lo, hi)`` an integer in
    #: [lo, hi] (hypothesis in the tests), tensors that take a gradient with requires_grad set.
    case: Callable[..., tuple[Any, ...]]


def _always(*args: Any) -> bool:
    return True


def _not_recording(*args: Any) -> bool:
    return not (grad_enabled.get() and any(isinstance(t, Tensor) and t.requires_grad for t in args))


def _linear_applies(x: Tensor, weight: Tensor, bias: Tensor | None) -> bool:
    return x.ndim >= 1 and weight.ndim == 2 and x.shape[-1] == weight.shape[0]


def _pool_applies(x: Tensor, kernel: Any, stride: Any, pads: Any, dilation: Any) -> bool:
    return kernel == stride and dilation == (1, 1) and pads == ((0, 0), (0, 0))


def _tiles(x: Tensor, kernel: tuple[int, int]) -> bool:
    """The windows tile an NHWC batch exactly, with more than one value per channel."""
    s = x.shape
    return (
        len(s) == 4
        and min(kernel) >= 1
        and s[1] % kernel[0] == 0
        and s[2] % kernel[1] == 0
        and s[0] * s[1] * s[2] > 1
        and s[3] > 0
    )


def _bn_pool_applies(
    x: Tensor, weight: Any, bias: Any, eps: float, stats: Any, kernel: Any
) -> bool:
    return _tiles(x, kernel) and x.shape[3] * x.dtype.itemsize >= bnpool.MIN_PIXEL_BYTES


def _block_tiles(x: Tensor, geo: Geometry, kernel: tuple[int, int]) -> bool:
    """The pool's windows tile the convolution's output, with more than one value per channel."""
    (oh, ow), (ph, pw) = geo[4], kernel
    return (
        min(ph, pw) >= 1
        and oh >= ph
        and ow >= pw
        and oh % ph == 0
        and ow % pw == 0
        and x.shape[0] * oh * ow > 1
    )


def _narrow_block_applies(x: Tensor, weight: Tensor, conv_bias: Any, gamma: Any, beta: Any,
                          eps: float, stats: Any, geo: Geometry, kernel: Any) -> bool:  # fmt: skip
    # the patch covariance costs M K^2: worth it while K = KH KW C_in is at most C_out (64 x 14 x
    # 14, 8 -> 16, forward + backward 2.6 ms as layers, 4.4 fused); it gives no input gradient
    kh, kw, cin, cout = weight.shape
    return (
        _block_tiles(x, geo, kernel)
        and not (x.requires_grad and grad_enabled.get())
        and kh * kw * cin <= cout
    )


def _winograd_block_applies(x: Tensor, weight: Tensor, conv_bias: Any, gamma: Any, beta: Any,
                            eps: float, stats: Any, geo: Geometry, kernel: Any) -> bool:  # fmt: skip
    return (
        _block_tiles(x, geo, kernel)
        and kernel == (2, 2)
        and weight.shape[3] * x.dtype.itemsize >= bnpool.MIN_PIXEL_BYTES
        and takes_winograd(x.shape, weight.shape, geo)
    )


def _relu_block_applies(x: Tensor, weight: Tensor, conv_bias: Any, gamma: Any, beta: Any,
                        eps: float, stats: Any, geo: Geometry, kernel: Any) -> bool:  # fmt: skip
    return _block_tiles(x, geo, kernel) and (
        convrelu.winograd_path(x.shape, weight.shape, geo, kernel)
        or not (x.requires_grad and grad_enabled.get())
    )


def _relu_pool_block_applies(x: Tensor, weight: Tensor, bias: Any, geo: Geometry,
                             kernel: Any) -> bool:  # fmt: skip
    return _block_tiles(x, geo, kernel) and (
        convrelu.winograd_path(x.shape, weight.shape, geo, kernel)
        or not (x.requires_grad and grad_enabled.get())
    )


def _relu_pool_bn_block_applies(x: Tensor, weight: Tensor, conv_bias: Any, gamma: Any,
                                beta: Any, eps: float, stats: Any, geo: Geometry,
                                kernel: Any) -> bool:  # fmt: skip
    # more than one pooled value per channel for the batch norm
    (oh, ow), (ph, pw) = geo[4], kernel
    return (
        _relu_pool_block_applies(x, weight, conv_bias, geo, kernel)
        and x.shape[0] * (oh // ph) * (ow // pw) > 1
    )


def _few_relu_pool_applies(x: Tensor, weight: Tensor, bias: Any, geo: Geometry,
                           kernel: Any) -> bool:  # fmt: skip
    return _block_tiles(x, geo, kernel) and fewpool.applies(weight.shape, geo)


def _conv_relu_pool_applies(x: Tensor, weight: Tensor, bias: Tensor | None, geo: Geometry,
                            kernel: Any) -> bool:  # fmt: skip
    return _not_recording(x, weight, bias) and convpool.fits(geo, x.shape, kernel)


def _conv_relu_pool(x: Tensor, weight: Tensor, bias: Tensor | None, geo: Geometry,
                    kernel: Any) -> Tensor:  # fmt: skip
    b = None if bias is None else bias.data
    return Tensor(convpool.conv_relu_pool(x.data, weight.data, b, geo, kernel))


def _relu_after_pool(x: Tensor, pool: Callable[[Tensor], Tensor]) -> Tensor:
    return relu(pool(x))


def _block(primitive: type[Function]) -> Callable[..., Tensor]:
    def run(*args: Any) -> Tensor:
        return primitive.apply(*args)

    return run


REGISTRY: tuple[Kernel, ...] = (
    Kernel(
        "linear", ("linear",), Linear, linear, compositions.linear, _linear_applies,
        "always", cases.linear,
    ),
    Kernel(
        "conv2d", ("conv2d",), Conv2d, conv2d, compositions.conv2d, _always,
        "always: im2col and one product by blocks of images, or Winograd's F(2x2, 3x3) for a "
        f"3x3 stride-1 'same' convolution with C_in >= {WINOGRAD_MIN_CHANNELS}, C_in C_out >= "
        f"{WINOGRAD_MIN_PRODUCT} and N H W >= {WINOGRAD_MIN_PIXELS}",
        cases.conv2d,
    ),
    Kernel(
        "max_pool2d", ("max_pool2d",), MaxPool2d,
        lambda x, k, s, p, d: max_pool2d(x, k), compositions.max_pool2d, _pool_applies,
        "stride = kernel, no padding, no dilation", cases.max_pool2d,
    ),
    Kernel(
        "relu_max_pool2d", ("relu", "max_pool2d"), Relu, _relu_after_pool,
        compositions.relu_max_pool2d, _always,
        "always: the ReLU after the pool, on fewer values (max and ReLU commute, gradients and "
        "ties included)", cases.relu_max_pool2d,
    ),
    Kernel(
        "batch_norm", ("batch_norm",), BatchNorm, batch_norm_train,
        compositions.batch_norm_train, _always, "training (batch statistics)", cases.batch_norm,
    ),
    Kernel(
        "batch_norm_eval", ("batch_norm_eval",), None, batch_norm_eval,
        compositions.batch_norm_eval, _not_recording,
        "evaluation (running statistics); nothing recorded", cases.batch_norm_eval,
    ),
    Kernel(
        "bn_relu_pool", ("batch_norm", "relu", "max_pool2d"), BatchNormReluPool,
        batch_norm_relu_pool, compositions.batch_norm_relu_max_pool2d, _bn_pool_applies,
        f"training; pool windows tile the image; pixels of {MIN_PIXEL_BYTES} bytes or more",
        cases.bn_relu_pool,
    ),
    Kernel(
        "conv_bn_relu_pool_narrow", ("conv2d", "batch_norm", "relu", "max_pool2d"),
        ConvBatchNormReluPool, _block(ConvBatchNormReluPool),
        compositions.conv_batch_norm_relu_max_pool2d, _narrow_block_applies,
        "training; the input takes no gradient; KH KW C_in <= C_out; pool windows tile the output",
        cases.narrow_block,
    ),
    Kernel(
        "conv_bn_relu_pool_winograd", ("conv2d", "batch_norm", "relu", "max_pool2d"),
        WinogradBatchNormReluPool, _block(WinogradBatchNormReluPool),
        compositions.conv_batch_norm_relu_max_pool2d, _winograd_block_applies,
        "training; the convolution takes Winograd's F(2x2, 3x3); 2x2 pool; output pixels of "
        f"{MIN_PIXEL_BYTES} bytes or more", cases.winograd_block,
    ),
    Kernel(
        "conv_relu_bn_pool", ("conv2d", "relu", "batch_norm", "max_pool2d"),
        ConvReluBatchNormPool, _block(ConvReluBatchNormPool),
        compositions.conv_relu_batch_norm_max_pool2d, _relu_block_applies,
        "training; pool windows tile the output; the convolution takes Winograd's F(2x2, 3x3) "
        "with a 2x2 pool, or the input takes no gradient", cases.relu_block,
    ),
    Kernel(
        "conv_relu_pool_inference", ("conv2d", "relu", "max_pool2d"), None, _conv_relu_pool,
        compositions.conv_relu_max_pool2d, _conv_relu_pool_applies,
        "nothing recorded; stride 1, dilation 1; pool stride = kernel", cases.conv_relu_pool,
    ),
    Kernel(
        "conv_relu_pool", ("conv2d", "relu", "max_pool2d"), ConvReluPool, _block(ConvReluPool),
        compositions.conv_relu_max_pool2d, _relu_pool_block_applies,
        "pool windows tile the output; the convolution takes Winograd's F(2x2, 3x3) with a 2x2 "
        "pool, or the input takes no gradient", cases.relu_pool_block,
    ),
    Kernel(
        "conv_relu_pool_bn", ("conv2d", "relu", "max_pool2d", "batch_norm"),
        ConvReluPoolBatchNorm, _block(ConvReluPoolBatchNorm),
        compositions.conv_relu_max_pool2d_batch_norm, _relu_pool_bn_block_applies,
        "training; as conv_relu_pool, with more than one pooled value per channel",
        cases.relu_pool_bn_block,
    ),
    Kernel(
        "conv_relu_pool_few", ("conv2d", "relu", "max_pool2d"), FewChannelConvReluPool,
        _block(FewChannelConvReluPool), compositions.conv_relu_max_pool2d, _few_relu_pool_applies,
        "pool windows tile the output; fewer than 16 input channels (the input may take a "
        "gradient), stride 1, dilation 1, padding shorter than the kernel",
        cases.few_relu_pool_block,
    ),
    Kernel(
        "softmax_cross_entropy", ("cross_entropy",), SoftmaxCrossEntropy, softmax_cross_entropy,
        compositions.softmax_cross_entropy, _always,
        "class-index targets, reduction 'mean' or 'sum'", cases.softmax_cross_entropy,
    ),
)  # fmt: skip

_BY_LAYERS: dict[Layers, list[Kernel]] = {}
for _k in REGISTRY:
    _BY_LAYERS.setdefault(_k.layers, []).append(_k)


def select(layers: Layers, *args: Any) -> Kernel | None:
    """The first entry for ``layers`` that applies to ``args`` while kernels are on, else None."""
    if not fused_enabled.get():
        return None
    for k in _BY_LAYERS.get(layers, ()):
        if k.applies(*args):
            return k
    return None


def run(layers: Layers, *args: Any) -> Tensor:
    """``layers`` applied to ``args``: by the entry :func:`select` picks, else by their composition."""
    k = select(layers, *args)
    if k is not None:
        return k.run(*args)
    return _BY_LAYERS[layers][0].composition(*args)
