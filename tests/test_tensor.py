"""The Tensor API: dtypes, attributes and conversions, factories and nnet's own random generator,
NumPy ufunc interop."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet.testing import gradcheck


# -- dtypes -------------------------------------------------------------------------------------
def test_python_numbers_and_lists_become_float32():
    assert nnet.tensor(1.5).dtype == np.float32
    assert nnet.tensor([1.0, 2.0]).dtype == np.float32
    assert nnet.tensor([1, 2.5]).dtype == np.float32
    assert nnet.Tensor([[1.0], [2.0]]).dtype == np.float32
    assert nnet.tensor([1, 2]).dtype.kind == "i"  # integers stay integers, as in PyTorch


def test_numpy_floating_arrays_keep_their_dtype():
    for dtype in (np.float16, np.float32, np.float64):
        assert nnet.tensor(np.ones(3, dtype=dtype)).dtype == dtype
    assert nnet.tensor(np.float64(2.0)).dtype == np.float64
    assert nnet.tensor([1.0, 2.0], dtype=np.float64).dtype == np.float64
    assert nnet.Tensor(np.ones(2), dtype="float32").dtype == np.float32


def test_tensor_wraps_and_nnet_tensor_copies():
    a = np.ones(3)
    assert nnet.Tensor(a).data is a
    b = nnet.tensor(a)
    assert not np.shares_memory(b.data, a)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integer_and_bool_tensors_cannot_require_grad(dtype):
    t = nnet.tensor(np.zeros(3, dtype=dtype))
    assert t.dtype == dtype
    with pytest.raises(TypeError, match=rf"only floating-point .* got dtype {np.dtype(dtype)}"):
        nnet.tensor(np.zeros(3, dtype=dtype), requires_grad=True)
    with pytest.raises(TypeError, match=r"\.float\(\) or \.double\(\)"):
        t.requires_grad_()
    with pytest.raises(TypeError, match="floating-point"):
        nnet.arange(3, requires_grad=True)


@pytest.mark.parametrize("scalar", [2, 2.5, -1e-3, True])
def test_python_scalars_never_upcast_float32(scalar):
    t = nnet.tensor([1.0, 2.0], requires_grad=True)
    results = [
        t + scalar, scalar + t, t - scalar, scalar - t, t * scalar, scalar * t,
        t / 3.0, 3.0 / t, t**scalar, 1.5**t, nnet.maximum(t, scalar), nnet.where(t > 1, t, scalar),
        nnet.clip(t, -scalar, None), t.sigmoid() * scalar,
    ]  # fmt: skip
    for r in results:
        assert r.dtype == np.float32
    sum(r.sum() for r in results).backward()
    assert t.grad.dtype == np.float32


def test_mixed_float_tensors_promote_like_numpy_and_gradients_keep_each_dtype():
    a = nnet.tensor(np.ones(2, np.float32), requires_grad=True)
    b = nnet.tensor(np.ones(2, np.float64), requires_grad=True)
    c = a * b
    assert c.dtype == np.float64
    c.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_astype_float_double():
    t = nnet.tensor([1.0, 2.0])
    assert t.double().dtype == np.float64
    assert t.double().float().dtype == np.float32
    assert t.astype("float64").dtype == np.float64
    assert t.to(np.float64).dtype == np.float64


# -- attributes and conversions -----------------------------------------------------------------------
def test_attributes():
    t = nnet.tensor(np.arange(6.0).reshape(2, 3))
    assert t.shape == (2, 3) and t.ndim == 2 and t.dim() == 2 and len(t) == 2
    assert t.size() == (2, 3) and t.size(1) == 3 and t.size(-2) == 2 and t.numel() == 6
    assert t.T.shape == (3, 2)
    np.testing.assert_array_equal(t.T.numpy(), t.numpy().T)
    assert t.grad is None and not t.requires_grad and t.is_leaf
    assert t.numpy() is t.data
    assert np.asarray(t) is t.data
    assert np.array(t, dtype=np.float32).dtype == np.float32
    assert t[1, 2].item() == 5.0 and isinstance(t[1, 2].item(), float)
    assert float(t[0, 1]) == 1.0
    assert t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert [row.shape for row in t] == [(3,), (3,)]


def test_leaves_and_results():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert x.is_leaf and not y.is_leaf and y.requires_grad
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, y.data)
    assert nnet.tensor([1.0]).requires_grad_().requires_grad
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_repr_shows_values_dtype_and_grad_fn():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "Tensor([1., 2.], dtype=float32, requires_grad=True)"
    r = repr(x * x)
    assert r.startswith("Tensor([1., 4.]") and "dtype=float32" in r and "grad_fn=<Mul>" in r
    assert repr(nnet.zeros(2, 0)) == "Tensor([], shape=(2, 0), dtype=float32)"
    assert "shape=(100, 100)" in repr(nnet.zeros(100, 100))  # summarised: the shape is spelled out


def test_conversion_errors_say_why():
    t = nnet.ones((2, 2))
    with pytest.raises(ValueError, match=r"only one-element tensors .* shape \(2, 2\)"):
        t.item()
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2, 2\) is ambiguous"):
        bool(t)
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(nnet.tensor(1.0))
    with pytest.raises(TypeError, match="item assignment"):
        t[0] = 1.0


# -- factories and the random generator -----------------------------------------------------------
def test_factories():
    assert nnet.zeros(2, 3).shape == (2, 3) and nnet.zeros((2, 3)).dtype == np.float32
    assert nnet.ones(4).numpy().sum() == 4
    np.testing.assert_array_equal(nnet.full((2,), 7.0).numpy(), [7.0, 7.0])
    assert nnet.full(3, 1.0, dtype=np.float64).dtype == np.float64
    like = nnet.tensor(np.ones((2, 2), np.float64))
    assert nnet.zeros_like(like).dtype == np.float64 and nnet.ones_like(like).shape == (2, 2)
    assert nnet.arange(5).dtype.kind == "i" and nnet.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(nnet.arange(2, 8, 2).numpy(), [2, 4, 6])
    np.testing.assert_array_equal(nnet.eye(2).numpy(), np.eye(2))
    assert nnet.eye(2, 3).shape == (2, 3)
    for make in (nnet.zeros, nnet.ones, nnet.rand, nnet.randn):
        t = make(2, 2, requires_grad=True)
        assert t.requires_grad and t.is_leaf and t.dtype == np.float32
        assert make(3, dtype=np.float64).dtype == np.float64


def test_rand_and_randn_are_seeded_by_manual_seed_and_leave_numpy_alone():
    np.random.seed(123)  # noqa: NPY002 - the legacy global state is what must stay untouched
    state = np.random.get_state()  # noqa: NPY002
    nnet.manual_seed(0)
    a, b = nnet.rand(3, 4), nnet.randn(5)
    nnet.manual_seed(0)
    np.testing.assert_array_equal(nnet.rand(3, 4).numpy(), a.numpy())
    np.testing.assert_array_equal(nnet.randn(5).numpy(), b.numpy())
    nnet.manual_seed(1)
    assert not np.array_equal(nnet.rand(3, 4).numpy(), a.numpy())
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    # and the global state does not steer nnet
    nnet.manual_seed(0)
    np.random.seed(999)  # noqa: NPY002
    np.testing.assert_array_equal(nnet.rand(3, 4).numpy(), a.numpy())
    r = nnet.rand(1000).numpy()
    assert r.min() >= 0.0 and r.max() < 1.0


def test_rng_state_round_trip():
    nnet.manual_seed(5)
    state = nnet.random.get_rng_state()
    a = nnet.randn(4).numpy()
    nnet.random.set_rng_state(state)
    np.testing.assert_array_equal(nnet.randn(4).numpy(), a)


# -- NumPy interop ------------------------------------------------------------------------------------
def test_numpy_ufuncs_dispatch_to_nnet_and_stay_differentiable():
    x = nnet.tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
    a = np.array([1.0, -1.0, 3.0])
    for y in (np.exp(x), np.add(x, a), np.add(a, x), a * x, a - x, np.maximum(x, a), np.tanh(x)):
        assert isinstance(y, nnet.Tensor) and y.requires_grad
    assert gradcheck(lambda t: np.exp(t) * np.sqrt(t) + np.log(t) - np.power(t, 2.0), x)
    assert gradcheck(lambda t: np.matmul(a, t) + np.abs(np.negative(t)).sum(), x)
    np.exp(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x.numpy()))


def test_numpy_comparisons_give_bool_tensors_outside_the_graph():
    x = nnet.tensor([1.0, -2.0], requires_grad=True)
    for m in (np.greater(x, 0), x > 0, x == 1.0, np.isfinite(x), ~(x > 0)):
        assert isinstance(m, nnet.Tensor) and m.dtype == np.bool_ and not m.requires_grad


def test_unsupported_ufuncs_raise_a_type_error_naming_nnet():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"nnet: np\.arcsinh is not differentiable"):
        np.arcsinh(x)
    with pytest.raises(TypeError, match=r"nnet: np\.add\.reduce .*nnet\.sum"):
        np.add.reduce(x)
    with pytest.raises(TypeError, match=r"nnet: np\.exp with out"):
        np.exp(x, out=np.empty(2))


@pytest.mark.parametrize("path", ["apply1", "apply2", "apply"])
def test_every_recording_path_sets_every_slot_of_its_result(path):
    # Function.apply, apply1 and apply2 build their results field by field (Tensor._make spelled out,
    # for speed); a slot added to Tensor and missed in one of them would surface only on first read.
    x = nnet.tensor([1.0, -2.0], requires_grad=True)
    y = {"apply1": lambda: -x, "apply2": lambda: x * x, "apply": lambda: x.sum(axis=0)}[path]()
    assert y.grad_fn is not None
    for slot in nnet.Tensor.__slots__:
        if slot != "__weakref__":
            getattr(y, slot)  # AttributeError when a recording path left it unset
