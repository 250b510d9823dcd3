"""The seed's network, built from nnet's layers, for the reliability tests.

conv3x3(4)-relu-maxpool2-bn, conv3x3(8)-relu-maxpool2-bn, flatten, linear -> 196, relu, dropout 0.5,
linear -> 10, with sizes derived from the input side (28 for MNIST, 7 x 7 x 8 features after the pools).
"""

from __future__ import annotations

import numpy as np

import nnet
from nnet import nn


def seed_network(side: int = 28, channels: int = 1, classes: int = 10) -> nn.Sequential:
    """A fresh seed network for ``side`` x ``side`` images (weights from nnet's generator)."""
    quarter = side // 4
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(4),
        nn.Conv2d(4, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(8),
        nn.Flatten(),
        nn.Linear(quarter * quarter * 8, 196),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(196, classes),
    )


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
