"""``nnet`` command line (``python -m nnet``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Until the training job lands: a demo that builds a graph, runs backward and prints gradients."""
    import nnet

    nnet.manual_seed(0)
    w = nnet.randn(3, 2, requires_grad=True)
    x = nnet.randn(4, 3)
    loss = nnet.sigmoid(x @ w).mean()
    loss.backward()
    print(f"loss = {loss.item():.4f}")
    print("dloss/dw =", w.grad)
    return 0


if __name__ == "__main__":
    sys.exit(main())
