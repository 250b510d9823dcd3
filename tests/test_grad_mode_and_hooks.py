"""PyTorch behaviours of grad modes and tensor hooks (issue 18, bug 5).

Before: ``nnet.set_grad_enabled(False)`` called as a function did nothing, a bare ``@nnet.no_grad``
raised TypeError, ``retain_grad()`` on a leaf set ``retains_grad``, and ``Tensor.register_hook`` was
missing.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import nnet


@pytest.fixture(autouse=True)
def _recording_restored():
    yield
    nnet.set_grad_enabled(True)  # a failing test must not leave recording off for the next ones


# -- grad modes -----------------------------------------------------------------------------------
def test_set_grad_enabled_called_as_a_function_switches_recording():
    x = nnet.tensor([1.0], requires_grad=True)
    nnet.set_grad_enabled(False)
    assert not nnet.is_grad_enabled() and not (x * 2).requires_grad
    nnet.set_grad_enabled(True)
    assert nnet.is_grad_enabled() and (x * 2).requires_grad


def test_set_grad_enabled_as_a_block_and_a_decorator_restores_the_mode():
    x = nnet.tensor([1.0], requires_grad=True)
    with nnet.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with nnet.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad

    @nnet.set_grad_enabled(False)
    def double(t):
        return t * 2

    assert nnet.is_grad_enabled()  # decorating does not switch the mode
    assert not double(x).requires_grad and (x * 2).requires_grad


def test_a_mode_set_in_one_thread_does_not_leak_into_another():
    seen = []
    nnet.set_grad_enabled(False)
    worker = threading.Thread(target=lambda: seen.append(nnet.is_grad_enabled()))
    worker.start()
    worker.join()
    assert seen == [True] and not nnet.is_grad_enabled()


@pytest.mark.parametrize("decorate", [nnet.no_grad, nnet.no_grad()], ids=["bare", "called"])
def test_no_grad_decorates_bare_or_called(decorate):
    x = nnet.tensor([1.0], requires_grad=True)

    @decorate
    def double(t):
        """Doubles."""
        return t * 2

    assert not double(x).requires_grad and (x * 2).requires_grad
    assert double.__name__ == "double" and double.__doc__ == "Doubles."


def test_enable_grad_decorates_bare_inside_no_grad():
    x = nnet.tensor([1.0], requires_grad=True)

    @nnet.enable_grad
    def double(t):
        return t * 2

    with nnet.no_grad():
        assert double(x).requires_grad and not (x * 2).requires_grad


# -- retain_grad ----------------------------------------------------------------------------------
def test_retain_grad_on_a_leaf_does_nothing():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    x.retain_grad()
    assert not x.retains_grad
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    y = x * 3
    y.retain_grad()
    assert y.retains_grad


# -- tensor hooks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("create_graph", [False, True])
def test_hooks_see_and_replace_gradients_of_leaves_and_non_leaves(create_graph):
    x = nnet.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    seen = {}

    def keep(name):
        def hook(g):
            seen[name] = g.numpy().copy()  # returns None: the gradient goes on unchanged

        return hook

    x.register_hook(keep("x"))
    y = x * 3
    y.register_hook(keep("y"))
    y.register_hook(lambda g: g * 2)  # hooks chain in order: this one's result is what goes on
    y.retain_grad()
    (y * y).sum().backward(create_graph=create_graph)
    np.testing.assert_array_equal(seen["y"], [6.0, 12.0])  # dL/dy = 2y
    np.testing.assert_array_equal(y.grad.numpy(), [12.0, 24.0])  # .grad after the hooks, as PyTorch
    np.testing.assert_array_equal(seen["x"], [36.0, 72.0])
    np.testing.assert_array_equal(x.grad.numpy(), [36.0, 72.0])
    assert x.grad.requires_grad == create_graph


def test_a_leaf_hook_replaces_what_accumulates_into_grad():
    w = nnet.tensor([1.0, -2.0], requires_grad=True)
    w.register_hook(lambda g: nnet.clip(g, -1.0, 1.0))
    (w * 5).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])


def test_hooks_run_in_nnet_grad_and_for_a_hooked_leaf_with_a_post_accumulate_hook():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g + 100)
    (g,) = nnet.grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [102.0, 104.0])
    assert x.grad is None
    after = []
    x.register_post_accumulate_grad_hook(lambda t: after.append(t.grad.numpy().copy()))
    (x * x).sum().backward()
    np.testing.assert_array_equal(after[0], [102.0, 104.0])


def test_a_removed_hook_no_longer_runs():
    x = nnet.tensor([1.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    (x * 2).sum().backward()
    handle.remove()
    handle.remove()  # twice is harmless
    (x * 2).sum().backward()
    assert calls == [1] and x.grad.item() == 4.0


def test_hook_errors_name_the_problem():
    with pytest.raises(RuntimeError, match=r"register_hook: .*does not require gradients"):
        nnet.tensor([1.0]).register_hook(lambda g: g)
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="register_hook: 3 is not callable"):
        x.register_hook(3)
    handle = x.register_hook(lambda g: nnet.ones(3))
    with pytest.raises(RuntimeError, match=r"shape \(2,\) returned shape \(3,\)"):
        (x * 2).sum().backward()
    handle.remove()
    x.register_hook(lambda g: g.numpy())
    with pytest.raises(RuntimeError, match=r"returned ndarray; return None .* or a Tensor"):
        (x * 2).sum().backward()
