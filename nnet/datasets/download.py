"""Fetching a file from a list of mirrors: SHA-256 verified, written atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from functools import partial
from pathlib import Path


class DownloadError(OSError):
    """No mirror delivered the file with the expected checksum; the message says what failed."""


def sha256_of(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(filename: str, sha256: str, mirrors: Sequence[str], folder: str | os.PathLike[str],
             timeout: float = 30.0) -> Path:  # fmt: skip
    """Fetch ``filename`` from the first mirror that serves it with the right SHA-256.

    Each attempt streams into a temporary file in ``folder``; only a verified file is renamed to
    its final name, so an interrupted or corrupt download never leaves a bad file behind.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
                for block in iter(partial(r.read, 1 << 20), b""):
                    h.update(block)
                    out.write(block)
            if h.hexdigest() != sha256:
                failures.append(f"{url}: SHA-256 mismatch (got {h.hexdigest()}, want {sha256})")
                continue
            os.replace(tmp, target)
            return target
        except urllib.error.HTTPError as e:
            failures.append(f"{url}: HTTP {e.code} {e.reason}")
        except (urllib.error.URLError, OSError, ValueError) as e:
            failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise DownloadError(
        f"could not download {filename} into {folder}. Tried:\n  " + "\n  ".join(failures)
        + "\nIf this machine is offline, copy the file there by hand (from any machine that has "
        "it) and run again without download."
    )  # fmt: skip
