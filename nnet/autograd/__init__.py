"""The autograd engine: tensors, primitives (Functions with hand-written VJPs) and the traversal."""

from nnet.autograd.engine import GraphReleasedError, backward, grad, unbroadcast
from nnet.autograd.function import Function
from nnet.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from nnet.autograd.tensor import Tensor

__all__ = [
    "Function",
    "GraphReleasedError",
    "Tensor",
    "backward",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
    "unbroadcast",
]
