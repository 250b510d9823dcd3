"""The Module system: registration, traversal, modes, dtype, repr, state dicts and containers."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
        self.scale = nn.Parameter(nnet.ones(1))
        self.register_buffer("steps", nnet.zeros((), dtype="int64"))
        self.register_buffer("cache", nnet.zeros(2), persistent=False)
        self.note = "not state"

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).relu()) * self.scale


def test_registration_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "scale", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias",
    ]  # fmt: skip
    assert [n for n, _ in net.named_buffers()] == [
        "steps", "cache", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
    ]  # fmt: skip
    assert list(net.state_dict()) == [
        "scale", "steps", "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean",
        "bn.running_var", "bn.num_batches_tracked", "head.1.weight", "head.1.bias",
    ]  # fmt: skip
    assert [n for n, _ in net.named_children()] == ["conv", "bn", "head"]
    assert len(list(net.modules())) == 6  # Net, conv, bn, head, Flatten, Linear
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_reassignment_moves_between_registries_and_deletion_unregisters():
    net = Net()
    net.conv = None
    assert "conv.weight" not in dict(net.named_parameters())
    with pytest.raises(TypeError, match="cannot assign a Tensor to parameter 'scale'"):
        net.scale = nnet.ones(1)
    net.scale = None
    assert "scale" not in dict(net.named_parameters())
    net.steps = np.ones((), np.int64)  # buffers accept arrays
    assert isinstance(net.steps, nnet.Tensor)
    del net.bn
    assert "bn.weight" not in net.state_dict() and not hasattr(net, "bn")


def test_shared_parameters_appear_once():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(nnet.ones(1))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        Broken()


def test_parameter_is_a_tensor_without_a_dict():
    p = nn.Parameter(nnet.ones(2))
    assert isinstance(p, nnet.Tensor) and p.requires_grad and not hasattr(p, "__dict__")
    assert type(p * 2) is nnet.Tensor
    assert nn.Parameter(nnet.ones(2), requires_grad=False).requires_grad is False
    assert repr(p).startswith("Parameter containing:\nTensor(")


def test_zero_grad():
    net = Net()
    net(nnet.randn(2, 4, 4, 1)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all((p.grad.numpy() == 0).all() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_to_double_and_back_keeps_the_parameter_objects():
    net = Net()
    params = list(net.parameters())
    net.double()
    assert all(a is b for a, b in zip(net.parameters(), params, strict=True))
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.bn.running_mean.dtype == np.float64
    assert net.bn.num_batches_tracked.dtype == np.int64 and net.steps.dtype == np.int64
    assert net(nnet.randn(1, 4, 4, 1, dtype="float64")).dtype == np.float64
    net.float()
    assert all(p.dtype == np.float32 for p in net.parameters())
    with pytest.raises(TypeError, match="floating-point dtype"):
        net.to("int32")


def test_repr_is_nested_like_pytorch():
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    )
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 8, kernel_size=(3, 3), padding='same')\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=4, out_features=2, bias=True)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"


def test_state_dict_is_a_snapshot_and_round_trips():
    nnet.manual_seed(0)
    a, b = Net(), Net()
    a(nnet.randn(3, 4, 4, 1))  # moves the running statistics
    state = a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    a.conv.weight.data += 1  # a later step does not change the snapshot
    assert not np.array_equal(state["conv.weight"], a.conv.weight.numpy())
    weight = b.conv.weight
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.conv.weight is weight  # loaded in place
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
        assert v.dtype == state[k].dtype


def test_strict_loading_lists_every_problem_and_changes_nothing():
    net = Net()
    state = net.state_dict()
    del state["conv.bias"], state["steps"]
    state["extra.weight"] = np.zeros(3)
    state["head.1.weight"] = np.zeros((3, 32))
    before = net.state_dict()
    with pytest.raises(ValueError) as e:
        net.load_state_dict(state)
    text = str(e.value)
    assert "missing keys: 'steps', 'conv.bias'" in text
    assert "unexpected keys: 'extra.weight'" in text
    assert (
        "shape mismatch for 'head.1.weight': the state dict has (3, 32), the model has (32, 3)"
        in text
    )
    assert "nothing was changed" in text
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_non_strict_loading_reports_but_still_rejects_shape_mismatches():
    net = nn.Linear(2, 3)
    result = net.load_state_dict({"weight": np.ones((2, 3)), "other": np.ones(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    assert (net.weight.numpy() == 1).all()
    with pytest.raises(ValueError, match="shape mismatch for 'weight'"):
        net.load_state_dict({"weight": np.ones((3, 2))}, strict=False)
    with pytest.raises(ValueError, match="dtype mismatch for 'weight'"):
        net.load_state_dict({"weight": np.full((2, 3), "x")}, strict=False)


def test_sequential_indexing_slicing_and_iteration():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers and model[-1] is layers[2]
    head = model[1:]
    assert isinstance(head, nn.Sequential) and list(head) == layers[1:]
    assert [n for n, _ in head.named_children()] == ["1", "2"]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        model[3]
    with pytest.raises(TypeError, match="argument 1 is a int, not a Module"):
        nn.Sequential(nn.ReLU(), 3)
    x = nnet.randn(4, 2)
    np.testing.assert_allclose(model(x).numpy(), layers[2](layers[1](layers[0](x))).numpy())


def test_module_list_and_dict_register_their_members():
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    blocks.append(nn.Linear(2, 1))
    assert len(blocks) == 4 and len(list(blocks.parameters())) == 8
    del blocks[0]
    assert [n for n, _ in blocks.named_children()] == ["0", "1", "2"]
    blocks.insert(0, nn.ReLU())
    assert isinstance(blocks[0], nn.ReLU) and len(blocks) == 4
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 2)})
    assert "a" in heads and list(heads) == ["a", "b"] and len(list(heads.parameters())) == 4
    del heads["a"]
    assert list(heads.keys()) == ["b"]


def test_deepcopy_and_pickle_give_independent_modules():
    import copy
    import pickle

    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert isinstance(twin[0].weight, nn.Parameter) and twin[0].weight.requires_grad
        assert twin[0].weight is dict(twin.named_parameters())["0.weight"]
        twin[0].weight.data += 1
        assert not np.array_equal(twin[0].weight.numpy(), model[0].weight.numpy())


def test_identity_and_apply():
    x = nnet.ones(2)
    assert nn.Identity(54, unused=True)(x) is x
    seen = []
    nn.Sequential(nn.Linear(1, 1), nn.ReLU()).apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Sequential"]
