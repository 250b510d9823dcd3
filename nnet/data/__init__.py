"""Datasets and batching: ``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``, ``DataLoader``
(with parallel loading workers: ``get_worker_info``)."""

from nnet.data.collate import default_collate
from nnet.data.dataset import Dataset, Subset, TensorDataset, random_split
from nnet.data.loader import DataLoader
from nnet.data.workers import get_worker_info

__all__ = [
    "DataLoader",
    "Dataset",
    "Subset",
    "TensorDataset",
    "default_collate",
    "get_worker_info",
    "random_split",
]
