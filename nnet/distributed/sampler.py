"""``DistributedSampler``: each rank's share of a data set's indices, PyTorch's semantics."""

from __future__ import annotations

from collections.abc import Iterator, Sized

import numpy as np

from nnet.distributed import comm


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` reads in an epoch.

    Each epoch one order is drawn from ``seed + epoch`` (the same on every rank; call
    :meth:`set_epoch` at the start of each epoch to reshuffle), padded by repeating its first
    indices to a multiple of ``num_replicas`` (or cut down to one with ``drop_last``), and dealt
    out round-robin: rank ``r`` takes positions ``r, r + num_replicas, ...``. The shards are
    disjoint and, without padding, cover the data set once. ``pad=False`` (not in PyTorch) deals
    the unpadded order, so shards may differ in length by one: for evaluation, where a repeated
    sample would be counted twice. Pass it to :class:`~nnet.data.DataLoader` as ``sampler``.

    >>> from nnet.distributed import DistributedSampler
    >>> [list(DistributedSampler(range(5), 2, r, shuffle=False)) for r in (0, 1)]
    [[0, 2, 4], [1, 3, 0]]
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 pad: bool = True) -> None:  # fmt: skip
        num_replicas = comm.world_size() if num_replicas is None else num_replicas
        rank = comm.rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"DistributedSampler: rank must be in [0, num_replicas), got rank {rank} of "
                f"num_replicas {num_replicas}"
            )
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last, self.pad = shuffle, seed, drop_last, pad
        self.epoch = 0
        n = len(dataset)
        if drop_last:
            self.total_size = n - n % num_replicas
        elif pad:
            self.total_size = -(-n // num_replicas) * num_replicas
        else:
            self.total_size = n
        self.num_samples = len(range(rank, self.total_size, num_replicas))

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch`` (call it on every rank alike)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:  # padding: the order repeated from its start as often as needed
            order = np.resize(order, self.total_size)
        order = order[: self.total_size]
        return iter(order[self.rank :: self.num_replicas].tolist())
