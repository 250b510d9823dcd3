"""Every loss against a direct NumPy formula (extreme logits included), its gradients against
central differences, its reductions and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
import nnet.nn.functional as F
from nnet import nn
from nnet.loss import BCELoss as SeedBCELoss
from nnet.loss import CELoss
from nnet.loss import MSELoss as SeedMSELoss
from nnet.nn.math import onehot
from nnet.testing import gradcheck

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 3))
T = rng.standard_normal((4, 3))
P = rng.uniform(0.05, 0.95, (4, 3))
B = (rng.uniform(size=(4, 3)) < 0.5).astype(np.float64)
LABELS = np.array([0, 2, 1, 2])


def reduce(values, reduction):
    return {"mean": values.mean(), "sum": values.sum(), "none": values}[reduction]


def np_log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def t64(a, grad=True):
    return nnet.Tensor(np.asarray(a, np.float64), requires_grad=grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses(reduction):
    np.testing.assert_allclose(
        nn.MSELoss(reduction)(t64(X), T).numpy(), reduce((X - T) ** 2, reduction)
    )
    np.testing.assert_allclose(
        nn.L1Loss(reduction)(t64(X), T).numpy(), reduce(np.abs(X - T), reduction)
    )
    assert gradcheck(lambda x, t: F.mse_loss(x, t, reduction), t64(X), t64(T))
    assert gradcheck(lambda x, t: F.l1_loss(x, t, reduction), t64(X), t64(T))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce(reduction):
    want = -(B * np.log(P) + (1 - B) * np.log(1 - P))
    np.testing.assert_allclose(
        nn.BCELoss(reduction=reduction)(t64(P), B).numpy(), reduce(want, reduction)
    )
    w = rng.uniform(size=3)
    np.testing.assert_allclose(
        F.binary_cross_entropy(t64(P), B, w, "sum").numpy(), (want * w).sum()
    )
    assert gradcheck(lambda p: F.binary_cross_entropy(p, B, reduction=reduction), t64(P))


def test_bce_clamps_the_log_at_minus_100_like_pytorch():
    p = nnet.tensor([0.0, 1.0, 0.0, 1.0], requires_grad=True)
    loss = F.binary_cross_entropy(p, np.array([1.0, 0.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_array_equal(loss.numpy(), [100, 100, 0, 0])
    loss.sum().backward()
    assert np.isfinite(p.grad.numpy()).all()
    # float32 subnormal probabilities (sigmoid(-100)): PyTorch's value, a finite gradient
    x = nnet.tensor([-100.0, -95.0, -80.0, -10.0], requires_grad=True)
    loss = F.binary_cross_entropy(nnet.sigmoid(x), np.ones(4), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100, 95, 80, 10], rtol=1e-3)
    loss.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(x.grad.numpy()[2:], -1, rtol=1e-3)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*with_logits"):
        F.binary_cross_entropy(nnet.tensor([1.5]), np.ones(1))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(reduction):
    s = 1 / (1 + np.exp(-X))
    want = -(B * np.log(s) + (1 - B) * np.log(1 - s))
    got = nn.BCEWithLogitsLoss(reduction=reduction)(t64(X), B).numpy()
    np.testing.assert_allclose(got, reduce(want, reduction))
    pw = np.array([1.0, 2.0, 0.5])
    want_pw = -(pw * B * np.log(s) + (1 - B) * np.log(1 - s))
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(t64(X), B, pos_weight=pw, reduction="sum").numpy(),
        want_pw.sum(),
    )
    assert gradcheck(
        lambda x: F.binary_cross_entropy_with_logits(x, B, reduction=reduction), t64(X)
    )
    assert gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, B, pos_weight=pw), t64(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_exact_for_extreme_logits(dtype):
    x = nnet.Tensor(np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype), requires_grad=True)
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0, 0, 1e4, 1e4, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    # d/dx = sigmoid(x) - t, also at the kink-free point x = 0
    np.testing.assert_allclose(x.grad.numpy(), [0, 0, 1, -1, -0.5], atol=1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_with_class_indices_and_one_hot_rows(reduction, smoothing):
    logp = np_log_softmax(X)
    q = np.eye(3)[LABELS] * (1 - smoothing) + smoothing / 3
    want = reduce(-(q * logp).sum(-1), reduction)
    loss = nn.CrossEntropyLoss(reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(loss(t64(X), LABELS).numpy(), want)
    np.testing.assert_allclose(loss(t64(X), np.eye(3)[LABELS]).numpy(), want)
    assert gradcheck(lambda x: loss(x, LABELS), t64(X))
    assert gradcheck(lambda x, q: loss(x, q), t64(X), t64(rng.dirichlet(np.ones(3), 4)))


def test_cross_entropy_weights_and_ignore_index_like_pytorch():
    w = np.array([0.2, 1.0, 3.0])
    labels = np.array([0, 2, -100, 2])
    logp = np_log_softmax(X)
    valid = labels != -100
    picked = -logp[np.arange(4), np.where(valid, labels, 0)] * w[np.where(valid, labels, 0)]
    want = picked[valid].sum() / w[labels[valid]].sum()  # PyTorch's weighted mean
    np.testing.assert_allclose(F.cross_entropy(t64(X), labels, weight=w).numpy(), want)
    np.testing.assert_allclose(F.nll_loss(t64(logp), labels, weight=w).numpy(), want)
    none = F.cross_entropy(t64(X), labels, weight=w, reduction="none").numpy()
    np.testing.assert_allclose(none, np.where(valid, picked, 0))


def test_cross_entropy_on_nhwc_score_maps():
    x = rng.standard_normal((2, 3, 3, 4))
    y = rng.integers(0, 4, (2, 3, 3))
    want = -np.take_along_axis(np_log_softmax(x), y[..., None], -1).mean()
    np.testing.assert_allclose(F.cross_entropy(t64(x), y).numpy(), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_extreme_logits(dtype):
    x = nnet.Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype), requires_grad=True)
    loss = F.cross_entropy(x, np.array([1, 2]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [2e4, 0], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1, -1, 0], [0, 0, 0]], atol=1e-6)


def test_nll_loss():
    logp = np_log_softmax(X)
    np.testing.assert_allclose(
        nn.NLLLoss()(t64(logp), LABELS).numpy(), -logp[np.arange(4), LABELS].mean()
    )
    assert gradcheck(lambda x: F.nll_loss(x, LABELS, reduction="sum"), t64(logp))


def test_seed_names():
    np.testing.assert_allclose(
        CELoss()(t64(X), onehot(LABELS, 3)).numpy(),
        -(np.eye(3)[LABELS] * np_log_softmax(X)).sum(-1).mean(),
    )
    assert SeedMSELoss is nn.MSELoss and SeedBCELoss is nn.BCELoss


def test_onehot():
    np.testing.assert_array_equal(onehot(np.array([[1], [0]]), 2).numpy(), [[[0, 1]], [[1, 0]]])
    assert onehot([3, 1]).shape == (2, 4) and onehot([1], dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values in \[0, 5\]"):
        onehot([0, 5], 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nn.MSELoss()(nnet.zeros((8, 1)), np.zeros(8)),
         r"MSELoss: the target's shape \(8,\) does not match the input's shape "
         r"\(8, 1\)"),
        (lambda: nn.BCEWithLogitsLoss()(nnet.zeros(3), np.zeros(4)),
         r"BCEWithLogitsLoss: the target"),
        (lambda: nn.CrossEntropyLoss()(nnet.zeros((4, 3)), np.array([0, 1, 3, 0])),
         r"CrossEntropyLoss: target 3 is out of range for 3 classes \(0\.\.2\)"),
        (lambda: nn.CrossEntropyLoss()(nnet.zeros((4, 3)), np.zeros(3, int)),
         r"class-index targets must have shape \(4,\)"),
        (lambda: nn.CrossEntropyLoss()(nnet.zeros((4, 3)), np.zeros((4, 2))),
         r"probability \(one-hot\) targets must have the input's shape \(4, 3\)"),
        (lambda: nn.L1Loss(reduction="avg"), r"reduction must be one of"),
        (lambda: nn.CrossEntropyLoss(label_smoothing=2), r"label_smoothing must be in \[0, 1\]"),
    ],
)  # fmt: skip
def test_bad_targets_and_options(call, message):
    with pytest.raises(ValueError, match=message):
        call()
