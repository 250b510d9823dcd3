"""nnet.testing.check_model: finds a wrong VJP deep inside a CNN and names it; passes on every layer
and on every fused kernel (each reached by the model that takes it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.autograd import Function
from nnet.kernels import FUSED, REGISTRY, Kernel
from nnet.testing.check_model import CheckModelError, ModelCheck, check_model
from nnet.testing.sites import recording_sites

rng = np.random.default_rng(0)


class Swish(Function):
    """x * sigmoid(x); its VJP drops the product rule's second term when ``wrong``."""

    wrong = False

    def forward(ctx, x):
        return x / (1.0 + np.exp(-x))

    def vjp(ctx, grad):
        (x,) = ctx.inputs
        s = nnet.sigmoid(x)
        if ctx.wrong:
            return (grad * s,)
        return (grad * (s + x * s * (1.0 - s)),)


class WrongSwish(Swish):
    wrong = True


class Block(nn.Module):
    def __init__(self, fn: type[Function]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Any) -> Any:
        return self.fn.apply(x)  # the planted line


PLANTED_LINE = next(
    i
    for i, line in enumerate(Path(__file__).read_text().splitlines(), 1)
    if "the planted line" in line
)


def cnn(fn: type[Function]) -> nn.Module:
    nnet.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 8, 3), Block(fn), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * 2 * 8, 10),
    )  # fmt: skip


IMAGES = rng.standard_normal((3, 8, 8, 1)).astype(np.float32)


def test_finds_the_wrong_vjp_deep_inside_a_cnn_and_names_it() -> None:
    report = check_model(cnn(WrongSwish), IMAGES)
    assert not report.ok and not report
    first = report.failures[0]
    assert first.op == "WrongSwish" and first.input_shapes == [(3, 4, 4, 8)]
    assert first.relative_error > 1e-2
    assert f"{__file__}, line {PLANTED_LINE}, in forward" == first.where
    text = str(report)
    for words in ("WrongSwish", "(3, 4, 4, 8)", "relative error", f"line {PLANTED_LINE}"):
        assert words in text
    # every other node passed: the culprit is the only one named
    assert {c.op for c in report.failures} == {"WrongSwish"}
    with pytest.raises(CheckModelError, match=r"First failure: WrongSwish\.vjp"):
        check_model(cnn(WrongSwish), IMAGES, raise_exception=True)


def test_passes_with_the_right_vjp_and_leaves_the_model_alone() -> None:
    model = cnn(Swish)
    before = [p.data.copy() for p in model.parameters()]
    report = check_model(model, IMAGES, raise_exception=True)
    assert report.ok and "all passed" in str(report)
    assert {"Swish", "ConvBatchNormReluPool", "Conv2d", "Linear"} <= {c.op for c in report.nodes}
    for p, b in zip(model.parameters(), before, strict=True):
        assert p.dtype == np.float32 and np.array_equal(p.data, b)


def _loss(model: nn.Module, loss: nn.Module, target: Any) -> Callable[[Any], Any]:
    model.double()  # a function is run as it is: its model must take float64 itself
    return lambda x: loss(model(x), target)


def _second_order(layer: nn.Module) -> Callable[[Any], Any]:
    """The gradients of a layer's output for its input and parameters, recorded: its backward's
    own ops become nodes."""

    def f(x: Any) -> Any:
        return nnet.grad((layer(x) ** 2).sum(), [x, *layer.parameters()], create_graph=True)

    return f


def _x(*shape: int, grad: bool = False) -> nnet.Tensor:
    return nnet.tensor(rng.standard_normal(shape), requires_grad=grad)


LABELS = nnet.tensor(rng.integers(0, 3, 4))
CASES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "Linear": (nn.Linear(5, 3), (_x(4, 5),)),
    "Conv2d": (nn.Conv2d(2, 3, 3), (_x(2, 5, 5, 2, grad=True),)),
    "Conv2d strided": (nn.Conv2d(2, 3, 3, stride=2, padding=1), (_x(2, 6, 6, 2, grad=True),)),
    "MaxPool2d": (nn.MaxPool2d(2), (_x(2, 4, 4, 3, grad=True),)),
    "AvgPool2d": (nn.AvgPool2d(2), (_x(2, 4, 4, 3, grad=True),)),
    "BatchNorm1d": (nn.BatchNorm1d(3), (_x(5, 3, grad=True),)),
    "BatchNorm2d": (nn.BatchNorm2d(3), (_x(2, 3, 3, 3, grad=True),)),
    "activations": (
        nn.Sequential(
            nn.Linear(4, 6),
            nn.Sigmoid(),
            nn.Linear(6, 6),
            nn.Tanh(),
            nn.LeakyReLU(0.1),
            nn.Identity(),
            nn.Softmax(-1),
        ),
        (_x(3, 4),),
    ),
    "LogSoftmax Dropout Flatten": (
        nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(6, 3), nn.LogSoftmax(-1)),
        (_x(4, 2, 3),),
    ),
    "CrossEntropyLoss": (_loss(nn.Linear(5, 3), nn.CrossEntropyLoss(), LABELS), (_x(4, 5),)),
    "NLLLoss": (
        _loss(nn.Sequential(nn.Linear(5, 3), nn.LogSoftmax(-1)), nn.NLLLoss(), LABELS),
        (_x(4, 5),),
    ),
    "MSELoss L1Loss": (
        lambda x: nn.MSELoss()(x * 2.0, x.detach()) + nn.L1Loss()(x, x.detach() + 0.5),
        (_x(3, 2, grad=True),),
    ),
    "BCELoss BCEWithLogitsLoss": (
        lambda x: (
            nn.BCELoss()(nnet.sigmoid(x), x.detach().sigmoid().detach())
            + nn.BCEWithLogitsLoss()(x, nnet.tensor(np.full((3, 2), 0.25)))
        ),
        (_x(3, 2, grad=True),),
    ),
    "conv-bn-relu-pool, narrow": (
        nn.Sequential(nn.Conv2d(1, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)),
        (_x(2, 4, 4, 1),),
    ),
    "conv-bn-relu-pool, Winograd": (
        nn.Sequential(nn.Conv2d(32, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2)),
        (_x(6, 16, 16, 32, grad=True),),
    ),
    "conv-relu-bn-pool": (
        nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.MaxPool2d(2)),
        (_x(2, 4, 4, 1),),
    ),
    "conv-relu-pool": (
        nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2)),
        (_x(2, 4, 4, 1),),
    ),
    "conv-relu-pool, input gradient": (
        nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2)),
        (_x(2, 4, 4, 2, grad=True),),
    ),
    "conv-relu-pool-bn": (
        nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(8)),
        (_x(2, 4, 4, 1),),
    ),
    "bn-relu-pool": (
        nn.Sequential(nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)),
        (_x(2, 4, 4, 8, grad=True),),
    ),
    "second order: conv": (
        _second_order(nn.Conv2d(2, 3, 3).double()),
        (_x(2, 4, 4, 2, grad=True),),
    ),
    "second order: pool": (_second_order(nn.MaxPool2d(2)), (_x(2, 4, 4, 2, grad=True),)),
}


@pytest.fixture(scope="module")
def reports() -> dict[str, ModelCheck]:
    return {name: check_model(model, *inputs) for name, (model, inputs) in CASES.items()}


@pytest.mark.parametrize("name", CASES)
def test_passes_on_every_layer(reports: dict[str, ModelCheck], name: str) -> None:
    report = reports[name]
    assert report.nodes and report.ok, str(report)


def test_every_fused_kernel_is_checked(reports: dict[str, ModelCheck]) -> None:
    seen = {c.op for r in reports.values() for c in r.nodes}
    assert {k.__name__ for k in FUSED} <= seen, {k.__name__ for k in FUSED} - seen


def test_sites_name_the_users_line_and_the_forward_parameters() -> None:
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    with recording_sites() as sites:
        y = nnet.sum(x, axis=0)  # here
    line = next(
        i for i, t in enumerate(Path(__file__).read_text().splitlines(), 1) if t.endswith("# here")
    )
    assert sites[y.grad_fn].where.startswith(f"{__file__}, line {line}")
    z = x * 2  # outside the block: nothing recorded
    assert z.grad_fn not in sites


@pytest.mark.parametrize(
    ("call", "exc", "words"),
    [
        (lambda: check_model(3, np.ones(2)), TypeError, "expects a Module or a function, got int"),
        (lambda: check_model(lambda x: x * 2, nnet.ones(2)), ValueError, "recorded no operation"),
        (lambda: check_model(lambda x: 3.0, np.ones(2)), TypeError, "must return a Tensor"),
    ],
)
def test_bad_input_is_named(call: Callable[[], Any], exc: type, words: str) -> None:
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)


class ArraysOnlyWrong(Swish):
    """The tensor rule is right; the array rule (the one a plain backward runs) is not."""

    def vjp_arrays(ctx, grad):
        (x,) = ctx.inputs
        return (grad / (1.0 + np.exp(-x.data)),)


def test_checks_the_array_rule_on_its_own() -> None:
    report = check_model(lambda x: ArraysOnlyWrong.apply(x), _x(2, 3, grad=True))
    assert [(c.rule, c.passed) for c in report.nodes] == [("vjp", True), ("vjp_arrays", False)]


def test_passes_on_the_seed_cnn_in_training_mode() -> None:
    from nnet.train.models import seed_cnn

    nnet.manual_seed(0)
    model = seed_cnn((28, 28, 1))
    images = rng.standard_normal((8, 28, 28, 1)).astype(np.float32)
    labels = nnet.tensor(rng.integers(0, 10, 8))
    loss = nn.CrossEntropyLoss()
    report = check_model(lambda x: loss(model.double()(x), labels), images)
    assert report.ok, str(report)
    # its conv-relu-pool blocks run as one kernel each (registry entries conv_relu_pool*)
    assert {"BatchNorm", "Linear", "SoftmaxCrossEntropy"} <= {c.op for c in report.nodes}
    assert {c.op for c in report.nodes} & {"FewChannelConvReluPool", "ConvReluPool"}


@pytest.mark.parametrize(
    "kernel", [k for k in REGISTRY if k.node is not None], ids=lambda k: k.name
)
def test_passes_on_every_kernel_of_the_registry(kernel: Kernel) -> None:
    """Each entry's own arguments (its ``case``): the node it records is checked and passes."""
    draw_rng = np.random.default_rng(0)
    args = kernel.case(lambda lo, hi: int(draw_rng.integers(lo, hi + 1)), np.random.default_rng(1))
    report = check_model(kernel.run, *args)
    assert kernel.node is not None and kernel.node.__name__ in {c.op for c in report.nodes}
    assert report.ok, str(report)
