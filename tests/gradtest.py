"""The shared gradient-test harness (MyGrad's ``backprop_test_factory`` in spirit).

:func:`check_grad` runs :func:`nnet.testing.gradcheck` (and optionally ``gradgradcheck``) on a function
of float64 tensors, then backpropagates a random upstream gradient through the original tensors,
checks that the recorded VJPs (``create_graph``, ``vjp``) give the same gradients as the array VJPs
(``vjp_arrays``), and asserts what must not happen: an input or the upstream gradient mutated, two
gradients (or a gradient and an input or the upstream gradient) sharing memory, a gradient of the
wrong shape or dtype, and a graph that survives backward (its nodes must drop their inputs, and a
second backward must raise :class:`nnet.autograd.GraphReleasedError`).

The element strategies keep values away from kinks and domain edges, far beyond the central
difference's reach (eps = 1e-6 along directions of norm ~ a few):

* ``REAL``: [-5, 5];
* ``POSITIVE``: [0.5, 5] (log, sqrt, pow's base, denominators);
* ``NONZERO``: [-5, -0.5] or [0.5, 5];
* ``OFF_KINKS``: the lattice (k + 1/2) / 8, never 0 nor +-1 (relu, abs, clip to [-1, 1]) and, with
  ``unique=True``, never a tie (max, min);
* ``OFF_LATTICE``: (k + 1/4) / 8, never equal to an ``OFF_KINKS`` value (maximum, minimum);
* ``SMALL``: [-1.25, 1.25], well inside tan's poles at +-pi/2;
* ``ABOVE_MINUS_ONE``: [-0.75, 5] (log1p).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnet
from nnet.autograd import Function, GraphReleasedError, Tensor
from nnet.testing import gradcheck, gradgradcheck

REAL = st.floats(-5, 5, allow_nan=False, allow_infinity=False, allow_subnormal=False)
POSITIVE = st.floats(0.5, 5, allow_nan=False, allow_infinity=False)
NONZERO = st.one_of(st.floats(-5, -0.5), st.floats(0.5, 5))
OFF_KINKS = st.integers(-40, 39).map(lambda k: (k + 0.5) / 8)
OFF_LATTICE = st.integers(-40, 39).map(lambda k: (k + 0.25) / 8)
SMALL = st.floats(-1.25, 1.25, allow_nan=False, allow_infinity=False, allow_subnormal=False)
ABOVE_MINUS_ONE = st.floats(-0.75, 5, allow_nan=False, allow_infinity=False, allow_subnormal=False)

DOMAINS = {
    "real": REAL,
    "positive": POSITIVE,
    "nonzero": NONZERO,
    "off_kinks": OFF_KINKS,
    "off_lattice": OFF_LATTICE,
    "small": SMALL,
    "above_minus_one": ABOVE_MINUS_ONE,
}

seeds = st.integers(0, 2**32 - 1)


def arrays(shape: Any, domain: str = "real", unique: bool = False) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` (tuple or strategy) with elements from a named domain."""
    return hnp.arrays(np.float64, shape, elements=DOMAINS[domain], unique=unique)


def leaf(a: np.ndarray) -> Tensor:
    """A float64 leaf tensor that requires grad, holding its own copy of ``a``."""
    return nnet.Tensor(np.array(a, dtype=np.float64), requires_grad=True)


def graph_nodes(out: Tensor) -> list[Function]:
    """Every recorded operation reachable from ``out`` (iteratively)."""
    seen: dict[int, Function] = {}
    stack = [out]
    while stack:
        fn = stack.pop().grad_fn
        if fn is None or id(fn) in seen:
            continue
        seen[id(fn)] = fn
        stack.extend(x for x in fn.inputs or () if isinstance(x, Tensor))
    return list(seen.values())


def _snapshot(x: Any) -> Any:
    if isinstance(x, Tensor):
        return np.array(x.data, copy=True)
    if isinstance(x, np.ndarray):
        return x.copy()
    return None


def check_grad(
    fn: Callable[..., Tensor],
    *inputs: Any,
    primitive: type[Function],
    seed: int = 0,
    second_order: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> None:
    """Gradient check plus the invariants; ``primitive`` must appear in the recorded graph."""
    assert gradcheck(fn, *inputs, atol=atol, rtol=rtol, seed=seed)
    if second_order:
        assert gradgradcheck(fn, *inputs, atol=atol, rtol=rtol, seed=seed)

    before = [_snapshot(x) for x in inputs]
    leaves = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    for x in leaves:
        x.grad = None
    out = fn(*inputs)
    nodes = graph_nodes(out)
    assert any(type(n) is primitive for n in nodes), (
        f"{primitive.__name__} is not in the graph: {[type(n).__name__ for n in nodes]}"
    )
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    upstream_copy = upstream.copy()
    out.backward(nnet.Tensor(upstream))

    for k, (x, b) in enumerate(zip(inputs, before, strict=True)):
        if b is not None:
            now = x.data if isinstance(x, Tensor) else x
            assert np.array_equal(now, b), f"backward mutated input {k}"
    assert np.array_equal(upstream, upstream_copy), "backward mutated the upstream gradient"

    data = [x.data for x in inputs if isinstance(x, Tensor)]
    for k, x in enumerate(leaves):
        assert x.grad is not None, f"leaf {k} got no gradient"
        assert x.grad.shape == x.shape and x.grad.dtype == x.dtype
        assert not x.grad.requires_grad
        g = x.grad.data
        assert not np.shares_memory(g, upstream), f"the gradient of leaf {k} is the upstream array"
        for d in data:
            assert not np.shares_memory(g, d), f"the gradient of leaf {k} shares an input's memory"
        for m, y in enumerate(leaves[:k]):
            assert not np.shares_memory(g, y.grad.data), f"gradients {m} and {k} share memory"

    # the recorded VJPs (create_graph: tensors, `vjp`) agree with the array VJPs just run
    recorded = nnet.grad(fn(*inputs), leaves, nnet.Tensor(upstream), create_graph=True)
    for k, (x, r) in enumerate(zip(leaves, recorded, strict=True)):
        np.testing.assert_allclose(
            r.data, x.grad.data, rtol=1e-10, atol=1e-12, err_msg=f"vjp and vjp_arrays, leaf {k}"
        )

    for n in nodes:
        assert n.inputs is None, f"{type(n).__name__} kept its inputs after backward"
    with pytest.raises(GraphReleasedError, match="retain_graph=True"):
        out.backward(nnet.Tensor(upstream))
