"""MNIST and Fashion-MNIST from their four IDX files (raw or ``.gz``), optionally downloaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from nnet.data.dataset import TensorDataset
from nnet.datasets.download import download as fetch
from nnet.datasets.idx import IDXError, read_idx


class MNIST(TensorDataset):
    """Handwritten digits: ``images`` float32 (N, 28, 28, 1) in [0, 1], ``labels`` int64 in 0..9.

    ``root`` holds ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (each raw or ``.gz``; also
    looked for in ``root/MNIST/raw`` as torchvision lays them out). The sample count comes from
    the files' headers. ``download=True`` fetches missing files from ``mirrors`` (default: the
    class's list), verifying their SHA-256 and writing atomically.

    >>> import nnet, tempfile
    >>> nnet.datasets.MNIST(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: MNIST: train-images-idx3-ubyte not found: looked for ...
    """

    mirrors: ClassVar[list[str]] = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ]
    resources: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }  # fmt: skip
    classes: ClassVar[list[str]] = [str(d) for d in range(10)]

    def __init__(
        self,
        root: str | os.PathLike[str],
        train: bool = True,
        download: bool = False,
        mirrors: list[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.train = train
        split = "train" if train else "t10k"
        stems = (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte")
        paths = [self._find(stem, download, mirrors) for stem in stems]
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        name = type(self).__name__
        if images.ndim != 3 or images.dtype != np.uint8:
            raise IDXError(
                f"{name}: {paths[0]} holds {images.dtype} values of shape {images.shape}; "
                "expected uint8 images (N, rows, cols)"
            )
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise IDXError(
                f"{name}: {paths[1]} holds {labels.dtype} values of shape {labels.shape}; "
                "expected uint8 labels (N,)"
            )
        if len(images) != len(labels):
            raise IDXError(
                f"{name}: mismatched files: {paths[0]} holds {len(images):,} images but "
                f"{paths[1]} holds {len(labels):,} labels"
            )
        if labels.size and labels.max() >= len(self.classes):
            raise IDXError(
                f"{name}: {paths[1]} holds label {labels.max()}; labels must be in "
                f"0..{len(self.classes) - 1}"
            )
        x = images.astype(np.float32)[..., None]
        x *= np.float32(1 / 255)
        super().__init__(x, labels.astype(np.int64))

    @property
    def images(self) -> np.ndarray:
        """All images, float32 in [0, 1], shape (N, 28, 28, 1) (NHWC)."""
        return self.arrays[0]

    @property
    def labels(self) -> np.ndarray:
        """All labels, int64, shape (N,)."""
        return self.arrays[1]

    def _find(self, stem: str, download: bool, mirrors: list[str] | None) -> Path:
        folders = [self.root, self.root / type(self).__name__ / "raw"]
        candidates = [folder / name for folder in folders for name in (stem, stem + ".gz")]
        for path in candidates:
            if path.is_file():
                return path
        if download:
            gz = stem + ".gz"
            return fetch(gz, self.resources[gz], mirrors or self.mirrors, self.root)
        raise FileNotFoundError(
            f"{type(self).__name__}: {stem} not found: looked for "
            + ", ".join(str(p) for p in candidates)
            + ". Put the four IDX files there, or pass download=True to fetch them."
        )


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: the same format and sizes as MNIST, ten kinds of clothing."""

    mirrors: ClassVar[list[str]] = [
        "https://fashion-mnist.s3.eu-central-1.amazonaws.com/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ]
    resources: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }  # fmt: skip
    classes: ClassVar[list[str]] = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]  # fmt: skip
