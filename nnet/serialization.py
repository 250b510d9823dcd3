"""`save` and `load`: checkpoints as ``.npz`` files that load without executing code.

A checkpoint holds a nested structure of dicts (string or integer keys), lists and tuples whose
leaves are arrays, Tensors, NumPy scalars, Python numbers, strings, booleans or None: state dicts,
optimizer states, random-generator states, training metadata. Arrays go into the archive as ``.npy``
members, read back with ``allow_pickle=False``; the structure and the Python scalars go into a JSON
manifest member. Round trips are exact to the bit (dtypes and shapes included). Writes go to a
temporary file in the same folder, flushed to disk, then renamed over the target, so a crash midway
never leaves a half-written checkpoint where a good one was.

>>> import os, tempfile, numpy as np, nnet
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
>>> nnet.save({"model": {"w": np.arange(3.0)}, "epoch": 7, "note": "best"}, path)
>>> nnet.load(path)
{'model': {'w': array([0., 1., 2.])}, 'epoch': 7, 'note': 'best'}
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

from nnet.autograd.tensor import Tensor
from nnet.devices import device

FORMAT = "nnet-checkpoint"
VERSION = 1
_MANIFEST = "__nnet__"

PathLike = str | os.PathLike


class CheckpointError(ValueError):
    """A file that is not a readable nnet checkpoint: corrupt, truncated, unsafe or foreign."""


class _Writer:
    """Turns a nested object into a JSON-able tree plus a dict of arrays named a0, a1, ..."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _array(self, a: np.ndarray, where: str) -> str:
        if a.dtype.hasobject:
            raise TypeError(
                f"nnet.save: {where} is an array of Python objects (dtype {a.dtype}); "
                "checkpoints hold only numeric, boolean and string arrays, which load without "
                "unpickling"
            )
        name = f"a{len(self.arrays)}"
        self.arrays[name] = a
        return name

    def node(self, obj: Any, where: str) -> Any:
        if isinstance(obj, Tensor):
            return {"t": "tensor", "k": self._array(obj.data, where)}
        if isinstance(obj, np.ndarray):
            return {"t": "array", "k": self._array(obj, where)}
        if isinstance(obj, np.generic):
            return {"t": "scalar", "k": self._array(np.asarray(obj), where)}
        if obj is None or isinstance(obj, (bool, str)):
            return {"t": "json", "v": obj}
        if isinstance(obj, int):
            return {"t": "json", "v": obj}  # JSON keeps Python ints of any size
        if isinstance(obj, float):
            # the bits, so nan payloads and -0.0 survive; JSON floats would round-trip only values
            return {"t": "float", "v": np.float64(obj).view(np.uint64).item()}
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                if not isinstance(k, (str, int)) or isinstance(k, bool):
                    raise TypeError(
                        f"nnet.save: {where} has a key {k!r} of type {type(k).__name__}; "
                        "keys must be strings or integers"
                    )
                items.append([k, self.node(v, f"{where}[{k!r}]")])
            return {"t": "dict", "items": items}
        if isinstance(obj, (list, tuple)):
            return {
                "t": "list" if isinstance(obj, list) else "tuple",
                "items": [self.node(v, f"{where}[{i}]") for i, v in enumerate(obj)],
            }
        raise TypeError(
            f"nnet.save: {where} is a {type(obj).__name__}; checkpoints hold dicts, lists and "
            "tuples of arrays, Tensors, numbers, strings, booleans and None"
        )


def save(obj: Any, path: PathLike) -> None:
    """Write ``obj`` (e.g. ``model.state_dict()``) to ``path`` atomically, as an ``.npz`` archive.

    The name is used as given (no suffix is added). Raises TypeError, naming the offending entry,
    for anything that could not be loaded back without unpickling.
    """
    writer = _Writer()
    tree = writer.node(obj, "obj")
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{_MANIFEST: np.array(manifest)}, **writer.arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); harmless where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Reader:
    def __init__(self, archive: Any, path: str, file_size: int) -> None:
        self.archive = archive
        self.path = path
        self.file_size = file_size

    def fail(self, problem: str) -> CheckpointError:
        return CheckpointError(f"nnet.load: {self.path}: {problem}")

    def array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or name == _MANIFEST or name not in self.archive.files:
            raise self.fail(f"the manifest refers to a missing array {name!r}; the file is corrupt")
        return _read_member(self.archive, name, self.path, self.file_size)

    def node(self, n: Any) -> Any:
        if not isinstance(n, dict) or "t" not in n:
            raise self.fail("the manifest is malformed; the file is corrupt")
        kind = n["t"]
        if kind == "array":
            return self.array(n.get("k"))
        if kind == "tensor":
            return Tensor(self.array(n.get("k")))
        if kind == "scalar":
            return self.array(n.get("k"))[()]
        if kind == "json":
            return n.get("v")
        if kind == "float":
            return float(np.uint64(n["v"]).view(np.float64))
        if kind == "dict":
            return {k: self.node(v) for k, v in n["items"]}
        if kind == "list":
            return [self.node(v) for v in n["items"]]
        if kind == "tuple":
            return tuple(self.node(v) for v in n["items"])
        raise self.fail(f"the manifest has an unknown entry kind {kind!r}; the file is corrupt")


_NPY_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
# Deflate cannot shrink data by more than about 1032:1; a member claiming more is lying.
_MAX_DEFLATE_RATIO = 1100


def _check_member(archive: Any, name: str, path: str, file_size: int) -> None:
    """Refuse a member that is not a .npy array, holds Python objects, or whose header declares more
    data than the member (and the file) can hold, before NumPy allocates what the header declares:
    without this, a 1 kB file claiming a (10**12,) array asks for terabytes."""
    zf = archive.zip
    member = name + ".npy" if name + ".npy" in zf.NameToInfo else name
    info = zf.getinfo(member)
    stored = info.compress_type == zipfile.ZIP_STORED
    if info.compress_size > file_size or info.file_size > (
        info.compress_size if stored else _MAX_DEFLATE_RATIO * info.compress_size + 64
    ):
        raise CheckpointError(
            f"nnet.load: {path}: the array {name!r} claims {info.file_size:,} bytes, more than "
            f"the {file_size:,}-byte file can hold; the file is corrupt"
        )
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in _NPY_READERS:
            raise CheckpointError(
                f"nnet.load: {path}: the array {name!r} has .npy format version {version}, which "
                "nnet does not write; the file is corrupt or not an nnet checkpoint"
            )
        shape, _, dtype = _NPY_READERS[version](f)
        if dtype.hasobject:
            raise CheckpointError(
                f"nnet.load: {path}: the array {name!r} holds pickled Python objects; nnet never "
                "unpickles (loading could run code), so this file cannot be loaded"
            )
        declared = math.prod(shape) * dtype.itemsize
        held = info.file_size - f.tell()
    if declared != held:
        raise CheckpointError(
            f"nnet.load: {path}: the array {name!r} declares shape {shape} of {dtype} "
            f"({declared:,} bytes), but its member holds {held:,} bytes; the file is corrupt or "
            "truncated"
        )


def _read_member(archive: Any, name: str, path: str, file_size: int) -> np.ndarray:
    try:
        _check_member(archive, name, path, file_size)
        return archive[name]
    except CheckpointError:
        raise
    except ValueError as e:
        raise CheckpointError(f"nnet.load: {path}: the array {name!r} is corrupt ({e})") from None
    # NotImplementedError: an unknown compression method; RuntimeError: an encrypted member
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            RuntimeError) as e:  # fmt: skip
        raise CheckpointError(
            f"nnet.load: {path}: the array {name!r} is corrupt or truncated ({e})"
        ) from None


def load(path: PathLike, weights_only: bool = True, map_location: Any = None) -> Any:
    """Read a checkpoint written by :func:`save`; never unpickles, so never runs code from the file.

    ``weights_only`` (PyTorch's) is accepted and always in effect; ``map_location`` may only name
    the CPU.

    Raises FileNotFoundError for a missing file and :class:`CheckpointError` (a ValueError) naming
    the path and the problem for a file that is corrupt, truncated, holds object arrays or is not an
    nnet checkpoint.
    """
    if map_location is not None and not callable(map_location):
        device(map_location)  # raises for anything but the CPU
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"nnet.load: no such file: {path}")
    try:
        f = open(path, "rb")
        file_size = os.fstat(f.fileno()).st_size
        head = f.read(len(np.lib.format.MAGIC_PREFIX))
    except OSError as e:  # a folder, or no permission to read
        raise CheckpointError(f"nnet.load: cannot read {path} ({e})") from None
    # NumPy closes a file it opened itself only on success, so nnet opens it: a corrupt archive
    # must not leak the handle
    with f:
        f.seek(0)
        return _load_open(f, path, file_size, head)


def _load_open(f: Any, path: str, file_size: int, head: bytes) -> Any:
    """:func:`load` on the open file ``f``, whose first bytes are ``head``."""
    if head == np.lib.format.MAGIC_PREFIX:  # refused before NumPy allocates what its header says
        raise CheckpointError(
            f"nnet.load: {path} is a single .npy array, not an nnet checkpoint; "
            "read it with numpy.load(path, allow_pickle=False)"
        )
    if not head.startswith(b"PK"):  # NumPy would call any such file a pickle, which misleads
        raise CheckpointError(
            f"nnet.load: {path} is not an nnet checkpoint: those are .npz (zip) archives, "
            f"starting with b'PK', and this file starts with {head[:4]!r}"
        )
    try:
        archive = np.load(f, allow_pickle=False)
    except ValueError as e:
        raise CheckpointError(
            f"nnet.load: {path} is not an nnet checkpoint (not an .npz archive: {e})"
        ) from None
    # NotImplementedError: a zip record that asks for a newer zip version than Python reads
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as e:
        raise CheckpointError(
            f"nnet.load: {path} is not an nnet checkpoint, or is truncated or corrupt ({e})"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(
            f"nnet.load: {path} is a single .npy array, not an nnet checkpoint; "
            "read it with numpy.load(path, allow_pickle=False)"
        )
    with archive:
        if _MANIFEST not in archive.files:
            raise CheckpointError(
                f"nnet.load: {path} is an .npz archive but not an nnet checkpoint (it has no "
                f"{_MANIFEST!r} manifest); read it with numpy.load(path, allow_pickle=False)"
            )
        reader = _Reader(archive, path, file_size)
        raw = _read_member(archive, _MANIFEST, path, file_size)
        try:
            manifest = json.loads(str(raw[()]))
        except (ValueError, TypeError):
            raise reader.fail("the manifest is not valid JSON; the file is corrupt") from None
        except RecursionError:
            raise reader.fail("the manifest is nested too deeply; the file is corrupt") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise reader.fail("the manifest does not describe an nnet checkpoint")
        if manifest.get("version") != VERSION:
            raise reader.fail(
                f"checkpoint format version {manifest.get('version')!r} is not supported by this "
                f"nnet (it reads version {VERSION}); upgrade nnet"
            )
        try:
            return reader.node(manifest.get("tree"))
        except CheckpointError:
            raise
        except RecursionError:
            raise reader.fail("the manifest is nested too deeply; the file is corrupt") from None
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise reader.fail(f"the manifest is malformed ({e!r}); the file is corrupt") from None
