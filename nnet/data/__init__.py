"""Datasets and batching: ``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``, ``DataLoader``."""

from nnet.data.dataset import Dataset, Subset, TensorDataset, random_split
from nnet.data.loader import DataLoader, default_collate

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]
