"""``python benchmarks/conv.py``: the Conv2d figure that issue 3 names (an alias of ``conv2d``)."""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.run import main

    main(["--only", "conv2d", *sys.argv[1:]])
