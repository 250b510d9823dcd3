"""``DataLoader``: batches of a dataset as tuples of Tensors, shuffled by its own generator."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from nnet.autograd.defaults import get_default_dtype
from nnet.autograd.lifetime import BATCH, at_boundary
from nnet.autograd.tensor import Tensor
from nnet.data.dataset import Dataset, as_generator


def default_collate(samples: Sequence[Any]) -> tuple[Tensor, ...]:
    """Stack a list of samples (tuples of arrays or numbers) field by field into Tensors."""
    first = samples[0]
    if isinstance(first, tuple | list):
        return tuple(
            _tensor(np.stack([np.asarray(s[i]) for s in samples])) for i in range(len(first))
        )
    return (_tensor(np.stack([np.asarray(s) for s in samples])),)


def _tensor(a: np.ndarray) -> Tensor:
    """Float64 data takes the default dtype (float32 unless changed), as everywhere in nnet; other
    dtypes (labels, float32 images) stay."""
    return Tensor(a.astype(get_default_dtype(), copy=False) if a.dtype == np.float64 else a)


class DataLoader:
    """Iterate over ``dataset`` in batches; each batch is a tuple of Tensors, one per field.

    ``batch_size=None`` (or -1) gives the whole dataset as one batch. ``shuffle=True`` draws a new
    order each epoch from the loader's own generator: ``generator`` is a ``numpy.random.Generator``
    or an int seed; by default a seed is drawn from nnet's generator when the loader is made, so
    :func:`nnet.manual_seed` makes the order repeatable. The global NumPy state is never touched.
    ``sampler`` (an iterable of indices with a length, e.g. a
    :class:`~nnet.distributed.DistributedSampler`) gives the order instead; it excludes ``shuffle``.
    A dataset with ``__getitems__`` (like :class:`~nnet.data.TensorDataset`) is batched with one
    fancy index per batch; ``collate_fn`` receives the list of samples otherwise.
    PyTorch's ``pin_memory`` is accepted and ignored (there is no device to copy to); ``num_workers``
    must be 0.

    >>> import numpy as np
    >>> from nnet.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> for x, y in DataLoader(ds, batch_size=2):
    ...     print(x.shape, y.tolist())
    (2, 2) [0, 1]
    (2, 2) [2, 3]
    (1, 2) [4]
    >>> [y.tolist() for _, y in DataLoader(ds, batch_size=2, shuffle=True, generator=0)]
    [[2, 4], [3, 0], [1]]
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        generator: np.random.Generator | int | None = None,
        sampler: Any = None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        if num_workers != 0:
            raise ValueError(
                f"DataLoader: num_workers={num_workers!r}, but nnet loads batches in the main "
                "process only (parallel workers are not built yet); pass num_workers=0"
            )
        if batch_size is not None and batch_size != -1 and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer)
            or batch_size < 1
        ):  # fmt: skip
            raise ValueError(
                f"DataLoader: batch_size must be a positive integer, or None / -1 for the whole "
                f"dataset as one batch; got {batch_size!r}"
            )
        if sampler is not None and shuffle:
            raise ValueError(
                "DataLoader: sampler gives the order, so it excludes shuffle=True; shuffle in "
                "the sampler (e.g. DistributedSampler(shuffle=True)) and drop shuffle"
            )
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = None if batch_size is None or batch_size == -1 else int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        if generator is None:
            generator = int(as_generator(None, "DataLoader").integers(2**63))
        self.generator = as_generator(generator, "DataLoader")

    def _count(self) -> int:
        return len(self.dataset) if self.sampler is None else len(self.sampler)

    def _size(self) -> int:
        return self._count() if self.batch_size is None else self.batch_size

    def __len__(self) -> int:
        n, b = self._count(), self._size()
        if b == 0:
            return 0
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Any]:
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), np.int64, count=len(self.sampler))
        else:
            n = len(self.dataset)
            order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        b = self._size()
        getitems = getattr(self.dataset, "__getitems__", None)
        for start in range(0, len(self) * b, b):
            index = order[start : start + b]
            at_boundary(BATCH, sys._getframe(1))  # the loop that consumes the batches
            if self.collate_fn is not None:
                yield self.collate_fn([self.dataset[int(i)] for i in index])
            elif getitems is not None:
                yield tuple(_tensor(np.asarray(a)) for a in getitems(index))
            else:
                yield default_collate([self.dataset[int(i)] for i in index])

    # -- the shuffling generator's state, for checkpoints -------------------------------------------
    def get_rng_state(self) -> dict[str, Any]:
        """A snapshot of the shuffling generator (``bit_generator.state``: a dict of ints)."""
        return dict(self.generator.bit_generator.state)  # typed Mapping in NumPy's stubs

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot taken by :meth:`get_rng_state`."""
        self.generator.bit_generator.state = state
