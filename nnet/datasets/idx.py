"""The IDX file format of MNIST and its relatives: a big-endian header, then a dense array.

Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64), the number of dimensions, then each dimension as a 4-byte big-endian unsigned int.
Files may be gzip-compressed (``.gz``). The reader checks every part of the header against the
file's actual length before it allocates anything, so a corrupt or hostile header (say, one that
claims 10^12 images) gives a clear error instead of a huge allocation.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CHUNK = 1 << 22
_FIRST_CHUNK = 1 << 14


class IDXError(ValueError):
    """A file that is not a well-formed IDX file; the message names the file and the problem."""


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into an array of the header's shape, native byte order.

    >>> import gzip, os, tempfile
    >>> from nnet.datasets.idx import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx2-ubyte.gz")
    >>> write_idx(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> read_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    path = Path(path)
    with path.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":  # not gzip's magic: a raw file, whatever its name
            raw.seek(0)
            return _read(raw, path, os.fstat(raw.fileno()).st_size)
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw) as f:
                return _read(f, path, None)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: the gzip stream is corrupt or truncated ({e})") from e


def _read(f: io.BufferedIOBase, path: Path, file_size: int | None) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4:
        raise IDXError(f"{path}: {len(head)} bytes is too short for an IDX header (needs 4)")
    if head[0] != 0 or head[1] != 0 or head[2] not in DTYPES:
        raise IDXError(
            f"{path}: not an IDX file: the magic number is 0x{head.hex()}; an IDX file starts "
            f"with two zero bytes, a type code ({', '.join(f'0x{k:02X}' for k in DTYPES)}) and "
            "the number of dimensions"
        )
    ndim = head[3]
    if ndim == 0:
        raise IDXError(f"{path}: the IDX header declares 0 dimensions")
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise IDXError(f"{path}: truncated: the header declares {ndim} dimensions but ends early")
    shape = struct.unpack(f">{ndim}I", dims_raw)
    dtype = np.dtype(DTYPES[head[2]])
    expected = math.prod(shape) * dtype.itemsize  # a Python int: no overflow for any header
    header = 4 + 4 * ndim
    if file_size is not None:
        _check_size(path, shape, dtype, expected, file_size - header)
        body = f.read(expected)
    else:  # gzip: the decompressed length is known only by reading, in chunks, never past expected
        parts, got = [], 0
        while got <= expected:
            # chunks grow with what has arrived, so a header that over-claims costs at most
            # about twice the real data, not a full _CHUNK buffer for a tiny file
            part = f.read(min(_CHUNK, max(_FIRST_CHUNK, got), expected + 1 - got))
            if not part:
                break
            parts.append(part)
            got += len(part)
        _check_size(path, shape, dtype, expected, got, at_least=got > expected)
        body = b"".join(parts)
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _check_size(path: Path, shape: tuple[int, ...], dtype: np.dtype, expected: int, actual: int,
                at_least: bool = False) -> None:  # fmt: skip
    if actual == expected:
        return
    what = "truncated" if actual < expected else "has trailing data"
    more = "more than " if at_least else ""
    raise IDXError(
        f"{path}: {what}: the header says {' x '.join(map(str, shape))} {dtype.name} values "
        f"({expected:,} bytes of data), but the file holds {more}{actual:,}"
    )


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in ``.gz``)."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: IDX has no type code for dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(DTYPES[code]).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
