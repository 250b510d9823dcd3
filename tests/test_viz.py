"""nnet.viz: DOT text for any graph, SVG when Graphviz is installed, else a clear error."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

import nnet
from nnet.viz import RELEASED_NOTE, GraphvizUnavailable, draw, to_dot


def small_graph() -> tuple[nnet.Tensor, dict[str, nnet.Tensor]]:
    w = nnet.tensor(np.array([[1.0, -2.0]], dtype=np.float32), requires_grad=True)
    b = nnet.tensor(np.array([0.5, 0.0], dtype=np.float32), requires_grad=True)
    x = nnet.tensor(np.array([[3.0], [4.0]], dtype=np.float32))
    return nnet.sigmoid(x @ w + b).sum(), {"layer.weight": w, "layer.bias": b}


def test_one_node_per_op_and_leaf_with_shape_and_dtype() -> None:
    loss, params = small_graph()
    dot = to_dot(loss, params)
    assert dot.startswith("digraph nnet {") and dot.rstrip().endswith("}")
    for op in ("Sum (axes=(0, 1))", "Sigmoid", "layer:Add", "layer:MatMul"):
        assert dot.count(f'"{op}\\n') == 1, op
    assert "layer.weight\\n1x2 float32\\ndata [[1, -2]]" in dot
    assert "layer.bias\\n2 float32\\ndata [0.5, 0]" in dot
    assert "constant\\n2x1 float32\\ndata [[3], [4]]" in dot
    assert dot.count("->") == 6  # x, w -> matmul -> add <- b; add -> sigmoid -> sum
    assert "grad" not in dot and RELEASED_NOTE not in dot


def test_module_parameters_are_named_by_path() -> None:
    loss, params = small_graph()

    class Model:  # anything with named_parameters(), as nnet.nn.Module has
        def named_parameters(self):
            return iter(params.items())

    assert to_dot(loss, Model()) == to_dot(loss, params)


def test_signed_gradients_after_a_retained_backward() -> None:
    loss, params = small_graph()
    loss.backward(retain_graph=True)
    dot = to_dot(loss, params)
    w = params["layer.weight"]
    g = w.grad.numpy().ravel()
    assert f"grad [[{g[0]:.4g}, {g[1]:.4g}]]" in dot
    assert RELEASED_NOTE not in dot and "earlier backward" not in dot


def test_a_graph_not_yet_backpropagated_shows_no_stale_leaf_gradient() -> None:
    loss, params = small_graph()
    loss.backward()
    loss2 = (params["layer.weight"] * 2).sum()  # a new graph, not yet backpropagated
    dot = to_dot(loss2, params)
    assert "grad: none yet (.grad is an earlier backward's)" in dot
    g = params["layer.weight"].grad.numpy().ravel()
    assert f"{g[0]:.4g}" not in dot  # the number from the earlier backward is not shown


def test_teaching_mode_draws_the_whole_graph_after_a_plain_backward() -> None:
    """micrograd's lecture graph: L = (a*b + c) * f with values and signed gradients."""
    with nnet.teaching():
        a, b, c, f = (nnet.tensor(v, requires_grad=True) for v in (2.0, -3.0, 10.0, -2.0))
        e = a * b
        e.name = "e"
        d = e + c
        L = d * f
        L.backward()
        dot = to_dot(L, names={"a": a, "b": b, "c": c, "f": f, "d": d, "L": L})
    assert RELEASED_NOTE not in dot and "released" not in dot
    assert "b\\nscalar float64\\ndata -3\\ngrad -4" in dot  # dL/db = a f
    assert "a\\nscalar float64\\ndata 2\\ngrad 6" in dot
    assert "e = Mul\\nscalar float64\\ndata -6\\ngrad -2" in dot
    assert "d = Add\\nscalar float64\\ndata 4\\ngrad -2" in dot
    assert "L = Mul\\nscalar float64\\ndata -8\\ngrad 1" in dot
    assert dot.count("->") == 6
    assert L.grad_fn.released  # released for backward all the same: a second one raises
    with pytest.raises(nnet.autograd.GraphReleasedError):
        L.backward()


def test_constants_and_attributes_label_the_ops() -> None:
    p = nnet.tensor([0.5, 2.0], requires_grad=True)
    dot = to_dot(((p - 1.0) ** 2).sum() / 2)
    for label in ("Sub (x - 1)", "Pow (x ** 2)", "Div (x / 2)", "Sum (axes=(0,))"):
        assert f'"{label}\\n' in dot, label
    assert '"Sub (1 - x)\\n' in to_dot(1.0 - p)


def test_ops_beyond_what_backward_keeps_are_marked_released(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nnet.autograd.engine, "KEEP", 2)  # the two ops nearest the root
    loss, params = small_graph()
    loss.backward()
    dot = to_dot(loss, params)
    assert '"Sum (axes=(0, 1))\\n' in dot and '"Sigmoid\\n' in dot
    assert "Add (released)" in dot and RELEASED_NOTE in dot
    assert "retain_graph=True" in dot and "teaching" in dot
    assert "layer.weight" not in dot  # past the released op nothing is drawn


def test_a_leaf_alone_and_a_deep_chain() -> None:
    x = nnet.tensor([1.0], requires_grad=True)
    assert "leaf\\n1 float32" in to_dot(x)
    y = x
    for _ in range(5000):
        y = y * 1.0
    assert to_dot(y).count('"Mul (x * 1)\\n') == 5000  # iterative: no RecursionError


def test_labels_are_escaped() -> None:
    x = nnet.tensor([1.0], requires_grad=True)
    assert 'a \\"quoted\\" name' in to_dot(x * 2, {'a "quoted" name': x})


def test_bad_arguments_name_the_problem() -> None:
    with pytest.raises(TypeError, match="expects a Tensor"):
        to_dot(np.ones(2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="params must be a Module or a dict"):
        to_dot(nnet.tensor([1.0], requires_grad=True) * 2, params=[1, 2])


def test_draw_without_graphviz_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    loss, _ = small_graph()
    with pytest.raises(GraphvizUnavailable, match="pip install graphviz") as err:
        draw(loss)
    assert "to_dot" in str(err.value) and "apt-get install graphviz" in str(err.value)


def test_draw_renders_svg_that_shows_inline() -> None:
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("the Graphviz 'dot' program is not installed")
    loss, params = small_graph()
    picture = draw(loss, params)
    svg = picture._repr_svg_()
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg
    assert "layer.weight" in svg and "MatMul" in svg


def test_a_leaf_drawn_after_its_own_backward() -> None:
    x = nnet.tensor([1.0, -2.0], requires_grad=True)
    x.backward(nnet.tensor([3.0, -4.0]))
    assert "grad [3, -4]" in to_dot(x)
