"""nnet.autograd.functional against central differences (hypothesis, float64) and its structures.

The expected values never come from nnet's own derivatives: Jacobians are central differences of
the function's values, Hessians second differences of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnet
from nnet.autograd import functional as AF
from nnet.autograd.tensor import Tensor

H1 = 1e-6  # first differences
H2 = 1e-4  # second differences: error ~ H2^2 + eps / H2^2

shapes = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)
seeds = st.integers(0, 2**32 - 1)

# name -> (function, number of inputs, whether it returns a tuple); all inputs share one shape
FUNCS: dict[str, tuple[Callable[..., Any], int, bool]] = {
    "one->one": (lambda x: nnet.tanh(x) * x.sum() + x**3, 1, False),
    "two->one": (lambda x, y: x * nnet.exp(y) + y.sigmoid(), 2, False),
    "one->two": (lambda x: (x.sigmoid(), (x * x).sum()), 1, True),
    "two->two": (lambda x, y: ((x * y).sum(), x - nnet.tanh(y)), 2, True),
}
# scalar functions for the Hessian family
SCALARS: dict[str, tuple[Callable[..., Any], int]] = {
    "one": (lambda x: (nnet.tanh(x) * x).sum() + x.sum() * x.sum(), 1),
    "two": (lambda x, y: (x * y * y).sum() + nnet.exp(x).sum() * y.sum(), 2),
}


def _values(f: Callable[..., Any], arrays: list[np.ndarray]) -> list[np.ndarray]:
    with nnet.no_grad():
        out = f(*[nnet.tensor(a) for a in arrays])
    return [o.numpy().astype(np.float64) for o in (out if isinstance(out, tuple) else (out,))]


def numeric_jacobian(f: Callable[..., Any], arrays: list[np.ndarray]) -> list[list[np.ndarray]]:
    """``J[i][j]`` (shape ``out_i.shape + in_j.shape``) by central differences."""
    outs = _values(f, arrays)
    table = [[np.zeros(o.shape + a.shape) for a in arrays] for o in outs]
    for j, a in enumerate(arrays):
        for e in np.ndindex(*a.shape):
            plus, minus = [x.copy() for x in arrays], [x.copy() for x in arrays]
            plus[j][e] += H1
            minus[j][e] -= H1
            for i, (p, m) in enumerate(zip(_values(f, plus), _values(f, minus), strict=True)):
                table[i][j][(...,) + e] = (p - m) / (2 * H1)
    return table


def numeric_hessian(f: Callable[..., Any], arrays: list[np.ndarray]) -> list[list[np.ndarray]]:
    """``H[i][j]`` (shape ``in_i.shape + in_j.shape``) by second central differences of f."""

    def at(steps: list[tuple[int, tuple[int, ...], float]]) -> float:
        xs = [x.copy() for x in arrays]
        for j, e, h in steps:
            xs[j][e] += h
        return float(_values(f, xs)[0])

    table = [[np.zeros(a.shape + b.shape) for b in arrays] for a in arrays]
    for i, a in enumerate(arrays):
        for ei in np.ndindex(*a.shape):
            for j, b in enumerate(arrays):
                for ej in np.ndindex(*b.shape):
                    table[i][j][ei + ej] = (
                        at([(i, ei, H2), (j, ej, H2)])
                        - at([(i, ei, H2), (j, ej, -H2)])
                        - at([(i, ei, -H2), (j, ej, H2)])
                        + at([(i, ei, -H2), (j, ej, -H2)])
                    ) / (4 * H2 * H2)
    return table


def _inputs(seed: int, shape: tuple[int, ...], n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.5, 1.5, shape) for _ in range(n)]


def _tensors(arrays: list[np.ndarray]) -> tuple[Tensor, ...]:
    return tuple(nnet.tensor(a) for a in arrays)


def _close(actual: Tensor, expected: np.ndarray, tol: float = 1e-6) -> None:
    assert isinstance(actual, Tensor)
    assert actual.dtype == np.float64 and actual.shape == expected.shape
    np.testing.assert_allclose(actual.numpy(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", FUNCS)
@given(shape=shapes, seed=seeds)
def test_jacobian_vjp_jvp_match_central_differences(name: str, shape: Any, seed: int) -> None:
    f, n_in, out_tuple = FUNCS[name]
    arrays = _inputs(seed, shape, n_in)
    num = numeric_jacobian(f, arrays)
    args: Any = _tensors(arrays) if n_in > 1 else nnet.tensor(arrays[0])

    jac = AF.jacobian(f, args)
    assert isinstance(jac, tuple) == (out_tuple or n_in > 1)
    rows = jac if out_tuple else (jac,)
    for i, row in enumerate(rows):
        entries = row if n_in > 1 else (row,)
        assert isinstance(row, tuple) == (n_in > 1)
        for j, entry in enumerate(entries):
            _close(entry, num[i][j])

    rng = np.random.default_rng(seed + 1)
    outs = _values(f, arrays)
    vs = [rng.normal(size=o.shape) for o in outs]
    us = [rng.normal(size=a.shape) for a in arrays]
    v_arg: Any = _tensors(vs) if out_tuple else nnet.tensor(vs[0])
    u_arg: Any = _tensors(us) if n_in > 1 else nnet.tensor(us[0])

    value, vj = AF.vjp(f, args, v_arg)
    for o, expected in zip(value if out_tuple else (value,), outs, strict=True):
        assert not o.requires_grad
        np.testing.assert_array_equal(o.numpy(), expected)
    for j, got in enumerate(vj if n_in > 1 else (vj,)):
        expected = sum(np.tensordot(vs[i], num[i][j], axes=vs[i].ndim) for i in range(len(outs)))
        _close(got, np.asarray(expected))

    _, jv = AF.jvp(f, args, u_arg)
    for i, got in enumerate(jv if out_tuple else (jv,)):
        expected = sum(np.tensordot(num[i][j], us[j], axes=us[j].ndim) for j in range(n_in))
        _close(got, np.asarray(expected).reshape(outs[i].shape))


@pytest.mark.parametrize("name", SCALARS)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=2), seed=seeds)
def test_hessian_hvp_vhp_match_second_differences(name: str, shape: Any, seed: int) -> None:
    f, n_in = SCALARS[name]
    arrays = _inputs(seed, shape, n_in)
    num = numeric_hessian(f, arrays)
    args: Any = _tensors(arrays) if n_in > 1 else nnet.tensor(arrays[0])
    hess = AF.hessian(f, args)
    for i, row in enumerate(hess if n_in > 1 else (hess,)):
        for j, entry in enumerate(row if n_in > 1 else (row,)):
            _close(entry, num[i][j], tol=1e-5)

    rng = np.random.default_rng(seed + 2)
    vs = [rng.normal(size=a.shape) for a in arrays]
    v_arg: Any = _tensors(vs) if n_in > 1 else nnet.tensor(vs[0])
    for fn in (AF.hvp, AF.vhp):
        value, got = fn(f, args, v_arg)
        np.testing.assert_array_equal(value.numpy(), _values(f, arrays)[0])
        for i, g in enumerate(got if n_in > 1 else (got,)):
            expected = sum(np.tensordot(num[i][j], vs[j], axes=vs[j].ndim) for j in range(n_in))
            _close(g, np.asarray(expected).reshape(arrays[i].shape), tol=1e-5)


def test_create_graph_results_differentiate_again() -> None:
    """d/dx of sum(J(x)) for f = x**3 is 6x: the Jacobian stays connected to x."""
    x = nnet.tensor([0.5, -2.0], dtype="float64", requires_grad=True)
    jac = AF.jacobian(lambda t: t**3, x, create_graph=True)
    assert jac.requires_grad
    (dx,) = nnet.grad(jac.sum(), x)
    np.testing.assert_allclose(dx.numpy(), [3.0, -12.0])
    _, jv = AF.jvp(lambda t: t**3, x, nnet.ones(2, dtype="float64"), create_graph=True)
    (dx,) = nnet.grad(jv.sum(), x)
    np.testing.assert_allclose(dx.numpy(), [3.0, -12.0])
    without = AF.jacobian(lambda t: t**3, x)
    assert not without.requires_grad and x.grad is None


def test_unused_input_gets_zeros_and_inputs_are_not_touched() -> None:
    x = nnet.tensor([1.0, 2.0])
    y = nnet.tensor([3.0])
    jac = AF.jacobian(lambda a, b: a * 2.0, (x, y))
    np.testing.assert_array_equal(jac[1].numpy(), np.zeros((2, 1)))
    _, jv = AF.jvp(lambda a: nnet.ones(3), x, nnet.ones(2))
    np.testing.assert_array_equal(jv.numpy(), np.zeros(3))
    assert not x.requires_grad and x.grad is None


def test_newton_step_on_a_quadratic_is_exact() -> None:
    """One Newton step x - H^-1 g lands on the minimiser of 1/2 x^T A x - b^T x."""
    rng = np.random.default_rng(0)
    m = rng.normal(size=(3, 3))
    a = nnet.tensor(m @ m.T + 3 * np.eye(3))
    b = nnet.tensor(rng.normal(size=3))

    def f(x: Tensor) -> Tensor:
        return 0.5 * (x @ (a @ x)) - (b * x).sum()

    x = nnet.tensor(np.zeros(3))
    _, g = AF.vjp(f, x)
    x = x - nnet.tensor(np.linalg.solve(AF.hessian(f, x).numpy(), g.numpy()))
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a.numpy(), b.numpy()), atol=1e-12)


@pytest.mark.parametrize(
    ("call", "exc", "words"),
    [
        (lambda: AF.vjp(lambda x: x * 2, nnet.ones(3)), ValueError, "v can be omitted only"),
        (
            lambda: AF.vjp(lambda x: x * 2, nnet.ones(3), nnet.ones(2)),
            ValueError,
            "v has shapes [(2,)] but the output has shapes [(3,)]",
        ),
        (lambda: AF.jvp(lambda x: x, [1.0, 2.0]), TypeError, "inputs[0] must be a Tensor"),
        (lambda: AF.hessian(lambda x: x * 2, nnet.ones(3)), ValueError, "single one-element"),
        (lambda: AF.jacobian(lambda x: 3, nnet.ones(1)), TypeError, "the function's output"),
        (lambda: AF.jacobian(lambda x: x, nnet.ones(2, dtype="int64")), TypeError, "int64"),
    ],
)
def test_bad_input_is_named(call: Callable[[], Any], exc: type, words: str) -> None:
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)


def test_matches_pytorch() -> None:
    torch = pytest.importorskip("torch")
    import torch.autograd.functional as TF

    rng = np.random.default_rng(3)
    xa, ya = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    va = rng.normal(size=(2, 3))

    def ours(x: Tensor, y: Tensor) -> Tensor:
        return (nnet.tanh(x) * y * y).sum() + (x * x).sum() * y.sum()

    def theirs(x: Any, y: Any) -> Any:
        return (torch.tanh(x) * y * y).sum() + (x * x).sum() * y.sum()

    def t(a: np.ndarray) -> Any:
        return torch.tensor(a)

    pairs = [
        (AF.hessian(ours, _tensors([xa, ya])), TF.hessian(theirs, (t(xa), t(ya)))),
        (AF.hvp(ours, _tensors([xa, ya]), _tensors([va, va]))[1],
         TF.hvp(theirs, (t(xa), t(ya)), (t(va), t(va)))[1]),
        (AF.vhp(ours, _tensors([xa, ya]), _tensors([va, va]))[1],
         TF.vhp(theirs, (t(xa), t(ya)), (t(va), t(va)))[1]),
        (AF.jacobian(lambda x: nnet.tanh(x) * 2, nnet.tensor(xa)),
         TF.jacobian(lambda x: torch.tanh(x) * 2, t(xa))),
        (AF.jvp(lambda x: (x.sigmoid(), x.sum()), nnet.tensor(xa), nnet.tensor(va))[1],
         TF.jvp(lambda x: (torch.sigmoid(x), x.sum()), t(xa), t(va))[1]),
    ]  # fmt: skip

    def flat(a: Any, b: Any) -> None:
        assert isinstance(a, tuple) == isinstance(b, tuple)
        if isinstance(a, tuple):
            assert len(a) == len(b)
            for p, q in zip(a, b, strict=True):
                flat(p, q)
        else:
            assert a.shape == tuple(b.shape)
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)

    for a, b in pairs:
        flat(a, b)
