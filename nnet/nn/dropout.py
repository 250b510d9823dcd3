"""`Dropout`: the seed's inverted dropout, ``y = m x / (1 - p)``, active only in training mode."""

from __future__ import annotations

from nnet.autograd.tensor import Tensor
from nnet.nn import functional as F
from nnet.nn.module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p), so the expected
    output is the input; the identity in eval mode. Masks come from nnet's generator
    (:func:`nnet.manual_seed`).

    >>> import nnet
    >>> drop = nnet.nn.Dropout(0.5).eval()
    >>> drop(nnet.ones(4)).numpy()
    array([1., 1., 1., 1.], dtype=float32)
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
