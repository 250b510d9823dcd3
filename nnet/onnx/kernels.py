"""Converters for the fused kernels that an eval-mode forward records: one ONNX operator each
where ONNX has it (Conv, Gemm, MaxPool), with nnet's layouts mapped onto ONNX's.

A fused kernel without a converter here (the training-mode blocks) makes :func:`nnet.onnx.export`
trace again with ``use_fused(False)``, which records the composition of primitives instead.
"""

from __future__ import annotations

from typing import Any

from nnet import kernels
from nnet.onnx.builder import Builder
from nnet.onnx.registry import register
from nnet.onnx.trace import Node, Value

#: A (KH, KW, C_in, C_out) kernel as ONNX's (C_out, C_in, KH, KW).
_OIHW = (3, 2, 0, 1)


@register(kernels.Conv2d)
def conv2d(b: Builder, node: Node) -> str:
    """NHWC in and out around ONNX's NCHW Conv; the kernel is transposed once, at export, when it
    is a constant (a parameter), else by a Transpose node."""
    x, weight, bias, geo = node.args
    return _conv(b, node, x, weight, bias, geo)


@register(kernels.FewChannelConvReluPool)
def conv_relu_max_pool2d(b: Builder, node: Node) -> str:
    """Conv, MaxPool, then Relu (it commutes with the maximum), as the layers export."""
    x, weight, bias, geo, kernel = node.args
    y = _conv(b, node, x, weight, bias, geo)
    pooled = b.nchw("MaxPool", [y], kernel_shape=list(kernel), strides=list(kernel))
    return b.add("Relu", [pooled])


def _conv(b: Builder, node: Node, x: Any, weight: Any, bias: Any, geo: Any) -> str:
    """The NCHW Conv of NHWC ``x`` (see :func:`conv2d`), ``node``'s output dtype for the bias."""
    kernel, stride, dilation, (top, left), (oh, ow) = geo
    h, w = x.shape[1:3]
    # the padding after the image that the last window reaches (more would be unused)
    bottom = max(0, (oh - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1 - h - top)
    right = max(0, (ow - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1 - w - left)
    if isinstance(weight, Value):
        k = b.transpose(weight.name, _OIHW)
    else:
        k = b.const(weight.transpose(_OIHW), hint=b.name_of(weight, "conv.weight") + "_oihw")
    inputs = [b.arg(x), k] + ([] if bias is None else [b.arg(bias, node.out.dtype)])
    return b.nchw("Conv", inputs, kernel_shape=list(kernel), strides=list(stride),
                  dilations=list(dilation), pads=[top, left, bottom, right])  # fmt: skip


@register(kernels.Linear)
def linear(b: Builder, node: Node) -> str:
    """``x W + b`` with W (in, out): Gemm for a matrix input, MatMul and Add otherwise."""
    x, weight, bias = node.args
    dtype = node.out.dtype
    inputs = [b.arg(x), b.arg(weight, dtype)]
    if len(node.out.shape) == 2:
        return b.add("Gemm", inputs + ([] if bias is None else [b.arg(bias, dtype)]))
    y = b.add("MatMul", inputs)
    return y if bias is None else b.add("Add", [y, b.arg(bias, dtype)])


@register(kernels.MaxPool2d)
def max_pool2d(b: Builder, node: Node) -> str:
    x, kernel = node.args
    return b.nchw("MaxPool", [b.arg(x)], kernel_shape=list(kernel), strides=list(kernel))


@register(kernels.BatchNorm)
def batch_norm(b: Builder, node: Node) -> str:
    """Normalisation by the batch's own statistics (a layer without running statistics), over
    every axis but the last (the channels)."""
    x, weight, bias, eps, _ = node.args
    dtype = node.out.dtype
    axes = list(range(len(node.out.shape) - 1))
    v = b.arg(x)
    centred = b.add("Sub", [v, b.reduce("ReduceMean", v, axes, True)])
    var = b.reduce("ReduceMean", b.add("Mul", [centred, centred]), axes, True)
    y = b.add("Div", [centred, b.add("Sqrt", [b.add("Add", [var, b.const(eps, dtype)])])])
    if weight is not None:
        y = b.add("Mul", [y, b.arg(weight, dtype)])
    return y if bias is None else b.add("Add", [y, b.arg(bias, dtype)])
