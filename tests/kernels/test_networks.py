"""Whole networks with the fused paths on and off: the same losses, gradients and running statistics."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.kernels import use_fused


def seed_like(c1: int, c2: int, hw: int) -> nn.Module:
    """The seed network's layer sequence, at test size."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(c1),
        nn.Conv2d(c1, c2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(c2),
        nn.Flatten(), nn.Linear((hw // 4) ** 2 * c2, 6), nn.ReLU(), nn.Linear(6, 3),
    )  # fmt: skip


def wide_like(c1: int, c2: int, hw: int) -> nn.Module:
    """The wide CNN's layer sequence (conv-bn-relu-pool twice), at test size."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear((hw // 4) ** 2 * c2, 6), nn.ReLU(), nn.Linear(6, 3),
    )  # fmt: skip


@pytest.fixture
def small_shapes_fuse(monkeypatch):
    """Let test-sized layers take the paths chosen by size (Winograd, the fused blocks)."""
    from nnet.kernels import bnpool
    from nnet.kernels import conv as fused_conv

    monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_PRODUCT", 0)
    monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_PIXELS", 0)
    monkeypatch.setattr(bnpool, "MIN_PIXEL_BYTES", 0)


@pytest.mark.parametrize(
    "net,channels",
    [
        (seed_like, (2, 3)),  # both im2col layouts
        (seed_like, (16, 17)),
        (wide_like, (16, 16)),  # conv + batch norm through the patch covariance, then Winograd
        (wide_like, (4, 16)),  # a first kernel wider than its channels: bn-relu-pool alone
    ],
)
def test_training_steps_agree(small_shapes_fuse, net, channels):
    rng = np.random.default_rng(0)
    x = nnet.Tensor(rng.standard_normal((5, 8, 8, 1)))
    y = rng.integers(0, 3, 5)
    results = []
    for fused in (True, False):
        nnet.manual_seed(0)
        model = net(*channels, 8).double()
        opt = nnet.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        with use_fused(fused):
            for _ in range(3):  # later steps see the updated weights and running statistics
                opt.zero_grad()
                loss = nn.CrossEntropyLoss()(model(x), y)
                loss.backward()
                opt.step()
                losses.append(loss.item())
            model.eval()
            with nnet.no_grad():
                out = model(x).numpy()
        grads = [p.grad.numpy() for p in model.parameters()]
        buffers = [b.numpy() for b in model.buffers()]
        results.append((losses, grads, buffers, out))
    (losses, grads, buffers, out), (losses0, grads0, buffers0, out0) = results
    np.testing.assert_allclose(losses, losses0, rtol=1e-10)
    for g, g0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(g, g0, rtol=1e-7, atol=1e-12)
    # The fused conv + batch norm blocks give the conv bias a gradient of exactly 0 where the
    # layers give rounding noise (~1e-17), which Adam turns into steps of about lr * noise / eps:
    # the biases, and so the running means, differ by ~1e-11
    atol = 1e-10 if net is wide_like else 0.0
    for b, b0 in zip(buffers, buffers0, strict=True):
        np.testing.assert_allclose(b, b0, rtol=1e-10, atol=atol)
    np.testing.assert_allclose(out, out0, rtol=1e-8, atol=1e-12)
