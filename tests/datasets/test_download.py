"""download=True against a loopback HTTP server that this test starts and stops."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nnet.datasets import MNIST, DownloadError, IDXError, write_idx

FILES = [f"{s}-{k}-ubyte.gz" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """Two mirrors on 127.0.0.1: ``good/`` has every file, ``bad/`` serves corrupted copies."""
    site = tmp_path / "site"
    (site / "good").mkdir(parents=True)
    for split, n in (("train", 6), ("t10k", 4)):
        images = np.random.default_rng(n).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        write_idx(site / "good" / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(site / "good" / f"{split}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8))
    (site / "bad").mkdir()
    for name in FILES:
        data = bytearray((site / "good" / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (site / "bad" / name).write_bytes(bytes(data))
    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield f"{base}/good/", f"{base}/bad/", site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def tiny_mnist(site: Path) -> type[MNIST]:
    sums = {n: hashlib.sha256((site / "good" / n).read_bytes()).hexdigest() for n in FILES}
    return type("TinyMNIST", (MNIST,), {"resources": sums})


def test_download_verifies_and_falls_back_to_the_next_mirror(served, tmp_path: Path) -> None:
    good, bad, site = served
    cls = tiny_mnist(site)
    root = tmp_path / "data"
    train = cls(root, download=True, mirrors=[bad, good])
    assert len(train) == 6 and train.labels.tolist() == list(range(6))
    assert sorted(p.name for p in root.iterdir()) == sorted(FILES[:2])  # no partial files left
    cls.mirrors = [good]
    assert len(cls(root, train=False, download=True)) == 4  # the class attribute is the default
    # a second construction reads what is there, offline
    assert len(cls(root, download=False, mirrors=["http://127.0.0.1:9/"])) == 6


def test_every_mirror_failing_says_what_failed(served, tmp_path: Path) -> None:
    _, bad, site = served
    cls = tiny_mnist(site)
    root = tmp_path / "data"
    with pytest.raises(DownloadError) as info:
        cls(root, download=True, mirrors=[bad, bad.replace("/bad/", "/missing/")])
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "SHA-256 mismatch" in msg
    assert "404" in msg and "offline" in msg
    assert not root.exists() or not any(root.iterdir())


def test_unreachable_mirror_reads_as_offline(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1:9.*\n.*offline"):
        MNIST(tmp_path, download=True, mirrors=["http://127.0.0.1:9/"])


def test_verified_but_corrupt_file_is_an_idx_error(served, tmp_path: Path) -> None:
    _, bad, site = served
    # the checksums of the corrupted copies: the download succeeds, the IDX reader must object
    sums = {n: hashlib.sha256((site / "bad" / n).read_bytes()).hexdigest() for n in FILES}
    cls = type("CorruptMNIST", (MNIST,), {"resources": sums})
    with pytest.raises(IDXError, match=r"train-images-idx3-ubyte\.gz"):
        cls(tmp_path, download=True, mirrors=[bad])
