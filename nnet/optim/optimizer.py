"""`Optimizer`: parameter groups, per-parameter state, and state dicts that resume training exactly."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nnet.autograd.grad_mode import no_grad
from nnet.autograd.lifetime import STEP, at_boundary
from nnet.autograd.tensor import Tensor
from nnet.autograd.version import bump
from nnet.optim import flat

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


def check_range(name: str, what: str, value: float, low: float, high: float | None = None,
                high_open: bool = True) -> None:  # fmt: skip
    """Raise ``ValueError`` naming the optimizer, the argument and the value when out of range."""
    ok = value >= low and (high is None or (value < high if high_open else value <= high))
    if not ok:
        bound = f">= {low}" if high is None else f"in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name}: invalid {what} {value!r}; it must be {bound}")


class Optimizer:
    """Base class: subclasses define ``_update(group, p, grad, state, tmp)`` for one parameter, and
    may define ``_flat_keys(group)`` and ``_flat_update(group, f, g, states)`` to update a group's
    parameters together over flat arrays (nnet/optim/flat.py).

    ``params`` is an iterable of tensors, or of dicts (parameter groups) each with a ``"params"``
    list and optional per-group hyper-parameters that override ``defaults``.

    >>> import nnet
    >>> w = nnet.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = nnet.optim.SGD([w], lr=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    Tensor([0., 0.], dtype=float32, requires_grad=True)
    >>> opt.zero_grad()
    >>> w.grad is None
    True
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: dict[Tensor, dict[str, Any]] = {}
        # One scratch array per parameter, so that updates run in place without temporaries.
        self._scratch: dict[Tensor, np.ndarray] = {}
        # per (group, dtype): the flat arrays its parameters share (see _step_group)
        self._flats: dict[tuple[int, np.dtype], flat.Flat] = {}
        self.param_groups: list[dict[str, Any]] = []
        # tensors, or group dicts (decided by the first item; add_param_group checks each)
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join([*lines, ")"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters (the rest from ``defaults``)."""
        name = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise ValueError(f"{name}: a parameter group is a dict with a 'params' entry")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameters must be Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (one with a grad_fn)")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError(f"{name}: a parameter appears more than once among the groups")
        group = {**param_group, "params": params}
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate one group's hyper-parameters (subclasses raise ValueError naming the value)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad`` (to ``None``, or to zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; ``closure`` re-evaluates the loss first."""
        at_boundary(STEP, sys._getframe(1))  # an iteration ends: graphs kept across it are leaks
        loss = None
        if closure is not None:
            from nnet.autograd.grad_mode import enable_grad

            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._step_group(group, [p for p in group["params"] if p.grad is not None])
        return loss

    def _step_group(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """Update ``params`` (those of ``group`` that have a gradient): together over flat arrays,
        as far as they can share them, the others one at a time."""
        keys = self._flat_keys(group)
        if keys is not None and flat.ENABLED and len(params) >= 2:
            together, alone = flat.together(params)
            for same in flat.groups_by_dtype(together) if len(together) >= 2 else [together]:
                if len(same) < 2 or not self._step_together(group, same, keys):
                    alone += same
            params = alone
        self._step_each(group, params)

    def _step_together(self, group: dict[str, Any], params: list[Tensor],
                       keys: tuple[str, ...]) -> bool:  # fmt: skip
        """Update ``params`` (one dtype) over flat arrays; False (nothing done) when they cannot."""
        key = (id(group), params[0].data.dtype)
        states = [self.state.setdefault(p, {}) for p in params]
        f = flat.ready(self._flats.get(key), params, states, keys, self)
        if f is None:
            return False
        g = f.gradients()
        if g is None:
            return False
        self._flats[key] = f
        self._flat_update(group, f, g, states)
        f.fresh = False
        f.bump()  # a graph that saved a parameter before this step can't backward again
        return True

    def _flat_keys(self, group: dict[str, Any]) -> tuple[str, ...] | None:
        """The state entries of an update that can run over flat arrays, or None (one at a time)."""
        return None

    def _flat_update(self, group: dict[str, Any], f: flat.Flat, g: np.ndarray,
                     states: list[dict[str, Any]]) -> None:  # fmt: skip
        """Update the parameters of ``f`` from their flat gradient ``g``, as ``_update`` would each."""
        raise NotImplementedError

    def _step_each(self, group: dict[str, Any], params: list[Tensor]) -> None:
        """Update ``params`` one at a time."""
        for p in params:
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {}
            tmp = self._scratch.get(p)
            if tmp is None or tmp.shape != p.data.shape or tmp.dtype != p.data.dtype:
                tmp = self._scratch[p] = np.empty_like(p.data)
            self._update(group, p.data, p.grad.data, state, tmp)  # type: ignore[union-attr]
            bump(p.data)  # a graph that saved p before this step can't backward again

    def _update(self, group: dict[str, Any], p: np.ndarray, g: np.ndarray, state: dict[str, Any],
                tmp: np.ndarray) -> None:  # fmt: skip
        """Update the array ``p`` in place from its gradient ``g`` (``tmp``: scratch of p's shape)."""
        raise NotImplementedError

    # -- state dicts -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters and per-parameter state: arrays, numbers, strings (``nnet.save``-able).

        The layout is PyTorch's: ``state`` maps each parameter's position across the groups (0, 1,
        ...) to its buffers, ``param_groups`` lists the hyper-parameters with those positions, so the
        dict loads into a new optimizer over the same model's parameters.
        """
        state: dict[int, Any] = {}
        groups: list[dict[str, Any]] = []
        index = 0
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                if p in self.state:
                    state[index] = {k: _copy(v) for k, v in self.state[p].items()}
                ids.append(index)
                index += 1
            hyper = {k: v for k, v in group.items() if k != "params"}
            groups.append({**hyper, "params": ids})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (copies the arrays; checks the group sizes)."""
        name = type(self).__name__
        missing = [k for k in ("state", "param_groups") if k not in state_dict]
        if missing:
            raise ValueError(
                f"{name}.load_state_dict: not an optimizer state dict (no {' or '.join(missing)} "
                f"entry; it has {sorted(map(str, state_dict))})"
            )
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state has {len(saved_groups)} parameter group(s), "
                f"this optimizer has {len(self.param_groups)}"
            )
        params: list[Tensor] = []
        for i, (group, sg) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            n = len(np.asarray(sg.get("params", ())).reshape(-1))
            if n != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {i} has {n} parameter(s) in the state "
                    f"and {len(group['params'])} in this optimizer"
                )
            params += group["params"]
        for key in state_dict["state"]:
            if not 0 <= int(key) < len(params):
                raise ValueError(
                    f"{name}.load_state_dict: the state refers to parameter {key}, but the groups "
                    f"hold {len(params)}"
                )
        for group, sg in zip(self.param_groups, saved_groups, strict=True):
            for key, value in sg.items():
                if key != "params":
                    group[key] = _restore(value, group.get(key))
        self.state = {}
        for key, value in state_dict["state"].items():
            p = params[int(key)]
            entry = {}
            for k, v in value.items():
                if isinstance(v, (np.ndarray, Tensor)):
                    arr = np.asarray(v.data if isinstance(v, Tensor) else v)
                    if arr.shape != p.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state {k!r} of parameter {key} has shape "
                            f"{arr.shape}, the parameter has shape {p.shape}"
                        )
                    v = arr.astype(p.dtype, copy=True)
                elif isinstance(v, np.generic):
                    v = v.item()
                entry[k] = v
            self.state[p] = entry


def _copy(v: Any) -> Any:
    return v.copy() if isinstance(v, np.ndarray) else v


def _restore(value: Any, current: Any) -> Any:
    if isinstance(current, tuple):
        return tuple(float(x) for x in np.asarray(value).reshape(-1))
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(current, bool):
        return bool(value)
    return value
