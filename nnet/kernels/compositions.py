"""The compositions of primitives that the kernels replace, written once.

Each function here takes the same arguments as the kernel of the same name in the registry
(registry.py) and computes the same value from nnet's primitives only, so the engine derives its
gradients. They are the kernels' test oracles (tests/kernels/test_registry.py) and what the layers
run under ``use_fused(False)``.

>>> import nnet
>>> linear(nnet.ones((2, 3)), nnet.ones((3, 4)), None).shape
(2, 4)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnet.autograd.ops import log_softmax, pad, relu, sliding_windows, sqrt
from nnet.autograd.tensor import Tensor
from nnet.kernels.batchnorm import BatchStats
from nnet.kernels.im2col import Geometry


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight + bias``."""
    y = x @ weight
    return y if bias is None else y + bias


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, geo: Geometry) -> Tensor:
    """Pad, take the sliding windows, and multiply them, reshaped to (N OH OW, KH KW C_in), by the
    kernel reshaped to (KH KW C_in, C_out); then add the bias."""
    (kh, kw), stride, dilation, (pt, pl), (oh, ow) = geo
    n, h, w, cin = x.shape
    cout = weight.shape[3]
    # the rows and columns the last window reaches past the input (none if it stops short)
    pb = max(0, (oh - 1) * stride[0] + (kh - 1) * dilation[0] + 1 - pt - h)
    pr = max(0, (ow - 1) * stride[1] + (kw - 1) * dilation[1] + 1 - pl - w)
    padded = x if pt == pb == pl == pr == 0 else pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    cols = sliding_windows(padded, (kh, kw), stride, dilation)
    y = cols.reshape(n * oh * ow, kh * kw * cin) @ weight.reshape(kh * kw * cin, cout)
    if bias is not None:
        y = y + bias
    return y.reshape(n, oh, ow, cout)


def max_pool2d(
    x: Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int] | None = None,
    pads: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
    dilation: tuple[int, int] = (1, 1),
) -> Tensor:
    """The maximum over each sliding window (``stride`` the kernel's by default) of ``x`` padded
    with -inf by ``((top, bottom), (left, right))``."""
    if pads != ((0, 0), (0, 0)):
        x = pad(x, ((0, 0), pads[0], pads[1], (0, 0)), -np.inf)
    return sliding_windows(x, kernel, kernel if stride is None else stride, dilation).amax(
        axis=(3, 4)
    )


def batch_norm_train(
    x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, stats: BatchStats
) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` per channel (the last axis) with the batch
    mean and biased variance, which it reports in ``stats``."""
    c = x.shape[-1]
    x2 = x.reshape(-1, c)  # (N H W, C): row reductions, far faster than over three NHWC axes
    mean = x2.mean(axis=0)
    centred = x2 - mean
    var = (centred * centred).mean(axis=0)
    gain = 1.0 / sqrt(var + eps)  # per channel: weight folds in before touching N H W rows
    if weight is not None:
        gain = gain * weight
    y = centred * gain
    if bias is not None:
        y = y + bias
    stats.mean, stats.var = mean.data, var.data
    return y.reshape(x.shape)


def batch_norm_eval(x: Tensor, running_mean: Tensor, running_var: Tensor, weight: Tensor | None,
                    bias: Tensor | None, eps: float) -> Tensor:  # fmt: skip
    """``x scale + shift`` per channel with the running statistics: ``scale = weight / sqrt(var +
    eps)``, ``shift = bias - mean scale``, each folded per channel before touching x."""
    scale: Any = (1.0 / np.sqrt(running_var.data + eps)).astype(x.dtype, copy=False)
    shift: Any = -running_mean.data.astype(x.dtype, copy=False) * scale
    if weight is not None:
        scale, shift = weight * scale, weight * shift
    if bias is not None:
        shift = shift + bias
    return x * scale + shift


def relu_max_pool2d(x: Tensor, pool: Callable[[Tensor], Tensor]) -> Tensor:
    """``pool(relu(x))`` for a max-pool ``pool`` (any windows)."""
    return pool(relu(x))


def batch_norm_relu_max_pool2d(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    stats: BatchStats,
    kernel: tuple[int, int],
) -> Tensor:
    """``max_pool2d(relu(batch_norm_train(x)), kernel)``."""
    return max_pool2d(relu(batch_norm_train(x, weight, bias, eps, stats)), kernel)


def conv_batch_norm_relu_max_pool2d(
    x: Tensor,
    weight: Tensor,
    conv_bias: Tensor | None,
    gamma: Tensor | None,
    beta: Tensor | None,
    eps: float,
    stats: BatchStats,
    geo: Geometry,
    kernel: tuple[int, int],
) -> Tensor:
    """``max_pool2d(relu(batch_norm_train(conv2d(x))), kernel)``."""
    z = conv2d(x, weight, conv_bias, geo)
    return max_pool2d(relu(batch_norm_train(z, gamma, beta, eps, stats)), kernel)


def conv_relu_batch_norm_max_pool2d(
    x: Tensor,
    weight: Tensor,
    conv_bias: Tensor | None,
    gamma: Tensor | None,
    beta: Tensor | None,
    eps: float,
    stats: BatchStats,
    geo: Geometry,
    kernel: tuple[int, int],
) -> Tensor:
    """``max_pool2d(batch_norm_train(relu(conv2d(x))), kernel)``."""
    r = relu(conv2d(x, weight, conv_bias, geo))
    return max_pool2d(batch_norm_train(r, gamma, beta, eps, stats), kernel)


def conv_relu_max_pool2d(
    x: Tensor, weight: Tensor, bias: Tensor | None, geo: Geometry, kernel: tuple[int, int]
) -> Tensor:
    """``max_pool2d(relu(conv2d(x)), kernel)``."""
    return max_pool2d(relu(conv2d(x, weight, bias, geo)), kernel)


def conv_relu_max_pool2d_batch_norm(
    x: Tensor,
    weight: Tensor,
    conv_bias: Tensor | None,
    gamma: Tensor | None,
    beta: Tensor | None,
    eps: float,
    stats: BatchStats,
    geo: Geometry,
    kernel: tuple[int, int],
) -> Tensor:
    """``batch_norm_train(max_pool2d(relu(conv2d(x)), kernel))``."""
    p = max_pool2d(relu(conv2d(x, weight, conv_bias, geo)), kernel)
    return batch_norm_train(p, gamma, beta, eps, stats)


def softmax_cross_entropy(x: Tensor, q: np.ndarray, divisor: Any) -> Tensor:
    """``-sum(q * log_softmax(x, axis=-1)) / divisor``: each row's sum, then the rows, then the
    division."""
    return -(log_softmax(x, axis=-1) * q).sum(axis=-1).sum() / divisor
