"""PyTorch's names for devices, dtypes, factories and small methods."""

import numpy as np
import pytest

import nnet
from nnet import nn


def test_device_api_is_the_cpu_only():
    x = nnet.ones(3, requires_grad=True)
    assert x.device == nnet.device("cpu") == "cpu"
    assert x.to("cpu") is x and x.cpu() is x and x.to(nnet.device("cpu:0")) is x
    assert x.to("cpu", nnet.double).dtype == np.float64
    assert x.to(dtype=nnet.long).dtype == np.int64
    assert x.to(nnet.zeros(1, dtype=nnet.float16)).dtype == np.float16
    with pytest.raises(RuntimeError, match=r"device: nnet runs on the CPU only.*'cuda'"):
        x.to("cuda")
    with pytest.raises(RuntimeError, match=r"'cuda:0'"):
        nnet.device("cuda:0")
    model = nn.Linear(2, 3)
    assert model.to("cpu") is model and model.cpu() is model
    assert model.to(nnet.device("cpu"), nnet.float64).weight.dtype == np.float64


def test_dtype_names():
    pairs = [(nnet.float, np.float32), (nnet.double, np.float64), (nnet.long, np.int64),
             (nnet.int, np.int32), (nnet.bool, np.bool_), (nnet.half, np.float16)]  # fmt: skip
    for name, dtype in pairs:
        assert nnet.zeros(2, dtype=name).dtype == dtype
    assert nnet.tensor([1, 2], dtype=nnet.long).dtype == np.int64


def test_factories():
    np.testing.assert_allclose(nnet.linspace(-1, 1, 5).numpy(), [-1, -0.5, 0, 0.5, 1])
    assert nnet.linspace(0, 1, 3).dtype == np.float32
    a = np.arange(4.0)
    t = nnet.from_numpy(a)
    a[0] = 7.0
    assert t.dtype == np.float64 and t[0].item() == 7.0  # shares memory, as PyTorch's
    with pytest.raises(TypeError, match="from_numpy: expected a NumPy array"):
        nnet.from_numpy([1, 2])
    nnet.manual_seed(0)
    p = nnet.randperm(10)
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(10))
    nnet.manual_seed(0)
    assert nnet.randperm(10).tolist() == p.tolist()
    assert nnet.allclose(nnet.ones(2), nnet.ones(2) * (1 + 1e-7))
    assert not nnet.allclose(nnet.ones(2), nnet.ones(2) * 1.1)


def test_clone_copies_and_keeps_the_graph():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c.data is not x.data and c.requires_grad
    (c * c).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_format():
    loss = nnet.tensor(0.123456)
    assert f"{loss:.3f}" == "0.123" and f"{nnet.tensor([2.5]):.1f}" == "2.5"
    assert f"{nnet.ones(2)}" == repr(nnet.ones(2))
    with pytest.raises(TypeError, match=r"unsupported format string '.3f' for a tensor of shape"):
        f"{nnet.ones(2):.3f}"


def test_inference_mode():
    x = nnet.ones(2, requires_grad=True)
    with nnet.inference_mode():
        assert not (x * 2).requires_grad
    with nnet.inference_mode(False):
        assert (x * 2).requires_grad

    @nnet.inference_mode()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and nnet.is_grad_enabled()


def test_load_accepts_weights_only_and_a_cpu_map_location(tmp_path):
    path = tmp_path / "m.npz"
    nnet.save({"w": nnet.ones(2)}, path)
    state = nnet.load(path, weights_only=True, map_location="cpu")
    np.testing.assert_array_equal(state["w"].numpy(), [1, 1])
    with pytest.raises(RuntimeError, match="CPU only"):
        nnet.load(path, map_location="cuda")


def test_conv2d_repr_shows_its_padding():
    assert "padding='same'" in repr(nn.Conv2d(1, 8, 3))
    assert "padding=0" in repr(nn.Conv2d(1, 8, 3, padding=0))


def test_num_threads_where_pytorch_users_look():
    n = nnet.get_num_threads()
    nnet.set_num_threads(n)
    assert nnet.get_num_threads() == n
