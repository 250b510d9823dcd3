"""Layers and losses against PyTorch's, when torch is importable (NCHW vs NHWC accounted for)."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
import nnet.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(0)


def nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [
        ((2, 4), 1, "same", 1),
        ((3, 2), 1, "same", 2),
        (3, (2, 1), 1, 1),
        ((2, 3), 2, (1, 0), (2, 1)),
    ],
)
def test_conv2d(kernel, stride, padding, dilation):
    x = rng.standard_normal((2, 7, 8, 3))
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    w = rng.standard_normal((*k, 3, 4))
    b = rng.standard_normal(4)
    want = TF.conv2d(
        nchw(x), torch.from_numpy(w.transpose(3, 2, 0, 1).copy()), torch.from_numpy(b),
        stride, padding, dilation,
    )  # fmt: skip
    got = F.conv2d(nnet.Tensor(x), nnet.Tensor(w), nnet.Tensor(b), stride, padding, dilation)
    np.testing.assert_allclose(got.numpy(), nhwc(want), atol=1e-10)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [(2, None, 0, 1), (3, 2, 1, 1), ((3, 2), 1, (1, 0), 2)],
)
def test_max_pool2d(kernel, stride, padding, dilation):
    x = rng.standard_normal((2, 7, 6, 3))
    want = TF.max_pool2d(nchw(x), kernel, stride, padding, dilation)
    got = F.max_pool2d(nnet.Tensor(x), kernel, stride, padding, dilation)
    np.testing.assert_array_equal(got.numpy(), nhwc(want))


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d(count_include_pad):
    x = rng.standard_normal((2, 7, 6, 3))
    want = TF.avg_pool2d(nchw(x), 3, 2, 1, count_include_pad=count_include_pad)
    got = F.avg_pool2d(nnet.Tensor(x), 3, 2, 1, count_include_pad)
    np.testing.assert_allclose(got.numpy(), nhwc(want), atol=1e-12)


def test_losses():
    x = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, -100, 2, 1])
    w = rng.uniform(0.5, 2, 4)
    q = rng.dirichlet(np.ones(4), 5)
    tx = torch.from_numpy(x)
    for kw in ({}, {"label_smoothing": 0.1}, {"reduction": "sum"}):
        want = TF.cross_entropy(tx, torch.from_numpy(labels), torch.from_numpy(w), **kw)
        got = F.cross_entropy(x, labels, w, **kw)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
        want = TF.cross_entropy(tx, torch.from_numpy(q), torch.from_numpy(w), **kw)
        np.testing.assert_allclose(F.cross_entropy(x, q, w, **kw).numpy(), want.numpy(), rtol=1e-12)
    p = np.array([0.0, 1e-50, 0.3, 1.0, 1.0])
    t = np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    want = TF.binary_cross_entropy(torch.from_numpy(p), torch.from_numpy(t), reduction="none")
    got = F.binary_cross_entropy(p, t, reduction="none")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    z = np.array([-1e4, -3.0, 0.0, 2.0, 1e4])
    pw = np.array([2.0])
    want = TF.binary_cross_entropy_with_logits(
        torch.from_numpy(z), torch.from_numpy(t), pos_weight=torch.from_numpy(pw), reduction="none"
    )
    got = F.binary_cross_entropy_with_logits(z, t, pos_weight=pw, reduction="none")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
