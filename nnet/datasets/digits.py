"""The 8x8 handwritten digits that scikit-learn ships: a small data set that needs no download."""

from __future__ import annotations

import numpy as np


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """1,797 images as NHWC float32 (N, 8, 8, 1) in [0, 1], and their int64 labels 0..9.

    Needs scikit-learn (the ``train`` extra: ``pip install "nnet[train]"``).

    >>> from nnet.datasets import load_digits
    >>> images, labels = load_digits()
    >>> images.shape, images.dtype, float(images.max()), labels.dtype
    ((1797, 8, 8, 1), dtype('float32'), 1.0, dtype('int64'))
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as e:
        raise ImportError(
            "load_digits needs scikit-learn, which ships the 8x8 digits: install nnet's train "
            'extra (pip install "nnet[train]") or scikit-learn itself'
        ) from e
    bunch = sklearn_digits()
    images = (bunch.images.astype(np.float32) / np.float32(16.0))[..., None]
    return images, bunch.target.astype(np.int64)
