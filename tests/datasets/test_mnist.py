"""MNIST / FashionMNIST on files the tests write, and on the real files in shared/data/mnist."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from nnet.data import DataLoader
from nnet.datasets import MNIST, FashionMNIST, IDXError, load_digits, write_idx

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def make_split(folder: Path, split: str, n: int, gz: bool = True, seed: int = 0,
               labels: np.ndarray | None = None) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images)
    if labels is None:
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
    write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels)


@pytest.mark.parametrize("gz", [True, False])
def test_reads_both_splits(tmp_path: Path, gz: bool) -> None:
    make_split(tmp_path, "train", 7, gz)
    make_split(tmp_path, "t10k", 3, gz, seed=1)
    train, test = MNIST(tmp_path), FashionMNIST(tmp_path, train=False)
    assert len(train) == 7 and len(test) == 3
    assert train.images.shape == (7, 28, 28, 1) and train.images.dtype == np.float32
    assert train.labels.dtype == np.int64
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    x, y = next(iter(DataLoader(train, batch_size=4)))
    assert x.shape == (4, 28, 28, 1) and y.shape == (4,)


def test_torchvision_layout(tmp_path: Path) -> None:
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    make_split(tmp_path / "MNIST" / "raw", "t10k", 2)
    assert len(MNIST(tmp_path, train=False)) == 2


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        MNIST(tmp_path)
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg and str(tmp_path) in msg and "download=True" in msg


def test_mismatched_image_and_label_counts(tmp_path: Path) -> None:
    make_split(tmp_path, "train", 5)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(IDXError, match=r"holds 5 images but .* holds 4 labels"):
        MNIST(tmp_path)


def test_labels_out_of_range(tmp_path: Path) -> None:
    make_split(tmp_path, "train", 3, labels=np.array([1, 12, 3], np.uint8))
    with pytest.raises(IDXError, match="label 12"):
        MNIST(tmp_path)


def test_swapped_files(tmp_path: Path) -> None:
    make_split(tmp_path, "train", 3)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    shutil.copy(labels, images)
    with pytest.raises(IDXError, match=r"expected uint8 images \(N, rows, cols\)"):
        MNIST(tmp_path)


@pytest.mark.skipif(not REAL.is_dir(), reason="shared/data/mnist is not beside the repository")
def test_real_mnist_counts_from_headers() -> None:
    train, test = MNIST(REAL), MNIST(REAL, train=False)
    assert len(train) == 5_000 and len(test) == 10_000
    assert np.bincount(train.labels).tolist() == [500] * 10
    assert test.images.shape == (10_000, 28, 28, 1) and test.images.max() == 1.0
    assert np.bincount(test.labels, minlength=10).sum() == 10_000


def test_load_digits() -> None:
    pytest.importorskip("sklearn")
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8, 1) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels.dtype == np.int64 and sorted(set(labels.tolist())) == list(range(10))


def test_load_digits_without_scikit_learn(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"scikit-learn.*nnet\[train\]"):
        load_digits()
