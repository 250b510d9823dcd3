"""NumPy kernels that both the ops and the engine use: no tensors, no graph."""

from __future__ import annotations

import numpy as np


def sum_axes(a: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """``np.add.reduce`` over ``axes``, fast when they lead: NHWC statistics and bias gradients.

    NumPy reduces leading axes one short row at a time (4 channels: 5-10 ns per element); viewing the rows
    as a few wide ones first keeps the inner loop long: a (100, 28, 28, 4) sum over (0, 1, 2) went from
    1,130 to 46 us here, with a smaller rounding error (fewer terms per running sum).
    """
    k = len(axes)
    if a.size and 0 < k < a.ndim and axes == tuple(range(k)) and a.flags.c_contiguous:
        rest = a.shape[k:]
        c = int(np.prod(rest))
        m = a.size // c
        j = 1  # rows per wide row: a power of two dividing m, up to ~1,024 values wide
        while j * 2 * c <= 1024 and m % (j * 2) == 0:
            j *= 2
        if j > 1:
            rows = np.add.reduce(a.reshape(m // j, j * c), axis=0)
            out = np.add.reduce(rows.reshape(j, c), axis=0).reshape(rest)
            return out.reshape((1,) * k + rest) if keepdims else out
    # numpy's stubs overload `keepdims` only as Literal[True] / Literal[False], not a runtime bool;
    # an ignore rather than a cast keeps this hot path free of the extra call
    return np.add.reduce(a, axis=axes, keepdims=keepdims)  # type: ignore[call-overload]
