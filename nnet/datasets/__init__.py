"""Data sets: MNIST and Fashion-MNIST from IDX files, and the small digits set from scikit-learn."""

from nnet.datasets.digits import load_digits
from nnet.datasets.download import DownloadError
from nnet.datasets.idx import IDXError, read_idx, write_idx
from nnet.datasets.mnist import MNIST, FashionMNIST

__all__ = ["MNIST", "DownloadError", "FashionMNIST", "IDXError", "load_digits", "read_idx",
           "write_idx"]  # fmt: skip
