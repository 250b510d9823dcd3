"""Building blocks shared by the benchmarks: inputs, and the three sides of a training step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import nnet_models, numpy_ref
from benchmarks.timing import Setup, load_torch

NETS = ("mlp", "seed_cnn", "wide_cnn")


def batch(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A dense random float32 batch in [0, 1) and int64 class labels 0..9 (timing does not depend on
    the values; dense inputs avoid pool ties that make gradient comparisons noisy)."""
    rng = np.random.default_rng(seed)
    return rng.random(shape, dtype=np.float32), rng.integers(0, 10, shape[0])


def make_optimizer(lib: Any, params: Any, opt: str, lr: float) -> Any:
    return lib.Adam(params, lr=lr) if opt == "adam" else lib.SGD(params, lr=lr)


def training_sides(
    net: str,
    x: np.ndarray,
    y: np.ndarray,
    opt: str,
    lr: float,
    **arch: Any,
) -> tuple[dict[str, Setup | None], dict[str, str]]:
    """Setups for one training step of network ``net`` on (x, y) with optimizer ``opt`` on each side.

    ``arch`` (channels, image) is passed to the wide CNN's builders (the scaling probe). Each setup
    builds a fresh model, optimizer and input tensors; it returns the step closure.
    """

    def numpy_setup() -> Callable[[], object]:
        model = getattr(numpy_ref, net)(**arch)
        o = numpy_ref.Adam(model, lr=lr) if opt == "adam" else numpy_ref.SGD(model, lr=lr)
        return numpy_ref.train_step(model, o, x, y)

    def nnet_setup() -> Callable[[], object]:
        model = getattr(nnet_models, net)(**arch)
        o = make_optimizer(nnet_models.optim(), model.parameters(), opt, lr)
        xt, yt = nnet_models.tensors(x, y)
        return nnet_models.train_step(model, o, xt, yt)

    sides: dict[str, Setup | None] = {"nnet": nnet_setup, "numpy": numpy_setup, "torch": None}
    why: dict[str, str] = {}
    torch, reason = load_torch()
    if torch is None:
        why["torch"] = reason or "not available"
    else:
        from benchmarks import torch_ref

        def torch_setup() -> Callable[[], object]:
            model = getattr(torch_ref, net)(torch, **arch)
            o = make_optimizer(torch.optim, model.parameters(), opt, lr)
            xt = torch_ref.nchw(torch, x) if x.ndim == 4 else torch.from_numpy(x)
            return torch_ref.train_step(torch, model, o, xt, torch.from_numpy(y))

        sides["torch"] = torch_setup
    return sides, why
