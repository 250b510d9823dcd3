"""PyTorch state-dict interchange: layouts by hand, round trips, and (when torch is importable) the
equivalent PyTorch model computing the same outputs."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.nn.utils import export_torch_state_dict, import_torch_state_dict


def seed_cnn() -> nn.Sequential:
    """The seed's kind of network: conv, batch norm, relu, pool, dropout, then dense layers."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, (3, 5), padding=(1, 2)),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(6 * 3 * 4, 8),
        nn.Sigmoid(),
        nn.Linear(8, 3),
    )


FLATTEN = {"8": (3, 4, 6)}


def trained_model() -> nn.Sequential:
    nnet.manual_seed(0)
    model = seed_cnn()
    for _ in range(2):
        model(nnet.randn(5, 6, 8, 1))  # moves the running statistics
    return model.eval()


def test_layouts():
    model = trained_model()
    state = export_torch_state_dict(model, FLATTEN)
    assert list(state) == list(model.state_dict())
    np.testing.assert_array_equal(state["0.weight"], model[0].weight.numpy().transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(state["10.weight"], model[10].weight.numpy().T)
    np.testing.assert_array_equal(state["1.running_var"], model[1].running_var.numpy())
    assert state["1.num_batches_tracked"].dtype == np.int64
    # the flattened image's feature (h, w, c) = (2, 1, 5) is column c*H*W + h*W + w in PyTorch
    w = model[8].weight.numpy()
    np.testing.assert_array_equal(state["8.weight"][:, 5 * 12 + 2 * 4 + 1], w[2 * 24 + 1 * 6 + 5])
    assert all(v.flags.c_contiguous for v in state.values())


def test_round_trip():
    model = trained_model()
    state = export_torch_state_dict(model, FLATTEN)
    other = seed_cnn()
    import_torch_state_dict(other, state, FLATTEN)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k], v)


def test_bad_flatten_shapes():
    model = seed_cnn()
    with pytest.raises(ValueError, match="receives 72 features, but the image shape"):
        export_torch_state_dict(model, {"8": (4, 4, 6)})
    with pytest.raises(ValueError, match="'0' is a Conv2d, not a Linear layer"):
        export_torch_state_dict(model, {"0": (1, 1, 1)})
    with pytest.raises(ValueError, match="no sub-module named 'head'"):
        export_torch_state_dict(model, {"head": (1, 1, 1)})


def test_the_equivalent_pytorch_model_computes_the_same_outputs():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    torch.backends.mkldnn.enabled = False
    reference = tnn.Sequential(
        tnn.Conv2d(1, 4, 3, padding="same"),
        tnn.BatchNorm2d(4),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(4, 6, (3, 5), padding=(1, 2)),
        tnn.ReLU(),
        tnn.Dropout(0.25),
        tnn.Flatten(),
        tnn.Linear(6 * 3 * 4, 8),
        tnn.Sigmoid(),
        tnn.Linear(8, 3),
    ).double()
    model = trained_model().double()
    state = export_torch_state_dict(model, FLATTEN)
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    reference.eval()
    x = np.random.default_rng(0).standard_normal((3, 6, 8, 1))
    with torch.no_grad():
        want = reference(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(model(nnet.Tensor(x)).numpy(), want, rtol=1e-10, atol=1e-12)
    # and back: PyTorch's state (tensors) into a fresh nnet model
    fresh = seed_cnn().double().eval()
    import_torch_state_dict(fresh, reference.state_dict(), FLATTEN)
    np.testing.assert_allclose(fresh(nnet.Tensor(x)).numpy(), want, rtol=1e-10, atol=1e-12)


def test_layers_agree_with_pytorch_in_training_mode_too():
    """Batch norm's batch statistics and running-statistics update, and the gradients."""
    torch = pytest.importorskip("torch")
    torch.backends.mkldnn.enabled = False
    nnet.manual_seed(1)
    conv, bn = nn.Conv2d(2, 3, 3, stride=2).double(), nn.BatchNorm2d(3).double()
    tconv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1).double()
    tbn = torch.nn.BatchNorm2d(3).double()
    tconv.load_state_dict(
        {k: torch.from_numpy(v) for k, v in export_torch_state_dict(conv).items()}
    )
    x = np.random.default_rng(2).standard_normal((4, 7, 7, 2))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    xn = nnet.Tensor(x, requires_grad=True)
    yt = tbn(tconv(xt))
    yn = bn(conv(xn))
    g = np.random.default_rng(3).standard_normal(yn.shape)
    yt.backward(torch.from_numpy(g.transpose(0, 3, 1, 2).copy()))
    yn.backward(g)
    np.testing.assert_allclose(yn.numpy(), yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-10)
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-10)
    np.testing.assert_allclose(
        conv.weight.grad.numpy(), tconv.weight.grad.numpy().transpose(2, 3, 1, 0), atol=1e-10
    )
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.numpy(), tbn.running_mean.numpy(), atol=1e-12)
