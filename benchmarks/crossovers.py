"""crossovers: time both sides of each size threshold in nnet/kernels, on this machine.

The kernels choose between two ways of computing the same thing by size (Winograd or im2col, fused
batch norm + ReLU + pool or three ops, ...). Each threshold's comment names the command here that
measures it; rerun it on the machine that matters and move the constant where the sides cross:

    python -m benchmarks.crossovers                  # every threshold
    python -m benchmarks.crossovers winograd pixel_bytes
    NNET_BENCH_THREADS=1 python -m benchmarks.crossovers chunk_rows
    python -m benchmarks.crossovers small_product --rounds 7   # sides alternating, median of rounds

Each line: the case, the median forward + backward time of each side (ms, float32), the faster
side, and the side the current constant picks. The machine is shared: compare sides of one line,
not lines of different runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import benchmarks  # noqa: F401  (pins the thread pools before NumPy work)
from benchmarks.timing import ensure_repo_on_path

ensure_repo_on_path()

import nnet  # noqa: E402
import nnet.nn.functional as F  # noqa: E402
from nnet.kernels import bnpool, im2col, pool  # noqa: E402
from nnet.kernels import conv as kconv  # noqa: E402
from nnet.kernels import linear as klinear  # noqa: E402


@contextmanager
def patched(settings: list[tuple[Any, str, Any]]) -> Iterator[None]:
    saved = [(m, name, getattr(m, name)) for m, name, _ in settings]
    for m, name, value in settings:
        setattr(m, name, value)
    try:
        yield
    finally:
        for m, name, value in saved:
            setattr(m, name, value)


def median_ms(step: Callable[[], object], seconds: float = 0.3) -> float:
    step()  # warm-up
    times: list[float] = []
    end = time.perf_counter() + seconds
    while len(times) < 5 or time.perf_counter() < end:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def fwd_bwd(fn: Callable[..., Any], *arrays: np.ndarray) -> Callable[[], object]:
    ts = [nnet.Tensor(a, requires_grad=True) for a in arrays]

    def step() -> object:
        y = fn(*ts)
        return nnet.grad(y, ts, np.ones(y.shape, y.dtype))

    return step


#: Rounds per case, the sides' order reversed every other round; each side's figure is the median
#: of its rounds' medians (``--rounds``).
ROUNDS = 1


def compare(case: str, step: Callable[[], Callable[[], object]],
            sides: dict[str, list[tuple[Any, str, Any]]], picked: str) -> None:  # fmt: skip
    rounds: dict[str, list[float]] = {side: [] for side in sides}
    for r in range(ROUNDS):
        for side in list(sides) if r % 2 == 0 else list(sides)[::-1]:
            with patched(sides[side]):
                rounds[side].append(median_ms(step()))
            time.sleep(0.2)
    times = {side: statistics.median(ms) for side, ms in rounds.items()}
    best = min(times, key=lambda s: times[s])
    shown = "  ".join(f"{s} {t:8.2f}" for s, t in times.items())
    print(f"  {case:<28} {shown}   faster: {best:<10} constant picks: {picked}")


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def winograd() -> None:
    """conv.WINOGRAD_MIN_CHANNELS / _PRODUCT / _PIXELS: Winograd's F(2x2, 3x3) against im2col."""
    off = [(kconv, "WINOGRAD_MIN_CHANNELS", 10**9)]
    on = [
        (kconv, n, 0)
        for n in ("WINOGRAD_MIN_CHANNELS", "WINOGRAD_MIN_PRODUCT", "WINOGRAD_MIN_PIXELS")
    ]
    for n, hw, cin, cout in [(64, 14, 32, 64), (64, 14, 32, 32), (8, 14, 32, 32), (64, 14, 16, 64),
                             (64, 14, 16, 16), (16, 7, 32, 32), (64, 28, 32, 64), (4, 8, 16, 16),
                             (16, 7, 64, 64), (64, 14, 64, 16), (64, 14, 16, 8),
                             (16, 14, 16, 16), (64, 14, 16, 4), (64, 14, 16, 1)]:  # fmt: skip
        x = _rng().random((n, hw, hw, cin), dtype=np.float32)
        w = _rng().random((3, 3, cin, cout), dtype=np.float32)
        geo = F.conv_geometry(nnet.Tensor(x), nnet.Tensor(w), 1, "same", 1)
        picked = "winograd" if kconv.takes_winograd(x.shape, w.shape, geo) else "im2col"
        compare(f"{n}x{hw}x{hw} {cin}->{cout}", lambda x=x, w=w: fwd_bwd(F.conv2d, x, w),
                {"im2col": off, "winograd": on}, picked)  # fmt: skip


def chunk_rows() -> None:
    """conv.CHUNK_ROWS: rows of the patch matrix per block (the conv2d benchmark's shape)."""
    x = _rng().random((64, 32, 32, 32), dtype=np.float32)
    w = _rng().random((3, 3, 32, 64), dtype=np.float32)
    no_winograd = (kconv, "WINOGRAD_MIN_CHANNELS", 10**9)
    sides = {
        str(r): [no_winograd, (kconv, "CHUNK_ROWS", r)] for r in (1024, 2048, 4096, 8192, 65536)
    }
    compare(
        "64x32x32 32->64, im2col", lambda: fwd_bwd(F.conv2d, x, w), sides, str(kconv.CHUNK_ROWS)
    )


def column_major() -> None:
    """im2col.COLUMN_MAJOR_BELOW: channel-major patches for few channels, row-major for many."""
    for cin in (1, 4, 8, 16, 32):
        x = _rng().random((64, 28, 28, cin), dtype=np.float32)
        w = _rng().random((3, 3, cin, 16), dtype=np.float32)
        sides = {
            "channel-major": [(im2col, "COLUMN_MAJOR_BELOW", 10**9), (kconv, "COLUMN_MAJOR_BELOW", 10**9),
                              (kconv, "WINOGRAD_MIN_CHANNELS", 10**9)],
            "row-major": [(im2col, "COLUMN_MAJOR_BELOW", 0), (kconv, "COLUMN_MAJOR_BELOW", 0),
                          (kconv, "WINOGRAD_MIN_CHANNELS", 10**9)],
        }  # fmt: skip
        picked = "channel-major" if cin < im2col.COLUMN_MAJOR_BELOW else "row-major"
        compare(f"64x28x28 {cin}->16", lambda x=x, w=w: fwd_bwd(F.conv2d, x, w), sides, picked)


def pixel_bytes() -> None:
    """bnpool.MIN_PIXEL_BYTES: batch norm + ReLU + pool as one kernel against three ops."""
    for shape in [
        (100, 28, 28, 4),
        (100, 14, 14, 8),
        (8, 8, 8, 16),
        (64, 28, 28, 32),
        (64, 14, 14, 64),
    ]:
        x = _rng().random(shape, dtype=np.float32)

        def step(x: np.ndarray = x) -> Callable[[], object]:
            return fwd_bwd(
                lambda t: F.batch_norm_relu_max_pool2d(t, None, None, None, None, 0.1, 1e-5, 2), x
            )

        picked = "fused" if shape[3] * 4 >= bnpool.MIN_PIXEL_BYTES else "three ops"
        sides = {
            "fused": [(bnpool, "MIN_PIXEL_BYTES", 0)],
            "three ops": [(bnpool, "MIN_PIXEL_BYTES", 10**9)],
        }
        compare("x".join(map(str, shape)), step, sides, picked)


def pool_layout() -> None:
    """pool._OFFSET_MAJOR_MAX_BYTES: max-pool over an offset-major copy against strided slices."""
    for c in (4, 8, 16, 32):
        x = _rng().random((64, 28, 28, c), dtype=np.float32)
        sides = {
            "offset-major": [(pool, "_OFFSET_MAJOR_MAX_BYTES", 10**9)],
            "strided": [(pool, "_OFFSET_MAJOR_MAX_BYTES", 0)],
        }
        picked = "offset-major" if c * 4 <= pool._OFFSET_MAJOR_MAX_BYTES else "strided"
        compare(
            f"64x28x28x{c}", lambda x=x: fwd_bwd(lambda t: F.max_pool2d(t, 2), x), sides, picked
        )


def linear_split() -> None:
    """linear.SPLIT_MACS: the VJP's two products on two threads at once against one after the
    other (meaningful only with two or more threads)."""
    for n, fin, fout in [(100, 392, 196), (128, 784, 256), (64, 3136, 128), (32, 392, 196),
                         (100, 196, 10), (16, 784, 256)]:  # fmt: skip
        x = _rng().random((n, fin), dtype=np.float32)
        w = _rng().random((fin, fout), dtype=np.float32)
        picked = "split" if n * fin * fout >= klinear.SPLIT_MACS else "one thread"
        sides = {
            "split": [(klinear, "SPLIT_MACS", 0)],
            "one thread": [(klinear, "SPLIT_MACS", 10**18)],
        }
        compare(f"{n}x{fin}->{fout}", lambda x=x, w=w: fwd_bwd(F.linear, x, w), sides, picked)


def small_product() -> None:
    """threads.SMALL_PRODUCT_MACS: a product of fewer multiply-adds runs on one BLAS thread, a larger
    one on all (meaningful only with two or more threads). The case is a linear layer and a ReLU,
    forward + backward, so that the passes after each product read what its threads wrote."""
    from nnet import threads

    for n, fin, fout in [(100, 196, 10), (100, 128, 128), (64, 256, 128), (32, 392, 196),
                         (100, 256, 128), (100, 392, 98), (100, 392, 196), (100, 784, 196),
                         (128, 784, 256)]:  # fmt: skip
        x = _rng().random((n, fin), dtype=np.float32)
        w = _rng().random((fin, fout), dtype=np.float32)
        macs = n * fin * fout
        picked = "one" if macs < threads.SMALL_PRODUCT_MACS else "all"
        sides = {
            "one": [(threads, "SMALL_PRODUCT_MACS", 10**18)],
            "all": [(threads, "SMALL_PRODUCT_MACS", 0)],
        }
        compare(f"{n}x{fin}->{fout} ({macs / 2**20:.2f}M)",
                lambda x=x, w=w: fwd_bwd(lambda a, b: F.relu(F.linear(a, b)), x, w),
                sides, picked)  # fmt: skip


def patch_rows() -> None:
    """convbn.PATCH_ROWS: the patch matrix of a first block (its input takes no gradient) padded
    with zero rows or not, in the three layer orders; time it at the default threads too."""
    from nnet import nn
    from nnet.kernels import convbn

    orders = {"conv-bn-relu-pool": ("bn", "relu", "pool"), "conv-relu-pool": ("relu", "pool"),
              "conv-relu-bn-pool": ("relu", "bn", "pool")}  # fmt: skip
    x = nnet.Tensor(_rng().random((64, 28, 28, 1), dtype=np.float32))
    for name, order in orders.items():

        def step(order: tuple[str, ...] = order) -> Callable[[], object]:
            layers = {
                "bn": lambda: nn.BatchNorm2d(32),
                "relu": nn.ReLU,
                "pool": lambda: nn.MaxPool2d(2),
            }
            model = nn.Sequential(nn.Conv2d(1, 32, 3), *[layers[k]() for k in order])
            params = list(model.parameters())

            def run() -> object:
                y = model(x)
                return nnet.grad(y, params, np.ones(y.shape, y.dtype))

            return run

        sides = {"10 rows": [(convbn, "PATCH_ROWS", 0)], "16 rows": [(convbn, "PATCH_ROWS", 16)]}
        padded = nnet.get_num_threads() > 1  # one thread: one block, never padded
        picked = f"{max(10, convbn.PATCH_ROWS) if padded else 10} rows"
        compare(f"64x28x28 1->32 {name}", step, sides, picked)


def _model_step(model: Any, x: nnet.Tensor) -> Callable[[], object]:
    """A forward and backward of ``model`` on ``x``: the parameters' gradients of sum(output)."""
    params = list(model.parameters())

    def run() -> object:
        y = model(x)
        return nnet.grad(y, params, np.ones(y.shape, y.dtype))

    return run


def channels_first() -> None:
    """convrelu.CHANNELS_FIRST_BELOW: conv-relu-pool on the patch path (a first block) with the
    output channels first (patchpool.py) or as offset planes of pixels."""
    from nnet import nn
    from nnet.kernels import convrelu

    x = nnet.Tensor(_rng().random((64, 28, 28, 1), dtype=np.float32))
    for cout in (4, 8, 16, 32):

        def step(cout: int = cout) -> Callable[[], object]:
            return _model_step(nn.Sequential(nn.Conv2d(1, cout, 3), nn.ReLU(), nn.MaxPool2d(2)), x)

        sides = {
            "channels first": [(convrelu, "CHANNELS_FIRST_BELOW", 10**9)],
            "offset planes": [(convrelu, "CHANNELS_FIRST_BELOW", 0)],
        }
        first = cout < convrelu.CHANNELS_FIRST_BELOW
        picked = "channels first" if first else "offset planes"
        compare(f"64x28x28 1->{cout}", step, sides, picked)


def shifted_planes() -> None:
    """patchpool.SHIFTED_MAX_BLOCKS: a one-channel first block with few output channels (the seed's)
    from shifted planes or from patches, when its images run in several blocks (time it at the
    default threads: at one thread there is one block and the shifted planes always run)."""
    from nnet import nn
    from nnet.kernels import patchpool

    for n, cout, bn in [(100, 4, True), (100, 4, False), (256, 4, True), (64, 2, True)]:
        x = nnet.Tensor(_rng().random((n, 28, 28, 1), dtype=np.float32))

        def step(cout: int = cout, bn: bool = bn, x: nnet.Tensor = x) -> Callable[[], object]:
            layers = [nn.Conv2d(1, cout, 3), nn.ReLU(), nn.MaxPool2d(2)]
            return _model_step(nn.Sequential(*layers, *([nn.BatchNorm2d(cout)] if bn else [])), x)

        sides = {
            "shifted": [(patchpool, "SHIFTED_MAX_BLOCKS", 2**30)],
            "patches": [(patchpool, "SHIFTED_MAX_BLOCKS", 1)],
        }
        picked = "shifted" if nnet.get_num_threads() <= patchpool.SHIFTED_MAX_BLOCKS else "patches"
        name = f"{n}x28x28 1->{cout} relu-pool{'-bn' if bn else ''}"
        compare(name, step, sides, picked)


THRESHOLDS = {
    "winograd": winograd,
    "chunk_rows": chunk_rows,
    "column_major": column_major,
    "pixel_bytes": pixel_bytes,
    "pool_layout": pool_layout,
    "linear_split": linear_split,
    "small_product": small_product,
    "patch_rows": patch_rows,
    "channels_first": channels_first,
    "shifted_planes": shifted_planes,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME",
        help=f"thresholds to measure (default all): {', '.join(THRESHOLDS)}",
    )  # fmt: skip
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS,
        help="rounds per case, the sides alternating (default %(default)s); more where sides are close",
    )  # fmt: skip
    args = parser.parse_args(argv)
    globals()["ROUNDS"] = max(1, args.rounds)
    unknown = [n for n in args.names if n not in THRESHOLDS]
    if unknown:
        parser.error(
            f"unknown threshold(s) {', '.join(unknown)}; choose from {', '.join(THRESHOLDS)}"
        )
    print(f"threads: {nnet.get_num_threads()}; float32; forward + backward, median ms")
    for name in args.names or THRESHOLDS:
        print(f"== {name}: {(THRESHOLDS[name].__doc__ or '').strip()}")
        THRESHOLDS[name]()


if __name__ == "__main__":
    main()
