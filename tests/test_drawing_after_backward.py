"""Drawing after a plain backward(): the gradients just computed, without keeping big arrays alive.

backward keeps, for the ops nearest the root, their small inputs and gradients and a sketch of the big
ones (nnet/autograd/sketch.py); teaching mode keeps everything.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import nnet
from nnet.autograd import ops as P
from nnet.autograd.ops import PRIMITIVES
from nnet.viz import RELEASED_NOTE, to_dot
from tests.catalogue import BINARY, NORMALISATIONS, REDUCTIONS, UNARY
from tests.gradtest import graph_nodes


def _label(dot: str, first_line: str) -> str:
    """The label of the node whose label starts with ``first_line``."""
    start = dot.index(f'label="{first_line}\\n')
    return dot[start : dot.index('"]', start)]


def test_micrograd_lecture_graph_after_a_plain_backward() -> None:
    """L = (a*b + c) * f, outside teaching mode, with the intermediates no longer held."""
    a, b, c, f = (nnet.tensor(v, requires_grad=True) for v in (2.0, -3.0, 10.0, -2.0))
    e = a * b
    e.name = "e"
    d = e + c
    L = d * f
    L.backward()
    del e, d  # the drawing must not need the user to hold the intermediates
    gc.collect()
    dot = to_dot(L, names={"a": a, "b": b, "c": c, "f": f, "L": L})
    assert RELEASED_NOTE not in dot and "released" not in dot
    assert "b\\nscalar float32\\ndata -3\\ngrad -4" in dot  # dL/db = a f
    assert "a\\nscalar float32\\ndata 2\\ngrad 6" in dot
    assert "c\\nscalar float32\\ndata 10\\ngrad -2" in dot
    assert "f\\nscalar float32\\ndata -2\\ngrad 4" in dot
    assert "e = Mul\\nscalar float32\\ndata -6\\ngrad -2" in dot
    assert "Add\\nscalar float32\\ndata 4\\ngrad -2" in dot
    assert "L = Mul\\nscalar float32\\ndata -8\\ngrad 1" in dot
    assert dot.count("->") == 6
    with pytest.raises(nnet.autograd.GraphReleasedError):
        L.backward()  # released for backward all the same


def test_tanh_neuron_after_a_plain_backward() -> None:
    """micrograd's neuron: o = tanh(x1 w1 + x2 w2 + b), in float64 so the numbers are exact."""
    x1, x2, w1, w2 = (nnet.tensor(v, dtype=np.float64, requires_grad=True)
                      for v in (2.0, 0.0, -3.0, 1.0))  # fmt: skip
    b = nnet.tensor(6.8813735870195432, dtype=np.float64, requires_grad=True)
    o = nnet.tanh(x1 * w1 + x2 * w2 + b)
    o.backward()
    dot = to_dot(o, names={"x1": x1, "x2": x2, "w1": w1, "w2": w2, "b": b})
    assert "Tanh\\nscalar float64\\ndata 0.7071\\ngrad 1" in dot
    assert _label(dot, "Add").endswith("grad 0.5")  # both Adds: 1 - o^2 = 0.5
    assert "x1\\nscalar float64\\ndata 2\\ngrad -1.5" in dot
    assert "w1\\nscalar float64\\ndata -3\\ngrad 1" in dot
    assert "x2\\nscalar float64\\ndata 0\\ngrad 0.5" in dot
    assert "w2\\nscalar float64\\ndata 1\\ngrad 0" in dot


def test_retain_graph_now_shows_the_intermediate_gradients_too() -> None:
    x = nnet.tensor([1.0, -2.0], requires_grad=True)
    y = (x * 3.0).sum()
    y.backward(retain_graph=True)
    dot = to_dot(y)
    assert "Mul (x * 3)\\n2 float32\\ndata [3, -6]\\ngrad [1, 1]" in dot
    assert "leaf\\n2 float32\\ndata [1, -2]\\ngrad [3, 3]" in dot


def test_big_activations_are_freed_while_the_drawing_keeps_their_shapes() -> None:
    rng = np.random.default_rng(0)
    w = nnet.tensor(rng.standard_normal((64, 32), dtype=np.float32), requires_grad=True)
    x = nnet.tensor(rng.standard_normal((100, 64), dtype=np.float32))
    h = nnet.relu(x @ w)
    h.name = "h"
    loss = (h**2).mean()
    freed = [weakref.ref(x.data), weakref.ref(h.data), weakref.ref(h)]
    del x, h
    loss.backward()
    gc.collect()
    # the loss is alive, and the input batch, the activations and their tensors are gone
    assert [r() for r in freed] == [None, None, None]
    dot = to_dot(loss, names={"w": w})
    assert RELEASED_NOTE not in dot
    assert "h = Relu\\n100x32 float32\\ndata not kept (3200 elements)\\ngrad not kept" in dot
    assert "constant\\n100x64 float32\\ndata not kept (6400 elements)" in dot
    assert f"w\\n64x32 float32\\ndata 64x32: mean {float(w.data.mean()):.4g}" in dot
    assert "grad 64x32: mean" in dot  # a parameter keeps its .grad, shown as a summary
    assert "MatMul" in dot and dot.count("->") == 5


def test_an_intermediate_still_held_shows_its_values() -> None:
    x = nnet.tensor(np.arange(20, dtype=np.float32), requires_grad=True)
    h = x * 2.0
    loss = h.sum()
    loss.backward()
    dot = to_dot(loss, names={"h": h})
    assert "h = Mul (x * 2)\\n20 float32\\ndata 20: mean 19, min 0, max 38" in dot


def test_leaves_show_the_gradient_of_the_drawn_graph_not_a_later_one() -> None:
    small = nnet.tensor([1.0, 2.0], requires_grad=True)
    big = nnet.tensor(np.ones((5, 5), np.float32), requires_grad=True)
    first = (small * 3.0).sum() + (big * 2.0).sum()
    first.backward()
    second = (small * 5.0).sum() + (big * 7.0).sum()
    assert "grad [3, 3]" not in to_dot(second)  # not yet backpropagated: no stale numbers
    second.backward()  # accumulates: small.grad = [8, 8], big.grad = 9
    dot = to_dot(first, names={"small": small, "big": big})
    assert "small\\n2 float32\\ndata [1, 2]\\ngrad [3, 3]" in dot  # as the first backward left it
    assert "big\\n5x5 float32\\ndata 5x5: mean 1, min 1, max 1\\ngrad: .grad has changed" in dot
    dot = to_dot(second, names={"small": small, "big": big})
    assert "grad [8, 8]" in dot and "grad 5x5: mean 9, min 9, max 9" in dot


def test_zero_grad_in_place_does_not_change_what_the_drawing_shows() -> None:
    w = nnet.tensor([1.0, -1.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    opt = nnet.optim.SGD([w], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert "grad [2, -2]" in to_dot(loss)


def test_teaching_mode_keeps_big_tensors_too() -> None:
    with nnet.teaching():
        x = nnet.tensor(np.arange(20.0), requires_grad=True)
        loss = (x * 2.0).sum()
        loss.backward()
    dot = to_dot(loss)
    assert "Mul (x * 2)\\n20 float64\\ndata 20: mean 19" in dot
    assert "grad 20: mean 1, min 1, max 1" in dot


def test_a_second_backward_through_a_shared_node_updates_its_gradient() -> None:
    x = nnet.tensor(1.5, requires_grad=True)
    y = x * x
    a, b = y * 2.0, y * -3.0
    a.backward(retain_graph=True)
    assert "Mul\\nscalar float32\\ndata 2.25\\ngrad 2" in to_dot(a)
    b.backward()
    assert "Mul\\nscalar float32\\ndata 2.25\\ngrad -3" in to_dot(b)


#: elementwise primitives the catalogue does not cover: (name, function, number of operands)
_MORE = [
    ("sin", "sin", 1), ("cos", "cos", 1), ("tan", "tan", 1), ("log1p", "log1p", 1),
    ("expm1", "expm1", 1), ("erf", "erf", 1), ("softplus", "softplus", 1),
    ("logaddexp", "logaddexp", 2),
]  # fmt: skip


def _elementwise_cases():
    return [
        (c.name, c.nnet_fn, len(c.domains))
        for c in UNARY + BINARY + REDUCTIONS + NORMALISATIONS
        if c.primitive.elementwise
    ] + [(name, getattr(nnet, fn), n) for name, fn, n in _MORE]


def _ops_of(case) -> set[type]:
    return {type(fn) for fn in graph_nodes(_run(case))}


def _run(case) -> nnet.Tensor:
    _, function, n = case
    rng = np.random.default_rng(0)
    shapes = [(3, 1), (1, 4)] if n == 2 else [(3, 4)]
    return function(*[nnet.tensor(rng.uniform(0.5, 1.5, s), requires_grad=True) for s in shapes])


def test_every_primitive_marked_elementwise_is_exercised_here() -> None:
    flagged = {p for p in PRIMITIVES if p.elementwise}
    assert flagged, "no primitive is marked elementwise"
    missing = flagged - set().union(*map(_ops_of, _elementwise_cases()))
    assert not missing, sorted(p.__name__ for p in missing)


@pytest.mark.parametrize("case", _elementwise_cases(), ids=lambda c: c[0])
def test_elementwise_ops_have_no_input_bigger_than_their_output(case) -> None:
    """What lets backward keep a small elementwise op's inputs without looking at them."""
    stack, checked = [_run(case)], 0
    while stack:
        t = stack.pop()
        fn = t.grad_fn
        if fn is None:
            continue
        inputs = [x for x in fn.inputs if x is not None]
        if fn.elementwise:
            for x in inputs:
                size = x.data.size if isinstance(x, nnet.Tensor) else np.size(x)
                assert size <= t.data.size, (fn.name, size, t.shape)
            checked += 1
        stack.extend(x for x in inputs if isinstance(x, nnet.Tensor))
    assert checked


def test_reductions_are_not_marked_elementwise() -> None:
    assert not P.Sum.elementwise and not P.MatMul.elementwise and not P.GetItem.elementwise
