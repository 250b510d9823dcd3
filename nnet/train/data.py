"""The main job's data: the embedded digits, or MNIST / Fashion-MNIST from a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnet.data import TensorDataset
from nnet.datasets import MNIST, FashionMNIST, load_digits

DATASETS = ("digits", "mnist", "fashion-mnist")
DIGITS_TEST_SIZE = 360  # 20 % of the 1,797 images, held out by a fixed permutation


class DataError(Exception):
    """The data could not be had; the message says what to pass instead."""


def default_root(name: str) -> Path:
    return Path("data") / name


def load_data(name: str, root: str | None = None, download: bool = False
              ) -> tuple[TensorDataset, TensorDataset]:  # fmt: skip
    """(train, test) datasets of NHWC float32 images in [0, 1] and int64 labels.

    ``digits`` splits scikit-learn's 1,797 images into 1,437 for training and 360 held out, by a
    permutation fixed once and for all (independent of ``--seed``, so runs compare).
    """
    if name == "digits":
        try:
            images, labels = load_digits()
        except ImportError as e:
            raise DataError(str(e)) from e
        order = np.random.default_rng(0).permutation(len(images))
        test, train = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
        return (TensorDataset(images[train], labels[train]),
                TensorDataset(images[test], labels[test]))  # fmt: skip
    if name not in ("mnist", "fashion-mnist"):
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    cls = MNIST if name == "mnist" else FashionMNIST
    folder = Path(root) if root else default_root(name)
    try:
        return cls(folder, train=True, download=download), cls(
            folder, train=False, download=download
        )
    except FileNotFoundError as e:
        files = ", ".join(f"{s}-{k}-ubyte[.gz]" for s in ("train", "t10k")
                          for k in ("images-idx3", "labels-idx1"))  # fmt: skip
        raise DataError(
            f"no {name} data in {folder}: looked for {files} there (and in "
            f"{folder / cls.__name__ / 'raw'}). Pass --data DIR with a folder that holds these "
            f"files, or --download to fetch them into {folder}."
        ) from e
