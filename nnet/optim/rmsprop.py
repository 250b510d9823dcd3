"""RMSprop: divide the gradient by a running root-mean-square of its recent magnitudes."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.optim.optimizer import Optimizer, ParamsT, check_range
from nnet.optim.sgd import decayed_gradient


class RMSprop(Optimizer):
    r"""``v_t = alpha v_{t-1} + (1 - alpha) g_t^2``; ``p -= lr * g_t / (sqrt(v_t) + eps)``, as PyTorch.

    ``centered`` subtracts the squared running mean of the gradient from ``v_t`` before the root;
    ``momentum`` accumulates ``b_t = momentum b_{t-1} + g_t / (sqrt(v_t) + eps)`` and steps by
    ``lr * b_t``. See docs/optim.md.

    >>> import nnet
    >>> w = nnet.tensor([1.0], requires_grad=True)
    >>> opt = nnet.optim.RMSprop([w], lr=0.01, alpha=0.75)
    >>> (w * w).sum().backward()
    >>> opt.step()  # v = 0.25 * 4 = 1: the step is lr * 2 / 1
    >>> w.data
    array([0.98], dtype=float32)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)  # fmt: skip
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_range("RMSprop", "learning rate lr", group["lr"], 0.0)
        check_range("RMSprop", "epsilon eps", group["eps"], 0.0)
        check_range("RMSprop", "alpha", group["alpha"], 0.0, 1.0, high_open=False)
        check_range("RMSprop", "momentum", group["momentum"], 0.0)
        check_range("RMSprop", "weight_decay", group["weight_decay"], 0.0)

    def _update(self, group: dict[str, Any], p: np.ndarray, g: np.ndarray, state: dict[str, Any],
                tmp: np.ndarray) -> None:  # fmt: skip
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1
        g = decayed_gradient(group, p, g, tmp)
        sq = state["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * g * g
        if group["centered"]:
            mean = state["grad_avg"]
            mean *= alpha
            mean += (1 - alpha) * g
            denom = np.sqrt(sq - mean * mean)
        else:
            denom = np.sqrt(sq)
        denom += group["eps"]
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += np.divide(g, denom, out=denom)
            np.multiply(buf, group["lr"], out=tmp)
        else:
            np.divide(g, denom, out=tmp)
            tmp *= group["lr"]
        p -= tmp
