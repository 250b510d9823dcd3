"""mlp_step: one SGD training step of an MLP 784-256-10 at batch 128 (forward, loss, backward, update).

Targets (issue 5): at most 1.0x PyTorch and at most 1.3x the NumPy floor, in the same run.
"""

from __future__ import annotations

from benchmarks.common import batch, training_sides
from benchmarks.results import Row, fill
from benchmarks.timing import Config, measure

NAME = "mlp_step"
TITLE = "MLP 784-256-10 training step, batch 128, SGD lr 0.01, cross-entropy"


def run(cfg: Config) -> list[Row]:
    x, y = batch((128, 784))
    sides, why = training_sides("mlp", x, y, "sgd", 0.01)
    measured = measure(sides, cfg, unavailable=why)
    row = Row(
        NAME,
        "MLP step, batch 128",
        "ms",
        target="<= 1.0x PyTorch, <= 1.3x NumPy",
        bounds=[("torch", 1.0), ("numpy", 1.3)],
    )
    return [fill(row, measured, lambda s: s * 1e3)]


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
