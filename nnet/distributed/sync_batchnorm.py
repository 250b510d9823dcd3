"""``SyncBatchNorm``: batch normalisation whose statistics, and so their gradients, span the global
batch of all ranks; ``convert_sync_batchnorm`` swaps it in for a model's batch norms."""

from __future__ import annotations

import numpy as np

from nnet.autograd.ops import concatenate, sqrt
from nnet.autograd.pending import Step, defer, deferring
from nnet.autograd.tensor import Tensor
from nnet.distributed.batchnorm_kernel import GlobalStats, SyncStats, sync_batch_norm_train
from nnet.distributed.functional import all_reduce
from nnet.kernels.mode import is_fused_enabled
from nnet.nn import functional as F
from nnet.nn.module import Module
from nnet.nn.normalization import _BatchNorm


class SyncBatchNorm(_BatchNorm):
    """Normalise each channel (the last axis, NHWC) over the batch of every rank together.

    In training the mean and variance come from all ranks' samples (one all-reduce of 2C + 1
    values in the forward) and so do their gradients (one all-reduce of 2C values in the
    backward): N ranks with B/N samples each train like one process with B. The step runs as one
    primitive (:class:`~nnet.distributed.batchnorm_kernel.SyncBatchNormKernel`), or, after a
    convolution, ReLU and max-pool, inside their kernel (:class:`~nnet.kernels.ConvReluPoolBatchNorm`,
    with the same all-reduces) where it applies; under
    ``nnet.kernels.use_fused(False)`` it runs as the composition of primitives and a
    differentiable all-reduce that is that primitive's test oracle. Inputs may be (N, C) or
    (N, ..., C). In eval mode, or in a world of one, it computes what
    :class:`~nnet.nn.BatchNorm2d` computes.

    >>> import nnet
    >>> from nnet.distributed import SyncBatchNorm
    >>> bn = SyncBatchNorm(3)
    >>> bn(nnet.randn(4, 5, 5, 3)).shape
    (4, 5, 5, 3)
    """

    _layout = "(N, ..., {C})"

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[-1] != self.num_features:
            raise ValueError(
                f"SyncBatchNorm({self.num_features}) expects input (N, ..., {self.num_features}) "
                f"with the channels last, got {x.shape}"
            )
        if not self.training and self.track_running_stats:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)  # fmt: skip
        if is_fused_enabled():
            params = (self.weight, self.bias)
            if x.ndim == 4 and deferring() and all(p is None or p.dtype == x.dtype for p in params):
                # pending, so that a conv-relu-pool before it may fuse with it (nnet/nn/chains.py)
                needs = x.requires_grad or any(p is not None and p.requires_grad for p in params)
                return defer("sync_batch_norm", x, (self,), x.shape, needs)
            return self.step_alone(x)
        return self._composed(x)

    def step_alone(self, x: Tensor, step: Step | None = None) -> Tensor:
        """The training step as its own primitive (``step``: the pending step it computes)."""
        stats = GlobalStats()
        y = sync_batch_norm_train(x, self.weight, self.bias, self.eps, stats)
        self.moved(stats, step)
        return y

    def block_stats(self) -> SyncStats:
        """Where a fused kernel that computes this layer with the ones before it reports the
        statistics, and how it sums them over the ranks (nnet/nn/chains.py)."""
        return SyncStats()

    def moved(self, stats: GlobalStats, step: Step | None = None) -> None:
        """The running statistics moved by ``stats``, once per pending ``step``."""
        if step is not None:
            if step.applied:
                return
            step.applied = True
        self._track(stats.mean, stats.var * (stats.count / (stats.count - 1)))

    def _composed(self, x: Tensor) -> Tensor:
        """The training step as primitives and a differentiable all-reduce (the fused kernel's
        oracle)."""
        c = self.num_features
        x2 = x.reshape(-1, c)
        # One all-reduce of [sum d, sum d^2, count] with d = x - shift, the shift a per-channel
        # constant every rank holds (the running mean): the batch variance E[d^2] - E[d]^2 then
        # cancels little, and the backward needs one all-reduce too (its VJP).
        shift = self._shift(x2)
        d = x2 - shift
        count = Tensor(np.full(1, x2.shape[0], x2.dtype))
        sums = all_reduce(concatenate([d.sum(axis=0), (d * d).sum(axis=0), count]))
        n = round(float(sums.data[-1]))  # exact below 2**24 values per channel
        if n < 2:
            raise ValueError(
                f"SyncBatchNorm: training needs more than one value per channel over all ranks, "
                f"got {n} (this rank's input {x.shape})"
            )
        mean_d = sums[:c] / n
        var = sums[c : 2 * c] / n - mean_d * mean_d
        gain = 1.0 / sqrt(var + self.eps)
        if self.weight is not None:
            gain = gain * self.weight
        y = (d - mean_d) * gain
        if self.bias is not None:
            y = y + self.bias
        mean = mean_d + shift
        self._track(mean.data, var.data * (n / (n - 1)))
        return y.reshape(x.shape)

    def _shift(self, x2: Tensor) -> Tensor:
        """The running mean when there is one (the same on every rank), else zero."""
        if self.running_mean is not None:
            return Tensor(self.running_mean.data.astype(x2.dtype, copy=True))
        return Tensor(np.zeros(self.num_features, x2.dtype))

    def _track(self, mean: np.ndarray, var: np.ndarray) -> None:
        """Move the running statistics as BatchNorm does, with the global batch's statistics."""
        counter = self.num_batches_tracked
        if not self.training or counter is None:
            return
        assert self.running_mean is not None and self.running_var is not None
        momentum = 1.0 / (int(counter.data) + 1) if self.momentum is None else self.momentum
        for running, batch in ((self.running_mean.data, mean), (self.running_var.data, var)):
            running *= 1.0 - momentum  # the same two steps as BatchNorm's, for the same rounding
            running += momentum * batch
        counter.data += 1


def convert_sync_batchnorm(module: Module) -> Module:
    """``module`` with every ``BatchNorm1d`` / ``BatchNorm2d`` replaced by a :class:`SyncBatchNorm`
    that shares its parameters and buffers (so an optimizer made before still holds them).

    >>> from nnet import nn
    >>> from nnet.distributed import convert_sync_batchnorm
    >>> convert_sync_batchnorm(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))[1]
    SyncBatchNorm(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    """
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats)  # fmt: skip
        for name in ("weight", "bias"):
            if getattr(module, name) is not None:
                setattr(sync, name, getattr(module, name))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            sync.register_buffer(name, getattr(module, name))
        sync.train(module.training)
        return sync
    for name, child in list(module.named_children()):
        converted = convert_sync_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
