"""nnet.save / nnet.load: exact round trips, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import gc
import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnet
from nnet import nn
from nnet.serialization import CheckpointError


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@given(
    hnp.arrays(
        st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.complex_number_dtypes(),
                  hnp.boolean_dtypes(), hnp.unicode_string_dtypes(), hnp.byte_string_dtypes()),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    )
)  # fmt: skip
def test_arrays_round_trip_bit_exactly(tmp_path_factory, array):
    path = tmp_path_factory.mktemp("ckpt") / "a.npz"
    nnet.save({"a": array, "nested": {"b": [array]}}, path)
    back = nnet.load(path)
    assert same_bits(back["a"], array) and same_bits(back["nested"]["b"][0], array)


def test_nested_structures_and_scalars_round_trip(tmp_path):
    nan_payload = np.array([0x7FF8_0000_0000_0123], np.uint64).view(np.float64)[0]
    obj = {
        "model": nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).state_dict(),
        "optimizer": {
            "state": {0: {"step": 12, "exp_avg": np.ones(3, np.float32)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}],
        },
        "rng": nnet.random.get_rng_state(),  # 128-bit integers
        "tensor": nnet.arange(4.0),
        "numbers": [float("nan"), float("-inf"), -0.0, nan_payload, 1 / 3, 2**100, True, None],
        "numpy_scalars": (np.float32(1.5), np.int8(-3), np.bool_(True)),
        "text": "épreuve",
    }
    path = tmp_path / "ckpt.npz"
    nnet.save(obj, path)
    back = nnet.load(path)
    assert back.keys() == obj.keys() and list(back["model"]) == list(obj["model"])
    for k, v in obj["model"].items():
        assert same_bits(back["model"][k], v)
    assert back["optimizer"]["state"][0]["step"] == 12 and 0 in back["optimizer"]["state"]
    assert back["optimizer"]["param_groups"] == [
        {"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}
    ]
    assert back["rng"] == obj["rng"]
    assert isinstance(back["tensor"], nnet.Tensor)
    assert same_bits(back["tensor"].numpy(), obj["tensor"].numpy())
    bits = [np.float64(v).view(np.uint64) if isinstance(v, float) else v for v in back["numbers"]]
    want = [np.float64(v).view(np.uint64) if isinstance(v, float) else v for v in obj["numbers"]]
    assert bits == want and type(back["numbers"][-2]) is bool
    assert all(
        type(a) is type(b) and a == b
        for a, b in zip(back["numpy_scalars"], obj["numpy_scalars"], strict=True)
    )
    assert back["text"] == obj["text"]


def test_a_model_reloads_to_identical_outputs(tmp_path):
    nnet.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 3))
    model(nnet.randn(4, 4, 4, 1))
    nnet.save(model.state_dict(), tmp_path / "m.npz")
    nnet.manual_seed(1)
    other = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 3))
    other.load_state_dict(nnet.load(tmp_path / "m.npz"))
    x = nnet.randn(2, 4, 4, 1)
    np.testing.assert_array_equal(model.eval()(x).numpy(), other.eval()(x).numpy())


def test_save_refuses_what_would_need_pickle(tmp_path):
    with pytest.raises(TypeError, match=r"\['w'\] is an array of Python objects"):
        nnet.save({"w": np.array([{}, 1], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match=r"obj\['f'\]\[0\] is a set; checkpoints hold dicts"):
        nnet.save({"f": [{1, 2}]}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be strings or integers"):
        nnet.save({(1, 2): 3}, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    nnet.save({"w": np.arange(3)}, path)
    good = path.read_bytes()

    def crash_midway(f, **arrays):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        nnet.save({"w": np.arange(1000)}, path)
    assert path.read_bytes() == good  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # and no temporary file is left behind


def test_the_name_is_used_as_given(tmp_path):
    nnet.save({"a": 1}, tmp_path / "weights.ckpt")
    assert os.listdir(tmp_path) == ["weights.ckpt"] and nnet.load(tmp_path / "weights.ckpt") == {
        "a": 1
    }


def _error(path):
    with pytest.raises(CheckpointError) as e:
        nnet.load(path)
    assert str(path) in str(e.value)
    return str(e.value)


def test_corrupt_and_truncated_files(tmp_path):
    path = tmp_path / "c.npz"
    nnet.save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _error(truncated) or "corrupt" in _error(truncated)
    member = data.find(b"\x93NUMPY", data.find(b"a0.npy"))
    data[member + 200] ^= 0xFF  # flip bits inside the array's bytes
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(data))
    assert "corrupt" in _error(flipped)


def test_a_corrupt_archive_leaves_no_file_open(tmp_path):
    # np.load closes a file it opened itself only when the archive reads; nnet must close it always
    path = tmp_path / "header-only.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            _error(path)
        gc.collect()  # a file left open warns when it is collected
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    nnet.save({"w": np.zeros(2)}, path)
    with zipfile.ZipFile(path, "a") as z, z.open("a1.npy", "w") as f:
        np.lib.format.write_array(f, np.array([print], dtype=object), allow_pickle=True)
    manifest = nnet.serialization.json.loads(str(np.load(path)["__nnet__"]))
    manifest["tree"]["items"].append(["evil", {"t": "array", "k": "a1"}])
    with zipfile.ZipFile(path, "a") as z, z.open("__nnet__.npy", "w") as f:
        np.lib.format.write_array(f, np.array(nnet.serialization.json.dumps(manifest)))
    assert "pickled Python objects" in _error(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda p: p.write_text("hello"), "not an nnet checkpoint"),
        (lambda p: p.write_bytes(pickle.dumps({"w": 1})), "not an nnet checkpoint"),
        (lambda p: np.savez(p, w=np.ones(2)), "has no '__nnet__' manifest"),
        (lambda p: np.save(p.open("wb"), np.ones(2)), "single .npy array"),
        (lambda p: np.savez(p, __nnet__=np.array("{not json")), "not valid JSON"),
        (lambda p: np.savez(p, __nnet__=np.array('{"format": "other"}')), "does not describe"),
        (lambda p: np.savez(p, __nnet__=np.array(
            '{"format": "nnet-checkpoint", "version": 1, "tree": {"t": "array", "k": "a7"}}'
        )), "missing array 'a7'"),
        (lambda p: p.write_bytes(b""), "not an nnet checkpoint"),
    ],
)  # fmt: skip
def test_files_that_are_not_nnet_checkpoints(tmp_path, content, message):
    path = tmp_path / "file.npz"
    content(path)
    assert message in _error(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        nnet.load(tmp_path / "nope.npz")
