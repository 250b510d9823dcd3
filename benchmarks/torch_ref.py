"""PyTorch eager-mode versions of the suite's networks (NCHW), and weight conversion from nnet's layouts.

Only imported after :func:`benchmarks.timing.load_torch` succeeded; nothing else in the suite needs torch.
PyTorch runs with its defaults (the optimizers' own choice of implementation, mkldnn on), as its users
would run it; inputs are converted from NHWC to NCHW once, outside the timed steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def seed_cnn(torch: Any) -> Any:
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(4),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(8),
        nn.Flatten(),
        nn.Linear(392, 196),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(196, 10),
    )


def wide_cnn(torch: Any, channels: tuple[int, int] = (32, 64), image: int = 28) -> Any:
    nn = torch.nn
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1),
        nn.BatchNorm2d(c1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.BatchNorm2d(c2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear((image // 4) ** 2 * c2, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def mlp(torch: Any) -> Any:
    nn = torch.nn
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def nchw(torch: Any, x: np.ndarray) -> Any:
    """An NHWC batch as a contiguous NCHW tensor (done once, outside the timed steps)."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def load_numpy_weights(
    model: Any, params: dict[str, np.ndarray], flatten_hwc: tuple[int, int, int] | None = None
) -> None:
    """Copy nnet-layout weights (conv (KH, KW, Cin, Cout), linear (in, out)) into ``model``, in order.

    ``flatten_hwc`` is the (H, W, C) feeding the first Linear after a Flatten: NHWC flattens in (h, w, c)
    order and NCHW in (c, h, w), so that Linear's rows are permuted accordingly.
    """
    import torch

    arrays = list(params.values())
    first_linear = True
    with torch.no_grad():
        for p, a in zip(model.parameters(), arrays, strict=True):
            if a.ndim == 4:
                a = a.transpose(3, 2, 0, 1)
            elif a.ndim == 2:
                if first_linear and flatten_hwc is not None:
                    h, w, c = flatten_hwc
                    a = a.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(a.shape[1], -1)
                else:
                    a = a.T
                first_linear = False
            if tuple(p.shape) != a.shape:
                raise ValueError(f"cannot load {a.shape} into {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(a)))


def train_step(torch: Any, model: Any, opt: Any, x: Any, y: Any) -> Callable[[], object]:
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    def step() -> object:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step
