"""``python -m benchmarks``: run the suite (see run.py)."""

import sys

import benchmarks  # noqa: F401  (pins the thread pools before NumPy loads)
from benchmarks.run import main

sys.exit(main())
