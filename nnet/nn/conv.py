"""`Conv2d` over NHWC images with (KH, KW, C_in, C_out) kernels, the seed's layouts."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.autograd.defaults import get_default_dtype
from nnet.autograd.tensor import Tensor
from nnet.autograd.window import pair
from nnet.nn import functional as F
from nnet.nn import init
from nnet.nn.module import Module, Parameter


class Conv2d(Module):
    """2-D convolution: input (N, H, W, in_channels), output (N, OH, OW, out_channels).

    ``y[n, r, c, m] = sum_{i, j, k} w[i, j, k, m] x[n, r + i - bh, c + j - bw, k] + b[m]`` at
    stride 1 with 'same' padding (bh = floor(KH/2), bw = floor(KW/2) for odd kernels).
    ``padding`` is 'same' (H and W kept at stride 1; an even kernel's extra row and column go
    after, as in PyTorch), 'valid', an int or a pair; ``kernel_size``, ``stride`` and ``dilation``
    an int or a pair. The weight (KH, KW, in_channels, out_channels) and bias start uniform in
    +-1/sqrt(KH KW in_channels), as in PyTorch.

    >>> import nnet
    >>> conv = nnet.nn.Conv2d(3, 16, 3)
    >>> conv.weight.shape, conv(nnet.zeros((8, 32, 32, 3))).shape
    ((3, 3, 3, 16), (8, 32, 32, 16))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = "same", dilation: Any = 1, bias: bool = True,
                 dtype: Any = None) -> None:  # fmt: skip
        super().__init__()
        dtype = get_default_dtype() if dtype is None else dtype
        name = f"Conv2d({in_channels} -> {out_channels})"
        F.check_sizes(name, in_channels=in_channels, out_channels=out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = pair(stride, "stride", name)
        self.dilation = pair(dilation, "dilation", name)
        for what, value in (("kernel_size", self.kernel_size), ("stride", self.stride),
                            ("dilation", self.dilation)):  # fmt: skip
            if min(value) < 1:
                raise ValueError(f"{name}: {what} must be positive, got {value}")
        F.conv_padding(padding, self.kernel_size, self.dilation, name)  # validates
        self.padding = padding
        kh, kw = self.kernel_size
        fan_in = kh * kw * in_channels
        self.weight = Parameter(np.empty((kh, kw, in_channels, out_channels), dtype))
        init.default_uniform_(self.weight, fan_in)
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype))
            init.default_uniform_(self.bias, fan_in)
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        try:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        except ValueError as e:
            raise ValueError(
                str(e).replace("conv2d", f"Conv2d({self.in_channels} -> {self.out_channels})", 1)
            ) from None

    def check_input(self, x: Tensor) -> None:
        """A clear error for an input this layer cannot take (not NHWC, the wrong dtype)."""
        shape = x.shape
        if len(shape) != 4 or shape[3] != self.in_channels:
            hint = "nnet images are NHWC"
            if len(shape) == 4 and shape[1] == self.in_channels:
                hint += " (move the channel axis last: x.permute(0, 2, 3, 1))"
            raise ValueError(
                f"Conv2d({self.in_channels} -> {self.out_channels}) expects input "
                f"(N, H, W, {self.in_channels}), got {shape}; {hint}"
            )
        F.check_input_dtype(f"Conv2d({self.in_channels} -> {self.out_channels})", x, self.weight)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            s += f", stride={self.stride}"
        s += f", padding={self.padding!r}"  # always: the 'same' default surprises PyTorch users
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.bias is None:
            s += ", bias=False"
        return s
