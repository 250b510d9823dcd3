"""detect_anomaly: the first NaN or infinity names its op and the user's line; nothing when off."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import nnet
from nnet.autograd import AnomalyError, detect_anomaly, is_anomaly_enabled


def test_forward_names_the_op_and_the_line() -> None:
    x = nnet.tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as err, np.errstate(divide="ignore"):
        nnet.log(x)  # the line the message must point at
    message = str(err.value)
    assert "Log produced -inf in its output" in message
    assert "all its inputs were finite" in message
    assert __file__ in message and "nnet.log(x)  # the line the message must point at" in message
    assert err.value.op == "Log"


def test_forward_says_when_an_input_was_already_bad() -> None:
    x = nnet.tensor([np.nan, 1.0])
    with detect_anomaly(), pytest.raises(AnomalyError, match="input 0 holds nan"):
        x * 2


def test_backward_names_the_op_whose_vjp_made_it() -> None:
    x = nnet.tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly():
        y = nnet.sqrt(x).sum()  # finite forward, infinite derivative at 0
        with pytest.raises(AnomalyError) as err, np.errstate(divide="ignore"):
            y.backward()
    assert "the backward of Sqrt produced inf" in str(err.value)
    assert "nnet.sqrt(x).sum()" in str(err.value)


def test_non_finite_gradient_given_to_backward() -> None:
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    with detect_anomaly():
        y = x * 3
        with pytest.raises(AnomalyError, match="gradient passed to backward"):
            y.backward(nnet.tensor([np.inf, 1.0]))


def test_off_by_default_and_restored_after_the_block() -> None:
    assert not is_anomaly_enabled()
    with detect_anomaly():
        assert is_anomaly_enabled()
        y = nnet.tensor([1.0], requires_grad=True) * 2
    assert not is_anomaly_enabled()
    assert hasattr(y.grad_fn, "creation_stack")
    z = nnet.tensor([1.0], requires_grad=True) * 2
    assert not hasattr(z.grad_fn, "creation_stack") and "vjp" not in vars(z.grad_fn)
    with np.errstate(divide="ignore"):
        assert nnet.log(nnet.tensor([0.0])).item() == -np.inf  # no check outside the block


def test_per_thread_and_per_task() -> None:
    seen: list[bool] = []
    with detect_anomaly():
        t = threading.Thread(target=lambda: seen.append(is_anomaly_enabled()))
        t.start()
        t.join()
    assert seen == [False]

    async def inner() -> bool:
        return is_anomaly_enabled()

    async def outer() -> tuple[bool, bool]:
        task = asyncio.create_task(inner())  # created outside the block: its own context copy
        with detect_anomaly():
            await asyncio.sleep(0)
            return is_anomaly_enabled(), await task

    assert asyncio.run(outer()) == (True, False)


def test_healthy_graph_backpropagates_as_usual() -> None:
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    with detect_anomaly():
        (nnet.exp(x) * x).sum().backward()
    e = np.exp([1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), e * (1 + np.array([1.0, 2.0])), rtol=1e-6)
