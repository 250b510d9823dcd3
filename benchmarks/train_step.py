"""``python benchmarks/train_step.py``: the training-step figures that issues 3 and 4 name, the seed
network's (batch 100, Adam) and the MLP's (784-256-10, batch 128, SGD); an alias of
``--only seed_cnn_step,mlp_step``."""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.run import main

    main(["--only", "seed_cnn_step,mlp_step", *sys.argv[1:]])
