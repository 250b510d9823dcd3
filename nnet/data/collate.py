"""From indices to a batch: fetching samples and stacking them, the same in the main process and in
a loading worker (which sends arrays, not Tensors, so that the main process makes the Tensors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnet.autograd.defaults import get_default_dtype
from nnet.autograd.tensor import Tensor


def stack_fields(samples: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """Stack a list of samples (tuples of arrays or numbers) field by field into arrays."""
    first = samples[0]
    if isinstance(first, tuple | list):
        return tuple(np.stack([np.asarray(s[i]) for s in samples]) for i in range(len(first)))
    return (np.stack([np.asarray(s) for s in samples]),)


def default_collate(samples: Sequence[Any]) -> tuple[Tensor, ...]:
    """Stack a list of samples (tuples of arrays or numbers) field by field into Tensors.

    >>> import numpy as np
    >>> from nnet.data import default_collate
    >>> x, y = default_collate([(np.zeros(2), 0), (np.ones(2), 1)])
    >>> x.shape, x.dtype, y.tolist()
    ((2, 2), dtype('float32'), [0, 1])
    """
    return as_tensors(stack_fields(samples))


def as_tensors(arrays: Sequence[Any]) -> tuple[Tensor, ...]:
    """Float64 data takes the default dtype (float32 unless changed), as everywhere in nnet; other
    dtypes (labels, float32 images) stay."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        out.append(
            Tensor(a.astype(get_default_dtype(), copy=False) if a.dtype == np.float64 else a)
        )
    return tuple(out)


def fetch(dataset: Any, index: np.ndarray, collate_fn: Callable[[list[Any]], Any] | None) -> Any:
    """The batch at ``index``: ``collate_fn`` of the samples, or (without one) a tuple of arrays,
    made with one ``__getitems__`` call when the dataset has it, else by stacking the samples."""
    getitems = getattr(dataset, "__getitems__", None)
    if collate_fn is None and getitems is not None:
        return tuple(np.asarray(a) for a in getitems(index))
    samples = [dataset[int(i)] for i in index]
    return stack_fields(samples) if collate_fn is None else collate_fn(samples)
