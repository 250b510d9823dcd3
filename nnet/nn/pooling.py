"""`MaxPool2d` and `AvgPool2d` over NHWC images: sliding windows, then a max or a mean."""

from __future__ import annotations

from typing import Any

from nnet.autograd.tensor import Tensor
from nnet.nn import functional as F
from nnet.nn.module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def _run(self, fn: Any, x: Tensor, *args: Any) -> Tensor:
        try:
            return fn(x, self.kernel_size, self.stride, self.padding, *args)
        except ValueError as e:
            raise ValueError(str(e).replace(fn.__name__, repr(self), 1)) from None

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """The maximum of each (dilated) window: input (N, H, W, C), output (N, OH, OW, C); stride
    defaults to the kernel size; padding counts as -inf; ties send the gradient to the first maximal
    element of the window (row-major), as PyTorch.

    >>> import nnet
    >>> nnet.nn.MaxPool2d(2)(nnet.zeros((1, 5, 5, 3))).shape
    (1, 2, 2, 3)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1) -> None:  # fmt: skip
        super().__init__(kernel_size, stride, padding)
        self.dilation = dilation

    def forward(self, x: Tensor) -> Tensor:
        return self._run(F.max_pool2d, x, self.dilation)

    def extra_repr(self) -> str:
        extra = f", dilation={self.dilation}" if self.dilation != 1 else ""
        return super().extra_repr() + extra


class AvgPool2d(_Pool2d):
    """The mean of each window: input (N, H, W, C), output (N, OH, OW, C); padding counts as zeros,
    included in the divisor unless ``count_include_pad=False``."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 count_include_pad: bool = True) -> None:  # fmt: skip
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return self._run(F.avg_pool2d, x, self.count_include_pad)
