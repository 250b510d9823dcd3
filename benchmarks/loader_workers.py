"""loader_workers: what ``DataLoader(num_workers=N)`` buys when ``__getitem__`` is costly.

A dataset of 512 colour images, 64x64x3, whose ``__getitem__`` augments each sample in NumPy as a
training pipeline does: reflect-pad by 4 and take a random 64x64 crop, flip half of them, rotate by up
to 15 degrees (bilinear), jitter brightness and contrast, blur with a 5x5 box, add Gaussian noise
(about 0.7 ms of CPU a sample).
One epoch is one pass over the loader at batch 64 (8 batches; no training), with ``num_workers``
0, 1 and 2 and the default non-persistent workers (each epoch starts and stops them, as it does
for a user), and 2 persistent workers. The reference for nnet in each row is PyTorch's DataLoader
over the same dataset with the same options; at 0 workers the NumPy floor is a plain loop that
fetches and stacks. Beside each row with workers: its time over nnet's at ``num_workers=0``; and
for the non-persistent rows, the CPU seconds of the main process and of the workers in one epoch.

One worker cannot beat the main process (it does the same work, plus starting, and pickling the
batches back); two workers can approach 0.5x only on two idle cores.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.results import Row, fill
from benchmarks.timing import Config, Setup, load_torch, measure

NAME = "loader_workers"
TITLE = "an epoch of a DataLoader with NumPy augmentation per sample, num_workers 0, 1, 2"
SAMPLES, SIDE, BATCH, PAD, BLUR, MAX_ANGLE = 512, 64, 64, 4, 5, 0.26  # radians, 15 degrees
#: (num_workers, persistent_workers) of each row
CONFIGS = ((0, False), (1, False), (2, False), (2, True))


class Augmented:
    """Images with a costly, random ``__getitem__`` (about a millisecond a sample). Its random
    draws use nnet's generator, which nnet's workers seed each (PyTorch's workers do not know it:
    their copies draw alike, which changes nothing in the time)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.images = rng.random((SAMPLES, SIDE, SIDE, 3), dtype=np.float32)
        self.labels = rng.integers(0, 10, SAMPLES)

    def __len__(self) -> int:
        return SAMPLES

    @staticmethod
    def rotate(x: np.ndarray, angle: float) -> np.ndarray:
        """``x`` turned by ``angle`` about its centre, bilinear interpolation, edges clamped."""
        centre = (SIDE - 1) / 2
        yy, xx = np.mgrid[:SIDE, :SIDE] - centre
        c, s = np.cos(angle), np.sin(angle)
        sy = np.clip(c * yy - s * xx + centre, 0, SIDE - 1.001)
        sx = np.clip(s * yy + c * xx + centre, 0, SIDE - 1.001)
        y0, x0 = sy.astype(np.intp), sx.astype(np.intp)
        fy, fx = (sy - y0)[..., None], (sx - x0)[..., None]
        top = x[y0, x0] * (1 - fx) + x[y0, x0 + 1] * fx
        bottom = x[y0 + 1, x0] * (1 - fx) + x[y0 + 1, x0 + 1] * fx
        return top * (1 - fy) + bottom * fy

    def __getitem__(self, i: int) -> tuple[np.ndarray, Any]:
        import nnet

        rng = nnet.random.get_generator()
        padded = np.pad(self.images[i], ((PAD, PAD), (PAD, PAD), (0, 0)), mode="reflect")
        top, left = rng.integers(0, 2 * PAD + 1, size=2)
        x = padded[top : top + SIDE, left : left + SIDE]
        if rng.random() < 0.5:
            x = x[:, ::-1]
        x = self.rotate(x, rng.uniform(-MAX_ANGLE, MAX_ANGLE))
        mean = x.mean()
        x = (x - mean) * rng.uniform(0.8, 1.2) + mean + rng.uniform(-0.1, 0.1)
        r = BLUR // 2
        edged = np.pad(x, ((r, r), (r, r), (0, 0)), mode="edge")
        x = sum(edged[dy : dy + SIDE, dx : dx + SIDE] for dy in range(BLUR) for dx in range(BLUR))
        x = x / BLUR**2
        x = x + rng.normal(0.0, 0.05, x.shape)
        return x.astype(np.float32), self.labels[i]


def sides(num_workers: int, persistent: bool) -> tuple[dict[str, Setup | None], dict[str, str]]:
    dataset = Augmented()
    options: dict[str, Any] = dict(batch_size=BATCH, shuffle=True, num_workers=num_workers)
    if num_workers:
        options.update(timeout=120, persistent_workers=persistent)

    def nnet_setup() -> Callable[[], object]:
        from nnet.data import DataLoader

        loader = DataLoader(dataset, generator=0, **options)
        return lambda: sum(len(y) for _, y in loader)

    def numpy_setup() -> Callable[[], object]:
        rng = np.random.default_rng(0)

        def epoch() -> object:
            order = rng.permutation(SAMPLES)
            count = 0
            for start in range(0, SAMPLES, BATCH):
                samples = [dataset[int(i)] for i in order[start : start + BATCH]]
                x = np.stack([s[0] for s in samples])
                count += len(np.stack([s[1] for s in samples]))
                del x
            return count

        return epoch

    out: dict[str, Setup | None] = {"nnet": nnet_setup, "torch": None}
    if num_workers == 0:
        out["numpy"] = numpy_setup
    why = {}
    torch, reason = load_torch()
    if torch is None:
        why["torch"] = reason or "not available"
    else:

        def torch_setup() -> Callable[[], object]:
            gen = torch.Generator().manual_seed(0)
            loader = torch.utils.data.DataLoader(dataset, generator=gen, **options)
            return lambda: sum(len(y) for _, y in loader)

        out["torch"] = torch_setup
    return out, why


def cpu_seconds(num_workers: int) -> tuple[float, float]:
    """CPU time of one epoch (after a first one): the main process's, and its workers' (children
    are counted once they have exited, so only for non-persistent workers). Unlike wall time, this
    hardly depends on what else the machine runs: it shows what the workers cost."""
    from nnet.data import DataLoader

    loader = DataLoader(Augmented(), batch_size=BATCH, shuffle=True, generator=0,
                        num_workers=num_workers, timeout=120 if num_workers else 0)  # fmt: skip
    list(loader)
    main0, kids0 = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    list(loader)
    main1, kids1 = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )

    def cpu(a: Any, b: Any) -> float:
        return b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime

    return cpu(main0, main1), cpu(kids0, kids1)


def run(cfg: Config) -> list[Row]:
    rows = []
    for num_workers, persistent in CONFIGS:
        label = f"num_workers={num_workers}" + (", persistent_workers" if persistent else "")
        row = Row(NAME, f"epoch, {SAMPLES} augmented images, batch {BATCH}, {label}", "s")
        s, why = sides(num_workers, persistent)
        rounds = 1 if cfg.quick else 3
        measured = measure(s, cfg, warmup=1, min_steps=3, max_steps=3, rounds=rounds,
                           unavailable=why)  # fmt: skip
        fill(row, measured, lambda t: t)
        if not persistent:
            main, workers = cpu_seconds(num_workers)
            row.detail["cpu_s"] = {"main": main, "workers": workers}
            print(f"  CPU per epoch at {label}: main process {main:.3f} s, workers {workers:.3f} s")
        rows.append(row)
    base = rows[0].values.get("nnet")
    for row in rows[1:]:
        t = row.values.get("nnet")
        row.extra_ratios["num_workers=0"] = t / base if t is not None and base else None
    return rows


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
