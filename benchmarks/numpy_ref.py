"""The NumPy floor: hand-written forward, backward and update of the suite's networks, no autograd.

This is what a NumPy engine could at best do for the same computation, written the way
../shared/PERF-FACTS.md found fast on this machine: float32 throughout; NHWC im2col copied into a reused
buffer plus one matmul per convolution (the kernel gradient of a tall, thin product split into row slabs,
which OpenBLAS handles much better); max-pool 2x2 as the maximum of four strided quadrants with the
gradient routed to the first maximum (PyTorch's tie rule); bias and ReLU applied after the pool where
they commute with it (a quarter of the work); batch-norm statistics as matrix-vector products over an
(N*H*W, C) view; inverted-dropout masks from random bits; all parameters, gradients and Adam moments in
flat buffers updated in place. Gradients are written, never accumulated, so no zeroing is needed.

It is a floor, not a competitor: it computes exactly what the nnet and PyTorch networks compute (same
layers, same batch statistics, same dropout rate, same optimizer formulas; checked against PyTorch by
``python -m benchmarks.verify``), but it skips the work an engine must do to be general.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

f32 = np.float32
_SLAB = 2048  # rows per slab for the kernel-gradient product


def _wgrad(a: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
    """out = a.T @ g for tall a (R, K) and g (R, M): slabbed when R is large and K*M small.

    ``a`` is either C-contiguous or the transpose of a C-contiguous (K, R) array."""
    rows, k = a.shape
    m = g.shape[1]
    if rows >= 4 * _SLAB and k * m <= 4096:
        s = rows // _SLAB
        main = s * _SLAB
        if a.flags.c_contiguous:
            at = a[:main].reshape(s, _SLAB, k).transpose(0, 2, 1)
        else:  # a.T is C-contiguous: split its rows into slabs as views
            at = a.T[:, :main].reshape(k, s, _SLAB).transpose(1, 0, 2)
        part = np.matmul(at, g[:main].reshape(s, _SLAB, m))
        np.sum(part, axis=0, out=out)
        if main < rows:
            out += a[main:].T @ g[main:]
    else:
        np.matmul(a.T, g, out=out)


class Layer:
    """A layer: ``forward(x, train)`` keeps what ``backward(g)`` needs; ``backward`` writes parameter
    gradients into the model's flat gradient buffer and returns the input gradient (None if unneeded)."""

    params: tuple[
        tuple[str, tuple[int, ...], Callable[[np.random.Generator], np.ndarray]], ...
    ] = ()
    need_input_grad = True

    def bind(self, p: dict[str, np.ndarray], g: dict[str, np.ndarray]) -> None:
        self.p, self.g = p, g

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, g: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError


def _uniform(shape: tuple[int, ...], fan_in: int) -> Callable[[np.random.Generator], np.ndarray]:
    bound = 1.0 / math.sqrt(fan_in)
    return lambda rng: rng.uniform(-bound, bound, shape).astype(f32)


def _const(shape: tuple[int, ...], value: float) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: np.full(shape, value, f32)


class Conv3x3(Layer):
    """3x3 'same' convolution, stride 1, NHWC, kernel (3, 3, C_in, C_out) as in nnet.

    im2col then one matmul. With few input channels the windows are copied channel-major, as
    (3, 3, C, N, H, W) planes (copy loops run over W values, not C); with many, as NHWC rows
    (N, H, W, 3, 3, C). The input gradient is one batched matmul giving each of the nine kernel
    taps' contribution as a contiguous (N, H, W, C) block, then nine shifted adds (col2im).
    """

    CHANNEL_MAJOR_BELOW = 16

    def __init__(self, name: str, cin: int, cout: int, bias: bool = True) -> None:
        self.name, self.cin, self.cout = name, cin, cout
        fan = 9 * cin
        ps = [(f"{name}.weight", (3, 3, cin, cout), _uniform((3, 3, cin, cout), fan))]
        if bias:
            ps.append((f"{name}.bias", (cout,), _uniform((cout,), fan)))
        self.params = tuple(ps)
        self.bias = bias
        self.channel_major = cin < self.CHANNEL_MAJOR_BELOW
        self._bufs: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def _buffers(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        if shape not in self._bufs:
            n, h, w, c = shape
            cols_shape = (3, 3, c, n, h, w) if self.channel_major else (n, h, w, 3, 3, c)
            self._bufs[shape] = (np.zeros((n, h + 2, w + 2, c), f32), np.empty(cols_shape, f32))
        return self._bufs[shape]

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        n, h, w, c = x.shape
        xp, cols = self._buffers(x.shape)
        xp[:, 1:-1, 1:-1, :] = x  # the zero border is never written
        for i in range(3):
            for j in range(3):
                win = xp[:, i : i + h, j : j + w, :]
                if self.channel_major:
                    cols[i, j] = win.transpose(3, 0, 1, 2)
                else:
                    cols[:, :, :, i, j, :] = win
        # (N*H*W, 9*C) rows of windows, as a view either way
        self.cols = (
            cols.reshape(9 * c, n * h * w).T
            if self.channel_major
            else cols.reshape(n * h * w, 9 * c)
        )
        self.shape = x.shape
        y = self.cols @ self.p[f"{self.name}.weight"].reshape(9 * c, self.cout)
        if self.bias:
            y += self.p[f"{self.name}.bias"]
        return y.reshape(n, h, w, self.cout)

    def backward(self, g: np.ndarray) -> np.ndarray | None:
        n, h, w, c = self.shape
        g2 = g.reshape(n * h * w, self.cout)
        _wgrad(self.cols, g2, self.g[f"{self.name}.weight"].reshape(9 * c, self.cout))
        if self.bias:
            np.matmul(np.ones(g2.shape[0], f32), g2, out=self.g[f"{self.name}.bias"])
        if not self.need_input_grad:
            return None
        taps = self.p[f"{self.name}.weight"].reshape(9, c, self.cout).transpose(0, 2, 1)
        dtaps = np.matmul(g2, taps)  # (9, N*H*W, C): each tap's share of the input gradient
        dxp = np.zeros((n, h + 2, w + 2, c), f32)
        for k in range(9):
            i, j = divmod(k, 3)
            dxp[:, i : i + h, j : j + w, :] += dtaps[k].reshape(n, h, w, c)
        return dxp[:, 1:-1, 1:-1, :]


def _rows(x: np.ndarray) -> np.ndarray:
    """NHWC as (N*H, W*C): per-channel vectors tiled W times broadcast along rows of W*C values,
    so NumPy's inner loops run over W*C elements instead of C (4-5x faster for C = 4)."""
    return x.reshape(-1, x.shape[-1]) if x.ndim == 2 else x.reshape(-1, x.shape[-2] * x.shape[-1])


def _tile(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A per-channel vector laid out to broadcast against ``_rows(x)``."""
    return v if x.ndim == 2 else np.tile(v, x.shape[-2])


def _channel_sum(a: np.ndarray, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Sum of ``_rows``-shaped ``a`` over everything but the channel (a matrix-vector product)."""
    s = np.ones(a.shape[0], f32) @ a
    if x.ndim != 2:
        s = s.reshape(x.shape[-2], x.shape[-1]).sum(axis=0)
    if out is None:
        return s
    out[...] = s
    return out


class ReLU(Layer):
    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.mask = x > 0
        return x * self.mask

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * self.mask


class MaxPool2(Layer):
    """2x2 max-pool, stride 2, NHWC; the gradient goes to the first maximum of each window in
    row-major order. An odd last row or column is dropped (floored, as in PyTorch and nnet)."""

    QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        n, h, w, c = x.shape
        self.shape = x.shape
        if h % 2 or w % 2:
            x = np.ascontiguousarray(x[:, : h - h % 2, : w - w % 2])
            h, w = h - h % 2, w - w % 2
        # rows first (contiguous runs of W*C), then column pairs on half the data
        v = x.reshape(n, h // 2, 2, w // 2, 2 * c)
        r = np.maximum(v[:, :, 0], v[:, :, 1])
        m = np.maximum(r[..., :c], r[..., c:])
        self.x, self.m = (x, m) if train else (None, None)
        return m

    def backward(self, g: np.ndarray) -> np.ndarray:
        x, m = self.x, self.m
        dx = np.empty_like(x)
        taken = np.zeros(m.shape, bool)
        for k, (a, b) in enumerate(self.QUADRANTS):
            if k < 3:
                mask = x[:, a::2, b::2, :] == m
                mask &= ~taken
                taken |= mask
            else:
                mask = ~taken
            np.multiply(g, mask, out=dx[:, a::2, b::2, :])
        self.x = self.m = None
        if dx.shape != self.shape:
            full = np.zeros(self.shape, f32)
            full[:, : dx.shape[1], : dx.shape[2]] = dx
            return full
        return dx


class BatchNorm2d(Layer):
    """Batch norm over (N, H, W) of NHWC (also (N, C)); batch statistics in training, biased variance
    to normalise, unbiased variance into the running estimate (PyTorch's rules)."""

    def __init__(self, name: str, c: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.name, self.c, self.eps, self.momentum = name, c, eps, momentum
        self.params = (
            (f"{name}.weight", (c,), _const((c,), 1.0)),
            (f"{name}.bias", (c,), _const((c,), 0.0)),
        )
        self.running_mean = np.zeros(c, f32)
        self.running_var = np.ones(c, f32)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        gamma, beta = self.p[f"{self.name}.weight"], self.p[f"{self.name}.bias"]
        x2 = _rows(x)
        if not train:
            scale = gamma / np.sqrt(self.running_var + self.eps)
            shift = beta - self.running_mean * scale
            return (x2 * _tile(scale, x) + _tile(shift, x)).reshape(x.shape)
        count = x.size // self.c
        mean = _channel_sum(x2, x) / count
        xc = x2 - _tile(mean, x)
        var = _channel_sum(xc * xc, x) / count
        inv = 1.0 / np.sqrt(var + self.eps)
        xhat = xc
        xhat *= _tile(inv, x)
        self.xhat, self.inv, self.count, self.shape = xhat, inv, count, x.shape
        mo = self.momentum
        self.running_mean *= 1 - mo
        self.running_mean += mo * mean
        self.running_var *= 1 - mo
        self.running_var += (mo * count / max(count - 1, 1)) * var
        return (xhat * _tile(gamma, x) + _tile(beta, x)).reshape(x.shape)

    def backward(self, g: np.ndarray) -> np.ndarray:
        g2 = _rows(g)
        dbeta, dgamma = self.g[f"{self.name}.bias"], self.g[f"{self.name}.weight"]
        _channel_sum(g2, g, out=dbeta)
        _channel_sum(g2 * self.xhat, g, out=dgamma)
        k = self.p[f"{self.name}.weight"] * self.inv / self.count
        dx = g2 * self.count
        dx -= _tile(dbeta, g)
        dx -= self.xhat * _tile(dgamma, g)
        dx *= _tile(k, g)
        self.xhat = None
        return dx.reshape(g.shape)


class Flatten(Layer):
    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g.reshape(self.shape)


class Linear(Layer):
    """``y = x W + b`` with ``W`` of shape (in, out), nnet's layout."""

    def __init__(self, name: str, fin: int, fout: int) -> None:
        self.name = name
        self.params = (
            (f"{name}.weight", (fin, fout), _uniform((fin, fout), fin)),
            (f"{name}.bias", (fout,), _uniform((fout,), fin)),
        )

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self.x = x
        return x @ self.p[f"{self.name}.weight"] + self.p[f"{self.name}.bias"]

    def backward(self, g: np.ndarray) -> np.ndarray | None:
        np.matmul(self.x.T, g, out=self.g[f"{self.name}.weight"])
        np.matmul(np.ones(g.shape[0], f32), g, out=self.g[f"{self.name}.bias"])
        self.x = None
        if not self.need_input_grad:
            return None
        return g @ self.p[f"{self.name}.weight"].T


class Dropout(Layer):
    """Inverted dropout with p = 0.5 from random bits (one bit per element)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if not train:
            return x
        n = x.size
        bits = np.unpackbits(np.frombuffer(self.rng.bytes((n + 7) // 8), np.uint8), count=n)
        self.scale = bits.reshape(x.shape).astype(f32)
        self.scale *= 2.0  # 1 / (1 - p)
        return x * self.scale

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * self.scale


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over class indices, and its gradient with respect to the logits."""
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.log(s[:, 0]).mean() - z[rows, labels].mean())
    e /= s
    e[rows, labels] -= 1.0
    e *= 1.0 / n
    return loss, e


class Net:
    """A sequence of layers with all parameters, gradients and optimizer moments in flat buffers."""

    def __init__(self, layers: list[Layer], seed: int = 0) -> None:
        self.layers = layers
        rng = np.random.default_rng(seed)
        specs = [s for layer in layers for s in layer.params]
        total = sum(math.prod(shape) for _, shape, _ in specs)
        self.flat_p = np.empty(total, f32)
        self.flat_g = np.zeros(total, f32)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        at = 0
        for name, shape, init in specs:
            size = math.prod(shape)
            self.params[name] = self.flat_p[at : at + size].reshape(shape)
            self.grads[name] = self.flat_g[at : at + size].reshape(shape)
            self.params[name][...] = init(rng)
            at += size
        for layer in layers:
            layer.bind(self.params, self.grads)
        # The input is data: no input gradient, as in PyTorch and nnet. Layers before the first
        # one with parameters (a layout change) are skipped by backward too.
        first = next(i for i, layer in enumerate(layers) if layer.params)
        layers[first].need_input_grad = False

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, g: np.ndarray) -> None:
        for layer in reversed(self.layers):
            g = layer.backward(g)
            if g is None:
                break

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> float:
        loss, g = cross_entropy(self.forward(x, True), y)
        self.backward(g)
        return loss


class SGD:
    def __init__(self, net: Net, lr: float) -> None:
        self.net, self.lr = net, lr

    def step(self) -> None:
        self.net.flat_p -= self.lr * self.net.flat_g


class Adam:
    """PyTorch's Adam: ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``, in place."""

    def __init__(
        self,
        net: Net,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.net, self.lr, self.b1, self.b2, self.eps = net, lr, betas[0], betas[1], eps
        n = net.flat_p.size
        self.m = np.zeros(n, f32)
        self.v = np.zeros(n, f32)
        self.tmp = np.empty(n, f32)
        self.t = 0

    def step(self) -> None:
        g, m, v, tmp = self.net.flat_g, self.m, self.v, self.tmp
        self.t += 1
        m *= self.b1
        np.multiply(g, 1 - self.b1, out=tmp)
        m += tmp
        v *= self.b2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= 1.0 / math.sqrt(1 - self.b2**self.t)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / (1 - self.b1**self.t)
        self.net.flat_p -= tmp


# --- the suite's networks ------------------------------------------------------------------------


def seed_cnn(seed: int = 0) -> Net:
    """conv3x3(1->4)-relu-maxpool2-bn, conv3x3(4->8)-relu-maxpool2-bn, flatten, linear 392->196, relu,
    dropout 0.5, linear 196->10 (the seed network). Channel-first up to the flatten (numpy_cf.py);
    bias and ReLU after the pool, where they commute with it."""
    from benchmarks import numpy_cf as cf

    rng = np.random.default_rng(seed + 1)
    return Net(
        [
            cf.FromNHWC(),
            cf.ConvCF("conv1", 1, 4, bias=False),
            cf.MaxPoolCF(),
            cf.BiasCF("conv1", 4, 9),
            ReLU(),
            cf.BatchNormCF("bn1", 4),
            cf.ConvCF("conv2", 4, 8, bias=False),
            cf.MaxPoolCF(),
            cf.BiasCF("conv2", 8, 36),
            ReLU(),
            cf.BatchNormCF("bn2", 8),
            cf.ToNHWC(),
            Flatten(),
            Linear("fc1", 392, 196),
            ReLU(),
            Dropout(rng),
            Linear("fc2", 196, 10),
        ],
        seed,
    )


def wide_cnn(seed: int = 0, channels: tuple[int, int] = (32, 64), image: int = 28) -> Net:
    """conv3x3(1->32)-bn-relu-pool, conv3x3(32->64)-bn-relu-pool, linear 3136->128, relu, linear ->10."""
    c1, c2 = channels
    flat = (image // 4) ** 2 * c2
    return Net(
        [
            Conv3x3("conv1", 1, c1),
            BatchNorm2d("bn1", c1),
            ReLU(),
            MaxPool2(),
            Conv3x3("conv2", c1, c2),
            BatchNorm2d("bn2", c2),
            ReLU(),
            MaxPool2(),
            Flatten(),
            Linear("fc1", flat, 128),
            ReLU(),
            Linear("fc2", 128, 10),
        ],
        seed,
    )


def mlp(seed: int = 0) -> Net:
    """Linear 784->256, ReLU, Linear 256->10."""
    return Net([Linear("fc1", 784, 256), ReLU(), Linear("fc2", 256, 10)], seed)


def train_step(net: Net, opt: Any, x: np.ndarray, y: np.ndarray) -> Callable[[], object]:
    """One training step as a closure: forward, softmax cross-entropy, backward, update."""

    def step() -> float:
        loss = net.loss_and_grads(x, y)
        opt.step()
        return loss

    return step
