"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnet.optim import flat
from nnet.optim.optimizer import Optimizer, ParamsT, check_range


def decayed_gradient(group: dict[str, Any], p: np.ndarray, g: np.ndarray,
                     tmp: np.ndarray) -> np.ndarray:  # fmt: skip
    """``(-g if maximize else g) + weight_decay * p``, in ``tmp`` when it differs from ``g``."""
    wd = group["weight_decay"]
    if wd != 0:
        np.multiply(p, wd, out=tmp)
        return np.subtract(tmp, g, out=tmp) if group["maximize"] else np.add(tmp, g, out=tmp)
    return np.negative(g, out=tmp) if group["maximize"] else g


class SGD(Optimizer):
    r"""``p -= lr * b`` with ``b`` the (optionally Nesterov) momentum of the gradient, as PyTorch.

    With ``g = grad + weight_decay * p`` (``-grad`` when ``maximize``): ``b_1 = g_1``,
    ``b_t = momentum * b_{t-1} + (1 - dampening) * g_t``; the step uses ``b_t``, or
    ``g_t + momentum * b_t`` with ``nesterov``; without momentum it uses ``g_t``. See docs/optim.md.

    >>> import nnet
    >>> w = nnet.tensor([1.0], requires_grad=True)
    >>> opt = nnet.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w * w).sum().backward()
    ...     opt.step()
    >>> round(float(w.data[0]), 4)  # 1 - 0.2 = 0.8; b = 0.9*2 + 1.6 = 3.4; 0.8 - 0.34
    0.46
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay, maximize=maximize)  # fmt: skip
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_range("SGD", "learning rate lr", group["lr"], 0.0)
        check_range("SGD", "momentum", group["momentum"], 0.0)
        check_range("SGD", "dampening", group["dampening"], 0.0)
        check_range("SGD", "weight_decay", group["weight_decay"], 0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum="
                f"{group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _flat_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _flat_update(self, group: dict[str, Any], f: flat.Flat, g: np.ndarray,
                     states: list[dict[str, Any]]) -> None:  # fmt: skip
        """All of ``f``'s parameters in one pass of each operation over the flat arrays: the same
        arithmetic as :meth:`_update`, element for element."""
        tmp, wd = f.tmp, group["weight_decay"]
        if wd != 0:  # decayed_gradient's arithmetic, the parameters read in place
            f.params_times(wd, f.tmp_views)
            g = np.subtract(tmp, g, out=tmp) if group["maximize"] else np.add(tmp, g, out=tmp)
        elif group["maximize"]:
            g = np.negative(g, out=tmp)
        buf = f.buffers["momentum_buffer"] if group["momentum"] != 0 else None
        if f.shard is None:
            _momentum_and_step(group, g, buf, f.fresh, tmp)
            f.subtract(tmp)
            return
        part = slice(*f.part)  # this process's part of the buffer and the step, then the whole step
        _momentum_and_step(group, g[part], None if buf is None else buf[part], f.fresh,
                           f.out[part])  # fmt: skip
        f.finish()

    def _update(self, group: dict[str, Any], p: np.ndarray, g: np.ndarray, state: dict[str, Any],
                tmp: np.ndarray) -> None:  # fmt: skip
        g = decayed_gradient(group, p, g, tmp)
        buf = None
        if group["momentum"] != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.empty_like(p)
                _momentum_and_step(group, g, buf, True, tmp)
                p -= tmp
                return
        _momentum_and_step(group, g, buf, False, tmp)
        p -= tmp


def _momentum_and_step(group: dict[str, Any], g: np.ndarray, buf: np.ndarray | None, first: bool,
                       tmp: np.ndarray) -> None:  # fmt: skip
    """The step ``lr * d_t`` into ``tmp`` from the (decayed) gradient ``g``, which may be ``tmp``,
    updating the momentum buffer ``buf`` (None without momentum; ``first``: ``b_1 = g_1``)."""
    momentum = group["momentum"]
    if buf is not None:
        if first:
            np.copyto(buf, g)
        else:
            buf *= momentum
            if group["dampening"] == 0:
                buf += g
            else:
                buf += (1 - group["dampening"]) * g
        if group["nesterov"]:
            g = np.add(g, momentum * buf, out=tmp)
        else:
            g = buf
    np.multiply(g, group["lr"], out=tmp)
