"""TensorDataset, Subset and random_split."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet.data import Subset, TensorDataset, random_split


def test_tensor_dataset_accepts_tensors_and_checks_lengths() -> None:
    ds = TensorDataset(nnet.ones(4, 2), np.arange(4))
    assert len(ds) == 4 and ds[3][1] == 3
    with pytest.raises(ValueError, match=r"same first dimension.*\(4, 2\), \(3,\)"):
        TensorDataset(np.ones((4, 2)), np.arange(3))


def test_subset_indexing_and_bounds() -> None:
    ds = TensorDataset(np.arange(10))
    sub = Subset(ds, [9, 0, 4])
    assert [int(sub[i][0]) for i in range(3)] == [9, 0, 4]
    assert sub.__getitems__(np.array([2, 0]))[0].tolist() == [4, 9]
    with pytest.raises(IndexError, match=r"indices must be in \[0, 10\)"):
        Subset(ds, [10])


@pytest.mark.parametrize(
    ("lengths", "sizes"),
    [([6, 3, 1], [6, 3, 1]), ([0.5, 0.5], [5, 5]), ([0.7, 0.2, 0.1], [7, 2, 1])],
)
def test_random_split_partitions(lengths, sizes) -> None:
    parts = random_split(TensorDataset(np.arange(10)), lengths, generator=0)
    assert [len(p) for p in parts] == sizes
    seen = np.concatenate([p.indices for p in parts])
    assert sorted(seen.tolist()) == list(range(10))


def test_random_split_is_repeatable() -> None:
    ds = TensorDataset(np.arange(10))
    nnet.manual_seed(1)
    a = random_split(ds, [5, 5])[0].indices
    nnet.manual_seed(1)
    np.testing.assert_array_equal(a, random_split(ds, [5, 5])[0].indices)


def test_random_split_bad_lengths() -> None:
    with pytest.raises(ValueError, match="summing to the dataset's 10 samples"):
        random_split(TensorDataset(np.arange(10)), [3, 3])
