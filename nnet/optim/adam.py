"""Adam (with the AMSGrad variant) and AdamW (decoupled weight decay)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnet.autograd.tensor import Tensor
from nnet.autograd.version import bump
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
        self._flats: dict[int, flat.Flat] = {}  # per group: its small parameters' flat arrays

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

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """The group's small parameters in one update over flat arrays (nnet/optim/flat.py), the
        others one at a time."""
        small = [p for p in params if p.data.size <= flat.FLAT_MAX_ELEMENTS]
        if len(small) >= 2:
            states = [self.state.setdefault(p, {}) for p in small]
            if flat.eligible(small, states):
                self._flat_step(group, small, states)
                params = [p for p in params if p.data.size > flat.FLAT_MAX_ELEMENTS]
        super()._step_group(group, params)

    def _flat_step(self, group: dict[str, Any], small: list[Tensor],
                   states: list[dict[str, Any]]) -> None:  # fmt: skip
        keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
        f = self._flats.get(id(group))
        if f is None or not f.current(small, states, keys):
            f = self._flats[id(group)] = flat.build(small, states, keys)
        flat.gather(f)
        shared = {"step": states[0].get("step", 0), **f.buffers}
        self._update(group, f.p, f.g, shared, f.tmp)
        flat.scatter(f)
        for p, state in zip(small, states, strict=True):
            state["step"] = shared["step"]
            bump(p.data)  # a graph that saved p before this step can't backward again

    def _update(self, group: dict[str, Any], p: np.ndarray, g: np.ndarray, state: dict[str, Any],
                tmp: np.ndarray) -> None:  # fmt: skip
        lr = group["lr"]
        if not state:
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
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        vmax = state["max_exp_avg_sq"] if group["amsgrad"] else None
        in_tmp = g is tmp  # g already lives in the scratch array (decay or maximize)
        arrays = [p, g, m, v, tmp] if vmax is None else [p, g, m, v, tmp, vmax]
        # a large parameter (a wide linear layer) a block of elements per thread
        min_block = items_per_block(len(arrays) * p.itemsize)
        if p.size < 2 * min_block or not all(a.flags.c_contiguous for a in arrays):
            _moments_and_step(group, t, in_tmp, p, g, m, v, tmp, vmax)
            return
        flat = [a.reshape(-1) for a in arrays]  # views: the arrays are contiguous

        def elements(start: int, stop: int) -> None:
            fp, fg, fm, fv, ft, *fmax = (a[start:stop] for a in flat)
            _moments_and_step(group, t, in_tmp, fp, fg, fm, fv, ft, fmax[0] if fmax else None)

        parallel_for(elements, p.size, min_block=min_block)


def _moments_and_step(group: dict[str, Any], t: int, in_tmp: bool, p: np.ndarray, g: np.ndarray,
                      m: np.ndarray, v: np.ndarray, tmp: np.ndarray,
                      vmax: np.ndarray | None) -> None:  # fmt: skip
    """Adam's arithmetic for step ``t`` over (parts of) the parameter, its gradient, moments and
    scratch, in place; ``in_tmp``: ``g`` is ``tmp`` (then one temporary fewer)."""
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
    p -= tmp


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
