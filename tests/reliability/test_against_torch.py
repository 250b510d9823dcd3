"""Every layer's forward and backward, every loss's gradient, and whole-network optimizer
trajectories, against PyTorch (optional: skipped when torch is not importable).

tests/nn/test_against_torch.py already checks the forward values of conv, pooling and the losses,
and tests/optim/test_torch_trajectory.py each optimizer's update on a single tensor; this module
adds the backward passes, the remaining layers, and training a whole network with each optimizer.
Layouts are converted by hand here (NHWC <-> NCHW, Linear (in, out) <-> (out, in), kernels
(KH, KW, C_in, C_out) <-> (C_out, C_in, KH, KW)), independently of nnet.nn.utils.torch_io.
Everything runs in float64, so the tolerances are tight.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn, optim

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional
RTOL, ATOL = 1e-9, 1e-11


def to_torch_param(name: str, module_kind: str, value: np.ndarray) -> np.ndarray:
    if name == "weight" and module_kind == "Linear":
        return value.T
    if name == "weight" and module_kind == "Conv2d":
        return value.transpose(3, 2, 0, 1)
    return value


def from_torch_grad(name: str, module_kind: str, value: np.ndarray) -> np.ndarray:
    if name == "weight" and module_kind == "Linear":
        return value.T
    if name == "weight" and module_kind == "Conv2d":
        return value.transpose(2, 3, 1, 0)
    return value


def copy_params(ours: nn.Module, theirs) -> None:
    kind = type(ours).__name__
    with torch.no_grad():
        for name, p in ours.named_parameters():
            getattr(theirs, name).copy_(torch.from_numpy(to_torch_param(name, kind, p.numpy())))


# (id, nnet layer, torch layer, input shape, image layout)
LAYERS = [
    ("Linear", lambda: nn.Linear(5, 3), lambda: tnn.Linear(5, 3), (4, 5), False),
    ("Linear-3d", lambda: nn.Linear(5, 3, bias=False), lambda: tnn.Linear(5, 3, bias=False),
     (2, 4, 5), False),
    ("Conv2d-pad1", lambda: nn.Conv2d(3, 4, 3, padding=1), lambda: tnn.Conv2d(3, 4, 3, padding=1),
     (2, 6, 7, 3), True),
    ("Conv2d-same", lambda: nn.Conv2d(2, 3, (3, 5)), lambda: tnn.Conv2d(2, 3, (3, 5), padding="same"),
     (2, 6, 7, 2), True),
    ("Conv2d-strided", lambda: nn.Conv2d(3, 2, (2, 3), stride=2, padding=0, dilation=(1, 2)),
     lambda: tnn.Conv2d(3, 2, (2, 3), stride=2, padding=0, dilation=(1, 2)), (2, 7, 9, 3), True),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), lambda: tnn.MaxPool2d(2), (2, 6, 7, 3), True),
    ("MaxPool2d-padded", lambda: nn.MaxPool2d(3, stride=2, padding=1),
     lambda: tnn.MaxPool2d(3, stride=2, padding=1), (2, 7, 6, 2), True),
    ("AvgPool2d", lambda: nn.AvgPool2d(2), lambda: tnn.AvgPool2d(2), (2, 6, 7, 3), True),
    ("AvgPool2d-exclude-pad", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     lambda: tnn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 7, 6, 2), True),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3), lambda: tnn.BatchNorm2d(3), (4, 5, 6, 3), True),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(5, momentum=0.3), lambda: tnn.BatchNorm1d(5, momentum=0.3),
     (6, 5), False),
    ("ReLU", lambda: nn.ReLU(), lambda: tnn.ReLU(), (3, 4), False),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2), (3, 4), False),
    ("ELU", lambda: nn.ELU(0.7), lambda: tnn.ELU(0.7), (3, 4), False),
    ("GELU", lambda: nn.GELU(), lambda: tnn.GELU(), (3, 4), False),
    ("GELU-tanh", lambda: nn.GELU("tanh"), lambda: tnn.GELU("tanh"), (3, 4), False),
    ("SiLU", lambda: nn.SiLU(), lambda: tnn.SiLU(), (3, 4), False),
    ("Softplus", lambda: nn.Softplus(2.0, 1.0), lambda: tnn.Softplus(2.0, 1.0), (3, 4), False),
    ("Sigmoid", lambda: nn.Sigmoid(), lambda: tnn.Sigmoid(), (3, 4), False),
    ("Tanh", lambda: nn.Tanh(), lambda: tnn.Tanh(), (3, 4), False),
    ("Softmax", lambda: nn.Softmax(), lambda: tnn.Softmax(dim=-1), (3, 4), False),
    ("LogSoftmax", lambda: nn.LogSoftmax(), lambda: tnn.LogSoftmax(dim=-1), (3, 4), False),
    ("Flatten", lambda: nn.Flatten(), lambda: tnn.Flatten(), (2, 3, 4, 5), False),
    ("Dropout-eval", lambda: nn.Dropout(0.5).eval(), lambda: tnn.Dropout(0.5).eval(), (3, 4), False),
]  # fmt: skip


def run_both(ours, theirs, x: np.ndarray, rng: np.random.Generator, image: bool):
    """Forward through both, backward with one random upstream gradient; returns nnet's and
    torch's (output, input grad) in nnet's layout."""
    nchw = (0, 3, 1, 2)
    tx = torch.tensor(np.ascontiguousarray(x.transpose(nchw) if image else x), requires_grad=True)
    tout = theirs(tx)
    shape = tuple(tout.shape[i] for i in (0, 2, 3, 1)) if image else tuple(tout.shape)
    g = rng.normal(size=shape)
    tout.backward(torch.from_numpy(np.ascontiguousarray(g.transpose(nchw) if image else g)))
    want_out, want_dx = tout.detach().numpy(), tx.grad.numpy()
    if image:
        want_out, want_dx = want_out.transpose(0, 2, 3, 1), want_dx.transpose(0, 2, 3, 1)
    nx = nnet.Tensor(x.copy(), requires_grad=True)
    out = ours(nx)
    out.backward(nnet.Tensor(g))
    return (out.numpy(), nx.grad.numpy()), (want_out, want_dx)


@pytest.mark.parametrize(("name", "make", "make_torch", "shape", "image"), LAYERS,
                         ids=[row[0] for row in LAYERS])  # fmt: skip
def test_layer_forward_and_backward(name, make, make_torch, shape, image):
    rng = np.random.default_rng(sum(map(ord, name)))
    nnet.manual_seed(0)
    ours, theirs = make().double(), make_torch().double()
    for _, p in ours.named_parameters():  # non-trivial affine parameters for BatchNorm too
        p.data[...] = rng.normal(size=p.shape)
    copy_params(ours, theirs)
    kind = type(ours).__name__
    for step in range(2):  # twice: BatchNorm's running statistics move between the steps
        x = rng.normal(size=shape) * (1 + step) + step
        (got, dx), (want, want_dx) = run_both(ours, theirs, x, rng, image)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} forward")
        np.testing.assert_allclose(dx, want_dx, rtol=RTOL, atol=ATOL, err_msg=f"{name} dx")
        for pname, p in ours.named_parameters():
            want_grad = from_torch_grad(pname, kind, getattr(theirs, pname).grad.numpy())
            np.testing.assert_allclose(p.grad.numpy(), want_grad, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} d{pname} step {step}")  # fmt: skip
            p.grad = None
        theirs.zero_grad()
        for bname, b in ours.named_buffers():
            want_b = getattr(theirs, bname).numpy()
            np.testing.assert_allclose(b.numpy(), want_b, rtol=RTOL, err_msg=f"{name} {bname}")


@pytest.mark.parametrize("name", ["BatchNorm2d", "BatchNorm1d"])
def test_batchnorm_in_eval_after_training(name):
    rng = np.random.default_rng(5)
    ours, theirs = getattr(nn, name)(3).double(), getattr(tnn, name)(3).double()
    shape, image = ((6, 4, 4, 3), True) if name == "BatchNorm2d" else ((6, 3), False)
    for _ in range(3):
        x = rng.normal(size=shape) * 3 + 2
        run_both(ours, theirs, x, rng, image)
    ours.eval(), theirs.eval()
    (got, dx), (want, want_dx) = run_both(ours, theirs, rng.normal(size=shape), rng, image)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, want_dx, rtol=RTOL, atol=ATOL)


# -- loss gradients -------------------------------------------------------------------------------
def loss_cases(rng):
    logits = rng.normal(size=(6, 4)) * 3
    labels = np.array([0, 3, 1, -100, 2, 1])
    probs = rng.dirichlet(np.ones(4), 6)
    w = rng.uniform(0.5, 2.0, 4)
    p = rng.uniform(0.05, 0.95, (6, 4))
    t = (rng.random((6, 4)) > 0.5).astype(float)
    y = rng.normal(size=(6, 4))
    return [
        ("cross_entropy", logits, labels, dict(weight=w, label_smoothing=0.1)),
        ("cross_entropy", logits, probs, dict(weight=w)),
        ("nll_loss", np.log(probs), labels, dict(weight=w)),
        ("binary_cross_entropy", p, t, dict(weight=rng.uniform(0.5, 2, 4))),
        ("binary_cross_entropy_with_logits", logits, t, dict(pos_weight=w)),
        ("mse_loss", logits, y, {}),
        ("l1_loss", logits, y, {}),
    ]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", range(7))
def test_loss_gradients(case, reduction):
    rng = np.random.default_rng(case)
    name, x, target, kwargs = loss_cases(rng)[case]
    torch_kwargs = {
        k: v if k == "label_smoothing" else torch.from_numpy(np.asarray(v))
        for k, v in kwargs.items()
    }
    tx = torch.tensor(x, requires_grad=True)
    tout = getattr(TF, name)(tx, torch.from_numpy(target), reduction=reduction, **torch_kwargs)
    g = rng.normal(size=tout.shape)
    tout.backward(torch.from_numpy(np.asarray(g)))
    nx = nnet.Tensor(x.copy(), requires_grad=True)
    out = getattr(nnet.nn.functional, name)(nx, target, reduction=reduction, **kwargs)
    out.backward(nnet.Tensor(np.asarray(g)))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(nx.grad.numpy(), tx.grad.numpy(), rtol=RTOL, atol=ATOL)


# -- a whole network, trained by each optimizer ---------------------------------------------------
class _ToNHWC(tnn.Module):
    """Flatten in nnet's (h, w, c) order, so Linear weights need only a transpose."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1)


def seed_pair():
    """The seed network (without dropout, whose random masks cannot agree) in both libraries."""
    ours = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(4),
        nn.Conv2d(4, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(8),
        nn.Flatten(), nn.Linear(3 * 3 * 8, 32), nn.ReLU(), nn.Linear(32, 10),
    ).double()  # fmt: skip
    theirs = tnn.Sequential(
        tnn.Conv2d(1, 4, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.BatchNorm2d(4),
        tnn.Conv2d(4, 8, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.BatchNorm2d(8),
        _ToNHWC(), tnn.Flatten(), tnn.Linear(3 * 3 * 8, 32), tnn.ReLU(), tnn.Linear(32, 10),
    ).double()  # fmt: skip
    for mine, yours in stateful_pairs(ours, theirs):
        copy_params(mine, yours)
    return ours, theirs


def stateful_pairs(ours, theirs):
    """The layers with parameters, matched in order."""
    mine = [m for m in ours if list(m.named_parameters())]
    yours = [m for m in theirs if list(m.parameters())]
    return list(zip(mine, yours, strict=True))


# (name, arguments, absolute tolerance on the weights after 6 steps). Measured worst differences:
# SGD and Adam 1e-14, AdamW and RMSprop 7e-11, Adagrad 4e-8: its first step moves each weight by
# about lr sign(g) whatever the size of g, so entries whose gradient is nearly 0 turn last-bit
# differences between the libraries into differences of that size.
OPTIMIZERS = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), 1e-12),
    ("Adam", dict(lr=1e-2, weight_decay=1e-3), 1e-12),
    ("AdamW", dict(lr=1e-2, amsgrad=True), 1e-9),
    ("RMSprop", dict(lr=1e-3, momentum=0.5, centered=True), 1e-9),
    ("Adagrad", dict(lr=0.05, lr_decay=1e-3), 2e-7),
]


@pytest.mark.parametrize(("opt_name", "kwargs", "atol"), OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_training_the_seed_network_follows_torch(opt_name, kwargs, atol):
    nnet.manual_seed(1)
    rng = np.random.default_rng(2)
    ours, theirs = seed_pair()
    opt = getattr(optim, opt_name)(ours.parameters(), **kwargs)
    topt = getattr(torch.optim, opt_name)(theirs.parameters(), **kwargs)
    for _ in range(6):
        x = rng.random((8, 12, 12, 1))
        y = rng.integers(0, 10, 8)
        loss = nn.CrossEntropyLoss()(ours(nnet.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = TF.cross_entropy(theirs(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())),
                                 torch.from_numpy(y))  # fmt: skip
        topt.zero_grad()
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-8)
    for mine, yours in stateful_pairs(ours, theirs):
        kind = type(mine).__name__
        for name, p in mine.named_parameters():
            want = getattr(yours, name).detach().numpy()
            np.testing.assert_allclose(to_torch_param(name, kind, p.numpy()), want, rtol=1e-7,
                                       atol=atol, err_msg=f"{kind}.{name}")  # fmt: skip
        for name, b in mine.named_buffers():
            np.testing.assert_allclose(b.numpy(), getattr(yours, name).numpy(), rtol=1e-7)
