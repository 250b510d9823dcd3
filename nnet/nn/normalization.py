"""Batch normalisation over the channel axis, which is the last one (NHWC): `BatchNorm1d` for
(N, C) inputs, `BatchNorm2d` for (N, H, W, C) images."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.defaults import get_default_dtype
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
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__()
        dtype = get_default_dtype() if dtype is None else dtype
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
        """Running mean back to 0, running variance to 1 and the batch count to 0 (as new)."""
        if self.running_mean is not None and self.running_var is not None:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
        if self.num_batches_tracked is not None:
            self.num_batches_tracked.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        self.check_shape(x.shape)
        momentum = self.batch_momentum()
        try:
            y = F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias,
                self.training or not self.track_running_stats, momentum, self.eps,
            )  # fmt: skip
        except ValueError as e:
            raise ValueError(str(e).replace("batch_norm", type(self).__name__, 1)) from None
        self.count_batch()
        return y

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise the layer's error for an input of ``shape`` it cannot normalise."""
        if len(shape) != self._ndim or shape[-1] != self.num_features:
            hint = "; nnet images are NHWC" if self._ndim == 4 else ""
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) expects input "
                f"{self._layout.format(C=self.num_features)}, "
                f"got {shape}{hint}"
            )

    def batch_momentum(self) -> float:
        """How far this training batch moves the running statistics: ``momentum``, or with
        ``momentum=None`` the cumulative average of all batches so far, as in PyTorch (0 in eval
        mode or without running statistics). Code that normalises for the layer (a fused run in
        :class:`~nnet.nn.Sequential`) passes it on and then calls :meth:`count_batch`."""
        counter = self.num_batches_tracked if self.training else None
        if counter is None:
            return 0.0
        return 1.0 / (int(counter.data) + 1) if self.momentum is None else self.momentum

    def count_batch(self) -> None:
        """Count one more training batch in ``num_batches_tracked``."""
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.data += 1

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
