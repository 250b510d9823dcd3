"""Hooks kept per tensor: the table behind ``register_hook`` and ``register_post_accumulate_grad_hook``.

Tensor ``==`` is elementwise, so tensors cannot be dict keys (a dict of weak keys would call it): the
table is keyed by ``id``, and each entry holds a weak reference whose callback drops the entry when
the tensor dies, so an id is never reused for a stale entry.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnet.autograd.tensor import Tensor

Hook = Callable[..., Any]
_next_key = itertools.count().__next__


class RemovableHandle:
    """What a ``register_*_hook`` returns: ``handle.remove()`` takes the hook away again."""

    def __init__(self, table: HookTable, tensor: Tensor, key: int) -> None:
        self._table = table
        self._tensor = weakref.ref(tensor)
        self._key = key

    def remove(self) -> None:
        t = self._tensor()
        if t is not None:
            self._table.remove(t, self._key)


class HookTable:
    """Each tensor's hooks in registration order; ``on_empty(tensor)`` runs when its last hook is
    removed (a tensor whose hooks are all gone may need to clear a flag of its own)."""

    def __init__(self, on_empty: Callable[[Tensor], None] | None = None) -> None:
        self._entries: dict[int, tuple[weakref.ref[Tensor], dict[int, Hook]]] = {}
        self._on_empty = on_empty

    def add(self, tensor: Tensor, hook: Hook) -> RemovableHandle:
        k = id(tensor)
        if k not in self._entries:
            self._entries[k] = (weakref.ref(tensor, self._forget(k)), {})
        key = _next_key()
        self._entries[k][1][key] = hook
        return RemovableHandle(self, tensor, key)

    def remove(self, tensor: Tensor, key: int) -> None:
        entry = self._entries.get(id(tensor))
        if entry is None:
            return
        entry[1].pop(key, None)
        if not entry[1]:
            del self._entries[id(tensor)]
            if self._on_empty is not None:
                self._on_empty(tensor)

    def hooks(self, tensor: Tensor) -> list[Hook]:
        """``tensor``'s hooks, as a copy: a hook may remove itself while they run."""
        entry = self._entries.get(id(tensor))
        return list(entry[1].values()) if entry is not None else []

    def __contains__(self, tensor_id: int) -> bool:
        return tensor_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def _forget(self, k: int) -> Callable[[weakref.ref[Tensor]], None]:
        """The callback that drops a dead tensor's entry (binding the dict: at interpreter exit the
        module globals may already be gone)."""
        entries = self._entries

        def forget(_: weakref.ref[Tensor]) -> None:
            entries.pop(k, None)

        return forget
