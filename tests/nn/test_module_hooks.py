"""Module hooks: forward pre-hooks, forward hooks and full backward hooks with PyTorch's semantics
(issue 18, bug 5), and Sequential's fused runs stepping aside for hooked layers."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.kernels.mode import use_fused


def test_forward_pre_hook_sees_and_replaces_the_arguments():
    layer = nn.ReLU()
    seen = []
    layer.register_forward_pre_hook(lambda m, args: seen.append((m, args[0].shape)))
    handle = layer.register_forward_pre_hook(lambda m, args: -args[0])  # one value: wrapped
    out = layer(nnet.tensor([1.0, -2.0]))
    np.testing.assert_array_equal(out.numpy(), [0.0, 2.0])
    assert seen == [(layer, (2,))]
    handle.remove()
    np.testing.assert_array_equal(layer(nnet.tensor([1.0, -2.0])).numpy(), [1.0, 0.0])


def test_forward_hook_sees_and_replaces_the_output():
    layer = nn.Linear(3, 2)
    seen = []
    h1 = layer.register_forward_hook(lambda m, args, out: seen.append((args[0].shape, out.shape)))
    h2 = layer.register_forward_hook(lambda m, args, out: out * 0)
    assert float(layer(nnet.ones((4, 3))).abs().sum()) == 0.0
    assert seen == [((4, 3), (4, 2))]
    h1.remove()
    h2.remove()
    assert float(layer(nnet.ones((4, 3))).abs().sum()) > 0.0 and len(seen) == 1


@pytest.mark.parametrize("create_graph", [False, True])
def test_full_backward_hook_gets_grad_input_and_grad_output(create_graph):
    layer = nn.Linear(3, 2)
    x = nnet.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    upstream = nnet.tensor([[1.0, 2.0], [3.0, 4.0]])
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((m, gi, go)))
    layer(x).backward(upstream, create_graph=create_graph)
    ((m, grad_input, grad_output),) = seen
    assert m is layer and len(grad_input) == 1 and len(grad_output) == 1
    np.testing.assert_array_equal(grad_output[0].numpy(), upstream.numpy())
    expected = upstream.numpy() @ layer.weight.numpy().T  # Y = X W + B: dX = G W^T
    np.testing.assert_allclose(grad_input[0].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_full_backward_hook_replaces_grad_input():
    layer = nn.ReLU()
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 10,))
    layer(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 10.0])


def test_full_backward_hook_fires_with_none_when_the_input_needs_no_gradient():
    layer = nn.Linear(2, 1)
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].shape)))
    layer(nnet.ones((3, 2))).sum().backward()
    assert seen == [((None,), (3, 1))]
    assert layer.weight.grad is not None


def test_a_module_with_two_inputs_that_need_gradients_is_refused_clearly():
    loss = nn.MSELoss()
    loss.register_full_backward_hook(lambda m, gi, go: None)
    a = nnet.ones(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match="MSELoss was called with 2 tensors"):
        loss(a, a * 2)


def test_hook_registration_refuses_what_is_not_callable():
    with pytest.raises(TypeError, match="register_forward_hook: 3 is not callable"):
        nn.ReLU().register_forward_hook(3)


@pytest.mark.parametrize("fused", [True, False])
def test_sequential_runs_hooked_layers_one_by_one_with_the_same_result(fused):
    nnet.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    x = nnet.randn(2, 8, 8, 1)
    with use_fused(fused):
        expected = model(x).numpy()
    calls = []
    model[1].register_forward_hook(lambda m, args, out: calls.append(out.shape))
    model[2].register_full_backward_hook(lambda m, gi, go: calls.append(go[0].shape))
    xg = x.detach().requires_grad_()
    with use_fused(fused):
        out = model(xg)
        out.sum().backward()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert calls == [(2, 8, 8, 4), (2, 4, 4, 4)]
