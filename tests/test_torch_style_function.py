"""A custom Function written as PyTorch writes it runs unchanged on nnet."""

import numpy as np
import pytest

import nnet


def square_forward(ctx, x):
    ctx.save_for_backward(x)
    return x * x


def square_backward(ctx, grad):
    (x,) = ctx.saved_tensors
    return 2 * x * grad


class Square(nnet.autograd.Function):
    forward = staticmethod(square_forward)
    backward = staticmethod(square_backward)


class MulConst(nnet.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.k, None


def test_first_and_second_order():
    x = nnet.tensor([3.0, -1.0], requires_grad=True)
    (g,) = nnet.grad(Square.apply(x).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.numpy(), [6.0, -2.0])
    g.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_constant_argument_and_needs_input_grad():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    y = MulConst.apply(x, 3.0)
    assert y.grad_fn.needs_input_grad == (True, False)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_mark_non_differentiable():
    class ArgMax(nnet.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = x.argmax()
            ctx.mark_non_differentiable(out)
            return out

        @staticmethod
        def backward(ctx, grad):
            return None

    out = ArgMax.apply(nnet.tensor([1.0, 5.0], requires_grad=True))
    assert out.item() == 1 and not out.requires_grad


def test_several_outputs_are_refused_clearly():
    class Two(nnet.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x, x

        @staticmethod
        def backward(ctx, a, b):
            return a

    with pytest.raises(TypeError, match=r"Two.forward: returned 2 outputs"):
        Two.apply(nnet.ones(2, requires_grad=True))


def test_matches_torch():
    torch = pytest.importorskip("torch")

    class TorchSquare(torch.autograd.Function):
        forward = staticmethod(square_forward)
        backward = staticmethod(square_backward)

    a = np.array([0.5, -2.0, 3.0])
    x, tx = nnet.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (Square.apply(x) * x).sum().backward()
    (TorchSquare.apply(tx) * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
