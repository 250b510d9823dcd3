"""Batch normalisation over the channel axis, which is the last one (NHWC): `BatchNorm1d` for
(N, C) inputs, `BatchNorm2d` for (N, H, W, C) images."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.tensor import Tensor
from nnet.nn import functional as F
from nnet.nn.module import Module, Parameter


class _BatchNorm(Module):
    _layout = ""
    _ndim = 0
    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 dtype: Any = np.float32) -> None:  # fmt: skip
        super().__init__()
        F.check_sizes(type(self).__name__, num_features=num_features)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype))
            self.bias = Parameter(np.zeros(num_features, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.running_mean is not None and self.running_var is not None:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
        if self.num_batches_tracked is not None:
            self.num_batches_tracked.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        return self._normalise(x, None)

    def forward_relu_max_pool(
        self, x: Tensor, kernel: tuple[int, int], conv: Any = None, geo: Any = None
    ) -> Tensor:
        """``MaxPool2d(kernel)(ReLU()(self(x)))`` in training mode as one fused op, or of
        ``self(conv(x))`` with a :class:`~nnet.nn.Conv2d` ``conv`` of geometry ``geo`` (what
        :class:`~nnet.nn.Sequential` runs for these layers in a row; see nnet/nn/fusion.py)."""
        return self._normalise(x, kernel, conv, geo)

    def _normalise(
        self, x: Tensor, pool: tuple[int, int] | None, conv: Any = None, geo: Any = None
    ) -> Tensor:
        shape = x.shape if conv is None else (x.shape[0], *geo[4], conv.out_channels)
        if len(shape) != self._ndim or shape[-1] != self.num_features:
            hint = "; nnet images are NHWC" if self._ndim == 4 else ""
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) expects input "
                f"{self._layout.format(C=self.num_features)}, "
                f"got {shape}{hint}"
            )
        counter = self.num_batches_tracked if self.training else None
        momentum = 0.0
        if counter is not None:
            # momentum None: the cumulative average of all batches so far, as in PyTorch
            momentum = 1.0 / (int(counter.data) + 1) if self.momentum is None else self.momentum
        try:
            if conv is not None and pool is not None:
                y = F.conv_batch_norm_relu_max_pool2d(
                    x, conv.weight, conv.bias, geo, self.running_mean, self.running_var,
                    self.weight, self.bias, momentum, self.eps, pool,
                )  # fmt: skip
            elif pool is None:
                y = F.batch_norm(
                    x, self.running_mean, self.running_var, self.weight, self.bias,
                    self.training or not self.track_running_stats, momentum, self.eps,
                )  # fmt: skip
            else:
                y = F.batch_norm_relu_max_pool2d(
                    x, self.running_mean, self.running_var, self.weight, self.bias,
                    momentum, self.eps, pool,
                )  # fmt: skip
        except ValueError as e:
            raise ValueError(str(e).replace("batch_norm", type(self).__name__, 1)) from None
        if counter is not None:
            counter.data += 1
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Normalise each of the C features of an (N, C) input over the batch.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the batch mean and biased variance in
    training (which also moves the running statistics: ``r <- r + momentum (batch - r)``, the
    variance unbiased), and the running statistics in eval mode.
    """

    _layout = "(N, {C})"
    _ndim = 2


class BatchNorm2d(_BatchNorm):
    """Normalise each channel of an NHWC image batch (N, H, W, C) over (N, H, W); otherwise as
    :class:`BatchNorm1d`.

    >>> import nnet
    >>> bn = nnet.nn.BatchNorm2d(3)
    >>> y = bn(nnet.randn(4, 5, 5, 3))
    >>> [name for name, _ in bn.named_buffers()]
    ['running_mean', 'running_var', 'num_batches_tracked']
    """

    _layout = "(N, H, W, {C})"
    _ndim = 4
