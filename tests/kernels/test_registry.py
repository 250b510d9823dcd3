"""Every entry of the kernel registry against its declared composition: values, statistics, array
VJPs, recorded VJPs (create_graph) and second derivatives, on arguments its ``case`` draws (which
reach the kernel: the test asserts the graph node). An entry cannot be added without a case, so it
cannot be added untested; a perturbed recorded VJP makes the check fail."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.autograd.grad_mode import grad_enabled
from nnet.kernels import FUSED, HELPERS, REGISTRY, BatchStats, Kernel, use_fused

RTOL, ATOL = 1e-7, 1e-8


def _clone(args: tuple[Any, ...]) -> list[Any]:
    """Fresh leaves and statistics, so the two sides share nothing."""
    out: list[Any] = []
    for a in args:
        if isinstance(a, nnet.Tensor):
            out.append(nnet.Tensor(a.data.copy(), requires_grad=a.requires_grad))
        elif isinstance(a, BatchStats):
            out.append(BatchStats())
        else:
            out.append(a)
    return out


def _leaves(args: list[Any]) -> list[nnet.Tensor]:
    return [a for a in args if isinstance(a, nnet.Tensor) and a.requires_grad]


def _close(what: str, a: Any, b: Any) -> None:
    a = np.zeros_like(b.data) if a is None else a.data
    b = np.zeros_like(a) if b is None else b.data
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=what)


def _contract(grads: tuple[Any, ...], vs: list[np.ndarray]) -> Any:
    """sum_i <grads_i, v_i>: a scalar whose gradient is the Hessian-vector product."""
    total: Any = None
    for g, v in zip(grads, vs, strict=True):
        if g is not None:
            term = (g * v).sum()
            total = term if total is None else total + term
    return total


def check(
    entry: Kernel, args: tuple[Any, ...], rng: np.random.Generator, perturb: Any = None
) -> None:
    """Assert that ``entry`` computes what its composition computes on ``args``, first and second
    derivatives included. ``perturb(node)``: applied to the kernel's graph node before backward."""
    assert entry.applies(*args), f"{entry.name}: the case does not reach the kernel"
    kargs, cargs = _clone(args), _clone(args)
    y = entry.run(*kargs)
    with use_fused(False):
        y0 = entry.composition(*cargs)
    if entry.node is None:
        assert y.grad_fn is None and not y.requires_grad, f"{entry.name} records a node"
    else:
        assert type(y.grad_fn) is entry.node, f"{entry.name} recorded {y.grad_fn}"
    assert y.dtype == y0.dtype and y.shape == y0.shape
    _close(f"{entry.name}: values", y, y0)
    for a, b in zip(kargs, cargs, strict=True):
        if isinstance(a, BatchStats):
            np.testing.assert_allclose(a.mean, b.mean, rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(a.var, b.var, rtol=RTOL, atol=ATOL)
    leaves, leaves0 = _leaves(kargs), _leaves(cargs)
    if entry.node is None or not leaves:
        return
    if perturb is not None:
        perturb(y.grad_fn)
    g = rng.standard_normal(y.shape)
    arrays = nnet.grad(y, leaves, g, retain_graph=True, allow_unused=True)
    arrays0 = nnet.grad(y0, leaves0, g, retain_graph=True, allow_unused=True)
    for a, b in zip(arrays, arrays0, strict=True):
        _close(f"{entry.name}: array VJP", a, b)
    recorded = nnet.grad(y, leaves, g, create_graph=True, allow_unused=True)
    recorded0 = nnet.grad(y0, leaves0, g, create_graph=True, allow_unused=True)
    for a, b in zip(recorded, recorded0, strict=True):
        _close(f"{entry.name}: recorded VJP", a, b)
    vs = [rng.standard_normal(t.shape) for t in leaves]
    s, s0 = _contract(recorded, vs), _contract(recorded0, vs)
    n = len(leaves)
    second = (
        nnet.grad(s, leaves, allow_unused=True) if s is not None and s.requires_grad else [None] * n
    )
    second0 = (
        nnet.grad(s0, leaves0, allow_unused=True)
        if s0 is not None and s0.requires_grad
        else [None] * n
    )
    for a, b in zip(second, second0, strict=True):
        if a is not None or b is not None:
            _close(f"{entry.name}: second derivative", a, b)


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda k: k.name)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_kernel_matches_its_composition(entry: Kernel, data: Any, seed: int) -> None:
    args = entry.case(lambda lo, hi: data.draw(st.integers(lo, hi)), np.random.default_rng(seed))
    check(entry, args, np.random.default_rng(seed + 1))


def _flip_when_recorded(node: Any) -> None:
    """Negate every gradient of ``node``'s VJP when it runs recorded (create_graph), as a sign
    error in a hand-written recorded VJP would; the array VJP stays right."""
    real = node.vjp

    def flipped(grad: Any) -> Any:
        grads = real(grad)
        if not grad_enabled.get():
            return grads
        grads = grads if isinstance(grads, tuple) else (grads,)
        return tuple(None if d is None else -d for d in grads)

    node.vjp = flipped


def _middle(lo: int, hi: int) -> int:
    return (lo + hi + 1) // 2


@pytest.mark.parametrize("entry", [k for k in REGISTRY if k.node], ids=lambda k: k.name)
def test_a_wrong_recorded_vjp_fails_the_check(entry: Kernel) -> None:
    args = entry.case(_middle, np.random.default_rng(0))
    check(entry, args, np.random.default_rng(1))  # right as it is
    with pytest.raises(AssertionError, match="recorded VJP"):
        check(entry, args, np.random.default_rng(1), perturb=_flip_when_recorded)


def test_entries_are_named_once_and_nodes_are_kernel_primitives() -> None:
    names = [k.name for k in REGISTRY]
    assert len(set(names)) == len(names)
    nodes = {k.node for k in REGISTRY if k.node is not None}
    assert set(FUSED) - set(HELPERS) <= nodes
    for k in REGISTRY:
        assert k.when and k.layers and k.composition.__module__ == "nnet.kernels.compositions"


def test_a_shifted_conv_bias_keeps_the_case_well_conditioned() -> None:
    # hypothesis's seed 2698 for conv_relu_pool_bn: a 1x1 kernel on one channel with the bias
    # shifted far from 0 (the draws below). A fixed shift of 1e3 over a small weight made mean / std
    # of the pooled values about 1e6; the conv bias's gradient (0 exactly) then came out 2e-8 from
    # the kernel and 1e-13 from the composition. The shift now scales with the weights.
    draws = iter([0, 0, 0, 1, 8, 0, 1, 2, 3, 3, 3, 1, 0, 0, 1])
    entry = next(k for k in REGISTRY if k.name == "conv_relu_pool_bn")
    args = entry.case(lambda lo, hi: next(draws), np.random.default_rng(2698))
    assert args[1].shape == (1, 1, 1, 8) and args[2] is not None
    check(entry, args, np.random.default_rng(2699))
