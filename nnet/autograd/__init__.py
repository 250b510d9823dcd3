"""The autograd engine: tensors, primitives (Functions with hand-written VJPs) and the traversal."""

from nnet.autograd import functional, lifetime
from nnet.autograd.anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled
from nnet.autograd.engine import GraphReleasedError, backward, grad
from nnet.autograd.function import Function
from nnet.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from nnet.autograd.lifetime import GraphLifetimeWarning, set_graph_warnings
from nnet.autograd.tensor import Tensor
from nnet.autograd.trace import BackwardTrace, trace
from nnet.autograd.unbroadcast import unbroadcast

__all__ = [
    "AnomalyError",
    "BackwardTrace",
    "Function",
    "GraphLifetimeWarning",
    "GraphReleasedError",
    "Tensor",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "functional",
    "grad",
    "inference_mode",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
    "set_graph_warnings",
    "trace",
    "unbroadcast",
]
