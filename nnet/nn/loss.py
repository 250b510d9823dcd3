"""Losses, as functions (also in ``nnet.nn.functional``) and as modules, with PyTorch's names
and options.

Every loss takes ``reduction='mean' | 'sum' | 'none'``. Class scores sit on the last axis (NHWC's
channel axis): logits of shape (N, C), or (N, H, W, C) for per-pixel classes.

>>> import nnet
>>> logits = nnet.tensor([[2.0, 0.0, -1.0]])
>>> round(nnet.nn.CrossEntropyLoss()(logits, nnet.tensor([0], dtype="int64")).item(), 4)
0.1698
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.ops import clip, log, log_softmax, logsumexp, maximum, stack
from nnet.autograd.tensor import Tensor
from nnet.kernels import registry
from nnet.kernels.mode import fused_enabled
from nnet.nn.module import Module

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _operands(op: str, input: Any, target: Any, reduction: str) -> tuple[Tensor, Any]:
    """The input as a tensor and the target (a constant in the input's dtype unless it is a tensor),
    after checking the reduction and that the shapes agree."""
    _check_reduction(op, reduction)
    x = input if isinstance(input, Tensor) else Tensor(input)
    if not isinstance(target, Tensor):
        target = np.asarray(target, dtype=x.dtype)
    if target.shape != x.shape:
        raise ValueError(
            f"{op}: the target's shape {target.shape} does not match the input's shape {x.shape}"
        )
    return x, target


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error ``(input - target)^2``, reduced."""
    x, t = _operands("mse_loss", input, target, reduction)
    d = x - t
    return _reduce(d * d, reduction)


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Absolute error ``|input - target|``, reduced (its derivative at 0 is 0)."""
    x, t = _operands("l1_loss", input, target, reduction)
    return _reduce(abs(x - t), reduction)


def _clamped_log(p: Tensor) -> Tensor:
    """log(p) clamped below at -100, as PyTorch's BCE, with a finite gradient everywhere.

    The gradient 1/p is taken only where p is at least the smallest normal number (so 1/p cannot
    overflow: in float32 it would for the subnormal p that sigmoid(-100) gives); below it the
    gradient is 0 and the value, log(p) down to -100, is added as a constant.
    """
    tiny = float(np.finfo(p.dtype).tiny)
    logp = clip(log(maximum(p, tiny)), -100.0, None)
    below = p.data < tiny
    if below.any():
        with np.errstate(divide="ignore"):
            exact = np.maximum(np.log(p.data[below]), -100.0)
        correction = np.zeros_like(logp.data)
        correction[below] = exact - logp.data[below]
        logp = logp + correction
    return logp


def binary_cross_entropy(
    input: Any, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities p, each log clamped at -100 as in
    PyTorch. Prefer :func:`binary_cross_entropy_with_logits` on logits: it is exact at the ends."""
    p, t = _operands("binary_cross_entropy", input, target, reduction)
    if p.data.size and not (0.0 <= p.data.min() and p.data.max() <= 1.0):
        raise ValueError(
            "binary_cross_entropy: the input must be probabilities in [0, 1], got values in "
            f"[{p.data.min()}, {p.data.max()}]; for logits use binary_cross_entropy_with_logits"
        )
    loss = -(t * _clamped_log(p) + (1.0 - t) * _clamped_log(1.0 - p))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def softplus(x: Tensor) -> Tensor:
    """log(1 + e^x) as logsumexp(0, x): no overflow at any x, derivative sigmoid(x) everywhere."""
    return logsumexp(stack([np.zeros(x.shape, x.dtype), x], axis=-1), axis=-1)


def binary_cross_entropy_with_logits(
    input: Any, target: Any, weight: Any = None, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """Binary cross-entropy of sigmoid(x), computed from the logits x without forming the sigmoid:
    ``(1 - t) x + l softplus(-x)`` with ``l = 1 + (pos_weight - 1) t``; finite and exact for logits
    of any size (+-1e4 included), with gradient ``sigmoid(x) - t`` when there are no weights."""
    x, t = _operands("binary_cross_entropy_with_logits", input, target, reduction)
    sp = softplus(-x)
    if pos_weight is None:
        loss = (1.0 - t) * x + sp
    else:
        loss = (1.0 - t) * x + (1.0 + (pos_weight - 1.0) * t) * sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _class_targets(
    op: str, logp: Tensor, target: Any, ignore_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Integer class targets checked against the scores: (targets, mask of the ones not ignored)."""
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":  # 0.5 would match no class and silently cost nothing
        raise ValueError(f"{op}: class-index targets must be integers, got dtype {t.dtype}")
    if t.shape != logp.shape[:-1]:
        raise ValueError(
            f"{op}: class-index targets must have shape {logp.shape[:-1]} (the input's shape "
            f"without "
            f"its last, class axis), got {t.shape}"
        )
    n_classes = logp.shape[-1]
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise ValueError(
            f"{op}: target {t[bad].flat[0]} is out of range for {n_classes} classes "
            f"(0..{n_classes - 1})"
        )
    return t, valid


def _check_class_weight(op: str, shape: tuple[int, ...], n_classes: int) -> None:
    if shape != (n_classes,):
        raise ValueError(
            f"{op}: weight must hold one value per class, shape ({n_classes},), got {shape}"
        )


def _class_rows(op: str, scores: Tensor, target: Any, weight: Any, ignore_index: int,
                label_smoothing: float) -> tuple[np.ndarray, Any]:  # fmt: skip
    """The (smoothed, weighted) one-hot rows q of class-index targets, zero for ignored ones, and
    the total weight of the targets not ignored ('mean' divides by it, as PyTorch)."""
    t, valid = _class_targets(op, scores, target, ignore_index)
    n_classes = scores.shape[-1]
    q = (np.where(valid, t, 0)[..., None] == np.arange(n_classes)).astype(scores.dtype)
    if label_smoothing:
        q *= 1.0 - label_smoothing
        q += label_smoothing / n_classes
    q *= valid[..., None]
    w = (
        None
        if weight is None
        else np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    )
    if w is not None:
        _check_class_weight(op, w.shape, n_classes)
        q *= w.astype(scores.dtype, copy=False)
    total = valid.sum() if w is None else w[np.where(valid, t, 0)][valid].sum()
    return q, total


def _indexed_loss(op: str, logp: Tensor, target: Any, weight: Any, ignore_index: int,
                  reduction: str, label_smoothing: float) -> Tensor:  # fmt: skip
    """``-sum_c q[i, c] logp[i, c]`` for class indices, with q the (smoothed, weighted) one-hot
    rows; 'mean' divides by the total weight of the targets not ignored, as PyTorch."""
    q, total = _class_rows(op, logp, target, weight, ignore_index, label_smoothing)
    loss = -(logp * q).sum(axis=-1)
    if reduction != "mean":
        return _reduce(loss, reduction)
    return loss.sum() / np.asarray(total, logp.dtype)


def nll_loss(input: Any, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:  # fmt: skip
    """Negative log-likelihood ``-input[i, target[i]]`` of log-probabilities (classes on the last
    axis) and integer class targets; ``weight`` per class, targets equal to ``ignore_index``
    skipped."""
    _check_reduction("nll_loss", reduction)
    x = input if isinstance(input, Tensor) else Tensor(input)
    return _indexed_loss("nll_loss", x, target, weight, ignore_index, reduction, 0.0)


def cross_entropy(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits (classes on the last axis) against class indices (an integer array of
    the input's shape without the class axis) or against one-hot / probability rows (a float array
    of the input's shape). Uses the stable log-softmax, so extreme logits give finite results.

    ``label_smoothing`` eps mixes the targets with the uniform distribution: (1 - eps) q + eps / C.
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    x = input if isinstance(input, Tensor) else Tensor(input)
    if x.ndim == 0:
        raise ValueError("cross_entropy: the input needs a class axis, got a scalar")
    tdtype = (target.data if isinstance(target, Tensor) else np.asarray(target)).dtype
    if tdtype.kind in "iub" and reduction != "none" and fused_enabled.get():
        # the target rows cost a pass: built only when a kernel may take them
        rows, total = _class_rows("cross_entropy", x, target, weight, ignore_index, label_smoothing)
        divisor = float(total) if reduction == "mean" else 1.0
        return registry.run(("cross_entropy",), x, rows, divisor)
    logp = log_softmax(x, axis=-1)
    if tdtype.kind in "iub":
        return _indexed_loss(
            "cross_entropy", logp, target, weight, ignore_index, reduction, label_smoothing
        )
    q = target if isinstance(target, Tensor) else np.asarray(target, dtype=x.dtype)
    if q.shape != x.shape:
        raise ValueError(
            f"cross_entropy: probability (one-hot) targets must have the input's shape {x.shape}, "
            f"got {q.shape}; class-index targets must be integers"
        )
    n_classes = x.shape[-1]
    if label_smoothing:
        q = q * (1.0 - label_smoothing) + label_smoothing / n_classes
    if weight is not None:
        _check_class_weight("cross_entropy", np.shape(weight), n_classes)
        q = q * weight
    return _reduce(-(logp * q).sum(axis=-1), reduction)


# -- modules -------------------------------------------------------------------------------------
class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""

    def _renamed(self, fn: Any, *args: Any, **kwargs: Any) -> Tensor:
        """Run the functional form, with errors naming this module rather than the function."""
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            raise ValueError(str(e).replace(fn.__name__, type(self).__name__, 1)) from None


class MSELoss(_Loss):
    """Mean squared error (see :func:`mse_loss`)."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return self._renamed(mse_loss, input, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error (see :func:`l1_loss`)."""

    def forward(self, input: Any, target: Any) -> Tensor:
        return self._renamed(l1_loss, input, target, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (see :func:`binary_cross_entropy`)."""

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Any, target: Any) -> Tensor:
        return self._renamed(binary_cross_entropy, input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, stable everywhere (see
    :func:`binary_cross_entropy_with_logits`)."""

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def forward(self, input: Any, target: Any) -> Tensor:
        return self._renamed(
            binary_cross_entropy_with_logits, input, target, self.weight, self.reduction,
            self.pos_weight,
        )  # fmt: skip


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities and class indices (see :func:`nll_loss`)."""

    def __init__(
        self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.weight = weight
        self.ignore_index = ignore_index

    def forward(self, input: Any, target: Any) -> Tensor:
        return self._renamed(
            nll_loss, input, target, self.weight, self.ignore_index, self.reduction
        )


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits against class indices or one-hot / probability rows (see
    :func:`cross_entropy`)."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:  # fmt: skip
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}"
            )
        self.weight = weight
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def extra_repr(self) -> str:
        parts = [super().extra_repr()]
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(p for p in parts if p)

    def forward(self, input: Any, target: Any) -> Tensor:
        return self._renamed(
            cross_entropy, input, target, self.weight, self.ignore_index, self.reduction,
            self.label_smoothing,
        )  # fmt: skip
