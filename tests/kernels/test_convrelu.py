"""Conv2d, ReLU, BatchNorm2d and MaxPool2d fused (the pool before the normalisation), and Conv2d,
ReLU, MaxPool2d fused, against the layers run one after another, in a Sequential and in a
define-by-run forward."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.kernels import (
    ConvReluBatchNormPool,
    ConvReluPool,
    ConvReluPoolBatchNorm,
    FewChannelConvReluPool,
    use_fused,
)

#: The fused primitives whose gradients this file checks (tests/kernels/test_coverage.py).
FUSED_TESTED = (ConvReluBatchNormPool, ConvReluPool, ConvReluPoolBatchNorm, FewChannelConvReluPool)


class Block(nn.Module):
    """conv, nnet.relu, bn, pool called one at a time."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv, self.bn, self.pool = (
            nn.Conv2d(cin, cout, 3),
            nn.BatchNorm2d(cout),
            nn.MaxPool2d(2),
        )

    def forward(self, x):
        return self.pool(self.bn(nnet.relu(self.conv(x))))


def _model(kind, cin, cout):
    nnet.manual_seed(0)
    if kind == "sequential":
        model = nn.Sequential(
            nn.Conv2d(cin, cout, 3), nn.ReLU(), nn.BatchNorm2d(cout), nn.MaxPool2d(2)
        )
        bn = model[2]
    else:
        model = Block(cin, cout)
        bn = model.bn
    model = model.double()
    # negative and zero scales: the pool takes the minimum, or ties, there
    bn.weight.data[...] = np.linspace(-1.5, 2.0, cout)
    bn.weight.data[1] = 0.0
    bn.bias.data[...] = np.linspace(0.5, -0.5, cout)
    return model


def _run(fused, kind, x, needs_x):
    model = _model(kind, x.shape[3], 64 if needs_x else 8)
    xt = nnet.Tensor(x.copy(), requires_grad=needs_x)
    for _ in range(2):  # the second step sees the moved running statistics
        with use_fused(fused):
            y = model(xt)
    assert (type(y.grad_fn) is ConvReluBatchNormPool) == fused
    g = np.random.default_rng(1).standard_normal(y.shape)
    leaves = list(model.parameters()) + ([xt] if needs_x else [])
    grads = [a.numpy() for a in nnet.grad(y, leaves, g)]
    return y.numpy(), grads, [b.numpy().copy() for b in model.buffers()]


@pytest.mark.parametrize("kind", ["sequential", "define-by-run"])
@pytest.mark.parametrize("needs_x", [False, True], ids=["patches", "winograd"])
def test_block_matches_the_layers(kind, needs_x):
    rng = np.random.default_rng(0)
    shape = (6, 16, 16, 16) if needs_x else (3, 8, 6, 2)
    x = rng.standard_normal(shape)
    (y, grads, bufs), (y0, grads0, bufs0) = (_run(f, kind, x, needs_x) for f in (True, False))
    np.testing.assert_allclose(y, y0, rtol=1e-9, atol=1e-10)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-8, atol=1e-9)
    for b, b0 in zip(bufs, bufs0, strict=True):
        np.testing.assert_allclose(b, b0, rtol=1e-10, atol=1e-12)


class _Wrap(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_a_kept_intermediate_runs_the_layers_apart():
    """A ReLU output the user holds is computed on its own: the block does not fuse over it."""
    model = _model("define-by-run", 2, 8)
    x = nnet.Tensor(np.random.default_rng(0).standard_normal((2, 4, 4, 2)))

    def forward(x):
        r = nnet.relu(model.conv(x))
        return model.pool(model.bn(r)), r

    y, r = _Wrap(forward)(x)
    assert type(y.grad_fn) is not ConvReluBatchNormPool
    with use_fused(False):
        want = nnet.relu(model.conv(x)).numpy()
    np.testing.assert_allclose(r.numpy(), want, rtol=1e-12)


def test_direct_call_with_an_input_gradient_on_the_patch_path_is_refused():
    from nnet.kernels.batchnorm import BatchStats
    from nnet.kernels.im2col import geometry

    rng = np.random.default_rng(0)
    x = nnet.Tensor(rng.standard_normal((2, 4, 4, 1)), requires_grad=True)
    w = nnet.Tensor(rng.standard_normal((3, 3, 1, 4)), requires_grad=True)
    geo = geometry(x.shape, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    y = ConvReluBatchNormPool.apply(x, w, None, None, None, 1e-5, BatchStats(), geo, (2, 2))
    with pytest.raises(RuntimeError, match="computes no gradient for its input"):
        y.sum().backward()


@pytest.mark.parametrize("offset", [0.0, 300.0], ids=["one-pass", "centred"])
def test_float32_statistics_match_the_layers(offset):
    """The variance as E[r^2] - mean^2 from the first pass, or, where a large mean would cancel
    most of its bits (every r near the conv bias 300), from the centred values: float32 running
    statistics and output as the layers' to float32 rounding (the one-pass form alone is off by
    far more there)."""
    rng = np.random.default_rng(0)
    x = nnet.Tensor(rng.standard_normal((4, 8, 8, 1)).astype(np.float32))
    results = []
    for fused in (True, False):
        nnet.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.BatchNorm2d(8), nn.MaxPool2d(2))
        model[0].bias.data[...] = offset
        with use_fused(fused):
            y = model(x)
        assert (type(y.grad_fn) is ConvReluBatchNormPool) == fused
        results.append((y.numpy(), model[2].running_var.numpy().copy()))
    (y, var), (y0, var0) = results
    np.testing.assert_allclose(var, var0, rtol=1e-4)
    np.testing.assert_allclose(y, y0, rtol=1e-3, atol=1e-3)


class PoolFirst(nn.Module):
    """conv, nnet.relu, pool, bn called one at a time (the seed network's order): one
    ConvReluPoolBatchNorm with offset planes."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv, self.bn, self.pool = (
            nn.Conv2d(cin, cout, 3),
            nn.BatchNorm2d(cout),
            nn.MaxPool2d(2),
        )

    def forward(self, x):
        return self.bn(self.pool(nnet.relu(self.conv(x))))


def _run_pool_first(fused, kind, x, needs_x):
    nnet.manual_seed(0)
    cin, cout = x.shape[3], 64 if needs_x else 8
    if kind == "sequential":
        model = nn.Sequential(
            nn.Conv2d(cin, cout, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(cout)
        )
    else:
        model = PoolFirst(cin, cout)
    model = model.double()
    xt = nnet.Tensor(x.copy(), requires_grad=needs_x)
    with use_fused(fused):
        y = model(xt)
    assert (type(y.grad_fn) is ConvReluPoolBatchNorm) == fused
    g = np.random.default_rng(1).standard_normal(y.shape)
    leaves = list(model.parameters()) + ([xt] if needs_x else [])
    grads = [a.numpy() for a in nnet.grad(y, leaves, g)]
    return y.numpy(), grads + [b.numpy().copy() for b in model.buffers()]


@pytest.mark.parametrize("kind", ["sequential", "define-by-run"])
@pytest.mark.parametrize("needs_x", [False, True], ids=["patches", "winograd"])
def test_pool_first_block_matches_the_layers(kind, needs_x):
    rng = np.random.default_rng(0)
    shape = (6, 16, 16, 16) if needs_x else (3, 8, 6, 2)
    x = np.round(rng.standard_normal(shape))  # ties and zeros in the windows
    (y, grads), (y0, grads0) = (_run_pool_first(f, kind, x, needs_x) for f in (True, False))
    np.testing.assert_allclose(y, y0, rtol=1e-9, atol=1e-10)
    for a, a0 in zip(grads, grads0, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("fill", ["ties", "nan"])
def test_pool_first_patch_path_routes_ties_and_nans_as_the_layers(fill):
    """Windows of equal convolution outputs (an input that is zero but for a few pixels, so the
    bias ties whole windows) send their gradient to their first offset only, and windows around a
    NaN pixel give what the layers give: the patch path's routing, all offsets at once
    (patchpool.py), as MaxPool2d's."""
    rng = np.random.default_rng(3)
    x = np.zeros((3, 8, 6, 2))
    x[0, 2, 3, 0], x[2, 5, 1, 1] = 1.5, -2.0
    if fill == "nan":
        x[1, 4, 4, 0] = np.nan
    g = rng.standard_normal((3, 4, 3, 8))
    results = []
    for fused in (True, False):
        nnet.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(2, 8, 3), nn.ReLU(), nn.MaxPool2d(2)).double()
        with use_fused(fused):
            y = model(nnet.Tensor(x.copy()))
        assert (type(y.grad_fn) is ConvReluPool) == fused
        results.append([y.numpy(), *[a.numpy() for a in nnet.grad(y, model.parameters(), g)]])
    for a, a0 in zip(*results, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_few_channel_block_at_the_seeds_size_matches_the_layers(bias):
    """The seed's second block, (100, 14, 14, 4) -> 8 channels with an input gradient
    (FewChannelConvReluPool): its patch rows offset-major with a column of ones for the bias, and
    its kernel gradient by slabs of whole images plus a tail (fewpool._offsets_product), as the
    layers give; with integer inputs, so windows tie."""
    rng = np.random.default_rng(5)
    x = np.round(rng.standard_normal((100, 14, 14, 4)))
    g = rng.standard_normal((100, 7, 7, 8))
    results = []
    for fused in (True, False):
        nnet.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(4, 8, 3, bias=bias), nn.ReLU(), nn.MaxPool2d(2)).double()
        xt = nnet.Tensor(x.copy(), requires_grad=True)
        with use_fused(fused):
            y = model(xt)
        assert (type(y.grad_fn) is FewChannelConvReluPool) == fused
        grads = nnet.grad(y, [*model.parameters(), xt], g)
        results.append([y.numpy(), *[a.numpy() for a in grads]])
    for a, a0 in zip(*results, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-10, atol=1e-10)


def test_few_channel_block_with_a_nan_input_matches_the_layers():
    """A NaN input pixel makes its windows' maxima NaN, and relu'(NaN) = 0 gives those windows no
    gradient, in the block (FewChannelConvReluPool) as in the layers: values and input gradient
    equal, NaN where the layers have NaN."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 8, 6, 3))
    x[1, 3, 2, 0] = np.nan
    g = rng.standard_normal((4, 4, 3, 8))
    results = []
    for fused in (True, False):
        nnet.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2)).double()
        xt = nnet.Tensor(x.copy(), requires_grad=True)
        with use_fused(fused):
            y = model(xt)
        assert (type(y.grad_fn) is FewChannelConvReluPool) == fused
        (gx,) = nnet.grad(y, [xt], g)
        results.append([y.numpy(), gx.numpy()])
    for a, a0 in zip(*results, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-12, atol=1e-12)


class FirstSeedBlock(nn.Module):
    """The seed network's first block, conv-relu-pool-bn, called one layer at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.pool, self.bn = nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.pool(nnet.relu(self.conv(x))))


@pytest.mark.parametrize("kind", ["sequential", "define-by-run"])
@pytest.mark.parametrize("fill", ["ties", "nan"])
def test_few_output_channels_pool_first_block_matches_the_layers(kind, fill):
    """The seed's first block with its batch norm, (N, H, W, 1) -> 4 channels, an input that takes
    no gradient: one ConvReluPoolBatchNorm on patchpool's channel-major rows; values, gradients
    and running statistics as the layers give, with integer inputs (windows tie) or a NaN pixel."""
    rng = np.random.default_rng(11)
    x = np.round(rng.standard_normal((5, 12, 8, 1)))
    if fill == "nan":
        x[2, 5, 3, 0] = np.nan
    g = rng.standard_normal((5, 6, 4, 4))
    results = []
    for fused in (True, False):
        nnet.manual_seed(0)
        if kind == "sequential":
            model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4))
        else:
            model = FirstSeedBlock()
        model = model.double()
        with use_fused(fused):
            y = model(nnet.Tensor(x.copy()))
        assert (type(y.grad_fn) is ConvReluPoolBatchNorm) == fused
        grads = nnet.grad(y, list(model.parameters()), g)
        results.append(
            [y.numpy(), *[a.numpy() for a in grads], *[b.numpy() for b in model.buffers()]]
        )
    for a, a0 in zip(*results, strict=True):
        np.testing.assert_allclose(a, a0, rtol=1e-9, atol=1e-10)
