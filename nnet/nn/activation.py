"""Activations and shape layers: `Sigmoid`, `ReLU`, `LeakyReLU`, `ELU`, `GELU`, `SiLU`,
`Softplus`, `Tanh`, `Softmax`, `LogSoftmax`, `Flatten`. Each is one primitive (or a short
composition) wrapped as a module."""

from __future__ import annotations

from nnet.autograd import ops
from nnet.autograd.tensor import Tensor
from nnet.nn.module import Module


class Sigmoid(Module):
    """``1 / (1 + e^-x)``, elementwise; derivative s (1 - s)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


class ReLU(Module):
    """``max(x, 0)``, elementwise; relu'(0) = 0."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class LeakyReLU(Module):
    """``x`` for x > 0, else ``negative_slope x``."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return ops.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """``x`` for x > 0, else ``alpha (e^x - 1)``; the derivative at 0 is ``alpha``."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return ops.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(Module):
    """``x Phi(x)`` with Phi the standard normal CDF (``approximate="tanh"``: PyTorch's tanh form)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return ops.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """``x sigmoid(x)``, elementwise (swish)."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.silu(x)


class Softplus(Module):
    """``log(1 + e^(beta x)) / beta``, the identity where ``beta x > threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"Softplus: beta must be positive, got {beta}")
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: Tensor) -> Tensor:
        return ops.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Tanh(Module):
    """Hyperbolic tangent, elementwise; derivative 1 - t^2."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Softmax(Module):
    """``exp(x) / sum(exp(x))`` along ``axis`` (the last, class axis by default)."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return ops.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """``log(softmax(x))`` along ``axis``, computed stably."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.log_softmax(x, self.axis)


class Flatten(Module):
    """Merge axes ``start_dim`` to ``end_dim`` (by default all but the batch axis) into one.

    An NHWC image (N, H, W, C) becomes (N, H W C) in (h, w, c) order: a Linear layer after it sees
    features in that order, not PyTorch's (c, h, w) (see ``nnet.nn.utils.export_torch_state_dict``).
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: Tensor) -> Tensor:
        return ops.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
