"""Define-by-run fusion (nnet/autograd/pending.py, nnet/nn/chains.py): layers called one at a time
from a forward give the composition's values, gradients and running statistics, reach the fused
kernels when nothing else holds the intermediates, and keep every tensor a user holds exact."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.autograd.pending import Pending
from nnet.kernels import use_fused
from nnet.kernels.bnpool import BatchNormReluPool
from nnet.kernels.convbn import ConvBatchNormReluPool

ORDERS = [("bn", "relu", "pool"), ("relu", "pool", "bn"), ("relu", "bn", "pool")]


class Blocks(nn.Module):
    """Two conv blocks in ``order``, the ReLU as ``nnet.relu``, then a linear head; ``keep``
    stores the first convolution's output on the module (a tensor the user holds)."""

    def __init__(self, order: tuple[str, ...], keep: bool = False) -> None:
        super().__init__()
        self.order, self.keep = order, keep
        self.convs = nn.ModuleList([nn.Conv2d(1, 16, 3), nn.Conv2d(16, 16, 3)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(16), nn.BatchNorm2d(16)])
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(16 * 2 * 2, 3)
        self.kept: nnet.Tensor | None = None

    def forward(self, x: nnet.Tensor) -> nnet.Tensor:
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            x = conv(x)
            if self.keep and i == 0:
                self.kept = x
                x.retain_grad()
            for name in self.order:
                x = bn(x) if name == "bn" else nnet.relu(x) if name == "relu" else self.pool(x)
        return self.head(x.reshape(x.shape[0], -1))


def _run(order, fused, keep=False, create_graph=False):
    nnet.manual_seed(0)
    model = Blocks(order, keep).double()
    rng = np.random.default_rng(1)
    x = nnet.tensor(rng.standard_normal((3, 8, 8, 1)))
    with use_fused(fused):
        out = model(x)
        loss = (out * out).sum()
        params = list(model.parameters())
        if create_graph:
            grads = nnet.grad(loss, params, create_graph=True)
            sum((g * g).sum() for g in grads).backward()
        else:
            loss.backward()
    stats = [b.running_mean.numpy().copy() for b in model.bns]
    stats += [b.running_var.numpy().copy() for b in model.bns]
    kept = None if model.kept is None else (model.kept.numpy(), model.kept.grad.numpy())
    return out, [p.grad.numpy() for p in params], stats, kept


def _close(a, b):
    scale = max(float(np.abs(v).max(initial=0.0)) for v in b)  # a bias's gradient is 0 up to it
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12 * max(1.0, scale))


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("keep", [False, True])
def test_define_by_run_equals_the_composition(order, keep):
    out, grads, stats, kept = _run(order, True, keep)
    out0, grads0, stats0, kept0 = _run(order, False, keep)
    assert type(out) is nnet.Tensor
    _close([out.numpy()], [out0.numpy()])
    _close(grads, grads0)
    _close(stats, stats0)
    if keep:  # the held conv output: its value and (retain_grad) its whole gradient
        _close(kept, kept0)


@pytest.mark.parametrize("order", ORDERS)
def test_second_order_equals_the_composition(order):
    _, grads, _, _ = _run(order, True, create_graph=True)
    _, grads0, _, _ = _run(order, False, create_graph=True)
    _close(grads, grads0)


def _ops(t: nnet.Tensor) -> set[str]:
    """The class names of every node of t's graph."""
    seen, stack, names = set(), [t.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        names.add(type(fn).__name__)
        stack.extend(i.grad_fn for i in fn.inputs if isinstance(i, nnet.Tensor))
    return names


def test_an_unheld_run_reaches_the_fused_kernels():
    nnet.manual_seed(0)
    model = Blocks(("bn", "relu", "pool"))
    out = model(nnet.randn(3, 8, 8, 1))
    ops = _ops(out)
    assert ConvBatchNormReluPool.__name__ in ops  # the first block: the input takes no gradient
    assert BatchNormReluPool.__name__ in ops  # the second: conv, then bn-relu-pool
    assert "Relu" not in ops and "MaxPool2d" not in ops


def test_a_held_intermediate_is_computed_on_its_own():
    nnet.manual_seed(0)
    model = Blocks(("bn", "relu", "pool"), keep=True)
    out = model(nnet.randn(3, 8, 8, 1))
    assert type(model.kept) is nnet.Tensor and type(model.kept.grad_fn).__name__ == "Conv2d"
    assert ConvBatchNormReluPool.__name__ not in _ops(out)  # it would bypass the held tensor


def test_grad_with_respect_to_a_held_intermediate():
    # 1 -> 16 channels: the run would fuse (ConvBatchNormReluPool) if z were not held
    conv, bn = nn.Conv2d(1, 16, 3).double(), nn.BatchNorm2d(16).double()
    x = nnet.tensor(np.random.default_rng(2).standard_normal((2, 4, 4, 1)))

    class Net(nn.Module):
        def forward(self, x, keep=True):
            z = conv(x)
            if keep:
                self.z = z
            return nn.functional.max_pool2d(nnet.relu(bn(z)), 2)  # resolved after z's frame

    net = Net()
    results = []
    for fused in (True, False):
        with use_fused(fused):
            loss = net(x).sum()
            assert ConvBatchNormReluPool.__name__ not in _ops(loss)
            results.append(nnet.grad(loss, net.z)[0].numpy())
    _close(results[:1], results[1:])
    assert ConvBatchNormReluPool.__name__ in _ops(net(x, keep=False))  # z unheld: fused


def test_a_dropped_batch_norm_still_moves_its_running_statistics():
    bn = nn.BatchNorm2d(2)

    class Net(nn.Module):
        def forward(self, x):
            bn(x * 1.0)  # result unused: running statistics move as in eager code
            return x

    x = nnet.tensor(np.arange(16.0).reshape(2, 2, 2, 2))
    Net()(x)
    ref = nn.BatchNorm2d(2)
    ref(x)
    np.testing.assert_allclose(bn.running_mean.numpy(), ref.running_mean.numpy())
    np.testing.assert_allclose(bn.running_var.numpy(), ref.running_var.numpy())
    assert int(bn.num_batches_tracked.data) == 1


def test_an_in_place_change_after_a_layer_does_not_reach_it():
    conv = nn.Conv2d(1, 2, 3)
    x = nnet.tensor(np.ones((1, 4, 4, 1), np.float32))

    class Net(nn.Module):
        def forward(self, x):
            y = conv(x)
            x.add_(1.0)  # eager code computed y before this
            return y

    expected = conv(nnet.ones((1, 4, 4, 1))).numpy()
    np.testing.assert_allclose(Net()(x).numpy(), expected)


def test_nothing_is_pending_after_the_outermost_call():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            self.z = self.conv(x)
            assert type(self.z) is Pending  # inside the call: deferred
            return nnet.relu(self.z), [self.conv(x)]

    net = Net()
    out, (other,) = net(nnet.ones((1, 4, 4, 1)))
    assert type(net.z) is type(out) is type(other) is nnet.Tensor
    assert type(nn.functional.conv2d(nnet.ones((1, 4, 4, 1)), net.conv.weight)) is nnet.Tensor


@pytest.mark.parametrize("mode", ["unfused", "anomaly"])
def test_no_deferral_when_fusion_is_off_or_anomalies_are_watched(mode):
    seen = []

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            y = self.conv(x)
            seen.append(type(y))
            return y

    x = nnet.ones((1, 4, 4, 1))
    if mode == "unfused":
        with use_fused(False):
            Net()(x)
    else:
        with nnet.autograd.detect_anomaly():
            Net()(x)
    assert seen == [nnet.Tensor]


def test_pending_metadata_needs_no_computation():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, stride=2)
            self.pool = nn.MaxPool2d(2, stride=1)

        def forward(self, x):
            y = self.pool(nnet.relu(self.conv(x)))
            assert type(y) is Pending
            meta = (y.shape, y.ndim, y.dtype, y.numel(), y.requires_grad)
            assert type(y) is Pending  # still: nothing above computed it
            return y, meta

    net = Net()
    y, meta = net(nnet.ones((2, 9, 9, 3)))
    assert (
        meta == (y.shape, y.ndim, y.dtype, y.numel(), True) == ((2, 4, 4, 5), 4, y.dtype, 160, True)
    )
