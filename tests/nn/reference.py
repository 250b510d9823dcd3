"""Direct loop implementations, written from the formulas, that the layers are tested against."""

from __future__ import annotations

import numpy as np


def padded_value(x: np.ndarray, n: int, y: int, c: int, fill: float) -> np.ndarray:
    """x[n, y, c, :] or ``fill`` outside the image."""
    if 0 <= y < x.shape[1] and 0 <= c < x.shape[2]:
        return x[n, y, c, :]
    return np.full(x.shape[3], fill)


def conv2d(x, w, b, stride=(1, 1), pads=((0, 0), (0, 0)), dilation=(1, 1)):
    """The seed's formula generalised: y[n, r, c, m] = sum_{i, j, k} w[i, j, k, m]
    x[n, r s + i d - top, c s + j d - left, k] + b[m], zero outside the image."""
    n_, h, wd, _ = x.shape
    kh, kw, _, cout = w.shape
    oh = (h + sum(pads[0]) - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + sum(pads[1]) - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n_, oh, ow, cout))
    for n in range(n_):
        for r in range(oh):
            for c in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        yy = r * stride[0] + i * dilation[0] - pads[0][0]
                        xx = c * stride[1] + j * dilation[1] - pads[1][0]
                        y[n, r, c] += padded_value(x, n, yy, xx, 0.0) @ w[i, j]
                y[n, r, c] += 0 if b is None else b
    return y


def pool2d(x, kernel, stride, padding, reduce, fill, dilation=(1, 1)):
    """``reduce`` over each window, padding read as ``fill``."""
    n_, h, wd, ch = x.shape
    oh = (h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    y = np.zeros((n_, oh, ow, ch))
    for n in range(n_):
        for r in range(oh):
            for c in range(ow):
                window = [
                    padded_value(
                        x,
                        n,
                        r * stride[0] + i * dilation[0] - padding[0],
                        c * stride[1] + j * dilation[1] - padding[1],
                        fill,
                    )
                    for i in range(kernel[0])
                    for j in range(kernel[1])
                ]
                y[n, r, c] = reduce(np.stack(window), axis=0)
    return y
