"""Layers fused across module boundaries, for :class:`~nnet.nn.Sequential`.

A few runs of layers compute in one op what they compute one after another, with the same values
and gradients:

* ``Conv2d, BatchNorm2d, ReLU, MaxPool2d`` in training mode: one fused primitive, batch norm
  folded into the convolution's product for a narrow kernel over an input that takes no gradient,
  or after a Winograd convolution whose output tiles are the pool's windows (fused/convbn.py);
* ``BatchNorm2d, ReLU, MaxPool2d`` in training mode: one fused primitive for pixels of 64 bytes or
  more (16 float32 channels), the ReLU after the pool; else the three ops, the ReLU after the pool;
* ``Conv2d, ReLU, MaxPool2d`` when nothing is recorded: one pass over blocks of images, the bias
  and the ReLU after the pool, nothing saved;
* ``ReLU, MaxPool2d`` elsewhere: the pool first, so the ReLU touches a quarter of the values. Max
  and ReLU commute, and so do their gradients, ties and NaN included: a window routes its gradient
  to the same first maximum either way, and relu' is 0 there exactly when the maximum is not
  positive.

Only the layers' exact classes match, so a subclass with its own ``forward`` always runs as
written; ``use_fused(False)`` turns this off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnet.autograd import fused
from nnet.autograd.fused import convpool
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.ops import relu
from nnet.autograd.tensor import Tensor
from nnet.autograd.window import pair
from nnet.nn import functional as F
from nnet.nn.activation import ReLU
from nnet.nn.conv import Conv2d
from nnet.nn.module import Module
from nnet.nn.normalization import BatchNorm2d
from nnet.nn.pooling import MaxPool2d


def _plain_pool(m: Module) -> tuple[int, int] | None:
    """A MaxPool2d's kernel when its windows neither overlap nor pad nor dilate, else None."""
    if type(m) is not MaxPool2d:
        return None
    try:
        kernel = pair(m.kernel_size, "", "")
        plain = (
            pair(m.stride, "", "") == kernel
            and pair(m.padding, "", "") == (0, 0)
            and pair(m.dilation, "", "") == (1, 1)
            and min(kernel) >= 1
        )
    except TypeError:
        return None  # the layer reports its own error when it runs
    return kernel if plain else None


def _tiles(shape: tuple[int, ...], kernel: tuple[int, int]) -> bool:
    """Whether the windows tile an NHWC batch exactly, with more than one value per channel."""
    return (
        len(shape) == 4
        and shape[1] % kernel[0] == 0
        and shape[2] % kernel[1] == 0
        and shape[0] * shape[1] * shape[2] > 1
        and shape[3] > 0
    )


def _conv_block(block: Sequence[Module], x: Any) -> Tensor | None:
    """Conv2d, BatchNorm2d, ReLU, MaxPool2d as one op (fused/convbn.py), or None where no fused
    primitive applies (``block_primitive`` decides by shape)."""
    conv, bn, act, pool = block
    kernel = _plain_pool(pool)
    if (
        not isinstance(conv, Conv2d)
        or type(bn) is not BatchNorm2d
        or not isinstance(bn, BatchNorm2d)
        or type(act) is not ReLU
        or kernel is None
        or not (bn.training or not bn.track_running_stats)
        or not isinstance(x, Tensor)
        or bn.num_features != conv.out_channels
    ):
        return None
    conv.check_input(x)
    geo = F.conv_geometry(x, conv.weight, conv.stride, conv.padding, conv.dilation)
    if min(geo[4]) < 1 or fused.block_primitive(x, conv.weight, geo, kernel) is None:
        return None
    return bn.forward_relu_max_pool(x, kernel, conv, geo)


def _conv_relu_pool(block: Sequence[Module], x: Any) -> Tensor | None:
    """Conv2d, ReLU, MaxPool2d in one pass when nothing is recorded (fused/convpool.py), or None
    where that does not apply."""
    conv, act, pool = block
    kernel = _plain_pool(pool)
    if not isinstance(conv, Conv2d) or type(act) is not ReLU or kernel is None:
        return None
    if not isinstance(x, Tensor):
        return None
    bias = conv.bias
    if grad_enabled.get() and (
        x.requires_grad or conv.weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        return None
    conv.check_input(x)
    geo = F.conv_geometry(x, conv.weight, conv.stride, conv.padding, conv.dilation)
    if not convpool.fits(geo, x.shape, kernel):
        return None
    b = None if bias is None else bias.data
    return Tensor(convpool.conv_relu_pool(x.data, conv.weight.data, b, geo, kernel))


def run(modules: Sequence[Module], x: Any) -> Any:
    """``modules`` applied one after another to ``x``, fused runs taken where they match."""
    i, n = 0, len(modules)
    while i < n:
        m = modules[i]
        kind = type(m)
        if kind is Conv2d and i + 3 < n:
            y = _conv_block(modules[i : i + 4], x)
            if y is not None:
                x = y
                i += 4
                continue
        if kind is Conv2d and i + 2 < n:
            y = _conv_relu_pool(modules[i : i + 3], x)
            if y is not None:
                x = y
                i += 3
                continue
        if isinstance(m, BatchNorm2d) and i + 2 < n and type(modules[i + 1]) is ReLU:
            kernel = _plain_pool(modules[i + 2])
            if (
                kind is BatchNorm2d
                and kernel is not None
                and (m.training or not m.track_running_stats)
                and isinstance(x, Tensor)
                and _tiles(x.shape, kernel)
            ):
                x = m.forward_relu_max_pool(x, kernel)
                i += 3
                continue
        if kind is ReLU and i + 1 < n and type(modules[i + 1]) is MaxPool2d:
            x = relu(modules[i + 1](x))
            i += 2
            continue
        x = m(x)
        i += 1
    return x
