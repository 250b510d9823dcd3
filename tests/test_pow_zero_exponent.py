"""``x ** 0`` and its relatives at x = 0 (issue 18, bug 1): finite gradients, as PyTorch.

The base's gradient b a^(b-1) is 0 * inf = NaN at a = 0, b = 0; a polynomial sum(c_k x^k) then had a NaN
gradient at 0 instead of c_1, and the second derivative of x ** 1 at 0 was NaN instead of 0. nnet takes
the exponent-0 case as 0 (derivations.md#pow), so every order stays finite.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnet
from nnet.testing import gradcheck


def derivatives(fn, x: nnet.Tensor, order: int) -> list[float]:
    """fn(x), then d/dx, d2/dx2, ... up to ``order``, each by differentiating the previous one."""
    out = [fn(x)]
    for _ in range(order):
        (d,) = nnet.grad(out[-1], x, create_graph=True, allow_unused=True)
        out.append(d if d is not None else nnet.zeros((), dtype=x.dtype))
    return [float(t.data) for t in out]


def test_a_polynomial_at_zero_has_the_linear_coefficient_as_its_gradient():
    coefficients = [3.0, 5.0, 7.0, 11.0]
    x = nnet.tensor(0.0, requires_grad=True)
    sum(c * x**k for k, c in enumerate(coefficients)).backward()
    assert x.grad.item() == 5.0


@pytest.mark.parametrize(
    "k, expected",
    [
        (0, [1.0, 0.0, 0.0, 0.0]),  # x^0 = 1
        (1, [0.0, 1.0, 0.0, 0.0]),  # x: second derivative 0, not NaN
        (2, [0.0, 0.0, 2.0, 0.0]),
        (3, [0.0, 0.0, 0.0, 6.0]),
    ],
)
def test_powers_at_zero_have_finite_derivatives_of_every_order(k, expected):
    x = nnet.tensor(0.0, dtype=np.float64, requires_grad=True)
    assert derivatives(lambda t: t**k, x, 3) == expected


def test_zero_exponents_in_arrays_and_tensors_give_a_zero_base_gradient():
    base = np.array([0.0, 0.0, 2.0, 0.0])
    exponent = np.array([0.0, 1.0, 0.0, 2.0])
    for b in (exponent, nnet.tensor(exponent, dtype=np.float64, requires_grad=True)):
        a = nnet.tensor(base, dtype=np.float64, requires_grad=True)
        (a**b).sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), [0.0, 1.0, 0.0, 0.0])


def test_the_exponents_gradient_stays_right_where_it_is_zero():
    # d/db of the base's gradient b a^(b-1) is a^(b-1) (1 + b log a): at b = 0, a = 2 that is 1/2
    a = nnet.tensor([2.0, 3.0], dtype=np.float64, requires_grad=True)
    b = nnet.tensor([0.0, 1.5], dtype=np.float64, requires_grad=True)
    assert gradcheck(lambda u, v: (u**v) * u, a, b)
    (ga,) = nnet.grad((a**b).sum(), a, create_graph=True)
    (gb,) = nnet.grad(ga.sum(), b)
    np.testing.assert_allclose(gb.numpy(), [0.5, 3.0**0.5 * (1 + 1.5 * np.log(3.0))])


@given(
    x=st.sampled_from([0.0, 0.0, -1.5, 0.75]),
    coefficients=st.lists(st.floats(-3, 3), min_size=1, max_size=5),
)
def test_polynomials_match_pytorch_to_the_second_order(x, coefficients):
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = sum(c * t**k for k, c in enumerate(coefficients))
    d1 = torch.autograd.grad(y, t, create_graph=True, allow_unused=True)[0]
    d2 = None
    if d1 is not None and d1.requires_grad:
        d2 = torch.autograd.grad(d1, t, allow_unused=True)[0]
    expected = [y.item(), 0.0 if d1 is None else d1.item(), 0.0 if d2 is None else d2.item()]
    u = nnet.tensor(x, dtype=np.float64, requires_grad=True)
    got = derivatives(lambda v: sum(c * v**k for k, c in enumerate(coefficients)), u, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
