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


def progress(loader: DataLoader, epoch: int, quiet: bool) -> Iterable[Any]:
    """The loader wrapped in a tqdm bar on a terminal (tqdm is optional; nothing without it)."""
    if quiet or not sys.stderr.isatty():
        return loader
    try:
        from tqdm import tqdm
    except ImportError:
        return loader
    return tqdm(loader, desc=f"Epoch {epoch}", leave=False, unit="batch", file=sys.stderr)


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: nnet.optim.Optimizer,
    loss_fn: nn.Module,
    epoch: int,
    quiet: bool = False,
) -> tuple[float, float]:
    """Train one pass over ``loader``; returns the mean loss and the accuracy over the samples."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for step, (x, y) in enumerate(progress(loader, epoch, quiet), start=1):
        logits = model(x)
        loss = loss_fn(logits, y)
        value = float(loss.item())
        if not math.isfinite(value):
            raise NonFiniteLoss(epoch, step, value)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        n = len(y)
        total_loss += value * n
        correct += int((logits.data.argmax(axis=1) == y.data).sum())
        seen += n
    return total_loss / max(seen, 1), correct / max(seen, 1)


def evaluate(model: nn.Module, dataset: Any, batch_size: int = 1000) -> float:
    """Accuracy of ``model`` (in eval mode, nothing recorded) on ``dataset``."""
    model.eval()
    correct = 0
    with nnet.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size, generator=0):
            correct += int(np.sum(model(x).data.argmax(axis=1) == y.data))
    return correct / max(len(dataset), 1)
