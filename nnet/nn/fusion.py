"""Runs of layers inside :class:`~nnet.nn.Sequential` handed to the kernel registry as one call.

This file only recognises the runs and reads their arguments off the modules; whether a run fuses,
and into which kernel, is the registry's decision (nnet/kernels/registry.py, table in
docs/kernels.md). The runs it offers, longest first:

* ``Conv2d, BatchNorm2d, ReLU, MaxPool2d`` with batch statistics;
* ``Conv2d, ReLU, MaxPool2d``;
* ``BatchNorm2d, ReLU, MaxPool2d`` with batch statistics;
* ``ReLU, MaxPool2d`` (any windows).

A run is offered only when its layers are these exact classes (a subclass with its own ``forward``
always runs as written) and, in the longer runs, the pool's windows neither overlap nor pad nor
dilate, and none of its layers has hooks; where no kernel applies, the layers run one by one.
``use_fused(False)`` turns this off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnet.autograd.tensor import Tensor
from nnet.autograd.window import pair
from nnet.kernels import registry
from nnet.kernels.batchnorm import BatchStats
from nnet.nn import functional as F
from nnet.nn.activation import ReLU
from nnet.nn.conv import Conv2d
from nnet.nn.module import Module
from nnet.nn.normalization import BatchNorm2d
from nnet.nn.pooling import MaxPool2d

CONV_BN_RELU_POOL = ("conv2d", "batch_norm", "relu", "max_pool2d")
CONV_RELU_POOL = ("conv2d", "relu", "max_pool2d")
BN_RELU_POOL = ("batch_norm", "relu", "max_pool2d")
RELU_POOL = ("relu", "max_pool2d")


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


def _batch_stats(m: Module) -> bool:
    """A BatchNorm2d (exactly) that normalises with the batch's statistics."""
    return type(m) is BatchNorm2d and (m.training or not m.track_running_stats)


def _conv_geometry(conv: Conv2d, x: Tensor) -> Any:
    conv.check_input(x)
    geo = F.conv_geometry(x, conv.weight, conv.stride, conv.padding, conv.dilation)
    return geo if min(geo[4]) >= 1 else None


def _conv_bn_relu_pool(block: Sequence[Any], x: Tensor) -> Tensor | None:
    conv, bn, act, pool = block
    kernel = _plain_pool(pool)
    if not (type(conv) is Conv2d and _batch_stats(bn) and type(act) is ReLU and kernel):
        return None
    if bn.num_features != conv.out_channels:
        return None
    geo = _conv_geometry(conv, x)
    if geo is None:
        return None
    args = (x, conv.weight, conv.bias, bn.weight, bn.bias, bn.eps, BatchStats(), geo, kernel)
    if registry.select(CONV_BN_RELU_POOL, *args) is None:
        return None
    y = F.conv_batch_norm_relu_max_pool2d(
        x, conv.weight, conv.bias, geo, bn.running_mean, bn.running_var, bn.weight, bn.bias,
        bn.batch_momentum(), bn.eps, kernel,
    )  # fmt: skip
    bn.count_batch()
    return y


def _conv_relu_pool(block: Sequence[Any], x: Tensor) -> Tensor | None:
    conv, act, pool = block
    kernel = _plain_pool(pool)
    if not (type(conv) is Conv2d and type(act) is ReLU and kernel):
        return None
    geo = _conv_geometry(conv, x)
    if geo is None:
        return None
    chosen = registry.select(CONV_RELU_POOL, x, conv.weight, conv.bias, geo, kernel)
    return None if chosen is None else chosen.run(x, conv.weight, conv.bias, geo, kernel)


def _bn_relu_pool(block: Sequence[Any], x: Tensor) -> Tensor | None:
    bn, act, pool = block
    kernel = _plain_pool(pool)
    if not (_batch_stats(bn) and type(act) is ReLU and kernel):
        return None
    bn.check_shape(x.shape)
    if registry.select(BN_RELU_POOL, x, bn.weight, bn.bias, bn.eps, BatchStats(), kernel) is None:
        return None
    y = F.batch_norm_relu_max_pool2d(
        x, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.batch_momentum(), bn.eps,
        kernel,
    )  # fmt: skip
    bn.count_batch()
    return y


def _relu_pool(block: Sequence[Any], x: Tensor) -> Tensor | None:
    act, pool = block
    if not (type(act) is ReLU and type(pool) is MaxPool2d):
        return None
    chosen = registry.select(RELU_POOL, x, pool)
    return None if chosen is None else chosen.run(x, pool)


#: (layers matched, how many modules) in the order they are tried at each position.
_RUNS = ((_conv_bn_relu_pool, 4), (_conv_relu_pool, 3), (_bn_relu_pool, 3), (_relu_pool, 2))


def run(modules: Sequence[Module], x: Any) -> Any:
    """``modules`` applied one after another to ``x``, runs of them as one kernel where one applies."""
    i, n = 0, len(modules)
    while i < n:
        if isinstance(x, Tensor):
            for match, size in _RUNS:
                # a hooked layer runs on its own, so that its hooks see it (nnet/nn/hooks.py)
                if i + size <= n and not any(m._hooked for m in modules[i : i + size]):
                    y = match(modules[i : i + size], x)
                    if y is not None:
                        x = y
                        i += size
                        break
            else:
                x = modules[i](x)
                i += 1
            continue
        x = modules[i](x)
        i += 1
    return x
