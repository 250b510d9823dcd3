"""Datasets: ``Dataset``, the array-backed ``TensorDataset``, ``Subset`` and ``random_split``."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnet.autograd.tensor import Tensor
from nnet.random import get_generator


class Dataset:
    """A sized collection of samples: subclasses define ``__getitem__(i)`` and ``__len__``.

    A dataset that can fetch many samples at once with one fancy index defines
    ``__getitems__(indices)`` returning a tuple of arrays (one per field, batch first); the
    :class:`~nnet.data.DataLoader` then builds each batch with one call instead of a Python loop.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples are rows of the given arrays (or Tensors), which share their first dimension.

    >>> import numpy as np
    >>> from nnet.data import TensorDataset
    >>> ds = TensorDataset(np.arange(6).reshape(3, 2), np.array([0, 1, 0]))
    >>> len(ds)
    3
    >>> x, y = ds[1]
    >>> x, int(y)
    (array([2, 3]), 1)
    >>> ds.__getitems__(np.array([2, 0]))
    (array([[4, 5],
           [0, 1]]), array([0, 0]))
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset: give at least one array")
        self.arrays = tuple(np.asarray(a.data if isinstance(a, Tensor) else a) for a in arrays)
        sizes = [len(a) if a.ndim else None for a in self.arrays]
        if None in sizes or len(set(sizes)) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(
                f"TensorDataset: all arrays need the same first dimension (the sample count); "
                f"got shapes {shapes}"
            )

    @property
    def tensors(self) -> tuple[np.ndarray, ...]:
        """PyTorch's name for the fields."""
        return self.arrays

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        n = len(self.arrays[0])
        if isinstance(index, (int, np.integer)) and not -n <= index < n:
            # IndexError, as the sequence protocol expects, but naming the dataset
            raise IndexError(f"TensorDataset: index {index} is out of range for {n} samples")
        return tuple(a[index] for a in self.arrays)

    def __getitems__(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(a[indices] for a in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (batched with one fancy index when it can be).

    >>> import numpy as np
    >>> from nnet.data import Subset, TensorDataset
    >>> sub = Subset(TensorDataset(np.arange(10) * 10), [7, 2])
    >>> len(sub), int(sub[0][0])
    (2, 70)
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices must be in [0, {n}) for a dataset of {n} samples")

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    @property
    def __getitems__(self) -> Callable[[np.ndarray], Any]:
        """Batchable only when the wrapped dataset is: otherwise an AttributeError, so that
        ``getattr(subset, "__getitems__", None)`` is None. A property rather than an attribute set
        in ``__init__`` so that a Subset pickles (to a worker process)."""
        getitems = getattr(self.dataset, "__getitems__", None)
        if getitems is None:
            raise AttributeError(f"{type(self.dataset).__name__} has no __getitems__")
        return lambda indices: getitems(self.indices[indices])

    def __len__(self) -> int:
        return len(self.indices)


def random_split(
    dataset: Dataset,
    lengths: Sequence[int | float],
    generator: np.random.Generator | int | None = None,
) -> list[Subset]:
    """Split into non-overlapping random subsets of the given lengths (or fractions summing to 1).

    ``generator`` defaults to nnet's (so :func:`nnet.manual_seed` makes the split repeatable).

    >>> import numpy as np
    >>> from nnet.data import TensorDataset, random_split
    >>> train, val = random_split(TensorDataset(np.arange(10)), [0.8, 0.2], generator=0)
    >>> len(train), len(val)
    (8, 2)
    """
    n = len(dataset)
    sizes = [float(x) for x in lengths]
    if math.isclose(sum(sizes), 1) and sum(sizes) <= 1 and all(f >= 0 for f in sizes):
        counts = [math.floor(n * f) for f in sizes]
        for i in range(n - sum(counts)):  # hand out the remainder round-robin, as PyTorch
            counts[i % len(counts)] += 1
    else:
        counts = [int(x) for x in lengths]
        if any(c < 0 for c in counts) or sum(counts) != n or counts != sizes:
            raise ValueError(
                f"random_split: lengths {list(lengths)} must be non-negative integers summing to "
                f"the dataset's {n} samples, or fractions summing to 1"
            )
    rng = as_generator(generator, "random_split")
    order = rng.permutation(n)
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, order[a:b]) for a, b in itertools.pairwise(bounds)]


def as_generator(generator: np.random.Generator | int | None, who: str) -> np.random.Generator:
    """A NumPy generator from ``generator``: itself, a new one seeded by the int, or nnet's."""
    if generator is None:
        return get_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(
        f"{who}: generator must be a numpy.random.Generator, an int seed or None, "
        f"got {type(generator).__name__}"
    )
