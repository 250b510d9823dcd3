"""DataLoader: batching, shuffling by its own seedable generator, whole-dataset batches."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet.data import DataLoader, Dataset, Subset, TensorDataset

X = np.arange(20, dtype=np.float32).reshape(10, 2)
Y = np.arange(10, dtype=np.int64)


def labels(loader: DataLoader) -> list[list[int]]:
    return [y.tolist() for _, y in loader]


def test_batches_are_tuples_of_tensors_in_order() -> None:
    batches = list(DataLoader(TensorDataset(X, Y), batch_size=4))
    assert [len(b) for b in batches] == [2, 2, 2]
    assert all(isinstance(t, nnet.Tensor) for b in batches for t in b)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    np.testing.assert_array_equal(batches[2][0].data, X[8:])


def test_drop_last_and_len() -> None:
    ds = TensorDataset(X, Y)
    assert len(DataLoader(ds, batch_size=4)) == 3
    loader = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(loader) == 2 and labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize("whole", [None, -1])
def test_whole_dataset_batch(whole) -> None:
    loader = DataLoader(TensorDataset(X, Y), batch_size=whole, shuffle=True, generator=1)
    (batch,) = list(loader)
    assert len(loader) == 1 and batch[0].shape == (10, 2)
    assert sorted(batch[1].tolist()) == list(range(10))


def test_shuffle_covers_everything_and_changes_each_epoch() -> None:
    loader = DataLoader(TensorDataset(X, Y), batch_size=3, shuffle=True, generator=5)
    e1, e2 = labels(loader), labels(loader)
    assert sorted(i for batch in e1 for i in batch) == list(range(10)) and e1 != e2


def test_shuffle_is_repeatable_by_seed_and_by_manual_seed() -> None:
    ds = TensorDataset(X, Y)
    assert labels(DataLoader(ds, 3, shuffle=True, generator=9)) == labels(
        DataLoader(ds, 3, shuffle=True, generator=np.random.default_rng(9))
    )
    nnet.manual_seed(4)
    a = labels(DataLoader(ds, 3, shuffle=True))
    nnet.manual_seed(4)
    b = labels(DataLoader(ds, 3, shuffle=True))
    assert a == b


def test_global_numpy_state_untouched() -> None:
    before = np.random.get_state()[1].copy()  # noqa: NPY002 - the legacy global state is the subject
    loader = DataLoader(TensorDataset(X, Y), batch_size=2, shuffle=True)
    list(loader)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_rng_state_round_trip_resumes_the_order() -> None:
    loader = DataLoader(TensorDataset(X, Y), batch_size=3, shuffle=True, generator=2)
    labels(loader)
    state = loader.get_rng_state()
    want = labels(loader)
    other = DataLoader(TensorDataset(X, Y), batch_size=3, shuffle=True, generator=77)
    other.set_rng_state(state)
    assert labels(other) == want


def test_array_dataset_is_fetched_with_one_fancy_index_per_batch() -> None:
    class Counting(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            raise AssertionError("per-sample access")

        def __getitems__(self, indices):
            Counting.calls += 1
            return super().__getitems__(indices)

    loader = DataLoader(Counting(X, Y), batch_size=4, shuffle=True, generator=0)
    list(loader)
    assert Counting.calls == 3
    list(DataLoader(Subset(Counting(X, Y), [1, 3, 5]), batch_size=2))
    assert Counting.calls == 5


def test_map_style_dataset_and_collate_fn() -> None:
    class Squares(Dataset):
        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float64), i % 2

        def __len__(self):
            return 5

    (x, y), *_ = DataLoader(Squares(), batch_size=3)
    assert x.dtype == np.float32 and x.shape == (3, 2) and y.tolist() == [0, 1, 0]
    sums = list(DataLoader(Squares(), batch_size=2, collate_fn=lambda s: sum(a[1] for a in s)))
    assert sums == [1, 1, 0]


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_bad_batch_size(bad) -> None:
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer.*{bad!r}"):
        DataLoader(TensorDataset(X), batch_size=bad)


def test_bad_generator() -> None:
    with pytest.raises(TypeError, match=r"generator must be a numpy\.random\.Generator"):
        DataLoader(TensorDataset(X), generator="seed")


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("workers", [0, 1])
def test_shard_batches_are_the_ranks_rows_of_each_batch(world, workers) -> None:
    # 11 samples in batches of 4: the last batch (3 rows) leaves rank 3 of 4 an empty share
    ds = TensorDataset(np.arange(22.0).reshape(11, 2), np.arange(11))
    kwargs = {"multiprocessing_context": "fork"} if workers else {}
    whole = DataLoader(ds, batch_size=4, shuffle=True, generator=5)
    epochs = [[(x.data.copy(), y.data.copy()) for x, y in whole] for _ in range(2)]
    for rank in range(world):
        loader = DataLoader(ds, batch_size=4, shuffle=True, generator=5, num_workers=workers,
                            **kwargs)  # fmt: skip
        for batches in epochs:  # two epochs: the generator advances as iterating would
            shards = list(loader.shard_batches(rank, world))
            assert len(shards) == len(batches)
            for ((x, y), n), (gx, gy) in zip(shards, batches, strict=True):
                assert n == len(gy)
                np.testing.assert_array_equal(x.data, gx[rank::world])
                np.testing.assert_array_equal(y.data, gy[rank::world])
                assert x.data.shape[1:] == (2,) and x.data.flags.c_contiguous


def test_shard_batches_bad_rank() -> None:
    loader = DataLoader(TensorDataset(np.arange(4.0)), batch_size=2)
    with pytest.raises(ValueError, match="rank must be in"):
        next(loader.shard_batches(2, 2))
