"""PyTorch's LinearLR, SequentialLR and OneCycleLR, as closed forms of the step count like the other
schedules, so a scheduler restored from its state dict continues exactly."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from nnet.optim.lr_scheduler import LRScheduler
from nnet.optim.optimizer import Optimizer


class LinearLR(LRScheduler):
    """``lr = base_lr * factor``, the factor moving linearly from ``start_factor`` to ``end_factor``
    over ``total_iters`` steps, then staying (a warm-up).

    >>> import nnet
    >>> opt = nnet.optim.SGD([nnet.ones(1, requires_grad=True)], lr=1.0)
    >>> sched = nnet.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> [round(opt.param_groups[0]["lr"], 2) for _ in range(4) if sched.step() is None]
    [0.75, 1.0, 1.0, 1.0]
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:  # fmt: skip
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(
                f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], got "
                f"{start_factor} and {end_factor}"
            )
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        done = min(epoch, self.total_iters) / self.total_iters if self.total_iters else 1.0
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * done)


class SequentialLR(LRScheduler):
    """``schedulers[i]`` from ``milestones[i - 1]`` on, each counting its steps from 0 there.

    >>> import nnet
    >>> opt = nnet.optim.SGD([nnet.ones(1, requires_grad=True)], lr=1.0)
    >>> warm = nnet.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> decay = nnet.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> sched = nnet.optim.lr_scheduler.SequentialLR(opt, [warm, decay], milestones=[2])
    >>> [round(opt.param_groups[0]["lr"], 3) for _ in range(4) if sched.step() is None]
    [0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1) -> None:  # fmt: skip
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: expected {len(schedulers) - 1} milestones for {len(schedulers)} "
                f"schedulers, got {len(milestones)}"
            )
        for s in schedulers:
            if s.optimizer is not optimizer:
                raise ValueError("SequentialLR: every scheduler must drive the same optimizer")
        self.schedulers = list(schedulers)
        self.milestones = list(milestones)
        super().__init__(optimizer, last_epoch)

    def _set_lrs(self) -> None:
        i = bisect_right(self.milestones, self.last_epoch)
        inner = self.schedulers[i]
        inner.last_epoch = self.last_epoch - (self.milestones[i - 1] if i else 0)
        inner._set_lrs()

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "schedulers")}
        state["schedulers"] = [s.state_dict() for s in self.schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        for s, inner in zip(self.schedulers, state.pop("schedulers", []), strict=False):
            s.__dict__.update(inner)
        super().load_state_dict(state)


class OneCycleLR(LRScheduler):
    """The 1cycle policy, stepped once per batch: the rate rises from ``max_lr / div_factor`` to
    ``max_lr`` over ``pct_start`` of ``total_steps``, then falls to ``initial / final_div_factor``
    (cosine or linear); momentum (SGD's ``momentum`` or Adam's first beta) moves the other way
    between ``max_momentum`` and ``base_momentum``. PyTorch's arguments and formulas.

    >>> import nnet
    >>> opt = nnet.optim.SGD([nnet.ones(1, requires_grad=True)], lr=0.1, momentum=0.9)
    >>> sched = nnet.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    >>> round(opt.param_groups[0]["lr"], 3), round(opt.param_groups[0]["momentum"], 3)
    (0.04, 0.95)
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float = 0.85, max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:  # fmt: skip
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps <= 0 or not 0 <= pct_start <= 1 or anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: needs total_steps > 0, pct_start in [0, 1] and anneal_strategy 'cos' "
                f"or 'linear', got {total_steps}, {pct_start}, {anneal_strategy!r}"
            )
        groups = optimizer.param_groups
        maxes = list(max_lr) if isinstance(max_lr, Sequence) else [max_lr] * len(groups)
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        up = float(pct_start * total_steps) - 1
        ends = [up, 2 * float(pct_start * total_steps) - 2, total_steps - 1] if three_phase else [
            up, total_steps - 1]  # fmt: skip
        # each phase: (last step, lr from, lr to, momentum from, momentum to), as group keys
        self.phases = (
            [(ends[0], "initial_lr", "max_lr", "max_momentum", "base_momentum"),
             (ends[1], "max_lr", "initial_lr", "base_momentum", "max_momentum"),
             (ends[2], "initial_lr", "min_lr", "max_momentum", "max_momentum")]
            if three_phase else
            [(ends[0], "initial_lr", "max_lr", "max_momentum", "base_momentum"),
             (ends[1], "max_lr", "min_lr", "base_momentum", "max_momentum")]
        )  # fmt: skip
        self.cycle_momentum = cycle_momentum
        for group, top in zip(groups, maxes, strict=True):
            if last_epoch == -1:
                group.update(initial_lr=top / div_factor, max_lr=top,
                             min_lr=top / div_factor / final_div_factor)  # fmt: skip
            if cycle_momentum:
                if "momentum" not in group and "betas" not in group:
                    raise ValueError(
                        "OneCycleLR: the optimizer has no momentum or betas to cycle; "
                        "pass cycle_momentum=False"
                    )
                group.update(base_momentum=base_momentum, max_momentum=max_momentum)
        super().__init__(optimizer, last_epoch)

    def _set_lrs(self) -> None:
        step = self.last_epoch
        if step > self.total_steps:  # PyTorch allows one step past the end
            raise ValueError(
                f"OneCycleLR: stepped {step + 1} times, past total_steps={self.total_steps}"
            )
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
                if step <= end or i == len(self.phases) - 1:
                    pct = (step - start) / (end - start)
                    group["lr"] = self._anneal(group[lr0], group[lr1], pct)
                    if self.cycle_momentum:
                        m = self._anneal(group[m0], group[m1], pct)
                        if "betas" in group:
                            group["betas"] = (m, *group["betas"][1:])
                        else:
                            group["momentum"] = m
                    break
                start = end

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start
