"""In-place operations and version counters: PyTorch's rules (nnet.autograd.inplace, .version)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet import nn
from nnet.autograd.elementwise import Add, Div, Mul, Pow, Sub, Where
from nnet.testing.strategies import broadcastable_shapes
from tests.gradtest import arrays, check_grad, leaf, seeds

LEAF_ERROR = "a leaf tensor that requires grad is used in an in-place operation"


# -- outside the graph: NumPy in place, versions up -------------------------------------------------
@pytest.mark.parametrize(
    ("update", "expected"),
    [
        (lambda t: t.__iadd__(2.0), [3.0, 4.0]),
        (lambda t: t.__isub__(nnet.tensor([1.0, 1.0])), [0.0, 1.0]),
        (lambda t: t.__imul__(3.0), [3.0, 6.0]),
        (lambda t: t.__itruediv__(2.0), [0.5, 1.0]),
        (lambda t: t.__ipow__(2.0), [1.0, 4.0]),
        (lambda t: t.add_(nnet.tensor([1.0, 2.0]), alpha=-2), [-1.0, -2.0]),
        (lambda t: t.sub_(1.0, alpha=0.5), [0.5, 1.5]),
        (lambda t: t.mul_(nnet.tensor(2.0)), [2.0, 4.0]),
        (lambda t: t.div_(4.0), [0.25, 0.5]),
        (lambda t: t.pow_(3.0), [1.0, 8.0]),
        (lambda t: t.clamp_(min=1.5), [1.5, 2.0]),
        (lambda t: t.clamp_(max=1.5), [1.0, 1.5]),
        (lambda t: t.clip_(1.2, 1.8), [1.2, 1.8]),
        (lambda t: t.fill_(7), [7.0, 7.0]),
        (lambda t: t.fill_(nnet.tensor(-1.0)), [-1.0, -1.0]),
        (lambda t: t.zero_(), [0.0, 0.0]),
        (lambda t: t.copy_(nnet.tensor([5.0, 6.0], dtype=np.float64)), [5.0, 6.0]),
        (lambda t: t.copy_(nnet.tensor(9.0)), [9.0, 9.0]),
    ],
)
def test_unrecorded_updates_write_into_the_same_array_and_bump_the_version(update, expected):
    t = nnet.tensor([1.0, 2.0])
    array = t.data
    out = update(t)
    assert out is t and t.data is array and t.dtype == np.float32
    np.testing.assert_allclose(t.data, expected)
    assert t._version == 1 and not t.requires_grad


def test_under_no_grad_a_leaf_that_requires_grad_changes_in_place():
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    w.grad = nnet.tensor([0.5, 0.5])
    with nnet.no_grad():
        w -= 0.1 * w.grad
        w.mul_(2)
    np.testing.assert_allclose(w.data, [1.9, 3.9], rtol=1e-6)
    assert w.is_leaf and w.requires_grad and w._version == 2


def test_views_and_detach_share_the_version_counter():
    x = nnet.tensor(np.zeros((2, 3)))
    v = x.reshape(6)
    d = x.detach()
    v[2:]  # reading does not count
    assert x._version == v._version == d._version == 0
    with nnet.no_grad():
        v += 1
    d.zero_()
    assert x._version == v._version == d._version == 2
    assert nnet.tensor(x.data.copy())._version == 0  # a copy starts afresh


def test_the_manual_sgd_idiom_trains():
    rng = np.random.default_rng(0)
    x = nnet.tensor(rng.standard_normal((32, 3)))
    y = x @ nnet.tensor([[1.0], [-2.0], [0.5]])
    w = nnet.zeros((3, 1), requires_grad=True)
    for _ in range(200):
        loss = ((x @ w - y) ** 2).mean()
        w.grad = None
        loss.backward()
        with nnet.no_grad():
            w -= 0.1 * w.grad
    assert w.is_leaf
    np.testing.assert_allclose(w.data.ravel(), [1.0, -2.0, 0.5], atol=1e-3)


# -- the mistakes PyTorch refuses -------------------------------------------------------------------
@pytest.mark.parametrize(
    "update",
    [
        lambda w: w.__iadd__(1.0),
        lambda w: w.__isub__(0.1),
        lambda w: w.__imul__(2.0),
        lambda w: w.__itruediv__(2.0),
        lambda w: w.zero_(),
        lambda w: w.clamp_(0.0, 1.0),
        lambda w: w.copy_(nnet.ones(2)),
    ],
)
def test_a_leaf_that_requires_grad_refuses_in_place_changes_outside_no_grad(update):
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=LEAF_ERROR) as info:
        update(w)
    assert "nnet.no_grad()" in str(info.value)
    np.testing.assert_array_equal(w.data, [1.0, 2.0])  # nothing changed
    assert w.is_leaf and w._version == 0


@pytest.mark.parametrize(
    ("update", "kind", "words"),
    [
        (lambda t: t.__iadd__(nnet.ones((2, 3))), ValueError, ["add_", "(2, 3)", "(3,)", "shape"]),
        (lambda t: t.mul_(nnet.ones(4)), ValueError, ["mul_", "(4,)", "(3,)"]),
        (lambda t: t.copy_(nnet.ones(2)), ValueError, ["copy_", "(2,)", "(3,)"]),
        (lambda t: t.fill_(nnet.ones(3)), RuntimeError, ["fill_", "0-d", "(3,)", "copy_"]),
        (lambda t: t.clamp_(), ValueError, ["clamp_", "min and max"]),
        (lambda t: t.__imatmul__(nnet.ones((3, 3))), RuntimeError, ["@=", "a = a @ b"]),
    ],
)
def test_bad_in_place_calls_name_the_method_and_the_problem(update, kind, words):
    t = nnet.zeros(3)
    with pytest.raises(kind) as info:
        update(t)
    for word in words:
        assert word in str(info.value)
    assert t._version == 0


def test_integer_tensors_refuse_a_float_result_in_place():
    t = nnet.Tensor(np.arange(3))
    with pytest.raises(
        TypeError, match="div_: cannot write the result into a tensor of dtype int64"
    ):
        t /= 2
    t += 2  # an integer result is fine
    np.testing.assert_array_equal(t.data, [2, 3, 4])


def test_a_broadcast_view_is_read_only():
    t = nnet.ones(3).expand(2, 3)
    with pytest.raises(ValueError, match="add_: this tensor's memory is read-only"):
        t += 1


def test_a_recorded_change_to_a_view_of_a_tensor_that_requires_grad_is_refused():
    h = nnet.ones((2, 3), requires_grad=True) * 2
    v = h.reshape(6)
    with pytest.raises(
        RuntimeError, match=r"add_: this tensor is a view of .* \(made by Reshape\)"
    ):
        v += 1
    np.testing.assert_array_equal(h.data, 2.0)  # refused before writing


def test_reading_grad_of_a_non_leaf_warns_with_the_fix():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    kept = x * 3
    kept.retain_grad()
    (h * kept).sum().backward()
    with pytest.warns(UserWarning, match=r"non-leaf tensor \(made by Mul\).*retain_grad\(\)"):
        assert h.grad is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None and kept.grad is not None  # a leaf, a retained gradient
        assert nnet.tensor(1.0).grad is None  # a leaf without gradient: no warning


# -- recorded: the history rebased, gradients as for the out-of-place form --------------------------
IN_PLACE = {
    "add_": (lambda h, o: h.add_(o), lambda h, o: h + o, Add, "real"),
    "add_alpha": (lambda h, o: h.add_(o, alpha=-0.5), lambda h, o: h - 0.5 * o, Add, "real"),
    "iadd": (lambda h, o: h.__iadd__(o), lambda h, o: h + o, Add, "real"),
    "isub": (lambda h, o: h.__isub__(o), lambda h, o: h - o, Sub, "real"),
    "imul": (lambda h, o: h.__imul__(o), lambda h, o: h * o, Mul, "real"),
    "idiv": (lambda h, o: h.__itruediv__(o), lambda h, o: h / o, Div, "nonzero"),
    "pow_": (lambda h, o: h.pow_(o), lambda h, o: h**o, Pow, "positive"),
    "copy_": (lambda h, o: h.copy_(o), lambda h, o: o + 0 * h, Where, "real"),
}


def _in_place_model(update):
    """x -> (x * 1.5 + 0), changed in place by ``update``, then used once more."""

    def f(x, o):
        h = x * 1.5 + 0.25  # a non-leaf that owns its array
        y = update(h, o)
        assert y is h
        return h * x

    return f


@pytest.mark.parametrize("name", sorted(IN_PLACE))
@given(data=st.data(), seed=seeds)
def test_recorded_in_place_ops_have_the_out_of_place_gradients(name, data, seed):
    update, _, primitive, domain = IN_PLACE[name]
    shape, other_shape = data.draw(broadcastable_shapes(2, max_dims=3, max_side=3))
    shape = np.broadcast_shapes(shape, other_shape)  # the tensor changed in place keeps its shape
    x = leaf(data.draw(arrays(shape, "positive" if domain == "positive" else "real")))
    o = leaf(data.draw(arrays(other_shape, domain)))
    check_grad(_in_place_model(update), x, o, primitive=primitive, seed=seed, second_order=True)


@pytest.mark.parametrize("name", sorted(IN_PLACE))
def test_recorded_in_place_ops_match_the_out_of_place_form(name):
    update, reference, _, _ = IN_PLACE[name]
    rng = np.random.default_rng(1)
    x_np = rng.uniform(0.5, 2.0, (3, 4))
    o_np = rng.uniform(0.5, 2.0, (4,))
    results = []
    for f in (_in_place_model(update), lambda x, o: reference(x * 1.5 + 0.25, o) * x):
        x, o = leaf(x_np), leaf(o_np)
        out = f(x, o)
        out.sum().backward()
        results.append((out.data, x.grad.data, o.grad.data))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_clamp_and_fill_recorded():
    x = leaf(np.array([-2.0, 0.5, 3.0]))
    h = x * 1.0
    h.clamp_(-1.0, 1.0)
    (h * h).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 0.0])  # 2h inside, 0 where clamped
    v = leaf(np.array(4.0))
    x = leaf(np.array([1.0, 2.0]))
    h = x * 3
    h.fill_(v)  # every element from v: no gradient to x's history
    (h * nnet.tensor([1.0, 10.0], dtype=np.float64)).sum().backward()
    assert float(v.grad) == 11.0 and np.array_equal(x.grad.data, [0.0, 0.0])
    x.grad = None
    h = x * 3
    h.zero_()
    (h + x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_a_constant_that_accumulates_tensors_becomes_part_of_the_graph():
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    total = nnet.zeros(())  # a leaf that does not require grad
    for k in range(1, 4):
        total += (w * k).sum()
    assert total.requires_grad and not total.is_leaf and total.grad_fn.name == "Add"
    total.backward()
    np.testing.assert_array_equal(w.grad.data, [6.0, 6.0])


def test_self_as_operand():
    x = leaf(np.array([1.0, 2.0]))
    h = x * 1
    h *= h  # h becomes x^2
    h += h  # 2 x^2
    h.sum().backward()
    np.testing.assert_array_equal(h.data, [2.0, 8.0])
    np.testing.assert_array_equal(x.grad.data, [4.0, 8.0])


def test_ops_recorded_before_the_change_send_gradients_to_the_old_version():
    x = leaf(np.array([1.0, 2.0]))
    y = x * 3
    z = y + 1  # Add saves nothing: fine to change y afterwards
    y *= 2  # y = 6 x; z still sees 3 x
    y -= x  # y = 5 x
    (z + y * 100).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3 + 500, 3 + 500])
    # and through create_graph: the second derivative of (z + y^2) is 2 * 5^2
    x = leaf(np.array([1.0]))
    y = x * 3
    z = y + 1
    y *= 5
    (g,) = nnet.grad((z + y * y).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, [3 + 2 * 15 * 15])
    (gg,) = nnet.grad(g.sum(), x)
    np.testing.assert_allclose(gg.data, [450.0])


def test_a_view_taken_before_its_base_changed_is_refused_at_backward():
    x = leaf(np.array([1.0, 2.0]))
    y = x * 3
    r = y.reshape(2, 1)  # a view: it shows y's values
    y *= 2
    np.testing.assert_array_equal(r.data.ravel(), [6.0, 12.0])
    with pytest.raises(
        RuntimeError, match="a view made by Reshape of a tensor that an in-place op"
    ):
        (r * 10).sum().backward()
    r2 = x * 3
    r2.mul_(r2)  # the operand is r2 itself: its value before the change
    with pytest.raises(RuntimeError, match=r"mul_: some elements of the operand .* same memory"):
        r2.mul_(r2[::-1])


# -- values saved for backward and changed afterwards ------------------------------------------------
def test_a_saved_value_changed_in_place_makes_backward_raise_naming_op_and_versions():
    a = nnet.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = a * 2
    c = (b * b).sum()
    with nnet.no_grad():
        b += 1
    with pytest.raises(RuntimeError) as info:
        c.backward()
    message = str(info.value)
    for words in ("input 0", "(3,) float32, made by Mul", "which Mul saved", "version 1",
                  "saw version 0", "out-of-place"):  # fmt: skip
        assert words in message, words
    assert a.grad is None


def test_a_saved_output_changed_in_place_is_caught():
    x = nnet.tensor([0.0, 1.0], requires_grad=True)
    y = nnet.exp(x)  # Exp's VJP reads its own output
    loss = y.sum()
    with nnet.no_grad():
        y.mul_(0)
    with pytest.raises(RuntimeError, match=r"its output .* which Exp saved"):
        loss.backward()


def test_changes_to_values_an_op_does_not_read_are_fine():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    loss = (h + 1).sum() + h.reshape(1, 2).sum()  # Add, Reshape, Sum read shapes only
    with nnet.no_grad():
        h.fill_(100.0)
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 4.0])
    # a product reads the other operand only: w is free to change when x needs no gradient
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    c = nnet.tensor([3.0, 4.0])
    loss = (w * c).sum()
    with nnet.no_grad():
        w -= 1
    loss.backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])


def test_an_optimizer_step_between_two_backward_passes_is_caught():
    nnet.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = nnet.optim.Adam(model.parameters(), lr=0.1)
    loss = model(nnet.randn(5, 3)).sum()
    loss.backward(retain_graph=True)
    versions = [p._version for p in model.parameters()]
    opt.step()
    assert [p._version for p in model.parameters()] == [v + 1 for v in versions]
    with pytest.raises(RuntimeError, match="changed by an in-place operation") as info:
        loss.backward()
    assert "optimizer step" in str(info.value)


def test_backward_after_a_change_is_unaffected_for_graphs_recorded_later():
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    opt = nnet.optim.SGD([w], lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    np.testing.assert_array_equal(w.data, [0.0, 0.0])  # w - 0.5 * 2w each step


def test_init_bumps_the_version():
    w = nnet.zeros(3, requires_grad=True)
    loss = (w * w).sum()
    nn.init.constant_(w, 2.0)
    assert w._version == 1
    with pytest.raises(RuntimeError, match="changed by an in-place operation"):
        loss.backward()


# -- PyTorch as the oracle ----------------------------------------------------------------------------
def test_in_place_semantics_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x_np, o_np = rng.uniform(0.5, 2, (2, 3)), rng.uniform(0.5, 2, (3,))

    def program(lib, x, o):
        h = x * 1.5
        z = h + 1
        h.add_(o, alpha=2)
        h.mul_(o)
        h.div_(2.0)
        h.sub_(x)
        h.clamp_(min=1.0)
        total = (h * x).sum()
        total += z.sum()
        return total

    results = []
    for lib, make in ((nnet, lambda a: nnet.tensor(a, requires_grad=True)),
                      (torch, lambda a: torch.tensor(a, requires_grad=True))):  # fmt: skip
        x, o = make(x_np), make(o_np)
        out = program(lib, x, o)
        out.backward()
        results.append([float(out.detach().numpy()), x.grad.numpy(), o.grad.numpy()])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)
