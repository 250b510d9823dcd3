"""mnist_epoch: one training epoch of the seed protocol on the real MNIST subset.

The seed network, Adam lr 1e-3, batch 100, cross-entropy, over the 5,000 training images of
../shared/data/mnist (50 steps), shuffled each epoch by a seeded permutation, each batch taken with one
fancy index: nnet through nnet.data.DataLoader (what its users write; it fancy-indexes once per batch),
the NumPy floor and PyTorch by indexing the arrays / tensors directly (PyTorch's DataLoader collates
sample by sample, which would time its loader rather than its training). The images are read once,
outside the timing, with nnet.datasets.MNIST when it exists, else a small IDX reader.
Each side's model and optimizer are fresh for each epoch and warmed up by 3 steps. Target (issue 5):
at most 1.0x PyTorch.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import nnet_models, numpy_ref
from benchmarks.common import make_optimizer
from benchmarks.results import Row, fill
from benchmarks.timing import Config, Setup, load_torch, measure

NAME = "mnist_epoch"
TITLE = "one epoch of the seed protocol (seed network, Adam, batch 100) on the 5,000 MNIST images"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
BATCH = 100
WARM_STEPS = 3


def _read_idx(path: Path) -> np.ndarray:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, file holds {data.size} values")
    return data.reshape(dims)


def load_train(root: Path = DATA) -> tuple[np.ndarray, np.ndarray, str]:
    """Training images (N, 28, 28, 1) float32 in [0, 1], int64 labels, and which reader was used."""
    try:
        from nnet.datasets import MNIST  # the library's reader, once it exists

        ds = MNIST(str(root), train=True)
        x = next(getattr(ds, a) for a in ("images", "data", "x") if hasattr(ds, a))
        y = next(getattr(ds, a) for a in ("labels", "targets", "y") if hasattr(ds, a))
        x, y = np.asarray(x, np.float32), np.asarray(y, np.int64)
        return x.reshape(-1, 28, 28, 1), y, "nnet.datasets.MNIST"
    except (ImportError, StopIteration, AttributeError, TypeError):
        pass
    images = _read_idx(_find(root, "train-images-idx3-ubyte"))
    labels = _read_idx(_find(root, "train-labels-idx1-ubyte"))
    x = images.astype(np.float32).reshape(-1, 28, 28, 1)
    x *= np.float32(1 / 255)  # as nnet.datasets.MNIST does, to the bit
    return x, labels.astype(np.int64), "benchmarks' IDX reader"


def _find(root: Path, stem: str) -> Path:
    for p in (root / f"{stem}.gz", root / stem):
        if p.exists():
            return p
    raise FileNotFoundError(f"{root}: no {stem}[.gz]")


def _epoch(count: int, step: Callable[[np.ndarray], object]) -> Callable[[], object]:
    """An epoch closure: a seeded permutation of ``count`` images, then one step per full batch."""
    n = (count // BATCH) * BATCH
    perm_rng = np.random.default_rng(0)

    def epoch() -> object:
        order = perm_rng.permutation(count)[:n]
        loss = None
        for i in range(0, n, BATCH):
            loss = step(order[i : i + BATCH])
        return loss

    return epoch


def sides(x: np.ndarray, y: np.ndarray) -> tuple[dict[str, Setup | None], dict[str, str]]:
    def numpy_setup() -> Callable[[], object]:
        net = numpy_ref.seed_cnn()
        opt = numpy_ref.Adam(net, lr=1e-3)

        def step(idx: np.ndarray) -> object:
            loss = net.loss_and_grads(x[idx], y[idx])
            opt.step()
            return loss

        for _ in range(WARM_STEPS):
            step(np.arange(BATCH))
        return _epoch(len(x), step)

    def nnet_setup() -> Callable[[], object]:
        import nnet

        model = nnet_models.seed_cnn()
        opt = make_optimizer(nnet_models.optim(), model.parameters(), "adam", 1e-3)
        loss_fn = nnet_models.nn().CrossEntropyLoss()
        model.train()

        def step_on(xb: Any, yb: Any) -> object:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            return loss

        def step(idx: np.ndarray) -> object:
            return step_on(nnet.Tensor(x[idx]), nnet.Tensor(y[idx]))

        for _ in range(WARM_STEPS):
            step(np.arange(BATCH))
        try:  # what a user writes: nnet's own loader (one fancy index per batch)
            from nnet.data import DataLoader, TensorDataset
        except ImportError:
            return _epoch(len(x), step)
        loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True, generator=0)

        def epoch() -> object:
            loss = None
            for xb, yb in loader:
                loss = step_on(xb, yb)
            return loss

        return epoch

    out: dict[str, Setup | None] = {"nnet": nnet_setup, "numpy": numpy_setup, "torch": None}
    why = {}
    torch, reason = load_torch()
    if torch is None:
        why["torch"] = reason or "not available"
    else:
        from benchmarks import torch_ref

        def torch_setup() -> Callable[[], object]:
            xt_all = torch_ref.nchw(torch, x)  # made per block: only one side's copy is alive
            yt_all = torch.from_numpy(y)
            model = torch_ref.seed_cnn(torch)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            loss_fn = torch.nn.CrossEntropyLoss()
            model.train()

            def step(idx: np.ndarray) -> object:
                ti = torch.from_numpy(idx)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xt_all[ti]), yt_all[ti])
                loss.backward()
                opt.step()
                return loss

            for _ in range(WARM_STEPS):
                step(np.arange(BATCH))
            return _epoch(len(x), step)

        out["torch"] = torch_setup
    return out, why


def run(cfg: Config) -> list[Row]:
    row = Row(
        NAME,
        "epoch, 5,000 images, batch 100",
        "s",
        target="<= 1.0x PyTorch",
        bounds=[("torch", 1.0)],
    )
    if not DATA.is_dir():
        msg = f"skipped: no MNIST data at {DATA}"
        print(f"  {msg}")
        row.values = {"nnet": None, "numpy": None, "torch": None}
        row.notes = dict.fromkeys(row.values, msg)
        return [row]
    x, y, reader = load_train()
    s, why = sides(x, y)
    rounds = 1 if cfg.quick else 4
    measured = measure(s, cfg, warmup=0, min_steps=1, max_steps=1, rounds=rounds, unavailable=why)
    fill(row, measured, lambda t: t)
    row.detail["reader"] = reader
    row.detail["images"] = len(x)
    return [row]


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
