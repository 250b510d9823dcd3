"""Kernels that split their work over nnet's threads give what one thread gives: blocks of images
small enough that two threads each take several."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

import nnet
import nnet.nn.functional as F
from nnet import nn
from nnet import threads as nnet_threads
from nnet._team import Team
from nnet.kernels import REGISTRY, BatchStats, ConvBatchNormReluPool, patchpool, winograd
from nnet.kernels import conv as fused_conv
from nnet.kernels import linear as fused_linear
from tests.kernels.test_registry import _clone, check


@pytest.fixture
def team_runs(monkeypatch):
    """The worker count of every run of nnet's thread team (empty: nothing was split)."""
    runs: list[int] = []
    real_run = Team.run

    def counted(self: Team, first: Any, others: list[Any]) -> Any:
        runs.append(len(others))
        return real_run(self, first, others)

    monkeypatch.setattr(Team, "run", counted)
    return runs


@pytest.fixture
def two_threads():
    before = nnet.get_num_threads()
    yield
    nnet.set_num_threads(before)


def _conv_step(x, w, b, g):
    ts = [nnet.Tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*ts)
    return [y.numpy(), *[t.numpy() for t in nnet.grad(y, ts, g)]]


@pytest.mark.parametrize("path", ["im2col", "winograd"])
def test_conv_on_two_threads_matches_one(path, monkeypatch, two_threads):
    rng = np.random.default_rng(0)
    n, cin, cout = 6, 16, 64 if path == "winograd" else 8
    x = rng.standard_normal((n, 8, 8, cin))
    w, b = rng.standard_normal((3, 3, cin, cout)), rng.standard_normal(cout)
    g = rng.standard_normal((n, 8, 8, cout))
    if path == "winograd":
        monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_PIXELS", 0)
        monkeypatch.setattr(winograd, "BLOCK_FLOATS", 16 * (cin + cout) * 16)  # one image a block
    else:
        monkeypatch.setattr(fused_conv, "WINOGRAD_MIN_CHANNELS", 10**6)
        monkeypatch.setattr(fused_conv, "CHUNK_ROWS", 64)  # one image a block
        monkeypatch.setattr(fused_conv, "SMALL_PRODUCT_MACS", 0)  # the kernel gradient split too
    results = []
    for threads in (1, 2):
        nnet.set_num_threads(threads)
        results.append(_conv_step(x, w, b, g))
    for a, a0 in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-12, atol=1e-12)


def _block_step(model, x, x_grad, g_seed):
    xt = nnet.Tensor(x.copy(), requires_grad=x_grad)
    y = model(xt)
    params = [xt, *model.parameters()] if x_grad else list(model.parameters())
    g = np.random.default_rng(g_seed).standard_normal(y.shape)
    grads = [a.numpy() for a in nnet.grad(y, params, g)]
    return type(y.grad_fn), [y.numpy(), *grads, *[b.numpy().copy() for b in model.buffers()]]


def test_narrow_block_backward_on_two_threads_matches_one(monkeypatch, two_threads):
    """ConvBatchNormReluPool's backward (routing and the patch products, a block of images per
    thread, summed afterwards) against one thread."""
    monkeypatch.setattr(nnet_threads, "MIN_BLOCK_BYTES", 1)  # one image a block: several per thread
    x = np.random.default_rng(1).standard_normal((7, 8, 8, 1))
    results = []
    for count in (1, 2):
        nnet.set_num_threads(count)
        nnet.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        model = model.double()
        model[1].weight.data[...] = np.linspace(-1.5, 2.0, 16)  # a negative scale too
        used, arrays = _block_step(model, x, False, 2)
        assert used is ConvBatchNormReluPool
        results.append(arrays)
    for a, a0 in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("max_blocks", [1, 2**30])
def test_first_block_on_planes_or_patches_on_two_threads_matches_one(max_blocks, monkeypatch,
                                                                      two_threads, team_runs):  # fmt: skip
    """The seed's first block (one input channel, four outputs, batch norm after the pool) in
    several blocks of images on two threads, its convolution from the shifted planes
    (patchpool.SHIFTED_MAX_BLOCKS above the block count) or from the patches (1): the path asked
    for runs, and values, gradients and running statistics equal one thread's."""
    monkeypatch.setattr(nnet_threads, "MIN_BLOCK_BYTES", 1)  # one image a block
    monkeypatch.setattr(patchpool, "SHIFTED_MAX_BLOCKS", max_blocks)
    x = np.random.default_rng(3).standard_normal((7, 8, 12, 1))
    results = []
    for count in (1, 2):
        nnet.set_num_threads(count)
        nnet.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4))
        model = model.double()
        team_runs.clear()
        used, arrays = _block_step(model, x, False, 4)
        assert used.__name__ == "ConvReluPoolBatchNorm"
        assert (team_runs != []) == (count == 2)  # forward and VJP in blocks on two threads
        results.append(arrays)
        shifted = model(nnet.Tensor(x)).grad_fn.conv_saved.ndim == 2  # planes (U V + 1, M)
        assert shifted == (count == 1 or max_blocks > 1)
    for a, a0 in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-10, atol=1e-12)


#: Registry entries whose kernels split their passes over nnet's threads.
SPLIT = (
    "linear",
    "conv2d",
    "bn_relu_pool",
    "conv_bn_relu_pool_narrow",
    "conv_bn_relu_pool_winograd",
    "conv_relu_bn_pool",
    "conv_relu_pool",
    "conv_relu_pool_inference",
    "conv_relu_pool_bn",
)


def _draw(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _array_run(entry: Any, args: tuple[Any, ...], seed: int) -> list[np.ndarray]:
    """The kernel's value, batch statistics and array VJPs on fresh copies of ``args``."""
    kargs = _clone(args)
    y = entry.run(*kargs)
    leaves = [a for a in kargs if isinstance(a, nnet.Tensor) and a.requires_grad]
    g = np.random.default_rng(seed).standard_normal(y.shape)
    grads = nnet.grad(y, leaves, g, allow_unused=True) if leaves and y.requires_grad else []
    stats = [s for a in kargs if isinstance(a, BatchStats) for s in (a.mean, a.var)]
    return [y.numpy(), *stats, *[np.zeros(0) if d is None else d.numpy() for d in grads]]


@pytest.mark.parametrize("name", SPLIT)
def test_split_kernels_match_their_composition_and_one_thread(
    name, monkeypatch, two_threads, team_runs
):
    """With blocks of one image (Winograd's products a tile row at a time), two threads each take
    several blocks: the registry's check (values, statistics, array and recorded VJPs against the
    composition) holds on that path, and the results equal one thread's to rounding (the blocks'
    partial sums add in another order)."""
    monkeypatch.setattr(nnet_threads, "MIN_BLOCK_BYTES", 1)
    monkeypatch.setattr(winograd, "BLOCK_FLOATS", 1)
    monkeypatch.setattr(winograd, "TILE_FLOATS", 1)  # products a tile row at a time
    monkeypatch.setattr(fused_conv, "CHUNK_ROWS", 1)
    monkeypatch.setattr(fused_linear, "SPLIT_MACS", 0)
    entry = next(k for k in REGISTRY if k.name == name)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        args = entry.case(partial(_draw, rng), rng)
        nnet.set_num_threads(2)
        check(entry, args, np.random.default_rng(seed + 100))
        two = _array_run(entry, args, seed)
        nnet.set_num_threads(1)
        one = _array_run(entry, args, seed)
        for a, a0 in zip(two, one, strict=True):
            np.testing.assert_allclose(a, a0, rtol=1e-12, atol=1e-12)
    assert any(team_runs), f"{name}: no case split over two threads"
