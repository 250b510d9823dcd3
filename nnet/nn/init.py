"""Weight initialisation, in place, drawing from nnet's seedable generator
(:func:`nnet.manual_seed`).

Fans follow nnet's layouts: a Linear weight (in, out) has fan_in = in and fan_out = out; a Conv2d
kernel (KH, KW, C_in, C_out) has fan_in = KH KW C_in and fan_out = KH KW C_out. In general the last
axis is the output, the one before it the input, and the leading axes the receptive field.

>>> import nnet
>>> _ = nnet.manual_seed(0)
>>> w = nnet.nn.init.kaiming_uniform_(nnet.zeros((3, 3, 16, 32)), nonlinearity="relu")
>>> bool(abs(w.numpy()).max() <= (6 / (3 * 3 * 16)) ** 0.5)
True
"""

from __future__ import annotations

import math

import numpy as np

from nnet.autograd.tensor import Tensor
from nnet.autograd.version import bump
from nnet.random import get_generator


def _fill(t: Tensor, values: np.ndarray | float) -> Tensor:
    """Write into the existing array, so views of it (and optimizers holding it) see the values."""
    t.data[...] = values
    bump(t.data)  # as PyTorch's init: an in-place change that a graph recorded before must notice
    return t


def calculate_fan_in_and_fan_out(t: Tensor | np.ndarray) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight in nnet's layout (inputs on axis -2, outputs on axis -1)."""
    shape = t.shape
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need a weight with at least 2 axes, got shape {shape}"
        )
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    if nonlinearity in ("linear", "conv2d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with samples from U(a, b)."""
    return _fill(t, get_generator().uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with samples from N(mean, std^2)."""
    return _fill(t, get_generator().normal(mean, std, t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    """Fill ``t`` with ``value`` in place; returns ``t``.

    >>> import nnet
    >>> nnet.nn.init.constant_(nnet.zeros(3), 0.5).numpy()
    array([0.5, 0.5, 0.5], dtype=float32)
    """
    return _fill(t, value)


def zeros_(t: Tensor) -> Tensor:
    """Fill ``t`` with zeros in place; returns ``t``."""
    return _fill(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    """Fill ``t`` with ones in place; returns ``t``."""
    return _fill(t, 1.0)


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-a, a) with a = gain sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std^2) with std = gain sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """U(-b, b) with b = gain sqrt(3 / fan) (He et al., 2015)."""
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return uniform_(t, -bound, bound)


def kaiming_normal_(
    t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan)."""
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity))


def default_uniform_(t: Tensor, fan_in: int) -> Tensor:
    """PyTorch's default for Linear and Conv2d weights and biases:
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return uniform_(t, -bound, bound)


__all__ = [
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "constant_",
    "default_uniform_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
