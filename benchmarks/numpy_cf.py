"""The NumPy floor's layers for few channels: activations laid out channel-first, (C, N, H, W).

With 1-8 channels an NHWC array's last axis is a run of 1-8 floats, and NumPy pays its per-iteration
cost (5-10 ns) for every such run: pooling, broadcasting a per-channel vector and the im2col copies
all crawl. Channel-first, every loop runs over whole image rows, and the convolution's matmul
produces that layout directly (``W^T @ cols^T``). The seed network uses these from its input to the
flatten, where one small transpose restores nnet's NHWC (h, w, c) flatten order; its weights keep
nnet's layouts. Same computation, same tie rule (first maximum in row-major window order).
"""

from __future__ import annotations

import numpy as np

from benchmarks.numpy_ref import _SLAB, Layer, _const, _uniform, f32


def _wgrad_cf(cols: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
    """out (K, M) = cols (K, R) @ g (M, R).T, the R-long inner dimension split into slabs when the
    result is small (OpenBLAS is slow on one tall-thin product)."""
    k, rows = cols.shape
    m = g.shape[0]
    if rows >= 4 * _SLAB and k * m <= 4096:
        s = rows // _SLAB
        main = s * _SLAB
        a = cols[:, :main].reshape(k, s, _SLAB).transpose(1, 0, 2)
        b = g[:, :main].reshape(m, s, _SLAB).transpose(1, 2, 0)
        np.sum(np.matmul(a, b), axis=0, out=out)
        if main < rows:
            out += cols[:, main:] @ g[:, main:].T
    else:
        np.matmul(cols, g.T, out=out)


class FromNHWC(Layer):
    """(N, H, W, C) -> (C, N, H, W); free when C = 1 (the same memory)."""

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        return x.reshape(1, *x.shape[:3]) if x.shape[3] == 1 else x.transpose(3, 0, 1, 2).copy()

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g.transpose(1, 2, 3, 0)


class ToNHWC(Layer):
    """(C, N, H, W) -> (N, H, W, C), so Flatten gives nnet's (h, w, c) order."""

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(1, 2, 3, 0))

    def backward(self, g: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(g.transpose(3, 0, 1, 2))


class ConvCF(Layer):
    """3x3 'same' convolution on (C, N, H, W); kernel (3, 3, C_in, C_out) as in nnet."""

    def __init__(self, name: str, cin: int, cout: int, bias: bool = True) -> None:
        self.name, self.cin, self.cout, self.bias = name, cin, cout, bias
        fan = 9 * cin
        ps = [(f"{name}.weight", (3, 3, cin, cout), _uniform((3, 3, cin, cout), fan))]
        if bias:
            ps.append((f"{name}.bias", (cout,), _uniform((cout,), fan)))
        self.params = tuple(ps)
        self._bufs: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        c, n, h, w = x.shape
        if x.shape not in self._bufs:
            self._bufs[x.shape] = (
                np.zeros((c, n, h + 2, w + 2), f32),
                np.empty((3, 3, c, n, h, w), f32),
            )
        xp, cols = self._bufs[x.shape]
        xp[:, :, 1:-1, 1:-1] = x
        for i in range(3):
            for j in range(3):
                cols[i, j] = xp[:, :, i : i + h, j : j + w]
        self.cols = cols.reshape(9 * c, n * h * w)
        self.shape = x.shape
        wk = self.p[f"{self.name}.weight"].reshape(9 * c, self.cout)
        y = wk.T @ self.cols
        if self.bias:
            y += self.p[f"{self.name}.bias"][:, None]
        return y.reshape(self.cout, n, h, w)

    def backward(self, g: np.ndarray) -> np.ndarray | None:
        c, n, h, w = self.shape
        g2 = g.reshape(self.cout, n * h * w)
        _wgrad_cf(self.cols, g2, self.g[f"{self.name}.weight"].reshape(9 * c, self.cout))
        if self.bias:
            np.matmul(g2, np.ones(g2.shape[1], f32), out=self.g[f"{self.name}.bias"])
        if not self.need_input_grad:
            return None
        wk = self.p[f"{self.name}.weight"].reshape(9 * c, self.cout)
        dcols = (wk @ g2).reshape(3, 3, c, n, h, w)
        dxp = np.zeros((c, n, h + 2, w + 2), f32)
        for i in range(3):
            for j in range(3):
                dxp[:, :, i : i + h, j : j + w] += dcols[i, j]
        return dxp[:, :, 1:-1, 1:-1]


class BiasCF(Layer):
    """The preceding convolution's bias, applied after the pool (it commutes with max)."""

    def __init__(self, name: str, c: int, fan_in: int) -> None:
        self.name = name
        self.params = ((f"{name}.bias", (c,), _uniform((c,), fan_in)),)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        return (x.reshape(x.shape[0], -1) + self.p[f"{self.name}.bias"][:, None]).reshape(x.shape)

    def backward(self, g: np.ndarray) -> np.ndarray:
        g2 = g.reshape(g.shape[0], -1)
        np.matmul(g2, np.ones(g2.shape[1], f32), out=self.g[f"{self.name}.bias"])
        return g


class MaxPoolCF(Layer):
    """2x2 max-pool, stride 2, on (C, N, H, W); the gradient goes to the first maximum of each
    window in row-major order (PyTorch's rule)."""

    QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        rows = np.maximum(x[:, :, 0::2, :], x[:, :, 1::2, :])
        m = np.maximum(rows[..., 0::2], rows[..., 1::2])
        self.x, self.m = (x, m) if train else (None, None)
        return m

    def backward(self, g: np.ndarray) -> np.ndarray:
        x, m = self.x, self.m
        dx = np.empty_like(x)
        taken = np.zeros(m.shape, bool)
        for k, (a, b) in enumerate(self.QUADRANTS):
            if k < 3:
                mask = x[:, :, a::2, b::2] == m
                mask &= ~taken
                taken |= mask
            else:
                mask = ~taken
            np.multiply(g, mask, out=dx[:, :, a::2, b::2])
        self.x = self.m = None
        return dx


class BatchNormCF(Layer):
    """Batch norm of (C, N, H, W) over (N, H, W): row reductions of a (C, N*H*W) view."""

    def __init__(self, name: str, c: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.name, self.c, self.eps, self.momentum = name, c, eps, momentum
        self.params = (
            (f"{name}.weight", (c,), _const((c,), 1.0)),
            (f"{name}.bias", (c,), _const((c,), 0.0)),
        )
        self.running_mean = np.zeros(c, f32)
        self.running_var = np.ones(c, f32)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        gamma = self.p[f"{self.name}.weight"][:, None]
        beta = self.p[f"{self.name}.bias"][:, None]
        x2 = x.reshape(self.c, -1)
        if not train:
            scale = gamma / np.sqrt(self.running_var[:, None] + self.eps)
            return (x2 * scale + (beta - self.running_mean[:, None] * scale)).reshape(x.shape)
        count = x2.shape[1]
        ones = np.full(count, 1.0 / count, f32)
        mean = x2 @ ones
        xc = x2 - mean[:, None]
        var = (xc * xc) @ ones
        inv = 1.0 / np.sqrt(var + self.eps)
        xhat = xc
        xhat *= inv[:, None]
        self.xhat, self.inv, self.count = xhat, inv, count
        mo = self.momentum
        self.running_mean *= 1 - mo
        self.running_mean += mo * mean
        self.running_var *= 1 - mo
        self.running_var += (mo * count / max(count - 1, 1)) * var
        return (xhat * gamma + beta).reshape(x.shape)

    def backward(self, g: np.ndarray) -> np.ndarray:
        g2 = g.reshape(self.c, -1)
        ones = np.ones(self.count, f32)
        dbeta, dgamma = self.g[f"{self.name}.bias"], self.g[f"{self.name}.weight"]
        np.matmul(g2, ones, out=dbeta)
        np.matmul(g2 * self.xhat, ones, out=dgamma)
        k = self.p[f"{self.name}.weight"] * self.inv / self.count
        dx = g2 * self.count
        dx -= dbeta[:, None]
        dx -= self.xhat * dgamma[:, None]
        dx *= k[:, None]
        self.xhat = None
        return dx.reshape(g.shape)
