"""Fused fast paths: primitives that do in one pass what a composition does in several.

Each is a :class:`~nnet.autograd.Function` with a hand-written VJP, a section under "Fused fast paths"
in docs/derivations.md, and tests against the composition it replaces (its oracle).
:mod:`nnet.nn.functional` takes one when its conditions hold and :func:`use_fused` is on (the default).
"""

from nnet.autograd.fused.batchnorm import BatchNorm, BatchStats, batch_norm_train
from nnet.autograd.fused.bnpool import BatchNormReluPool, batch_norm_relu_pool
from nnet.autograd.fused.channels import per_channel
from nnet.autograd.fused.conv import Conv2d, conv2d
from nnet.autograd.fused.convbn import (
    ConvBatchNormReluPool,
    WinogradBatchNormReluPool,
    block_primitive,
    conv_batch_norm_relu_pool,
)
from nnet.autograd.fused.crossentropy import SoftmaxCrossEntropy, softmax_cross_entropy
from nnet.autograd.fused.im2col import Col2ImPadded, Im2Col
from nnet.autograd.fused.linear import Linear, linear
from nnet.autograd.fused.mode import is_fused_enabled, use_fused
from nnet.autograd.fused.pool import MaxPool2d, MaxPool2dBackward, max_pool2d

#: The fused primitives (docs/derivations.md has a section per entry, like PRIMITIVES).
FUSED = (
    MaxPool2d,
    MaxPool2dBackward,
    Conv2d,
    ConvBatchNormReluPool,
    Im2Col,
    Col2ImPadded,
    BatchNorm,
    BatchNormReluPool,
    SoftmaxCrossEntropy,
    Linear,
    WinogradBatchNormReluPool,
)

__all__ = [
    "FUSED",
    "BatchNorm",
    "BatchNormReluPool",
    "BatchStats",
    "Col2ImPadded",
    "Conv2d",
    "ConvBatchNormReluPool",
    "Im2Col",
    "Linear",
    "MaxPool2d",
    "MaxPool2dBackward",
    "SoftmaxCrossEntropy",
    "WinogradBatchNormReluPool",
    "batch_norm_relu_pool",
    "batch_norm_train",
    "block_primitive",
    "conv2d",
    "conv_batch_norm_relu_pool",
    "is_fused_enabled",
    "linear",
    "max_pool2d",
    "per_channel",
    "softmax_cross_entropy",
    "use_fused",
]
