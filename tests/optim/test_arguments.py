"""Bad hyper-parameters raise ValueError naming the optimizer, the argument and the value."""

from __future__ import annotations

import pytest

import nnet
from nnet import optim


def params() -> list[nnet.Tensor]:
    return [nnet.zeros(2, requires_grad=True)]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: optim.SGD(params(), lr=-0.1), ["SGD", "lr", "-0.1"]),
        (lambda: optim.SGD(params(), lr=0.1, momentum=-1), ["SGD", "momentum", "-1"]),
        (lambda: optim.SGD(params(), lr=0.1, weight_decay=-1e-3), ["SGD", "weight_decay"]),
        (lambda: optim.SGD(params(), lr=0.1, nesterov=True), ["SGD", "nesterov", "momentum"]),
        (lambda: optim.Adam(params(), lr=-1), ["Adam", "lr", "-1"]),
        (lambda: optim.Adam(params(), betas=(1.0, 0.999)), ["Adam", "beta1", "1.0"]),
        (lambda: optim.Adam(params(), betas=(0.9, -0.1)), ["Adam", "beta2", "-0.1"]),
        (lambda: optim.Adam(params(), eps=-1e-8), ["Adam", "eps", "-1e-08"]),
        (lambda: optim.AdamW(params(), weight_decay=-0.5), ["AdamW", "weight_decay", "-0.5"]),
        (lambda: optim.RMSprop(params(), alpha=1.5), ["RMSprop", "alpha", "1.5"]),
        (lambda: optim.RMSprop(params(), momentum=-0.5), ["RMSprop", "momentum"]),
        (lambda: optim.Adagrad(params(), lr_decay=-1.0), ["Adagrad", "lr_decay", "-1.0"]),
        (lambda: optim.Adagrad(params(), initial_accumulator_value=-1.0),
         ["Adagrad", "initial_accumulator_value"]),
    ],
)  # fmt: skip
def test_bad_hyperparameter_is_named(make, words) -> None:
    with pytest.raises(ValueError) as info:
        make()
    for word in words:
        assert word in str(info.value)


def test_empty_parameter_list() -> None:
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)


def test_duplicate_parameter() -> None:
    w = nnet.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([{"params": [w]}, {"params": [w]}])


def test_non_tensor_parameter() -> None:
    with pytest.raises(TypeError, match="Adam: parameters must be Tensors, got list"):
        optim.Adam([[1.0, 2.0]])


def test_non_leaf_parameter() -> None:
    w = nnet.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)
