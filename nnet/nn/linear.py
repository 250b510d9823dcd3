"""`Linear`: ``Y = X W + B`` with W of shape (in_features, out_features), the seed's layout."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.defaults import get_default_dtype
from nnet.autograd.tensor import Tensor
from nnet.nn import functional as F
from nnet.nn import init
from nnet.nn.module import Module, Parameter


class Linear(Module):
    """A fully connected layer: input (..., in_features), output (..., out_features).

    ``weight`` has shape (in_features, out_features) (the seed's layout: the transpose of PyTorch's)
    and ``bias`` (out_features,); both start uniform in +-1/sqrt(in_features), as in PyTorch.

    >>> import nnet
    >>> layer = nnet.nn.Linear(784, 10)
    >>> layer.weight.shape, layer(nnet.zeros((32, 784))).shape
    ((784, 10), (32, 10))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__()
        dtype = get_default_dtype() if dtype is None else dtype
        F.check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.empty((in_features, out_features), dtype))
        init.default_uniform_(self.weight, in_features)
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype))
            init.default_uniform_(self.bias, in_features)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        if not shape or shape[-1] != self.in_features:
            hint = "; flatten images first with nnet.nn.Flatten()" if len(shape) > 2 else ""
            raise ValueError(
                f"Linear({self.in_features} -> {self.out_features}) expects input "
                f"(..., {self.in_features}), got {shape}{hint}"
            )
        F.check_input_dtype(f"Linear({self.in_features} -> {self.out_features})", x, self.weight)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
