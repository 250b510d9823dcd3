"""nnet.autograd.trace: backward step by step, the same results as backward, nothing left behind."""

from __future__ import annotations

import io

import numpy as np
import pytest

import nnet
from nnet.autograd import BackwardTrace, trace


def graph() -> tuple[nnet.Tensor, nnet.Tensor, nnet.Tensor]:
    w = nnet.tensor(np.array([[1.0, -2.0]], dtype=np.float32), requires_grad=True)
    b = nnet.tensor(np.array([0.5, 0.0], dtype=np.float32), requires_grad=True)
    x = nnet.tensor(np.array([[3.0], [4.0]], dtype=np.float32))
    return nnet.sigmoid(x @ w + b).sum(), w, b


def test_steps_in_backward_order_with_gradients_in_and_out() -> None:
    loss, w, b = graph()
    out = io.StringIO()
    t = trace(loss, params={"w": w, "b": b}, file=out)
    # one numbering, in the order the ops were recorded: #1 MatMul ... #4 Sum
    assert [s.label for s in t.steps] == [
        "#4 Sum (axes=(0, 1))",
        "#3 Sigmoid",
        "#2 Add",
        "#1 MatMul",
    ]
    assert [s.index for s in t.steps] == [4, 3, 2, 1]
    add = t.steps[2]
    assert add.grad_shape == (2, 2)
    assert [(h.to, h.grad_shape, h.summed) for h in add.handed] == [
        ("#1 MatMul", (2, 2), False),
        ("b", (2, 2), True),  # the engine sums it over the broadcast axis
    ]
    assert t.steps[0].grad_norm == 1.0 and t.steps[0].grad == "1"
    text = out.getvalue()
    assert text.splitlines()[0].startswith("#4 Sum (axes=(0, 1))")
    # the bias gradient after the sum, with its figures and signs, equals b.grad
    gb = b.grad.numpy()
    assert f"summed to (2,): [{gb[0]:.4g}, {gb[1]:.4g}]" in text
    assert str(t) == text.rstrip("\n")
    assert {leaf.name for leaf in t.leaves} == {"w", "b"}


def test_same_gradients_as_backward_and_graph_left_as_backward_leaves_it() -> None:
    loss, w, b = graph()
    trace(loss, echo=False)
    loss2, w2, b2 = graph()
    loss2.backward()
    np.testing.assert_array_equal(w.grad.numpy(), w2.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), b2.grad.numpy())
    assert loss.grad_fn.released and "vjp" not in vars(loss.grad_fn)


def test_table_for_notebooks() -> None:
    loss, w, b = graph()
    t = trace(loss, params={"w": w, "b": b}, echo=False)
    html = t._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 1 + 5 + 2  # head, hand-ons, leaves
    assert "#1 MatMul" in html and "summed to (2,)" in html
    assert repr(t) == "<BackwardTrace: 4 VJP steps, 2 leaves>"
    assert isinstance(t, BackwardTrace)


def test_retained_graph_can_be_traced_twice_and_second_order_works() -> None:
    x = nnet.tensor([2.0], requires_grad=True)
    y = (x * x * x).sum()
    t = trace(y, create_graph=True, echo=False)
    assert len(t.steps) == 3
    (dx,) = (x.grad,)
    x.grad = None
    trace(dx.sum(), echo=False)
    assert float(x.grad.item()) == 12.0  # d/dx 3x^2 at 2


def test_bad_arguments_name_the_problem() -> None:
    with pytest.raises(TypeError, match="trace: expects a Tensor"):
        trace(np.ones(2))  # type: ignore[arg-type]
    loss, w, _ = graph()
    with pytest.raises(TypeError, match="trace: params must be a Module or a dict"):
        trace(loss, params=[w])
    assert "vjp" not in vars(loss.grad_fn)  # nothing was attached before the check failed


def test_values_signed_gradients_names_and_accumulation() -> None:
    """micrograd's tanh neuron: the trace shows the numbers a student derives by hand."""
    with nnet.teaching():
        x1, x2, w1, w2 = (nnet.tensor(v, requires_grad=True) for v in (2.0, 0.0, -3.0, 1.0))
        b = nnet.tensor(6.8813735870195432, requires_grad=True)
        n = x1 * w1 + x2 * w2 + b
        n.name = "n"
        o = n.tanh()
        out = io.StringIO()
        t = trace(o, names={"x1": x1, "x2": x2, "w1": w1, "w2": w2, "b": b}, file=out)
    text = out.getvalue()
    assert t.steps[0].label == "#5 Tanh" and t.steps[0].value == "0.707107"
    assert "-> n (#4 Add)" in text and "grad 0.5" in text
    leaves = {leaf.name: leaf for leaf in t.leaves}
    assert leaves["x1"].grad == "-1.5" and leaves["w1"].grad == "1" and leaves["x2"].grad == "0.5"
    assert float(x1.grad) == pytest.approx(-1.5, abs=1e-12)  # float64 in teaching mode
    # a tensor used twice: its gradient is the sum of two contributions, and the trace says so
    a = nnet.tensor(3.0, requires_grad=True)
    t = trace(a * a + a, names={"a": a}, echo=False)
    assert t.leaves[0].contributions == 3 and "(sum of 3 contributions)" in str(t)
    assert t.leaves[0].grad == "7"


def test_modules_label_their_ops_by_path() -> None:
    nnet.manual_seed(0)
    model = nnet.nn.Sequential(nnet.nn.Linear(3, 2), nnet.nn.ReLU(), nnet.nn.Linear(2, 1))
    with nnet.teaching():  # the composition: MatMul and Add with the module's parameters
        model = model.double()
        t = trace(model(nnet.ones((4, 3))).sum(), params=model, echo=False)
    labels = [s.label for s in t.steps]
    assert "#1 0:MatMul" in labels and any(label.endswith("2:Add") for label in labels)
    assert {leaf.name for leaf in t.leaves} == {"0.weight", "0.bias", "2.weight", "2.bias"}
