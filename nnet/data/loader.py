"""``DataLoader``: batches of a dataset as tuples of Tensors, shuffled by its own generator."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Iterator
from multiprocessing.context import BaseContext
from typing import Any

import numpy as np

from nnet.autograd.defaults import get_default_dtype
from nnet.autograd.lifetime import BATCH, at_boundary
from nnet.autograd.tensor import Tensor
from nnet.data.collate import as_tensors, default_collate, fetch
from nnet.data.dataset import Dataset, as_generator
from nnet.data.workers import WorkerPool, get_context

__all__ = ["DataLoader", "default_collate"]  # default_collate lives in collate.py


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

    ``num_workers=N`` loads batches in ``N`` worker processes, as PyTorch: the same batches in the
    same order as ``num_workers=0``. Each epoch draws ``base_seed`` from the generator (whatever
    ``num_workers``, so the orders agree); worker ``i`` seeds nnet's generator, Python's ``random``
    and its own global NumPy state from ``base_seed + i``, runs ``worker_init_fn(i)``, and
    :func:`~nnet.data.get_worker_info` tells it who it is. ``prefetch_factor`` (2 by default)
    batches per worker are loaded ahead; ``persistent_workers=True`` keeps the workers (and
    their seeds) from one epoch to the next; ``timeout`` seconds (0: forever) bound the wait for a
    batch. An exception in a worker is raised here with the worker's traceback. The start method
    is ``multiprocessing_context`` (the platform's default otherwise); except with 'fork', the
    dataset, ``collate_fn`` and ``worker_init_fn`` must be picklable, and the script's entry
    point guarded by ``if __name__ == "__main__":``. ``pin_memory`` is accepted and ignored (there
    is no device to copy to).

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
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: str | BaseContext | None = None,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
    ) -> None:
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
        self.pin_memory = pin_memory
        self._check_workers(num_workers, timeout, prefetch_factor, persistent_workers,
                            multiprocessing_context)  # fmt: skip
        self.num_workers = int(num_workers)
        self.timeout = float(timeout)
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self._context = get_context(multiprocessing_context) if num_workers else None
        self.prefetch_factor = (
            prefetch_factor if prefetch_factor is not None or not num_workers else 2
        )
        self.persistent_workers = persistent_workers
        self._pool: WorkerPool | None = None  # the persistent workers, once started
        if generator is None:
            generator = int(as_generator(None, "DataLoader").integers(2**63))
        self.generator = as_generator(generator, "DataLoader")

    @staticmethod
    def _check_workers(num_workers: Any, timeout: Any, prefetch_factor: Any,
                       persistent_workers: bool, context: Any) -> None:  # fmt: skip
        """PyTorch's checks of the worker options, with its defaults."""
        if isinstance(num_workers, bool) or not isinstance(num_workers, int | np.integer) or (
            num_workers < 0
        ):  # fmt: skip
            raise ValueError(
                f"DataLoader: num_workers must be a non-negative integer, got {num_workers!r}; "
                "use num_workers=0 to load in the main process"
            )
        if not isinstance(timeout, int | float) or timeout < 0:
            raise ValueError(
                f"DataLoader: timeout must be >= 0 seconds (0: wait forever), got {timeout!r}"
            )
        if num_workers == 0:
            for name, value in (
                ("prefetch_factor", prefetch_factor),
                ("multiprocessing_context", context),
            ):
                if value is not None:
                    raise ValueError(
                        f"DataLoader: {name}={value!r} needs worker processes, but num_workers=0; "
                        f"pass num_workers > 0, or drop {name}"
                    )
            if persistent_workers:
                raise ValueError(
                    "DataLoader: persistent_workers=True needs num_workers > 0; pass num_workers "
                    "> 0, or drop persistent_workers"
                )
        elif prefetch_factor is not None and (
            isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, int | np.integer)
            or prefetch_factor < 1
        ):  # fmt: skip
            raise ValueError(
                f"DataLoader: prefetch_factor (batches loaded ahead per worker) must be a positive "
                f"integer, got {prefetch_factor!r}"
            )

    def _count(self) -> int:
        return len(self.dataset) if self.sampler is None else len(self.sampler)

    def _size(self) -> int:
        return self._count() if self.batch_size is None else self.batch_size

    def __len__(self) -> int:
        n, b = self._count(), self._size()
        if b == 0:
            return 0
        return n // b if self.drop_last else -(-n // b)

    def _epoch_order(self) -> tuple[int, np.ndarray]:
        """This epoch's worker seed and sample order, drawn from the generator."""
        # drawn every epoch, with or without workers (as PyTorch), so the orders do not depend on it
        base_seed = int(self.generator.integers(2**63))
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), np.int64, count=len(self.sampler))
        else:
            n = len(self.dataset)
            order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        return base_seed, order

    def __iter__(self) -> Iterator[Any]:
        base_seed, order = self._epoch_order()
        b, count = self._size(), len(self)
        if self.num_workers == 0:
            return self._here(order, b, count)
        return self._from_workers(base_seed, order, b, count)

    def shard_batches(self, rank: int, world: int) -> Iterator[tuple[Any, int]]:
        """One epoch as rank ``rank`` of ``world`` trains it data-parallel: for each batch that
        iterating the loader would give (the same order, the generator drawn alike), rows
        ``rank::world`` of it and the whole batch's length. Only those rows are loaded: each rank
        of two fetched 100 MNIST rows and copied out its 50 in 14 + 9 us, its own 50 take 5 us.
        In worker processes (``num_workers > 0``) the workers load whole batches, which are cut.

        >>> import numpy as np
        >>> from nnet.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(np.arange(5.0), np.arange(5))
        >>> [(y.tolist(), n) for (_, y), n in DataLoader(ds, batch_size=3).shard_batches(1, 2)]
        [([1], 3), ([4], 2)]
        """
        if not 0 <= rank < world:
            raise ValueError(f"DataLoader.shard_batches: rank must be in [0, {world}), got {rank}")
        if self.num_workers:
            for batch in self:
                yield tuple(_rows_of(t, rank, world) for t in batch), len(batch[0])
            return
        _, order = self._epoch_order()
        b = self._size()
        for k in range(len(self)):
            at_boundary(BATCH, sys._getframe(1))  # the loop that consumes the batches
            index = order[k * b : (k + 1) * b]
            rows = fetch(self.dataset, index[rank::world], self.collate_fn)
            yield self._finish(rows), len(index)

    def _here(self, order: np.ndarray, size: int, count: int) -> Iterator[Any]:
        for k in range(count):
            at_boundary(BATCH, sys._getframe(1))  # the loop that consumes the batches
            yield self._finish(
                fetch(self.dataset, order[k * size : (k + 1) * size], self.collate_fn)
            )

    def _from_workers(
        self, base_seed: int, order: np.ndarray, size: int, count: int
    ) -> Iterator[Any]:
        pool = self._pool
        if pool is None or not pool.healthy():
            assert self._context is not None and self.prefetch_factor is not None
            pool = WorkerPool(self.dataset, self.collate_fn, self.worker_init_fn, self.num_workers,
                              base_seed, get_default_dtype(), self._context, self.prefetch_factor,
                              self.timeout)  # fmt: skip
            if self.persistent_workers:
                self._pool = pool
                weakref.finalize(self, pool.shutdown)  # stopped when the loader is collected
        try:
            for payload in pool.batches(order, size, count):
                at_boundary(BATCH, sys._getframe(1))  # the loop that consumes the batches
                yield self._finish(payload)
        finally:  # the end of the epoch, a break, an error, or the iterator collected
            if not self.persistent_workers:
                pool.shutdown()

    def _finish(self, payload: Any) -> Any:
        return as_tensors(payload) if self.collate_fn is None else payload

    # -- the shuffling generator's state, for checkpoints -------------------------------------------
    def get_rng_state(self) -> dict[str, Any]:
        """A snapshot of the shuffling generator (``bit_generator.state``: a dict of ints)."""
        return dict(self.generator.bit_generator.state)  # typed Mapping in NumPy's stubs

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot taken by :meth:`get_rng_state`."""
        self.generator.bit_generator.state = state


def _rows_of(t: Any, rank: int, world: int) -> Any:
    """Rows ``rank::world`` of a batch's field, as a contiguous Tensor."""
    return Tensor(np.ascontiguousarray(t.data[rank::world]))
