"""The functional form of every layer: plain functions of tensors. Each computes a composition of
nnet's primitives, by a kernel of the registry where one applies (nnet/kernels/registry.py; which
one and when: docs/kernels.md) or by the composition itself, so gradients come from the engine.
Images are NHWC; kernels are (KH, KW, C_in, C_out); Linear weights are (in_features, out_features).

>>> import nnet
>>> import nnet.nn.functional as F
>>> x = nnet.ones((2, 5, 5, 3))
>>> F.conv2d(x, nnet.ones((3, 3, 3, 4)), padding="same").shape
(2, 5, 5, 4)
>>> F.max_pool2d(x, 2).shape
(2, 2, 2, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.ops import (
    elu,
    flatten,
    gelu,
    leaky_relu,
    log_softmax,
    pad,
    relu,
    sigmoid,
    silu,
    sliding_windows,
    softmax,
    softplus,
    tanh,
)
from nnet.autograd.pending import Pending, defer, deferring
from nnet.autograd.tensor import Tensor
from nnet.autograd.window import pair
from nnet.kernels import registry
from nnet.kernels.batchnorm import BatchStats
from nnet.kernels.im2col import geometry
from nnet.random import get_generator

Padding = str | int | tuple[int, int]


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


# -- argument and input checks shared by the layers ----------------------------------------------
def check_sizes(layer: str, **sizes: Any) -> None:
    """Each size (features, channels) must be a non-negative integer: a clear error at
    construction instead of NumPy's 'negative dimensions are not allowed'."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{layer}: {name} must be a non-negative integer, got {value!r}")


def check_input_dtype(layer: str, x: Tensor, weight: Tensor) -> None:
    """The input must have the weights' dtype: NumPy would silently run a float32 model in
    float64 on float64 input (and on integer input), as PyTorch refuses to."""
    if x.dtype != weight.dtype:
        raise TypeError(
            f"{layer}: the input has dtype {x.dtype} but the layer's weights are {weight.dtype}; "
            f"convert the input (x.astype('{weight.dtype}'), e.g. x.float()) or the model "
            "(model.to(dtype))"
        )


# -- linear --------------------------------------------------------------------------------------
def _same_dtype(x: Tensor, *others: Tensor | None) -> bool:
    """Whether every given tensor has x's dtype: a layer deferred only then, so that a mismatch
    raises where the layer is called."""
    return all(o is None or o.dtype == x.dtype for o in others)


def _needs(*tensors: Tensor | None) -> bool:
    return any(t is not None and t.requires_grad for t in tensors)


def _pooled_shape(shape: tuple[int, ...], k: tuple[int, int], s: tuple[int, int],
                  pads: tuple[tuple[int, int], tuple[int, int]],
                  d: tuple[int, int]) -> tuple[int, ...]:  # fmt: skip
    hw = [(shape[1 + i] + sum(pads[i]) - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    return (shape[0], hw[0], hw[1], shape[3])


def linear(x: Any, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight + bias`` with ``weight`` of shape (in_features, out_features) (the seed's
    layout, the transpose of PyTorch's) and ``x`` of shape (..., in_features)."""
    return registry.run(("linear",), _tensor(x), weight, bias)


# -- convolution ---------------------------------------------------------------------------------
def _check_positive(op: str, name: str, value: tuple[int, int]) -> None:
    if min(value) < 1:
        raise ValueError(f"{op}: {name} must be positive, got {value}")


def conv_padding(
    padding: Padding, kernel: tuple[int, int], dilation: tuple[int, int], op: str = "conv2d"
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) for ``padding`` = 'same', 'valid', an int or a pair.

    'same' pads d (K - 1) in total along each axis, ``total // 2`` before and the rest after (as
    PyTorch does): for odd kernels that is floor(K/2) on each side, the seed's bh and bw; an even
    kernel gets the extra row and column after. At stride 1 the output keeps H and W; at stride s
    it has ceil(H / s) rows.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            return (totals[0] // 2, totals[0] - totals[0] // 2), (
                totals[1] // 2,
                totals[1] - totals[1] // 2,
            )
        raise ValueError(
            f"{op}: padding must be 'same', 'valid', an int or a pair, got {padding!r}"
        )
    ph, pw = pair(padding, "padding", op)
    if ph < 0 or pw < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {(ph, pw)}")
    return (ph, ph), (pw, pw)


def _check_span(op: str, shape: tuple[int, ...], kernel: tuple[int, int], dilation: tuple[int, int],
                pads: tuple[tuple[int, int], tuple[int, int]]) -> None:  # fmt: skip
    """A clear error when the (dilated) kernel does not fit in the padded input."""
    padded = (shape[1] + sum(pads[0]), shape[2] + sum(pads[1]))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    if span[0] > padded[0] or span[1] > padded[1]:
        raise ValueError(
            f"{op}: the {kernel[0]}x{kernel[1]} kernel (dilation {dilation}) spans "
            f"{span[0]}x{span[1]}, larger than the padded input {padded[0]}x{padded[1]} "
            f"(input {shape[1]}x{shape[2]}, padding {pads}); use a smaller kernel or more padding"
        )


def _pad_hw(x: Tensor, pads: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0) -> Tensor:
    if pads == ((0, 0), (0, 0)):
        return x
    return pad(x, ((0, 0), pads[0], pads[1], (0, 0)), value)


def conv2d(
    x: Any,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Padding = "same",
    dilation: Any = 1,
) -> Tensor:
    """2-D convolution (cross-correlation) of an NHWC input with a (KH, KW, C_in, C_out) kernel.

    ``y[n, r, c, m] = sum_{i, j, k} w[i, j, k, m] x[n, r s + i d - pt, c s + j d - pl, k] + b[m]``:
    the composition pads, takes the sliding windows, and multiplies them, reshaped to
    (N OH OW, KH KW C_in), by the kernel reshaped to (KH KW C_in, C_out); the kernel that runs it
    by default is in docs/kernels.md. The kernel gradient sums g times the shifted input over n, r
    and c, the input gradient is the windows' adjoint (col2im).
    """
    x = _tensor(x)
    kh, kw, cin, cout = weight.shape
    s, d = pair(stride, "stride", "conv2d"), pair(dilation, "dilation", "conv2d")
    _check_positive("conv2d", "stride", s)
    _check_positive("conv2d", "dilation", d)
    pads = conv_padding(padding, (kh, kw), d)
    if x.ndim != 4 or x.shape[3] != cin:
        raise ValueError(
            f"conv2d: a ({kh}, {kw}, {cin}, {cout}) kernel expects input (N, H, W, {cin}), "
            f"got {x.shape}; nnet images are NHWC"
        )
    _check_span("conv2d", x.shape, (kh, kw), d, pads)
    geo = geometry(x.shape, (kh, kw), s, d, pads)
    if deferring() and _same_dtype(x, weight, bias):  # may fuse with what follows (pending.py)
        shape = (x.shape[0], *geo[4], cout)
        return defer("conv2d", x, (weight, bias, geo), shape, _needs(x, weight, bias))
    return registry.run(("conv2d",), x, weight, bias, geo)


def conv_geometry(x: Tensor, weight: Tensor, stride: Any, padding: Padding, dilation: Any) -> Any:
    """The fused convolution's geometry (kernel, stride, dilation, (pad top, pad left), output
    size) for valid arguments (those :func:`conv2d` accepts)."""
    s, d = pair(stride, "stride", "conv2d"), pair(dilation, "dilation", "conv2d")
    kernel = (weight.shape[0], weight.shape[1])
    return geometry(x.shape, kernel, s, d, conv_padding(padding, kernel, d))


# -- pooling -------------------------------------------------------------------------------------
def _pool_args(
    op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any
) -> tuple:
    k = pair(kernel_size, "kernel_size", op)
    s = k if stride is None else pair(stride, "stride", op)
    p = pair(padding, "padding", op)
    d = pair(dilation, "dilation", op)
    _check_positive(op, "kernel_size", k)
    _check_positive(op, "stride", s)
    _check_positive(op, "dilation", d)
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    if p[0] < 0 or p[1] < 0 or 2 * p[0] > span[0] or 2 * p[1] > span[1]:
        raise ValueError(
            f"{op}: padding {p} must be between 0 and half the (dilated) kernel span {span}"
        )
    if x.ndim != 4:
        raise ValueError(f"{op}: expects input (N, H, W, C), got {x.shape}; nnet images are NHWC")
    pads = ((p[0], p[0]), (p[1], p[1]))
    _check_span(op, x.shape, k, d, pads)
    return k, s, pads, d


def max_pool2d(
    x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1
) -> Tensor:
    """The maximum over each window of an NHWC input (padding counts as -inf); ``stride``
    defaults to the kernel size and sizes that do not divide evenly are floored. With ties the
    gradient goes to the first maximal element of the window in row-major order, as in PyTorch.
    """
    x = _tensor(x)
    k, s, pads, d = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation)
    if type(x) is Pending and deferring():  # a pending layer's output: may fuse (pending.py)
        return defer("max_pool2d", x, (k, s, pads, d), _pooled_shape(x.shape, k, s, pads, d),
                     x.requires_grad)  # fmt: skip
    return registry.run(("max_pool2d",), x, k, s, pads, d)


def avg_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    count_include_pad: bool = True,
) -> Tensor:
    """The mean over each window of an NHWC input; padding counts as zeros, and is counted in the
    divisor unless ``count_include_pad=False`` (PyTorch's default and option)."""
    x = _tensor(x)
    k, s, pads, d = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1)
    windows = sliding_windows(_pad_hw(x, pads), k, s, d)
    if count_include_pad or pads == ((0, 0), (0, 0)):
        return windows.mean(axis=(3, 4))
    inside = np.pad(np.ones((1, x.shape[1], x.shape[2], 1), x.dtype), ((0, 0), *pads, (0, 0)))
    counts = sliding_windows(inside, k, s, d).data.sum(axis=(3, 4))
    return windows.sum(axis=(3, 4)) / counts


# -- normalisation -------------------------------------------------------------------------------
def batch_norm(
    x: Any,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (the last axis) over all the other axes.

    Training: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the batch mean and biased
    variance (the input gradient includes the paths through the mean and the variance; the
    kernel that computes it is in docs/kernels.md); the running statistics (when given) move
    towards the batch ones in place: ``r <- r + momentum (batch - r)``, with the unbiased variance
    for ``running_var``. Evaluation: the running statistics instead of the batch ones.
    """
    x = _tensor(x)
    if training:
        n = _values_per_channel(x)
        if x.ndim == 4 and deferring() and _same_dtype(x, weight, bias):  # pending.py
            args = (weight, bias, eps, running_mean, running_var, momentum, n)
            return defer("batch_norm", x, args, x.shape, _needs(x, weight, bias))
        stats = BatchStats()
        y = registry.run(("batch_norm",), x, weight, bias, eps, stats)
        _update(running_mean, running_var, stats, n, momentum)
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation needs running_mean and running_var")
    return registry.run(("batch_norm_eval",), x, running_mean, running_var, weight, bias, eps)


def _values_per_channel(x: Tensor) -> int:
    """How many values each channel has; training needs more than one."""
    c = x.shape[-1]
    n = x.numel() // c if c else 0
    if n < 2:
        raise ValueError(
            f"batch_norm: training needs more than one value per channel, got input {x.shape}"
        )
    return n


def _update(running_mean: Tensor | None, running_var: Tensor | None, stats: BatchStats, n: int,
            momentum: float) -> None:  # fmt: skip
    """Move the running statistics towards the batch's, the variance unbiased."""
    if running_mean is not None and running_var is not None:
        _update_running(running_mean.data, stats.mean, momentum)
        _update_running(running_var.data, stats.var * (n / (n - 1)), momentum)


def batch_norm_relu_max_pool2d(
    x: Any,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    momentum: float,
    eps: float,
    kernel_size: Any,
) -> Tensor:
    """``max_pool2d(relu(batch_norm(x, ..., training=True)), kernel_size)`` for an NHWC ``x`` (the
    pool's stride its kernel size, no padding): one kernel where the registry has one that applies,
    else the three layers one by one, each by its own kernel. The running statistics move as in
    :func:`batch_norm`.

    >>> import nnet
    >>> import nnet.nn.functional as F
    >>> x = nnet.randn(2, 4, 4, 3)
    >>> F.batch_norm_relu_max_pool2d(x, None, None, None, None, 0.1, 1e-5, 2).shape
    (2, 2, 2, 3)
    """
    x = _tensor(x)
    k = pair(kernel_size, "kernel_size", "max_pool2d")
    _check_positive("max_pool2d", "kernel_size", k)
    n = _values_per_channel(x)
    stats = BatchStats()
    args = (x, weight, bias, eps, stats, k)
    kernel = registry.select(("batch_norm", "relu", "max_pool2d"), *args)
    if kernel is None:  # each layer by its own kernel (the composition of primitives: ~5x slower)
        y = batch_norm(x, running_mean, running_var, weight, bias, True, momentum, eps)
        return max_pool2d(relu(y), k)
    y = kernel.run(*args)
    _update(running_mean, running_var, stats, n, momentum)
    return y


def conv_batch_norm_relu_max_pool2d(
    x: Any,
    weight: Tensor,
    conv_bias: Tensor | None,
    geo: Any,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    gamma: Tensor | None,
    beta: Tensor | None,
    momentum: float,
    eps: float,
    kernel: tuple[int, int],
) -> Tensor:
    """``max_pool2d(relu(batch_norm(conv2d(x), ..., training=True)), kernel)`` for the convolution
    of geometry ``geo`` (:func:`conv_geometry`): one kernel where the registry has one that
    applies, else the convolution and then :func:`batch_norm_relu_max_pool2d`, each by its own
    kernels. The running statistics move as in :func:`batch_norm`."""
    x = _tensor(x)
    stats = BatchStats()
    args = (x, weight, conv_bias, gamma, beta, eps, stats, geo, kernel)
    chosen = registry.select(("conv2d", "batch_norm", "relu", "max_pool2d"), *args)
    if chosen is None:
        z = registry.run(("conv2d",), x, weight, conv_bias, geo)
        return batch_norm_relu_max_pool2d(z, running_mean, running_var, gamma, beta, momentum,
                                          eps, kernel)  # fmt: skip
    y = chosen.run(*args)
    _update(running_mean, running_var, stats, x.shape[0] * geo[4][0] * geo[4][1], momentum)
    return y


def _update_running(running: np.ndarray, batch: np.ndarray, momentum: float) -> None:
    running *= 1.0 - momentum
    running += momentum * batch


# -- dropout -------------------------------------------------------------------------------------
def bernoulli_mask(shape: tuple[int, ...], keep: float) -> np.ndarray:
    """A boolean array, True with probability ``keep``, from nnet's generator (random bits: one bit
    per element when ``keep`` is 1/2, else a 32-bit threshold)."""
    n = int(np.prod(shape))
    rng = get_generator()
    if keep == 0.5:
        bits = np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), np.uint8), count=n)
        return bits.view(bool).reshape(shape)
    threshold = min(round(keep * 2.0**32), 2**32 - 1)
    return (np.frombuffer(rng.bytes(4 * n), np.uint32) < threshold).reshape(shape)


def dropout(x: Any, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: ``y = m x / (1 - p)`` with m ~ Bernoulli(1 - p), so the gradient is
    ``m / (1 - p) g``. The identity when not training or when p = 0; zeros when p = 1."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    x = _tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * np.zeros((), x.dtype)
    mask = bernoulli_mask(x.shape, 1.0 - p).astype(x.dtype)
    mask *= 1.0 / (1.0 - p)
    return x * mask


__all__ = [
    "avg_pool2d",
    "batch_norm",
    "batch_norm_relu_max_pool2d",
    "bernoulli_mask",
    "check_input_dtype",
    "check_sizes",
    "conv2d",
    "conv_batch_norm_relu_max_pool2d",
    "conv_geometry",
    "conv_padding",
    "dropout",
    "elu",
    "flatten",
    "gelu",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
]

from nnet.nn.loss import (  # noqa: E402 - the losses' functional forms live beside their modules
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)

__all__ += [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_loss",
    "mse_loss",
    "nll_loss",
]
