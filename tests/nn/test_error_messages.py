"""The remaining bad-input messages: each names the problem (and, where there is one, the fix)."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
import nnet.nn.functional as F
from nnet import nn
from nnet.nn.math import onehot


def register_dotted_buffer():
    nn.Module().register_buffer("a.b", nnet.zeros(1))


def shadow_attribute_with_buffer():
    m = nn.Linear(1, 1)
    m.register_buffer("in_features", nnet.zeros(1))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: onehot([0.5, 1.0]), ValueError, r"onehot: labels must be integers"),
        (register_dotted_buffer, KeyError, r"buffer name must be a non-empty string without '\.'"),
        (shadow_attribute_with_buffer, KeyError, r"attribute 'in_features' already exists"),
        (lambda: nn.Module().register_parameter("w", nnet.ones(1)), TypeError,
         r"'w' must be a Parameter or None"),
        (lambda: nn.Module().add_module("m", 3), TypeError, r"'m' must be a Module or None"),
        (lambda: nn.Linear(1, 1).load_state_dict([("weight", 1)]), TypeError,
         r"load_state_dict expects a mapping, got list"),
        (lambda: nn.Conv2d(1, 1, 0), ValueError, r"Conv2d\(1 -> 1\): kernel_size must be positive"),
        (lambda: nn.Conv2d(1, 1, "3"), TypeError, r"kernel_size must be an int or a pair of ints"),
        (lambda: F.batch_norm(nnet.zeros((2, 3)), None, None), ValueError,
         r"evaluation needs running_mean and running_var"),
        (lambda: F.cross_entropy(nnet.tensor(1.0), np.array(0)), ValueError,
         r"the input needs a class axis"),
        (lambda: nn.Sequential(nn.Linear(1, 1))[5], IndexError, r"index 5 is out of range for 1"),
        (lambda: nn.Module()(1), NotImplementedError, r"Module must define forward"),
        (lambda: nn.Module().to("float16").to("int8"), TypeError, r"floating-point dtype"),
    ],
)  # fmt: skip
def test_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_checkpoint_from_a_newer_nnet(tmp_path):
    path = tmp_path / "new.npz"
    np.savez(path, __nnet__=np.array('{"format": "nnet-checkpoint", "version": 99, "tree": null}'))
    with pytest.raises(ValueError, match=r"format version 99 is not supported .* upgrade nnet"):
        nnet.load(path)


def test_checkpoint_with_a_malformed_manifest(tmp_path):
    path = tmp_path / "odd.npz"
    for tree in ('{"t": "set"}', '{"t": "dict", "items": 3}', "[1]"):
        manifest = f'{{"format": "nnet-checkpoint", "version": 1, "tree": {tree}}}'
        np.savez(path, __nnet__=np.array(manifest))
        with pytest.raises(ValueError, match=rf"{path}: .*(unknown entry kind|malformed)"):
            nnet.load(path)
