"""wide_cnn_step: one Adam training step of the wide CNN at batch 64 (matmul-bound).

conv3x3(1->32)-bn-relu-pool, conv3x3(32->64)-bn-relu-pool, flatten, linear 3136->128, relu,
linear 128->10; input (64, 28, 28, 1); Adam lr 1e-3. Target (issue 5): at most 1.0x PyTorch.
"""

from __future__ import annotations

from benchmarks.common import batch, training_sides
from benchmarks.results import Row, fill
from benchmarks.timing import Config, measure

NAME = "wide_cnn_step"
TITLE = "wide CNN (32/64 channels) training step, batch 64, Adam lr 1e-3"


def run(cfg: Config) -> list[Row]:
    x, y = batch((64, 28, 28, 1))
    sides, why = training_sides("wide_cnn", x, y, "adam", 1e-3)
    measured = measure(sides, cfg, unavailable=why)
    row = Row(
        NAME, "wide CNN step, batch 64", "ms", target="<= 1.0x PyTorch", bounds=[("torch", 1.0)]
    )
    return [fill(row, measured, lambda s: s * 1e3)]


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
