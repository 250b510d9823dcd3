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
    assert [s.op for s in t.steps] == ["Sum[1]", "Sigmoid[2]", "Add[3]", "MatMul[4]"]
    add = t.steps[2]
    assert add.grad_shape == (2, 2)
    assert [(h.to, h.grad_shape, h.summed) for h in add.handed] == [
        ("MatMul[4]", (2, 2), False),
        ("b", (2, 2), True),  # the engine sums it over the broadcast axis
    ]
    assert t.steps[0].grad_norm == 1.0
    text = out.getvalue()
    assert text.splitlines()[0].startswith("[  1] Sum[1]")
    assert "summed to (2,)" in text and "leaf w" in text
    assert str(t) == text.rstrip("\n")
    assert {name for name, _, _ in t.leaves} == {"w", "b"}


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
    assert "MatMul[4]" in html and "summed to (2,)" in html
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
