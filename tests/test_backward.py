"""Backward semantics: roots and their gradients, accumulation, retain_grad, nnet.grad, second
derivatives, graph release, a million-op chain, grad modes per thread and per task, custom
Functions, and the error messages."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import nnet
from nnet.autograd import Function, GraphReleasedError


def _x(values, requires_grad=True):
    return nnet.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# -- roots ------------------------------------------------------------------------------------------
def test_non_scalar_backward_needs_a_gradient():
    y = _x([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError, match=r"output has shape \(2,\).*loss\.sum\(\).*gradient="):
        y.backward()
    with pytest.raises(
        ValueError, match=r"gradient has shape \(3,\) but the output has shape \(2,\)"
    ):
        y.backward(np.ones(3))


def test_one_element_outputs_imply_a_gradient_of_one():
    x = _x([[3.0]])
    (x * x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[6.0]])


def test_backward_of_a_tensor_outside_the_graph_is_an_error():
    with pytest.raises(RuntimeError, match=r"does not require gradients.*requires_grad=True"):
        nnet.tensor([1.0]).sum().backward()


def test_gradient_may_be_an_array_or_tensor():
    x = _x([1.0, 2.0])
    (x * 3).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 30.0])


# -- accumulation and retained gradients ----------------------------------------------------------
def test_leaf_gradients_accumulate_across_backward_calls():
    x = _x([1.0, 2.0])
    (x * x).sum().backward()
    first = x.grad
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    np.testing.assert_array_equal(first.numpy(), [2.0, 4.0])  # the earlier gradient is untouched
    x.grad = None
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_a_tensor_used_many_times_sums_its_contributions():
    x = _x(2.0)
    y = x * 1.0
    (y * y * y + y + y).backward()  # 3y^2 + 2 with 0-d gradients summed three times
    assert x.grad.item() == pytest.approx(14.0)
    assert type(x.grad.data) is np.ndarray
    z = _x(2.0)
    (z * z).backward()
    (z * z).backward()
    assert type(z.grad.data) is np.ndarray and z.grad.item() == 8.0


def test_the_same_tensor_on_both_sides_of_an_op_gets_both_contributions():
    x = _x([1.0, 1.0, 1.0])
    g = np.array([0.0, 1.0, 2.0])
    (x + x).backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), 2 * g)
    np.testing.assert_array_equal(g, [0.0, 1.0, 2.0])  # the upstream array is not written to
    assert not np.shares_memory(x.grad.data, g)
    x.grad = None
    x.backward(g)  # backward from a leaf: its gradient is a copy of the one given
    assert not np.shares_memory(x.grad.data, g)


def test_non_leaf_gradients_are_kept_only_after_retain_grad():
    x = _x([1.0, 2.0])
    h = x * 3
    k = h * 2
    h.retain_grad()
    assert h.retains_grad and not k.retains_grad
    (k * k).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), 8 * h.numpy())  # L = sum((2h)^2)
    assert k.grad is None
    np.testing.assert_array_equal(x.grad.numpy(), 8 * 3 * h.numpy())
    with pytest.raises(RuntimeError, match="does not require gradients"):
        nnet.tensor([1.0]).retain_grad()


def test_gradients_are_plain_tensors_outside_the_graph():
    x = _x([1.0, 2.0])
    (x.sigmoid() * x).sum().backward()
    assert not x.grad.requires_grad and x.grad.grad_fn is None


# -- nnet.grad --------------------------------------------------------------------------------------
def test_grad_returns_gradients_without_touching_dot_grad():
    x, w = _x([1.0, 2.0]), _x([3.0, 4.0])
    h = x * w
    h.retain_grad()
    gx, gw = nnet.grad(h.sum(), [x, w])
    np.testing.assert_array_equal(gx.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(gw.numpy(), [1.0, 2.0])
    assert x.grad is None and w.grad is None and h.grad is None


def test_grad_with_grad_outputs_and_several_outputs():
    x = _x([1.0, 2.0])
    a, b = x * 2, x * x
    (g,) = nnet.grad([a, b], x, grad_outputs=[np.array([1.0, 1.0]), nnet.tensor([1.0, 0.5])])
    np.testing.assert_array_equal(g.numpy(), [2.0 + 2.0, 2.0 + 2.0])
    c = x * 3
    (g2,) = nnet.grad([c, c], x, grad_outputs=[np.ones(2), np.ones(2)])  # the same root twice
    np.testing.assert_array_equal(g2.numpy(), [6.0, 6.0])


def test_grad_allow_unused():
    x, unused = _x([1.0]), _x([5.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(1,\)\) was not used.*allow_unused"):
        nnet.grad(y, [x, unused], retain_graph=True)
    gx, gu = nnet.grad(y, [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_grad_input_errors():
    x = _x([1.0])
    with pytest.raises(RuntimeError, match=r"input 0 .* does not require gradients"):
        nnet.grad((x * 2).sum(), [nnet.tensor([1.0])])
    with pytest.raises(RuntimeError, match=r"an output .* does not require gradients"):
        nnet.grad(nnet.tensor([1.0]).sum(), [x])
    with pytest.raises(ValueError, match="2 outputs but 1 grad_outputs"):
        nnet.grad([x * 1, x * 2], x, grad_outputs=[np.ones(1)])


# -- second derivatives -------------------------------------------------------------------------------
def test_hessian_vector_product_matches_the_analytic_hessian():
    """f(x) = sum(x^3) + x^T A x has H = diag(6x) + A + A^T."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    x = _x(rng.standard_normal(4))
    v = rng.standard_normal(4)
    f = (x**3).sum() + x @ (nnet.tensor(a) @ x)
    (g,) = nnet.grad(f, x, create_graph=True)
    assert g.requires_grad
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2 + (a + a.T) @ x.numpy())
    (hv,) = nnet.grad(g, x, grad_outputs=nnet.tensor(v))
    np.testing.assert_allclose(hv.numpy(), (np.diag(6 * x.numpy()) + a + a.T) @ v, rtol=1e-12)


def test_grad_of_grad_through_backward_with_create_graph():
    x = _x([0.3, -1.2])
    nnet.sigmoid(x).sum().backward(create_graph=True)
    s = 1 / (1 + np.exp(-x.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), s * (1 - s))
    dx = x.grad
    assert dx.requires_grad
    x.grad = None
    dx.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), s * (1 - s) * (1 - 2 * s))


def test_without_create_graph_nothing_is_recorded_going_backward():
    x = _x([1.0, 2.0])
    (g,) = nnet.grad((x * x * x).sum(), x)
    assert not g.requires_grad and g.grad_fn is None


# -- graph release ------------------------------------------------------------------------------------
def test_a_released_graph_raises_instead_of_giving_wrong_numbers():
    x = _x([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    assert y.grad_fn.inputs is None
    with pytest.raises(GraphReleasedError, match=r"a second time.*retain_graph=True"):
        y.backward()
    with pytest.raises(GraphReleasedError):
        nnet.grad(y, x)


def test_retain_graph_allows_a_second_backward():
    x = _x([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_a_shared_subgraph_released_by_one_backward_is_caught_by_the_next():
    x = _x([1.0, 2.0])
    h = x.exp()
    a, b = (h * 2).sum(), (h * 3).sum()
    a.backward()
    first = x.grad.numpy().copy()
    with pytest.raises(GraphReleasedError, match="Exp"):
        b.backward()
    # the walk stopped part-way: leaves receive their gradients only once it completes
    np.testing.assert_array_equal(x.grad.numpy(), first)


def test_each_op_runs_after_all_its_consumers_however_the_graph_was_built():
    # h's consumers are created far apart (one before and one after a long side chain), so an
    # order that ran h's VJP after its first consumer would miss the second contribution
    x = _x([0.5, -1.0])
    h = x * 3
    early = h * 2
    side = x
    for _ in range(50):
        side = side * 1.0
    late = (h + side) * 5
    (early.sum() + late.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 * 2 + 3 * 5 + 5] * 2)


@pytest.mark.parametrize("older_first", [True, False])
def test_an_input_runs_straight_after_its_consumer_only_when_no_newer_op_waits(older_first):
    # the walk runs an op's first new input right after the op, without the heap, unless a newer
    # op is pending: here z is newer than y and also feeds y, in either operand order
    x = _x([1.0, 2.0])
    y = x * 2
    z = y * 3
    w = (y + z) if older_first else (z + y)
    w.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 8.0])  # dw/dy = 1 + 3, dy/dx = 2


# -- depth --------------------------------------------------------------------------------------------
def test_a_million_op_chain_backpropagates_without_recursion():
    x = nnet.tensor(np.array([1.5]), requires_grad=True)
    y = x
    for _ in range(1_000_000):
        y = -y
    y.sum().backward()
    assert x.grad.item() == 1.0
    del y  # freeing the chain must not recurse either


# -- grad modes -------------------------------------------------------------------------------------
def test_no_grad_and_enable_grad_as_context_managers_and_decorators():
    x = _x([1.0])
    with nnet.no_grad():
        assert not nnet.is_grad_enabled()
        assert not (x * 2).requires_grad
        with nnet.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert nnet.is_grad_enabled()

    @nnet.no_grad()
    def frozen(t):
        return t * 2

    assert not frozen(x).requires_grad and nnet.is_grad_enabled()
    with nnet.set_grad_enabled(False):
        assert not (x + 1).requires_grad
    assert (x + 1).requires_grad


def test_no_grad_is_per_thread():
    inside, checked = threading.Event(), threading.Event()
    seen = {}

    def worker_in_no_grad():
        with nnet.no_grad():
            inside.set()
            checked.wait(10)
            seen["worker"] = nnet.is_grad_enabled()

    def worker_recording():
        inside.wait(10)
        x = _x([1.0])
        seen["other"] = nnet.is_grad_enabled() and (x * 2).requires_grad
        checked.set()

    threads = [
        threading.Thread(target=worker_in_no_grad),
        threading.Thread(target=worker_recording),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"worker": False, "other": True}
    assert nnet.is_grad_enabled()


def test_no_grad_is_per_async_task():
    async def in_no_grad(started, release):
        with nnet.no_grad():
            started.set()
            await release.wait()
            return nnet.is_grad_enabled()

    async def recording(started, release):
        await started.wait()
        enabled = nnet.is_grad_enabled()
        release.set()
        return enabled

    async def main():
        started, release = asyncio.Event(), asyncio.Event()
        return await asyncio.gather(in_no_grad(started, release), recording(started, release))

    assert asyncio.run(main()) == [False, True]


# -- custom Functions ---------------------------------------------------------------------------------
class Cube(Function):
    def forward(ctx, x):
        return x**3

    def vjp(ctx, grad):
        (x,) = ctx.inputs
        return (grad * 3 * x * x,)


class TooManyGradients(Function):
    def forward(ctx, x):
        return x * 2

    def vjp(ctx, grad):
        return grad * 2, grad


def test_a_user_function_is_differentiable_twice():
    x = _x([2.0])
    (g,) = nnet.grad(Cube.apply(x).sum(), x, create_graph=True)
    (gg,) = nnet.grad(g.sum(), x)
    assert g.item() == 12.0 and gg.item() == 12.0


def test_a_vjp_with_the_wrong_number_of_gradients_is_named():
    with pytest.raises(
        RuntimeError, match=r"TooManyGradients\.vjp returned 2 gradients for 1 input"
    ):
        TooManyGradients.apply(_x([1.0])).sum().backward()


def test_forward_without_recording_when_no_input_requires_grad():
    y = Cube.apply(nnet.tensor([2.0]))
    assert not y.requires_grad and y.grad_fn is None
