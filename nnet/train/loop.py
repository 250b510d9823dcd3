"""One training epoch and one evaluation pass, with the seed's progress lines."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

import nnet
from nnet import nn
from nnet.data import DataLoader


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite at ``epoch``, ``step`` (1-based)."""

    def __init__(self, epoch: int, step: int, value: float) -> None:
        super().__init__(f"the loss became {value} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.value = epoch, step, value


def progress(
    loader: Iterable[Any], epoch: int, quiet: bool, total: int | None = None
) -> Iterable[Any]:
    """The loader wrapped in a tqdm bar on a terminal (tqdm is optional; nothing without it);
    ``total``: the number of batches, for an iterable without a length."""
    if quiet or not sys.stderr.isatty():
        return loader
    try:
        from tqdm import tqdm
    except ImportError:
        return loader
    return tqdm(loader, desc=f"Epoch {epoch}", leave=False, unit="batch", file=sys.stderr,
                total=total)  # fmt: skip


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: nnet.optim.Optimizer,
    loss_fn: nn.Module,
    epoch: int,
    quiet: bool = False,
    shard: tuple[int, int] = (0, 1),
) -> tuple[float, float]:
    """Train one pass over ``loader``; returns the mean loss and the accuracy over the samples.

    ``shard=(rank, world)``: this rank trains on rows ``rank::world`` of each of the loader's
    (global) batches under a :class:`~nnet.distributed.DistributedDataParallel` ``model``, so the
    ranks together follow the one-process sample order; the figures returned cover all ranks.
    Only those rows are loaded (:meth:`~nnet.data.DataLoader.shard_batches`).
    """
    model.train()
    rank, world = shard
    total_loss, correct, seen = 0.0, 0, 0
    batches = loader.shard_batches(rank, world) if world > 1 else loader
    for step, batch in enumerate(progress(batches, epoch, quiet, len(loader)), start=1):
        if world > 1:
            (x, y), n_global = batch
        else:
            x, y = batch
            n_global = len(y)
        logits = model(x)
        n = len(y)
        if n == 0:  # a last batch smaller than the world: this rank still joins the averaging
            loss, value = logits.sum() * 0.0, 0.0
        else:
            loss = loss_fn(logits, y)
            value = float(loss.item())
        if not math.isfinite(value):
            raise NonFiniteLoss(epoch, step, value)
        if 0 < n * world != n_global:
            # Unequal shares (the last batch): weight each rank's mean by its share, so the
            # average that DDP takes is the mean over the global batch.
            loss = loss * (n * world / n_global)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += value * n
        correct += int((logits.data.argmax(axis=1) == y.data).sum())
        seen += n
    if world > 1:
        total_loss, summed_correct, summed_seen = _summed(total_loss, correct, seen)
        correct, seen = int(summed_correct), int(summed_seen)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def _summed(*values: float) -> list[float]:
    """The sums over all ranks of a few per-rank figures."""
    from nnet import distributed

    total = distributed.all_reduce(np.array(values, np.float64))
    return [float(v) for v in total]


def evaluate(
    model: nn.Module, dataset: Any, batch_size: int = 1000, shard: tuple[int, int] = (0, 1)
) -> float:
    """Accuracy of ``model`` (in eval mode, nothing recorded) on ``dataset``; with
    ``shard=(rank, world)`` each rank scores its share and the result covers them all."""
    model.eval()
    correct = 0
    rank, world = shard
    sampler = None
    if world > 1:
        from nnet.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, world, rank, shuffle=False, pad=False)
    with nnet.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size, generator=0, sampler=sampler):
            correct += int(np.sum(model(x).data.argmax(axis=1) == y.data))
    if world > 1:
        correct = int(_summed(correct)[0])
    return correct / max(len(dataset), 1)
