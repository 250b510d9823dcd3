"""Extreme inputs give exact limits and no warnings; float32 and float64 hold end to end.

Every test here runs with warnings as errors (as under ``python -W error``): an overflow in
``exp``, a division by zero or an invalid value would fail it. Expected values are the mathematical
limits written by hand, not computed by nnet.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnet
import nnet.nn.functional as F
from nnet import nn, optim

from .seed_net import graph_tensors, random_batch, seed_network

pytestmark = pytest.mark.filterwarnings("error")

DTYPES = [np.float32, np.float64]
BIG = 1e4


def leaf(values, dtype) -> nnet.Tensor:
    return nnet.Tensor(np.array(values, dtype), requires_grad=True)


def value_and_grad(fn, x: nnet.Tensor, upstream=None) -> tuple[np.ndarray, np.ndarray]:
    y = fn(x)
    g = np.ones(y.shape, y.dtype) if upstream is None else np.asarray(upstream, y.dtype)
    y.backward(nnet.Tensor(g))
    return y.numpy(), x.grad.numpy()


# -- activations ----------------------------------------------------------------------------------
# (name, function, input, exact output, exact gradient of sum(output))
ELEMENTWISE = [
    ("sigmoid", nnet.sigmoid, [-BIG, 0.0, BIG], [0.0, 0.5, 1.0], [0.0, 0.25, 0.0]),
    ("Sigmoid", nn.Sigmoid(), [-BIG, 0.0, BIG], [0.0, 0.5, 1.0], [0.0, 0.25, 0.0]),
    ("tanh", nnet.tanh, [-BIG, 0.0, BIG], [-1.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    ("Tanh", nn.Tanh(), [-BIG, 0.0, BIG], [-1.0, 0.0, 1.0], [0.0, 1.0, 0.0]),
    ("relu", nnet.relu, [-BIG, 0.0, BIG], [0.0, 0.0, BIG], [0.0, 0.0, 1.0]),
    ("ReLU", nn.ReLU(), [-BIG, 0.0, BIG], [0.0, 0.0, BIG], [0.0, 0.0, 1.0]),
    ("LeakyReLU", nn.LeakyReLU(0.25), [-BIG, 0.0, BIG], [-BIG / 4, 0.0, BIG], [0.25, 0.25, 1.0]),
    # softmax of [-BIG, 0, BIG]: one-hot on the last; sum(softmax) = 1 has gradient 0
    ("softmax", lambda t: nnet.softmax(t, -1), [-BIG, 0.0, BIG], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]),
    ("Softmax", nn.Softmax(), [-BIG, 0.0, BIG], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]),
    # log_softmax = x - BIG exactly; d sum(log_softmax) = 1 - 3 softmax
    ("log_softmax", lambda t: nnet.log_softmax(t, -1), [-BIG, 0.0, BIG],
     [-2 * BIG, -BIG, 0.0], [1.0, 1.0, -2.0]),
    ("LogSoftmax", nn.LogSoftmax(), [-BIG, 0.0, BIG], [-2 * BIG, -BIG, 0.0], [1.0, 1.0, -2.0]),
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "fn", "x", "want", "dwant"), ELEMENTWISE, ids=lambda v: "")
def test_activation_limits_are_exact(name, fn, x, want, dwant, dtype):
    y, dx = value_and_grad(fn, leaf(x, dtype))
    assert y.dtype == dtype and dx.dtype == dtype, name
    np.testing.assert_array_equal(y, np.array(want, dtype), err_msg=name)
    np.testing.assert_array_equal(dx, np.array(dwant, dtype), err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_of_huge_and_equal_values(dtype):
    eps = np.finfo(dtype).eps
    y, dx = value_and_grad(lambda t: nnet.logsumexp(t, axis=-1), leaf([BIG, BIG, -BIG], dtype))
    np.testing.assert_allclose(y, BIG + math.log(2), rtol=2 * eps)
    # The VJP is exp(x - logsumexp(x)) as in PyTorch: the output's rounding at |x| = 1e4 (half a
    # unit in the last place, about BIG eps / 2) becomes a relative error of that size here.
    np.testing.assert_allclose(dx, np.array([0.5, 0.5, 0.0], dtype), rtol=BIG * eps)
    y, dx = value_and_grad(lambda t: nnet.logsumexp(t, axis=-1), leaf([-BIG] * 4, dtype))
    np.testing.assert_allclose(y, -BIG + math.log(4), rtol=2 * eps)
    np.testing.assert_allclose(dx, np.full(4, 0.25, dtype), rtol=BIG * eps)
    assert dx.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("level", [-BIG, 0.0, 3.0, BIG])
def test_all_equal_logits_are_uniform(level, dtype):
    x = leaf(np.full((2, 4), level), dtype)
    s = nnet.softmax(x, -1)
    np.testing.assert_array_equal(s.numpy(), np.full((2, 4), 0.25, dtype))
    logp, _ = value_and_grad(lambda t: nnet.log_softmax(t, -1), leaf(np.full(4, level), dtype))
    np.testing.assert_allclose(logp, -math.log(4), rtol=4 * np.finfo(dtype).eps)
    # cross-entropy of equal logits is log C whatever the class; its gradient is (1/C - onehot) / N
    loss = F.cross_entropy(x, np.array([0, 3]))
    loss.backward()
    np.testing.assert_allclose(loss.item(), math.log(4), rtol=4 * np.finfo(dtype).eps)
    want = np.full((2, 4), 0.25 / 2)
    want[0, 0] -= 0.5
    want[1, 3] -= 0.5
    np.testing.assert_allclose(x.grad.numpy(), want, atol=4 * np.finfo(dtype).eps)


# -- losses ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_and_nll_at_huge_logits(dtype):
    logits = leaf([[BIG, -BIG, 0.0], [BIG, -BIG, 0.0]], dtype)
    loss = nn.CrossEntropyLoss(reduction="none")(logits, np.array([0, 1]))
    loss.sum().backward()
    np.testing.assert_array_equal(loss.numpy(), np.array([0.0, 2 * BIG], dtype))
    # softmax is one-hot on class 0: gradient softmax - onehot(target)
    np.testing.assert_array_equal(logits.grad.numpy(), np.array([[0, 0, 0], [1, -1, 0]], dtype))
    logp = nnet.log_softmax(leaf([[-BIG, BIG]], dtype), -1)
    nll = nn.NLLLoss()(logp, np.array([0]))
    np.testing.assert_array_equal(nll.numpy(), np.array(2 * BIG, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_at_huge_logits(dtype):
    x = leaf([-BIG, -BIG, BIG, BIG], dtype)
    t = np.array([0.0, 1.0, 0.0, 1.0], dtype)
    loss = nn.BCEWithLogitsLoss(reduction="none")(x, t)
    loss.sum().backward()
    # right answers cost 0, confident wrong ones cost |x|; the gradient is sigmoid(x) - t
    np.testing.assert_array_equal(loss.numpy(), np.array([0.0, BIG, BIG, 0.0], dtype))
    np.testing.assert_array_equal(x.grad.numpy(), np.array([0.0, -1.0, 1.0, 0.0], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_at_probabilities_zero_and_one(dtype):
    p = leaf([0.0, 1.0, 0.0, 1.0], dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype)
    loss = nn.BCELoss(reduction="none")(p, t)
    loss.sum().backward()
    # each log is clamped at -100 (PyTorch's convention), so a certain wrong answer costs 100
    np.testing.assert_array_equal(loss.numpy(), np.array([100.0, 100.0, 0.0, 0.0], dtype))
    g = p.grad.numpy()
    assert np.isfinite(g).all(), g
    # where the prediction is right, d/dp = (p - t) / (p (1 - p)) reduces to 1 / (1 - p) or -1 / p
    np.testing.assert_array_equal(g[2:], np.array([1.0, -1.0], dtype))
    assert nn.BCELoss()(p, t).item() == 50.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_regression_losses_at_huge_values(dtype):
    x = leaf([BIG, -BIG], dtype)
    target = np.array([-BIG, BIG], dtype)
    mse = nn.MSELoss()(x, target)
    mse.backward()
    assert mse.item() == 4 * BIG * BIG
    np.testing.assert_array_equal(x.grad.numpy(), np.array([2 * BIG, -2 * BIG], dtype))
    assert nn.L1Loss()(x, target).item() == 2 * BIG


# -- BatchNorm with a channel that does not vary -------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layer", ["BatchNorm1d", "BatchNorm2d"])
def test_batchnorm_zero_variance_channel(layer, dtype):
    rng = np.random.default_rng(0)
    shape = (6, 3) if layer == "BatchNorm1d" else (4, 3, 2, 3)
    values = rng.normal(size=shape) * BIG
    values[..., 1] = 7.0  # channel 1 is constant: variance exactly 0
    bn = getattr(nn, layer)(3).to(dtype)
    bn.weight.data[:] = [1.0, 2.0, 3.0]
    bn.bias.data[:] = [0.5, -1.5, 2.5]
    x = nnet.Tensor(values.astype(dtype), requires_grad=True)
    g = rng.normal(size=shape).astype(dtype)
    y = bn(x)
    y.backward(nnet.Tensor(g))
    out, dx = y.numpy(), x.grad.numpy()
    assert np.isfinite(out).all() and np.isfinite(dx).all()
    np.testing.assert_array_equal(out[..., 1], np.full(shape[:-1], -1.5, dtype))  # = bias
    # zero variance: y = bias + w (x - mean) / sqrt(eps), whose input gradient is
    # w / sqrt(eps) (g - mean(g)) (the variance path carries x - mean = 0)
    scale = 2.0 / math.sqrt(bn.eps)
    g1 = g[..., 1].astype(np.float64)
    want = scale * (g1 - g1.mean())
    np.testing.assert_allclose(dx[..., 1], want, rtol=1e-4, atol=1e-4 * scale)
    # the running variance moved towards 0, not to nan
    assert bn.running_var.numpy()[1] == pytest.approx(0.9)
    bn.eval()
    bn.running_var.data[1] = 0.0
    evald = bn(nnet.Tensor(values.astype(dtype))).numpy()
    assert np.isfinite(evald).all()


# -- dtypes end to end ----------------------------------------------------------------------------
def assert_all(dtype, where: str, arrays) -> None:
    for name, a in arrays:
        a = a.data if isinstance(a, nnet.Tensor) else a
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            assert a.dtype == dtype, f"{where}: {name} is {a.dtype}, expected {dtype.__name__}"


@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_training_step_keeps_the_dtype(dtype, opt_name):
    nnet.manual_seed(0)
    rng = np.random.default_rng(1)
    model = seed_network(side=12)
    if dtype is np.float64:
        model.double()
    kwargs = {"momentum": 0.9} if opt_name in ("SGD", "RMSprop") else {}
    opt = getattr(optim, opt_name)(model.parameters(), lr=0.01, **kwargs)
    for step in range(2):
        x, labels = random_batch(rng, 4, side=12, dtype=dtype)
        logits = model(x)
        loss = nn.CrossEntropyLoss()(logits, labels)
        graph = graph_tensors(loss)
        # every activation, every recorded input and every saved array in the graph
        assert len(graph) > 20
        assert_all(dtype, f"step {step} graph", [(repr(t.grad_fn), t) for t in graph])
        for t in graph:
            if t.grad_fn is not None:
                saved = [(f"{t.grad_fn!r} saved", s) for s in t.grad_fn.saved]
                assert_all(dtype, f"step {step}", saved)
        assert loss.dtype == dtype
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert_all(dtype, "parameters", model.named_parameters())
        assert_all(dtype, "buffers", model.named_buffers())
        assert_all(dtype, "gradients", [(n, p.grad) for n, p in model.named_parameters()])
        assert len(opt.state) == len(list(model.parameters()))
        for state in opt.state.values():
            assert any(isinstance(v, np.ndarray) for v in state.values()), state
            assert_all(dtype, f"{opt_name} state", state.items())
        assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with nnet.no_grad():
        assert model(random_batch(rng, 2, side=12, dtype=dtype)[0]).dtype == dtype
