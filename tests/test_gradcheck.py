"""The gradient checker is itself tested: deliberately wrong VJPs must fail it (STYLE.md: a test
helper that cannot fail is a defect), and right ones must pass."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet.autograd import Function
from nnet.testing import GradcheckError, gradcheck, gradgradcheck


def _t(shape, seed=0, requires_grad=True):
    return nnet.Tensor(
        np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad
    )


class ScaledSquare(Function):
    """x^2 with a VJP off by a factor: 3x instead of 2x."""

    def forward(ctx, x):
        return x * x

    def vjp(ctx, grad):
        return (grad * ctx.inputs[0] * 3.0,)


class OneElementWrong(Function):
    """The identity, whose VJP is right everywhere except at flat index 4."""

    def forward(ctx, x):
        return x.copy()

    def vjp(ctx, grad):
        bump = np.zeros(grad.shape)
        bump.flat[4] = 0.5
        return (grad + nnet.Tensor(bump),)


class ForgotTranspose(Function):
    """x @ w for square w, with the VJP for x using w instead of w^T."""

    def forward(ctx, x, w):
        return x @ w

    def vjp(ctx, grad):
        x, w = ctx.inputs
        return grad @ w, x.T @ grad


class WrongSecondInput(Function):
    """a * b with b's gradient missing the factor a."""

    def forward(ctx, a, b):
        return a * b

    def vjp(ctx, grad):
        return grad * ctx.inputs[1], grad


class NumpyVJP(Function):
    """x^2 with a right first derivative computed outside the graph: second derivatives are lost."""

    def forward(ctx, x):
        return x * x

    def vjp(ctx, grad):
        return (grad * nnet.Tensor(2.0 * ctx.inputs[0].data),)


class NoisyVJP(Function):
    """Identity whose VJP adds fresh noise each time: not deterministic."""

    rng = np.random.default_rng(0)

    def forward(ctx, x):
        return x.copy()

    def vjp(ctx, grad):
        return (grad + nnet.Tensor(NoisyVJP.rng.normal(0, 1e-3, grad.shape)),)


class WrongShape(Function):
    """sum(x) whose VJP returns a gradient that cannot be reduced to x's shape."""

    def forward(ctx, x):
        return x.sum()

    def vjp(ctx, grad):
        return (nnet.Tensor(np.ones((7,))) * grad,)


def test_error_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)


def test_wrong_scale_is_caught_and_named():
    with pytest.raises(GradcheckError, match=r"input 0 .*numerical .* analytical"):
        gradcheck(ScaledSquare.apply, _t((3, 4)))


def test_wrong_scale_is_caught_on_a_large_input_by_the_dot_product_test():
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(40, 30\)\): dot-product"):
        gradcheck(ScaledSquare.apply, _t((40, 30)))


def test_one_wrong_jacobian_entry_is_located():
    located = r"d output\[\(\d, \d\)\] / d input 0\[\(1, 1\)\] \(where input 0 = .*\)"
    with pytest.raises(GradcheckError, match=located + r": numerical 0 .*analytical 0\.5"):
        gradcheck(OneElementWrong.apply, _t((3, 3)))


def test_missing_transpose_is_caught_for_small_and_large_inputs():
    for n in (3, 20):
        x, w = _t((4, n), seed=1), _t((n, n), seed=2)
        with pytest.raises(GradcheckError, match="input 0"):
            gradcheck(ForgotTranspose.apply, x, w)


def test_the_failing_input_is_named():
    a, b = _t((2, 3), seed=1), _t((2, 3), seed=2)
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(WrongSecondInput.apply, a, b)
    # with only the first input requiring grad there is nothing wrong to find
    assert gradcheck(WrongSecondInput.apply, a, _t((2, 3), seed=2, requires_grad=False))


def test_second_derivatives_computed_outside_the_graph_fail_gradgradcheck():
    x = _t((5,))
    assert gradcheck(NumpyVJP.apply, x)
    with pytest.raises(GradcheckError):
        gradgradcheck(NumpyVJP.apply, x)


def test_nondeterministic_vjp_is_caught():
    with pytest.raises(GradcheckError, match="not deterministic"):
        gradcheck(NoisyVJP.apply, _t((4,)))
    assert gradcheck(NoisyVJP.apply, _t((4,)), nondet_tol=1.0, atol=1e-1)


def test_wrong_gradient_shape_is_an_error():
    with pytest.raises((GradcheckError, RuntimeError), match="shape"):
        gradcheck(WrongShape.apply, _t((2, 3)))


def test_raise_exception_false_returns_false():
    assert gradcheck(ScaledSquare.apply, _t((3,)), raise_exception=False) is False


def test_right_rules_pass():
    a, b = _t((3, 4), seed=1), _t((4,), seed=2)
    assert gradcheck(lambda a, b: nnet.tanh(a @ b), a, b)
    assert gradcheck(lambda a, b: (a * b, (a - b).exp()), a, b)  # several outputs
    assert gradgradcheck(lambda a, b: nnet.sigmoid(a) * b, a, b)
    big = _t((30, 20), seed=3)
    assert gradcheck(lambda x: nnet.softmax(x, axis=0), big)


def test_float32_inputs_are_checked_in_float64():
    x = nnet.tensor([0.3, 1.7, -0.4], requires_grad=True)
    assert x.dtype == np.float32
    assert gradcheck(lambda t: (t * t * t).sum(), x, atol=1e-7, rtol=1e-7)
    assert x.dtype == np.float32  # the caller's tensor is untouched


def test_non_tensor_and_non_grad_arguments_pass_through():
    x = _t((3,))
    c = _t((3,), seed=5, requires_grad=False)
    assert gradcheck(lambda t, c, k: t * c + k, x, c, 2.5)


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires gradients"):
        gradcheck(lambda t: t * 2, _t((3,), requires_grad=False))


def test_empty_inputs_pass():
    assert gradcheck(lambda t: t * 2, _t((0, 3)))


class ZeroOverZero(Function):
    """|x| with the VJP x / |x|: NaN at 0, a kink nobody decided."""

    def forward(ctx, x):
        return np.abs(x)

    def vjp(ctx, grad):
        x = ctx.inputs[0]
        return (grad * x / nnet.abs(x),)


def test_non_finite_vjp_is_named_as_such():
    x = nnet.tensor([1.0, 0.0, -2.0], dtype="float64", requires_grad=True)
    with np.errstate(invalid="ignore"), pytest.raises(GradcheckError) as err:
        gradcheck(ZeroOverZero.apply, x)
    assert "the VJP returned nan at (1,)" in str(err.value)
    assert "not deterministic" not in str(err.value)
    with (
        np.errstate(invalid="ignore"),
        pytest.raises(GradcheckError, match=r"returned nan at \(\)"),
    ):
        gradcheck(ZeroOverZero.apply, nnet.tensor(0.0, dtype="float64", requires_grad=True))


class IgnoresGrad(Function):
    """d(x^2) without the upstream gradient: the commonest VJP bug."""

    def forward(ctx, x):
        return x * x

    def vjp(ctx, grad):
        (x,) = ctx.inputs
        return (2 * x,)


class SignFlipped(Function):
    def forward(ctx, x):
        return x * x

    def vjp(ctx, grad):
        (x,) = ctx.inputs
        return (-2 * grad * x,)


class HalfGradient(Function):
    def forward(ctx, x):
        return x * x

    def vjp(ctx, grad):
        (x,) = ctx.inputs
        return (grad * x,)


class TransposedGradient(Function):
    def forward(ctx, x):
        return x @ x

    def vjp(ctx, grad):
        (x,) = ctx.inputs
        return ((grad @ x.T + x.T @ grad).T,)


@pytest.mark.parametrize(
    ("primitive", "hint"),
    [
        (IgnoresGrad, "it ignores grad"),
        (SignFlipped, "with the sign flipped"),
        (HalfGradient, "is 0.5 times the numerical one"),
        (TransposedGradient, "the numerical one transposed"),
    ],
)
def test_failures_hint_at_the_common_bugs_and_name_the_function(primitive, hint):
    x = _t((3, 3), seed=2)
    with pytest.raises(GradcheckError) as info:
        gradcheck(primitive.apply, x)
    message = str(info.value)
    assert hint in message and f"fn's graph, last recorded first: {primitive.__name__}" in message
    if primitive is TransposedGradient:
        return  # a transpose shows only in the full Jacobian (small inputs), not in <v, J u>
    with pytest.raises(GradcheckError, match=hint):  # large inputs: the dot-product test hints too
        gradcheck(lambda t: primitive.apply(t).sum(), _t((15, 15), seed=3))


def test_a_right_rule_gets_no_hint():
    class Square(Function):
        def forward(ctx, x):
            return x * x

        def vjp(ctx, grad):
            (x,) = ctx.inputs
            return (2 * grad * x,)

    assert gradcheck(Square.apply, _t((3, 3)))


def test_a_vjp_of_the_wrong_shape_names_the_function():
    with pytest.raises(
        RuntimeError, match=r"WrongShape.vjp returned a gradient of shape .* input 0"
    ):
        WrongShape.apply(_t((3, 2))).sum().backward()


def test_pytorchs_tuple_of_inputs_is_accepted():
    a, b = _t((2, 3), seed=1), _t((2, 3), seed=2)
    assert gradcheck(lambda x, y: x * y, (a, b))
    assert gradgradcheck(lambda x, y: x * y, [a, b])
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(WrongSecondInput.apply, (a, b))
