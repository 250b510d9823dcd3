"""The suite's networks built from nnet.nn (NHWC; Linear weights (in, out)), and nnet's training step.

These use only the public API a user would: ``nnet.nn`` layers, ``nnet.nn.CrossEntropyLoss`` on class
indices, ``nnet.optim``. A benchmark whose nnet side cannot be built (a layer not written yet) prints
the error in its nnet column and still measures the references.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.timing import ensure_repo_on_path

ensure_repo_on_path()


def nn() -> Any:
    import nnet.nn

    return nnet.nn


def optim() -> Any:
    import nnet.optim

    return nnet.optim


def seed_cnn() -> Any:
    m = nn()
    return m.Sequential(
        m.Conv2d(1, 4, 3),
        m.ReLU(),
        m.MaxPool2d(2),
        m.BatchNorm2d(4),
        m.Conv2d(4, 8, 3),
        m.ReLU(),
        m.MaxPool2d(2),
        m.BatchNorm2d(8),
        m.Flatten(),
        m.Linear(392, 196),
        m.ReLU(),
        m.Dropout(0.5),
        m.Linear(196, 10),
    )


def wide_cnn(channels: tuple[int, int] = (32, 64), image: int = 28) -> Any:
    m = nn()
    c1, c2 = channels
    return m.Sequential(
        m.Conv2d(1, c1, 3),
        m.BatchNorm2d(c1),
        m.ReLU(),
        m.MaxPool2d(2),
        m.Conv2d(c1, c2, 3),
        m.BatchNorm2d(c2),
        m.ReLU(),
        m.MaxPool2d(2),
        m.Flatten(),
        m.Linear((image // 4) ** 2 * c2, 128),
        m.ReLU(),
        m.Linear(128, 10),
    )


def mlp() -> Any:
    m = nn()
    return m.Sequential(m.Linear(784, 256), m.ReLU(), m.Linear(256, 10))


def load_numpy_weights(model: Any, params: dict[str, np.ndarray]) -> None:
    """Copy the NumPy floor's weights (same layouts as nnet's) into ``model``'s parameters, in order."""
    ps = list(model.parameters())
    arrays = list(params.values())
    if len(ps) != len(arrays):
        raise ValueError(f"{len(ps)} nnet parameters, {len(arrays)} arrays")
    for p, a in zip(ps, arrays, strict=True):
        if p.data.shape != a.shape:
            raise ValueError(f"cannot load {a.shape} into {p.data.shape}")
        p.data[...] = a


def tensors(x: np.ndarray, y: np.ndarray | None = None) -> tuple[Any, Any]:
    import nnet

    return nnet.Tensor(x), (nnet.Tensor(y) if y is not None else None)


def train_step(model: Any, opt: Any, x: Any, y: Any) -> Callable[[], object]:
    loss_fn = nn().CrossEntropyLoss()
    model.train()

    def step() -> object:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step
