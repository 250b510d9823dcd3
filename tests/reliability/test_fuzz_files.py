"""Fuzzing the file readers: ``nnet.load`` and the IDX reader.

Whatever the bytes, a reader returns or raises its documented error naming the path
(:class:`~nnet.serialization.CheckpointError`, :class:`~nnet.datasets.idx.IDXError`, both
ValueErrors); nothing else escapes, nothing is unpickled, and no read allocates much more than the
file's size justifies (measured with tracemalloc). Also: an interrupted save leaves the previous
checkpoint intact, and a checkpoint from another model names the mismatching keys and shapes.
"""

from __future__ import annotations

import atexit
import gzip
import io
import json
import os
import pickle
import shutil
import struct
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnet
from nnet import nn
from nnet.datasets.idx import IDXError, read_idx, write_idx
from nnet.serialization import CheckpointError

from .seed_net import seed_network

# One scratch folder, rewritten by each example (hypothesis and tmp_path fixtures do not mix).
FUZZ_DIR = Path(tempfile.mkdtemp(prefix="nnet-fuzz-"))
atexit.register(shutil.rmtree, FUZZ_DIR, ignore_errors=True)
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
SLACK = 1 << 20  # interpreter and zipfile bookkeeping that does not grow with the file


def small_checkpoint() -> bytes:
    path = FUZZ_DIR / "valid.npz"
    nnet.save(
        {
            "model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2)},
            "step": 3,
            "lr": 0.1,
            "name": "seed",
            "rng": (np.int64(5), [True, None]),
        },
        path,
    )
    return path.read_bytes()


CHECKPOINT = small_checkpoint()
IDX_ARRAY = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


def idx_bytes(gz: bool) -> bytes:
    path = FUZZ_DIR / ("valid-idx.gz" if gz else "valid-idx")
    write_idx(path, IDX_ARRAY)
    return path.read_bytes()


def load_cleanly(data: bytes, reader=nnet.load, error=CheckpointError, name="fuzz.npz"):
    """Run ``reader`` on a file holding ``data``: it may return, or raise ``error`` naming the
    path; anything else fails. The peak allocation must stay within a small multiple of the size."""
    path = FUZZ_DIR / name
    # a fresh file: rewriting one in place makes ext4 flush it on close (5 ms instead of 0.3)
    path.unlink(missing_ok=True)
    path.write_bytes(data)
    tracemalloc.start()
    try:
        result = reader(path)
    except error as e:
        assert str(path) in str(e), f"the message does not name the file: {e}"
        result = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= 4 * len(data) + SLACK, f"{peak:,} bytes allocated for a {len(data):,}-byte file"
    return result


# -- nnet.load --------------------------------------------------------------------------------------
def test_the_unmodified_checkpoint_loads():
    loaded = load_cleanly(CHECKPOINT)
    assert loaded["step"] == 3 and loaded["name"] == "seed" and loaded["rng"][1] == [True, None]
    np.testing.assert_array_equal(loaded["model"]["w"], np.arange(6).reshape(2, 3))


def test_truncation_at_every_offset():
    for cut in range(len(CHECKPOINT)):
        result = load_cleanly(CHECKPOINT[:cut])
        assert isinstance(result, CheckpointError), f"a file cut at {cut} bytes loaded: {result}"


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(data):
    load_cleanly(data)


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_after_a_zip_signature(data):
    load_cleanly(b"PK\x03\x04" + data)


def _structure_offsets(data: bytes) -> list[int]:
    """Offsets of every zip record and .npy header in ``data``: the fields worth flipping."""
    offsets = []
    for signature in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"\x93NUMPY"):
        start = data.find(signature)
        while start != -1:
            offsets.extend(range(start, min(start + 120, len(data))))
            start = data.find(signature, start + 1)
    return sorted(set(offsets))


HEADER_OFFSETS = _structure_offsets(CHECKPOINT)


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(HEADER_OFFSETS), st.integers(1, 255)), min_size=1, max_size=4
    )
)
def test_flipped_header_fields(flips):
    data = bytearray(CHECKPOINT)
    for offset, mask in flips:
        data[offset] ^= mask
    load_cleanly(bytes(data))


@FUZZ
@given(st.integers(0, len(CHECKPOINT) - 1), st.binary(min_size=1, max_size=8))
def test_overwritten_bytes_anywhere(offset, chunk):
    data = CHECKPOINT[:offset] + chunk + CHECKPOINT[offset + len(chunk) :]
    load_cleanly(data)


def test_a_zip_version_from_the_future():
    """Found by atheris: a central-directory record needing zip version 23.0 made zipfile raise
    NotImplementedError."""
    data = bytearray(CHECKPOINT)
    data[data.find(b"PK\x01\x02") + 6] = 230  # "version needed to extract"
    error = load_cleanly(bytes(data))
    assert isinstance(error, CheckpointError) and "zip file version" in str(error), error


def checkpoint_with(members: dict[str, bytes], tree: object) -> bytes:
    """An archive whose manifest holds ``tree`` plus the given raw members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        manifest = json.dumps({"format": "nnet-checkpoint", "version": 1, "tree": tree})
        with z.open("__nnet__.npy", "w") as f:
            np.lib.format.write_array(f, np.array(manifest))
        for name, raw in members.items():
            z.writestr(name, raw)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


@pytest.mark.parametrize("count", [10**12, 10**8, 1000])
def test_an_array_header_claiming_a_huge_size_does_not_allocate(count):
    data = checkpoint_with({"a0.npy": npy_header((count,)) + bytes(64)}, {"t": "array", "k": "a0"})
    error = load_cleanly(data)
    assert isinstance(error, CheckpointError)
    assert "'a0'" in str(error) and f"{count * 8:,}" in str(error)


@pytest.mark.parametrize(
    "tree",
    [
        {"t": "float", "v": -1},
        {"t": "float", "v": 2**70},
        {"t": "dict", "items": [[["unhashable"], {"t": "json", "v": 1}]]},
        {"t": "dict", "items": [1, 2]},
        {"t": "list", "items": 5},
        {"t": "scalar", "k": "a0"},
    ],
)
def test_malformed_manifests(tree):
    error = load_cleanly(checkpoint_with({"a0.npy": npy_header((3,)) + bytes(24)}, tree))
    if not (tree["t"] == "scalar"):  # a 3-element array read as a scalar is caught too
        assert isinstance(error, CheckpointError) and "corrupt" in str(error), error


@pytest.mark.parametrize("depth", [100_000, 600])
def test_a_deeply_nested_manifest(depth):
    """A few kB of brackets must not end in a RecursionError."""
    tree = '{"t": "list", "items": [' * depth + '{"t": "json", "v": 0}' + "]}" * depth
    raw = '{"format": "nnet-checkpoint", "version": 1, "tree": ' + tree + "}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, z.open("__nnet__.npy", "w") as f:
        np.lib.format.write_array(f, np.array(raw))
    error = load_cleanly(buf.getvalue())
    assert isinstance(error, CheckpointError) and "nested too deeply" in str(error), error


def test_a_single_npy_claiming_a_huge_array_is_refused_unread():
    error = load_cleanly(npy_header((10**12,)) + bytes(64))
    assert isinstance(error, CheckpointError) and "single .npy array" in str(error)


def test_a_member_that_is_not_an_npy_array():
    data = checkpoint_with({"a0.npy": b"just some bytes"}, {"t": "array", "k": "a0"})
    error = load_cleanly(data)
    assert isinstance(error, CheckpointError) and "'a0'" in str(error), error


class _Trap:
    """Unpickling this would create the marker file: proof that code ran."""

    def __reduce__(self):
        marker = str(FUZZ_DIR / "code-ran")
        return (open, (marker, "w"))


@pytest.mark.parametrize("where", ["whole file", "npz member", "manifest"])
def test_pickles_are_refused_and_never_run(where):
    marker = FUZZ_DIR / "code-ran"
    marker.unlink(missing_ok=True)
    if where == "whole file":
        data = pickle.dumps({"w": _Trap()})
    else:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array([_Trap()], dtype=object), allow_pickle=True)
        if where == "npz member":
            data = checkpoint_with({"a0.npy": buf.getvalue()}, {"t": "array", "k": "a0"})
        else:
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as z:
                z.writestr("__nnet__.npy", buf.getvalue())
            data = out.getvalue()
    assert not marker.exists()
    error = load_cleanly(data)
    assert isinstance(error, CheckpointError), error
    assert not marker.exists(), "loading ran code from the file"


# -- the IDX reader ---------------------------------------------------------------------------------
def read_idx_cleanly(data: bytes, name: str = "fuzz-idx"):
    return load_cleanly(data, read_idx, IDXError, name)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncation_at_every_offset(gz):
    data = idx_bytes(gz)
    np.testing.assert_array_equal(read_idx_cleanly(data), IDX_ARRAY)
    for cut in range(len(data)):
        result = read_idx_cleanly(data[:cut])
        assert isinstance(result, IDXError), f"an IDX file cut at {cut} bytes was read: {result}"


@FUZZ
@given(st.binary(max_size=400))
def test_idx_random_bytes(data):
    read_idx_cleanly(data)


@FUZZ
@given(st.binary(max_size=400))
def test_idx_random_gzip_content(data):
    read_idx_cleanly(gzip.compress(data))


@FUZZ
@given(
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 15), st.integers(1, 255)), min_size=1, max_size=3),
)
def test_idx_flipped_header_fields(gz, flips):
    """The header is 16 bytes here (magic, then 3 dimensions); flip bits in it, before gzip."""
    raw = bytearray(idx_bytes(False))
    for offset, mask in flips:
        raw[offset] ^= mask
    data = gzip.compress(bytes(raw)) if gz else bytes(raw)
    result = read_idx_cleanly(data)
    if isinstance(result, np.ndarray):  # only a flip that keeps the size consistent can be read
        assert result.size * result.itemsize == len(raw) - 16


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dims", [(10**12 % 2**32, 28, 28), (2**32 - 1, 2**32 - 1, 2**32 - 1)])
def test_idx_huge_declared_sizes_do_not_allocate(gz, dims):
    raw = b"\x00\x00\x0e\x03" + struct.pack(">3I", *dims) + bytes(4096)
    result = read_idx_cleanly(gzip.compress(raw) if gz else raw)
    assert isinstance(result, IDXError) and "truncated" in str(result)


# -- interrupted saves ------------------------------------------------------------------------------
GOOD = {"w": np.arange(50.0), "epoch": 1}


class _FailingFile(io.RawIOBase):
    """A file that accepts ``budget`` bytes and then fails as a full disk would."""

    def __init__(self, f, budget: int) -> None:
        self.f, self.budget = f, budget

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        b = bytes(b)
        if len(b) > self.budget:
            self.f.write(b[: self.budget])
            self.f.flush()
            raise OSError(28, "No space left on device")
        self.budget -= len(b)
        return self.f.write(b)

    def seek(self, *args):
        return self.f.seek(*args)

    def tell(self) -> int:
        return self.f.tell()

    def seekable(self) -> bool:
        return True


@pytest.mark.parametrize("budget", [0, 1, 30, 200, 1000, 3000, 10_000])
def test_a_save_failing_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch, budget):
    path = tmp_path / "ckpt.npz"
    nnet.save(GOOD, path)
    before = path.read_bytes()
    real_savez = np.savez

    def savez_to_a_full_disk(f, *args, **kwargs):
        real_savez(_FailingFile(f, budget), *args, **kwargs)

    monkeypatch.setattr(np, "savez", savez_to_a_full_disk)
    bigger = {"w": np.arange(5000.0), "epoch": 2}
    with pytest.raises(OSError, match="No space left"):
        nnet.save(bigger, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"], "a temporary file was left behind"
    assert nnet.load(path)["epoch"] == 1


@pytest.mark.parametrize("stage", ["fsync", "replace"])
def test_a_save_failing_at_the_last_steps_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, stage
):
    path = tmp_path / "ckpt.npz"
    nnet.save(GOOD, path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(5, f"I/O error in {stage}")

    monkeypatch.setattr(os, stage, fail)
    with pytest.raises(OSError, match=f"in {stage}"):
        nnet.save({"w": np.zeros(3), "epoch": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


# -- a checkpoint from another model ----------------------------------------------------------------
def test_a_checkpoint_from_another_model_names_keys_and_shapes(tmp_path):
    nnet.manual_seed(0)
    path = tmp_path / "seed28.npz"
    nnet.save(seed_network(side=28).state_dict(), path)
    smaller = seed_network(side=12)  # the first Linear sees 3 x 3 x 8 features, not 7 x 7 x 8
    before = {k: v.copy() for k, v in smaller.state_dict().items()}
    with pytest.raises(ValueError) as info:
        smaller.load_state_dict(nnet.load(path))
    message = str(info.value)
    assert "shape mismatch for '9.weight'" in message
    assert "(392, 196)" in message and "(72, 36)" in message  # hidden width: half the features
    assert all(np.array_equal(v, smaller.state_dict()[k]) for k, v in before.items())
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(ValueError) as info:
        mlp.load_state_dict(nnet.load(path))
    message = str(info.value)
    assert "missing keys: '1.weight', '1.bias'" in message
    assert "unexpected keys: '0.weight'" in message and "'3.running_mean'" in message
