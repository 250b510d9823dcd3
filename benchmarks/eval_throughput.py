"""eval_throughput: seed-network inference, images per second, batch 1000, eval mode, no gradients.

nnet under ``nnet.no_grad()`` with ``model.eval()`` (batch-norm running statistics, no dropout);
PyTorch the same with ``torch.no_grad()``; the NumPy floor is the forward pass alone. Target
(issue 5): at least 1.0x PyTorch's throughput.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks import nnet_models, numpy_ref
from benchmarks.common import batch
from benchmarks.results import Row, fill
from benchmarks.timing import Config, Setup, load_torch, measure

NAME = "eval_throughput"
TITLE = "seed network inference under no_grad, batch 1000, images per second"
BATCH = 1000


def sides(x: np.ndarray) -> tuple[dict[str, Setup | None], dict[str, str]]:
    def numpy_setup() -> Callable[[], object]:
        net = numpy_ref.seed_cnn()
        return lambda: net.forward(x, train=False)

    def nnet_setup() -> Callable[[], object]:
        import nnet

        model = nnet_models.seed_cnn()
        model.eval()
        xt = nnet.Tensor(x)

        def step() -> object:
            with nnet.no_grad():
                return model(xt)

        return step

    out: dict[str, Setup | None] = {"nnet": nnet_setup, "numpy": numpy_setup, "torch": None}
    why = {}
    torch, reason = load_torch()
    if torch is None:
        why["torch"] = reason or "not available"
    else:
        from benchmarks import torch_ref

        def torch_setup() -> Callable[[], object]:
            model = torch_ref.seed_cnn(torch)
            model.eval()
            xt = torch_ref.nchw(torch, x)

            def step() -> object:
                with torch.no_grad():
                    return model(xt)

            return step

        out["torch"] = torch_setup
    return out, why


def run(cfg: Config) -> list[Row]:
    x, _ = batch((BATCH, 28, 28, 1))
    s, why = sides(x)
    measured = measure(s, cfg, unavailable=why)
    row = Row(
        NAME,
        "seed CNN inference, batch 1000",
        "img/s",
        higher_is_better=True,
        target=">= 1.0x PyTorch",
        bounds=[("torch", 1.0)],
    )
    return [fill(row, measured, lambda t: BATCH / t)]


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
