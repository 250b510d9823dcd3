"""Adam (with the AMSGrad variant) and AdamW (decoupled weight decay)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nnet.optim import flat
from nnet.optim.optimizer import Optimizer, ParamsT, check_range
from nnet.optim.sgd import decayed_gradient
from nnet.threads import items_per_block, parallel_for


class Adam(Optimizer):
    r"""Adaptive moments: ``p -= lr * m_hat / (sqrt(v_hat) + eps)``, as PyTorch.

    ``m_t = b1 m_{t-1} + (1 - b1) g_t``, ``v_t = b2 v_{t-1} + (1 - b2) g_t^2``,
    ``m_hat = m_t / (1 - b1^t)``, ``v_hat = v_t / (1 - b2^t)`` (``amsgrad`` uses the running maximum
    of ``v_t``); ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2). See docs/optim.md.

    >>> import nnet
    >>> w = nnet.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = nnet.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()  # the first step moves each weight by lr against its gradient's sign
    >>> w.data.round(6)
    array([ 0.9, -1.9], dtype=float32)
    """

    decoupled = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)  # fmt: skip
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_range(name, "learning rate lr", group["lr"], 0.0)
        check_range(name, "epsilon eps", group["eps"], 0.0)
        betas = group["betas"] = tuple(group["betas"])
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        check_range(name, "beta1 (betas[0])", betas[0], 0.0, 1.0)
        check_range(name, "beta2 (betas[1])", betas[1], 0.0, 1.0)
        check_range(name, "weight_decay", group["weight_decay"], 0.0)

    def _flat_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    def _flat_update(self, group: dict[str, Any], f: flat.Flat, g: np.ndarray,
                     states: list[dict[str, Any]]) -> None:  # fmt: skip
        """All of ``f``'s parameters in one pass of each operation over the flat arrays: the same
        arithmetic as :meth:`_update`, element for element."""
        tmp, wd = f.tmp, group["weight_decay"]
        if self.decoupled:
            if wd != 0:
                f.scale_params(1 - group["lr"] * wd)
            g = np.negative(g, out=tmp) if group["maximize"] else g
        elif wd != 0:  # decayed_gradient's arithmetic, the parameters read in place
            f.params_times(wd, f.tmp_views)
            g = np.subtract(tmp, g, out=tmp) if group["maximize"] else np.add(tmp, g, out=tmp)
        elif group["maximize"]:
            g = np.negative(g, out=tmp)
        t = states[0].get("step", 0) + 1
        b = f.buffers
        if f.shard is None:
            _moments(group, t, g is tmp, g, tmp, b["exp_avg"], b["exp_avg_sq"],
                     b.get("max_exp_avg_sq"), f.subtract)  # fmt: skip
        else:  # this process's part of the moments and the step (f.out), then the whole step
            part = slice(*f.part)
            vmax = b.get("max_exp_avg_sq")
            _moments(group, t, False, g[part], f.out[part], b["exp_avg"][part],
                     b["exp_avg_sq"][part], None if vmax is None else vmax[part],
                     _later)  # fmt: skip
            f.finish()
        for state in states:
            state["step"] = t

    def _update(self, group: dict[str, Any], p: np.ndarray, g: np.ndarray, state: dict[str, Any],
                tmp: np.ndarray) -> None:  # fmt: skip
        lr = group["lr"]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        if self.decoupled:
            if group["weight_decay"] != 0:
                p *= 1 - lr * group["weight_decay"]
            g = np.negative(g, out=tmp) if group["maximize"] else g
        else:
            g = decayed_gradient(group, p, g, tmp)
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        vmax = state["max_exp_avg_sq"] if group["amsgrad"] else None
        arrays = [p, g, m, v, tmp] if vmax is None else [p, g, m, v, tmp, vmax]
        large = p.size >= 2 * items_per_block(len(arrays) * p.itemsize)  # a block per thread
        if large and all(a.flags.c_contiguous for a in arrays):
            flat_p = p.reshape(-1)  # a view: p is contiguous

            def step(delta: np.ndarray, start: int, stop: int) -> None:
                np.subtract(flat_p[start:stop], delta[start:stop], out=flat_p[start:stop])

            g1, tmp1, m1, v1 = (a.reshape(-1) for a in (g, tmp, m, v))
            vmax1 = None if vmax is None else vmax.reshape(-1)
            _moments(group, state["step"], g is tmp, g1, tmp1, m1, v1, vmax1, step)
            return
        _moments_and_delta(group, state["step"], g is tmp, g, m, v, tmp, vmax)
        p -= tmp


def _later(delta: np.ndarray, start: int, stop: int) -> None:
    """A step applied later, as a whole (:meth:`nnet.optim.flat.Flat.finish`)."""


def _moments(group: dict[str, Any], t: int, in_tmp: bool, g: np.ndarray, tmp: np.ndarray,
             m: np.ndarray, v: np.ndarray, vmax: np.ndarray | None,
             step: Callable[[np.ndarray, int, int], None]) -> None:  # fmt: skip
    """Adam's arithmetic for step ``t`` over flat (contiguous 1-d) arrays: the moments updated in
    place and the step into ``tmp``, then ``step(tmp, start, stop)`` applies its elements
    ``start:stop``; a large update a block of elements per thread (nnet's threads). ``in_tmp``:
    ``g`` is (a view of) ``tmp``, as after weight decay or maximize."""
    count = 5 if vmax is None else 6  # arrays an element touches: p, g, m, v, tmp (vmax)
    min_block = items_per_block(count * tmp.itemsize)
    if tmp.size < 2 * min_block:  # one block: no slices, no closure
        _moments_and_delta(group, t, in_tmp, g, m, v, tmp, vmax)
        step(tmp, 0, tmp.size)
        return

    def elements(start: int, stop: int) -> None:
        part = slice(start, stop)
        _moments_and_delta(group, t, in_tmp, g[part], m[part], v[part], tmp[part],
                           None if vmax is None else vmax[part])  # fmt: skip
        step(tmp, start, stop)

    parallel_for(elements, tmp.size, min_block=min_block)


def _moments_and_delta(group: dict[str, Any], t: int, in_tmp: bool, g: np.ndarray, m: np.ndarray,
                       v: np.ndarray, tmp: np.ndarray, vmax: np.ndarray | None) -> None:  # fmt: skip
    """Adam's arithmetic for step ``t`` over (parts of) the gradient, moments and scratch, in place,
    leaving the step ``lr * m_hat / (sqrt(v_hat) + eps)`` in ``tmp``; ``in_tmp``: ``g`` is
    ``tmp`` (then one temporary fewer)."""
    lr, eps, (beta1, beta2) = group["lr"], group["eps"], group["betas"]
    m *= beta1
    if in_tmp:
        m += (1 - beta1) * g
    else:
        m += np.multiply(g, 1 - beta1, out=tmp)
    v *= beta2
    np.multiply(g, g, out=tmp)  # g may be tmp: it is not read after this line
    tmp *= 1 - beta2
    v += tmp
    if vmax is not None:
        v = np.maximum(vmax, v, out=vmax)
    # sqrt(v_hat) + eps, then lr * m_hat / that: PyTorch's order of operations.
    np.sqrt(v, out=tmp)
    tmp /= math.sqrt(1 - beta2**t)
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= lr / (1 - beta1**t)


class AdamW(Adam):
    r"""Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam step.

    >>> import nnet
    >>> w = nnet.tensor([1.0], requires_grad=True)
    >>> opt = nnet.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * 0).sum().backward()  # zero gradient: only the decay acts
    >>> opt.step()
    >>> w.data
    array([0.95], dtype=float32)
    """

    decoupled = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
