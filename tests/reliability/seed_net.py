"""The seed's network (nnet.train.models.seed_cnn) and helpers for the reliability tests."""

from __future__ import annotations

import numpy as np

import nnet
from nnet import nn
from nnet.train.models import seed_cnn


def seed_network(side: int = 28, channels: int = 1, classes: int = 10) -> nn.Module:
    """A fresh seed network for ``side`` x ``side`` images (weights from nnet's generator): the main
    job's own model, so these tests exercise what users train."""
    return seed_cnn((side, side, channels), classes)


def random_batch(
    rng: np.random.Generator, n: int, side: int = 28, dtype: type = np.float32
) -> tuple[nnet.Tensor, np.ndarray]:
    """Images in [0, 1) shaped (n, side, side, 1) and int64 labels in 0..9."""
    x = rng.random((n, side, side, 1)).astype(dtype)
    return nnet.Tensor(x), rng.integers(0, 10, n)


def graph_tensors(root: nnet.Tensor) -> list[nnet.Tensor]:
    """Every tensor reachable from ``root`` through the recorded operations (iteratively)."""
    seen: dict[int, nnet.Tensor] = {}
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen[id(t)] = t
        fn = t.grad_fn
        if fn is not None and fn.inputs is not None:
            stack.extend(a for a in fn.inputs if isinstance(a, nnet.Tensor))
    return list(seen.values())
