"""PyTorch idioms run with nnet in torch's place, and compared with PyTorch where it is importable.

Each idiom is written once against a module ``T`` (``torch`` or ``nnet``) and returns arrays; nnet's
results must equal PyTorch's. The ported tutorials at the bottom run a few steps each and must learn.
"""

from typing import Any

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.data import DataLoader, TensorDataset

X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)


def _np(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(_np(v) for v in x)
    if hasattr(x, "detach"):
        x = x.detach()
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def transpose_2d(T):
    return T.tensor(X).transpose(0, 1)


def transpose_3d(T):
    return T.tensor(X.reshape(2, 2, 3)).transpose(0, 2)


def max_dim_unpacks_values_and_indices(T):
    values, indices = T.max(T.tensor(X), 1)
    return values, indices


def method_max_keepdim(T):
    result = T.tensor(X).max(dim=0, keepdim=True)
    return result.values, result.indices


def min_dim(T):
    return tuple(T.tensor(X).min(1))


def max_of_everything(T):
    return T.tensor(X).max()


def accuracy_as_the_tutorial_computes_it(T):
    outputs, labels = T.tensor(X), T.tensor(np.array([0, 1, 2, 0]))
    _, predicted = T.max(outputs, 1)
    return (predicted == labels).sum().item() / labels.size(0)


def size_and_numel(T):
    t = T.tensor(X)
    return np.array([*t.size(), t.size(0), t.size(-1), t.numel(), t.dim()])


def argmax_dim(T):
    return T.tensor(X).argmax(dim=1), T.tensor(X).argmin(dim=0, keepdim=True)


def float_times_long(T):
    y = T.tensor(X) * T.tensor(np.arange(3))
    return y, np.array(str(y.dtype).endswith("float32"))


def long_true_division(T):
    y = T.tensor(np.arange(4)) / 2
    return y, np.array(str(y.dtype).endswith("float32"))


def t_and_clone(T):
    a = T.tensor(X)
    return a.t(), a.clone() * 2


def linspace_sin_cos(T):
    x = T.linspace(-np.pi, np.pi, 7)
    return T.sin(x), T.cos(x)


def std_unbiased(T):
    return T.tensor(X).std(dim=1, unbiased=True)


def var_and_std_defaults(T):
    """PyTorch's default correction=1, in every spelling a port meets."""
    x = T.tensor(X)
    return (
        x.var(),
        x.std(),
        x.var(1),
        T.std(x, 0),
        T.var(x, dim=0, keepdim=True),
        x.var(1, False),
        x.std(dim=1, correction=0),
        x.var(dim=(0, 1), unbiased=False),
        x.var(0, correction=2),
    )


def var_gradient(T):
    x = T.tensor(X.astype(np.float64), requires_grad=True)
    (x.var(0).sum() + x.std()).backward()
    return x.grad


def tensor_method_names(T):
    """PyTorch's method spellings of nnet's ops (nnet/autograd/tensor_aliases.py)."""
    x, y = T.tensor(X), T.tensor(X[::-1].copy())
    return (
        x.add(y, alpha=2), x.sub(1), x.mul(y), x.div(2), x.neg(), x.eq(x), x.ne(y), x.gt(0).long(),
        x.lt(y).int(), x.ge(0).float(), x.le(0).bool(), x.abs().mul(3).byte(), x.half(),
        x.mm(y.t()), x.reshape(2, 2, 3).bmm(y.reshape(2, 3, 2)), x[:1].expand_as(x), x.view_as(y.t()),
        T.tensor(np.arange(3)).type_as(x), x.t().contiguous(), *x.unbind(1),
        x.masked_fill(x < 0, 0.0), x.new_zeros(2, 3), x.new_ones((2,)), x.new_full((2,), 7.0),
        x.new_tensor([1.0, 2.0]), (x > 0).all(), (x > 0).any(dim=1), x.gt(0).all(dim=0, keepdim=True),
    )  # fmt: skip


def tensor_method_names_differentiate(T):
    x = T.tensor(X.astype(np.float64), requires_grad=True)
    a, b, _ = x.unbind(1)
    (x.add(x * x, alpha=3).masked_fill(x.detach() > 0, 2.0).sum() + (a * b).sum()).backward()
    return x.grad


def from_numpy_shares(T):
    a = np.arange(3.0)
    t = T.from_numpy(a)
    a[0] = 5.0
    return t


def dtype_names(T):
    return (T.zeros(2, dtype=T.long), T.ones(2, dtype=T.float), T.tensor([1, 0], dtype=T.bool))


def to_cpu_and_format(T):
    t = T.tensor([1.25]).to("cpu").cpu()
    return t, np.array(f"{t.sum():.2f}" == "1.25")


def allclose(T):
    return np.array(T.allclose(T.ones(2), T.ones(2) + 1e-9))


def manual_sgd_in_place(T):
    w = T.tensor(X, requires_grad=True)
    for _ in range(3):
        loss = (w * w).sum()
        loss.backward()
        with T.no_grad():
            w -= 0.1 * w.grad
            w.grad.zero_()
    return w


def inference_mode(T):
    w = T.tensor(X, requires_grad=True)
    with T.inference_mode():
        y = w * 2
    return y, np.array(y.requires_grad)


IDIOMS = [
    transpose_2d, transpose_3d, max_dim_unpacks_values_and_indices, method_max_keepdim, min_dim,
    max_of_everything, accuracy_as_the_tutorial_computes_it, size_and_numel, argmax_dim,
    float_times_long, long_true_division, t_and_clone, linspace_sin_cos, std_unbiased,
    var_and_std_defaults, var_gradient, tensor_method_names, tensor_method_names_differentiate,
    from_numpy_shares, dtype_names, to_cpu_and_format, allclose, manual_sgd_in_place, inference_mode,
]  # fmt: skip


@pytest.mark.parametrize("idiom", IDIOMS, ids=lambda f: f.__name__)
def test_idiom_runs_on_nnet(idiom):
    idiom(nnet)


@pytest.mark.parametrize("idiom", IDIOMS, ids=lambda f: f.__name__)
def test_idiom_matches_torch(idiom):
    torch = pytest.importorskip("torch")
    ours, theirs = _np(idiom(nnet)), _np(idiom(torch))
    ours, theirs = (ours, theirs) if isinstance(ours, tuple) else ((ours,), (theirs,))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, (a, b)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


# -- the ported tutorials, a few steps each ------------------------------------------------------
def test_learning_pytorch_with_examples_polynomial():
    """ "Learning PyTorch with Examples": y = sin(x) by a cubic, tensors and autograd, manual SGD."""
    x = nnet.linspace(-np.pi, np.pi, 2000)
    y = nnet.sin(x)
    nnet.manual_seed(0)
    a, b, c, d = (nnet.randn((), requires_grad=True) for _ in range(4))
    losses = []
    for _ in range(200):
        y_pred = a + b * x + c * x**2 + d * x**3
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with nnet.no_grad():
            for p in (a, b, c, d):
                p -= 1e-6 * p.grad
                p.grad = None
    assert losses[-1] < 0.5 * losses[0]
    assert f"{losses[-1]:.3f}"


def test_training_a_classifier_on_synthetic_images():
    """ "Training a Classifier" (CIFAR-10) on synthetic NHWC images: the tutorial's loop as written
    but for the permute of the input and Conv2d's padding."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 48)
    images = rng.standard_normal((48, 8, 8, 3)).astype(np.float32) + labels[:, None, None, None]
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True, generator=0)
    nnet.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=0), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(6 * 3 * 3, 16), nn.ReLU(), nn.Linear(16, 3),
    )  # fmt: skip
    criterion = nn.CrossEntropyLoss()
    optimizer = nnet.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    first = last = None
    # 12 epochs of 3 steps: above 0.75 accuracy for every loader seed tried (0-7); 4 epochs
    # passed the bar for some seeds only
    for _epoch in range(12):
        running = 0.0
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = criterion(net(inputs), targets)
            loss.backward()
            optimizer.step()
            running += loss.item()
        first = running if first is None else first
        last = running
    correct = total = 0
    with nnet.no_grad():
        for inputs, targets in loader:
            _, predicted = nnet.max(net(inputs), 1)
            total += targets.size(0)
            correct += (predicted == targets).sum().item()
    assert last < first and correct / total > 0.5


def test_custom_training_loop_with_schedule_and_device():
    """A hand-written loop: device moves, a warm-up then one-cycle schedule, eval with argmax."""
    device = nnet.device("cpu")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=1)
    nnet.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2)).to(device)
    optimizer = nnet.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = nnet.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-2, total_steps=5 * 4)
    for _ in range(5):
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    with nnet.inference_mode():
        accuracy = (model(nnet.tensor(x)).argmax(dim=1) == nnet.tensor(y)).float().mean().item()
    assert accuracy > 0.8


def test_tensor_method_names_refuse_what_pytorch_refuses():
    x = nnet.tensor(X)
    with pytest.raises(
        ValueError, match=r"mm: expected two 2-D tensors, got shapes \(4, 3\) and \(3,\)"
    ):
        x.mm(nnet.ones(3))
    with pytest.raises(ValueError, match=r"bmm: expected two 3-D tensors with the same batch size"):
        nnet.ones(2, 3, 4).bmm(nnet.ones(3, 4, 5))
    with pytest.raises(TypeError, match="masked_fill: the mask must be a bool tensor, got float32"):
        x.masked_fill(x, 0.0)
    with pytest.raises(NotImplementedError, match="div: rounding_mode='floor' is not built"):
        x.div(2, rounding_mode="floor")
    with pytest.raises(IndexError, match="unbind: dim 2 is out of range for a tensor with 2 dims"):
        x.unbind(2)
