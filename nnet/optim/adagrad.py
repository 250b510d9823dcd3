"""Adagrad: per-coordinate step sizes shrinking with the sum of all past squared gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.optim.optimizer import Optimizer, ParamsT, check_range
from nnet.optim.sgd import decayed_gradient


class Adagrad(Optimizer):
    r"""``s_t = s_{t-1} + g_t^2``; ``p -= lr_t * g_t / (sqrt(s_t) + eps)``, as PyTorch.

    ``lr_t = lr / (1 + (t - 1) * lr_decay)`` and ``s_0 = initial_accumulator_value``.
    See docs/optim.md.

    >>> import nnet
    >>> w = nnet.tensor([1.0], requires_grad=True)
    >>> opt = nnet.optim.Adagrad([w], lr=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()  # s = 4: the step is 0.5 * 2 / 2
    >>> w.data
    array([0.5], dtype=float32)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                        initial_accumulator_value=initial_accumulator_value,
                        maximize=maximize)  # fmt: skip
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_range("Adagrad", "learning rate lr", group["lr"], 0.0)
        check_range("Adagrad", "lr_decay", group["lr_decay"], 0.0)
        check_range("Adagrad", "weight_decay", group["weight_decay"], 0.0)
        check_range("Adagrad", "initial_accumulator_value",
                    group["initial_accumulator_value"], 0.0)  # fmt: skip
        check_range("Adagrad", "epsilon eps", group["eps"], 0.0)

    def _update(self, group: dict[str, Any], p: np.ndarray, g: np.ndarray, state: dict[str, Any],
                tmp: np.ndarray) -> None:  # fmt: skip
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p, group["initial_accumulator_value"])
        state["step"] += 1
        g = decayed_gradient(group, p, g, tmp)
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += g * g
        denom = np.sqrt(s)
        denom += group["eps"]
        np.divide(g, denom, out=tmp)
        tmp *= clr
        p -= tmp
