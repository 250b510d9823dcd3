"""``nnet`` command line (``python -m nnet``): ``nnet train`` and ``nnet evaluate``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the ``nnet`` command; see ``nnet --help``."""
    from nnet.train.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
