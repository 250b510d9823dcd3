"""Modules that hold other modules: `Sequential`, `ModuleList`, `ModuleDict`, and `Identity`.

>>> import nnet
>>> model = nnet.nn.Sequential(nnet.nn.Linear(4, 3), nnet.nn.ReLU(), nnet.nn.Linear(3, 2))
>>> len(model), type(model[1]).__name__, len(model[:2])
(3, 'ReLU', 2)
>>> model(nnet.ones((5, 4))).shape
(5, 2)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload

import numpy as np

from nnet.nn.module import Module


class Identity(Module):
    """Returns its input unchanged (a placeholder where a layer is optional)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


def _index(i: int, n: int, what: str) -> int:
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"{what}: indices must be integers or slices, got {type(i).__name__}")
    if not -n <= i < n:
        raise IndexError(f"{what}: index {i} is out of range for {n} modules")
    return i % n


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Takes modules as arguments (named "0", "1", ...) or one ordered dict of names to modules.
    Supports ``len``, iteration, ``model[i]`` and ``model[i:j]`` (a new Sequential sharing the
    layers).
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, module in enumerate(modules):
                if not isinstance(module, Module):
                    raise TypeError(
                        f"Sequential: argument {i} is a {type(module).__name__}, not a Module"
                    )
                self.add_module(str(i), module)

    def forward(self, x: Any) -> Any:
        # the layers run inside this call, so runs of them fuse as in any define-by-run forward
        # (nnet/autograd/pending.py, nnet/nn/chains.py)
        for m in self._modules.values():
            x = m(x)  # type: ignore[misc]
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())  # type: ignore[arg-type]

    @overload
    def __getitem__(self, index: int) -> Module: ...
    @overload
    def __getitem__(self, index: slice) -> Sequential: ...

    def __getitem__(self, index: int | slice) -> Module | Sequential:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))  # type: ignore[arg-type]
        return items[_index(index, len(items), "Sequential")][1]  # type: ignore[return-value]

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end (named by its position); returns the Sequential."""
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters the parent module sees (a plain list would hide them)."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _renumber(self, modules: list[Module]) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())  # type: ignore[arg-type]

    def __getitem__(self, index: int | slice) -> Any:
        values = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(values[index])  # type: ignore[arg-type]
        return values[_index(index, len(values), "ModuleList")]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(str(_index(index, len(self), "ModuleList")), module)

    def __delitem__(self, index: int | slice) -> None:
        values = list(self._modules.values())
        del values[index]
        for name in list(self._modules):
            object.__delattr__(self, name)
        self._renumber(values)  # type: ignore[arg-type]

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns the list."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add each of ``modules`` at the end; returns the list."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index`` (the others are renumbered)."""
        values = list(self._modules.values())
        values.insert(index, module)
        self._renumber(values)  # type: ignore[arg-type]


class ModuleDict(Module):
    """A dict of modules (insertion-ordered) whose parameters the parent module sees."""

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r}; its keys are {list(self._modules)}")
        return self._modules[key]  # type: ignore[return-value]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]
        object.__delattr__(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        """The names, in insertion order."""
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        """The modules, in insertion order."""
        return self._modules.values()  # type: ignore[return-value]

    def items(self) -> Iterable[tuple[str, Module]]:
        """``(name, module)`` pairs, in insertion order."""
        return self._modules.items()  # type: ignore[return-value]

    def update(self, modules: Mapping[str, Module]) -> None:
        """Add (or replace) each ``name: module`` of ``modules``."""
        for k, m in modules.items():
            self.add_module(k, m)
