"""Coverage-guided fuzzing of ``nnet.load`` and ``read_idx`` with atheris (optional, never required).

    pip install atheris
    python tests/fuzz/fuzz_readers.py -atheris_runs=20000          # both readers
    python tests/fuzz/fuzz_readers.py idx -max_total_time=60       # the IDX reader only

Each input is written to a scratch file and read; the documented errors (CheckpointError,
IDXError) are fine, anything else is a finding and atheris stops with the input that caused it.
Without atheris the script says so and exits 0. The test suite runs it briefly when atheris is
installed (tests/fuzz/test_atheris.py).
"""

from __future__ import annotations

import os
import sys
import tempfile

try:
    import atheris
except ImportError:  # pragma: no cover - optional
    atheris = None

# Instrument nnet and the stdlib readers it relies on, not the whole of NumPy (slow to instrument).
with (
    atheris.instrument_imports(include=["nnet", "zipfile", "gzip", "json"])
    if atheris
    else open(os.devnull)
):
    import nnet
    from nnet.datasets.idx import IDXError, read_idx
    from nnet.serialization import CheckpointError

SCRATCH = os.path.join(tempfile.mkdtemp(prefix="nnet-atheris-"), "input")


def one_input(data: bytes) -> None:
    """First byte picks the reader (when both are fuzzed); the rest is the file."""
    which = TARGET if TARGET != "both" else ("load" if data[:1] < b"\x80" else "idx")
    with open(SCRATCH, "wb") as f:
        f.write(data[1:])
    try:
        if which == "load":
            nnet.load(SCRATCH)
        else:
            read_idx(SCRATCH)
    except (CheckpointError, IDXError):
        pass


TARGET = "both"


def seed_corpus() -> str:
    """A folder with a small valid checkpoint and IDX files (raw and gzip), each behind the byte
    that selects its reader, so mutations start from well-formed structure."""
    import numpy as np

    from nnet.datasets.idx import write_idx

    folder = tempfile.mkdtemp(prefix="nnet-atheris-corpus-")
    ckpt, idx = os.path.join(folder, "c.npz"), os.path.join(folder, "i")
    nnet.save({"w": np.arange(6.0).reshape(2, 3), "step": 1, "name": "x"}, ckpt)
    seeds = {"ckpt": b"\x00" + open(ckpt, "rb").read()}
    for suffix in ("", ".gz"):
        write_idx(idx + suffix, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
        seeds["idx" + suffix] = b"\xff" + open(idx + suffix, "rb").read()
    for name, data in seeds.items():
        with open(os.path.join(folder, "seed-" + name), "wb") as f:
            f.write(data)
    return folder


def main(argv: list[str]) -> int:
    global TARGET
    if atheris is None:
        print("atheris is not installed (pip install atheris); nothing fuzzed")
        return 0
    if len(argv) > 1 and argv[1] in ("load", "idx", "both"):
        TARGET = argv.pop(1)
    if not any(a.startswith("-artifact_prefix") for a in argv):  # crash files out of the repo
        argv.append(f"-artifact_prefix={tempfile.mkdtemp(prefix='nnet-atheris-crashes-')}/")
    if not any(not a.startswith("-") for a in argv[1:]):  # no corpus given: start from valid files
        argv.append(seed_corpus())
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
