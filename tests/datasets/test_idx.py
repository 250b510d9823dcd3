"""The IDX reader on small files the tests write, well-formed and broken."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from nnet.datasets import IDXError, read_idx, write_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a-idx3", "a-idx3.gz"])
def test_round_trip(tmp_path: Path, dtype, name: str) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / name, arr)
    got = read_idx(tmp_path / name)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_big_endian_on_disk(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"\x00\x00\x0b\x01" + struct.pack(">I", 2) + b"\x01\x02\xff\xfe")
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), np.array([258, -2], np.int16))


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    write_idx(tmp_path / "y.gz", np.ones((2, 2), np.uint8))
    (tmp_path / "y").write_bytes((tmp_path / "y.gz").read_bytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), np.ones((2, 2), np.uint8))


def raw(tmp_path: Path, data: bytes, gz: bool = False) -> Path:
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x00\x00", ["too short", "2 bytes"]),
        (b"\x08\x03\x00\x00\x00\x00", ["not an IDX file", "magic number is 0x08030000"]),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, ["not an IDX file", "0x00000701"]),
        (b"\x00\x00\x08\x00", ["declares 0 dimensions"]),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", ["truncated", "3 dimensions"]),
        (b"\x00\x00\x08\x02" + struct.pack(">2I", 3, 4) + bytes(11),
         ["truncated", "3 x 4 uint8", "12 bytes", "holds 11"]),
        (b"\x00\x00\x08\x02" + struct.pack(">2I", 3, 4) + bytes(13), ["trailing data"]),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 3) + bytes(11), ["3 float32", "12 bytes"]),
    ],
)  # fmt: skip
def test_malformed_files_name_the_file_and_the_problem(tmp_path, data, words, gz) -> None:
    path = raw(tmp_path, data, gz)
    with pytest.raises(IDXError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_header_claiming_a_trillion_images_does_not_allocate(tmp_path: Path, gz: bool) -> None:
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 10**12 % 2**32, 28, 28)
    huge = b"\x00\x00\x08\x03" + struct.pack(">3I", 4_000_000_000, 4_000_000_000, 28)
    for data in (header + bytes(100), huge + bytes(100)):
        with pytest.raises(IDXError, match="truncated"):
            read_idx(raw(tmp_path, data, gz))


def test_corrupt_gzip_stream(tmp_path: Path) -> None:
    good = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 1000) + bytes(1000))
    path = raw(tmp_path, good[: len(good) // 2])
    with pytest.raises(IDXError, match="gzip stream is corrupt or truncated"):
        read_idx(path)
    flipped = bytearray(good)
    flipped[20] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(IDXError, match=str(path).replace("\\", "\\\\")):
        read_idx(path)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nothing")


def test_write_idx_refuses_unknown_dtype(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="no type code for dtype int64"):
        write_idx(tmp_path / "z", np.arange(3, dtype=np.int64))
