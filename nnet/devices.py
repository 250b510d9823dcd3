"""PyTorch's device and dtype spellings on a CPU-only library.

nnet computes on the CPU with NumPy: ``nnet.device("cpu")`` is the only device, ``.to("cpu")`` and
``.cpu()`` return the tensor itself, and any other device raises naming it. The dtype names
(``nnet.float``, ``nnet.long``, ...) are NumPy's dtypes under PyTorch's names.

>>> import nnet
>>> nnet.ones(2).to("cpu").device
device(type='cpu')
>>> nnet.ones(2).to(nnet.long).dtype
dtype('int64')
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: PyTorch's dtype names and the NumPy dtypes they are in nnet.
DTYPES = {
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "short": np.int16, "int32": np.int32, "int": np.int32, "int64": np.int64,
    "long": np.int64, "bool": np.bool_, "complex64": np.complex64, "complex128": np.complex128,
    "cfloat": np.complex64, "cdouble": np.complex128,
}  # fmt: skip


class device:
    """A device: only ``"cpu"`` (an index 0 is accepted, as ``"cpu:0"``)."""

    __slots__ = ("index", "type")
    index: int | None
    type: str

    def __init__(self, type: Any, index: int | None = None) -> None:
        given = type
        if isinstance(given, device):
            index = given.index
        name = "cpu" if isinstance(given, device) else str(given)
        if ":" in name:
            name, _, number = name.partition(":")
            index = int(number) if number.isdigit() else -1
        if name != "cpu" or index not in (None, 0):
            raise RuntimeError(
                f"device: nnet runs on the CPU only (NumPy), got device {given!r}; "
                "use 'cpu', or drop the .to(device) call"
            )
        self.type = "cpu"
        self.index = index

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='cpu'{index})"

    def __str__(self) -> str:
        return "cpu" if self.index is None else f"cpu:{self.index}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (device, str)) and str(device(other)).startswith("cpu")

    def __hash__(self) -> int:
        return hash("cpu")


CPU = device("cpu")


def is_device(value: Any) -> bool:
    """Whether ``value`` names a device (a :class:`device` or a string that is not a dtype name)."""
    if isinstance(value, device):
        return True
    if not isinstance(value, str):
        return False
    try:
        np.dtype(value)
    except TypeError:
        return True
    return False


def split_to_args(args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> Any:
    """The dtype in PyTorch's ``.to(device)``, ``.to(dtype)``, ``.to(device, dtype)``,
    ``.to(other)`` calls (None when only a device is given); checks the device."""
    dtype = kwargs.pop("dtype", None)
    if "device" in kwargs:
        device(kwargs.pop("device"))
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"{where}: unexpected argument(s) {sorted(kwargs)}")
    for a in args:
        if is_device(a):
            device(a)
        elif hasattr(a, "data") and isinstance(a.data, np.ndarray):  # .to(other_tensor)
            dtype = a.data.dtype
        elif a is not None:
            dtype = a
    return None if dtype is None else np.dtype(dtype)
