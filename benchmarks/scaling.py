"""How a training step's cost grows with batch size, image size and channels (issue 5, "Scale").

``python -m benchmarks.scaling [--quick] [--plot scaling.png] [--json PATH] [--sides nnet,numpy,torch]``

The network is the wide CNN of wide_cnn_step.py (conv3x3-bn-relu-pool twice, linear -> 128 -> 10,
Adam), varied one factor at a time around batch 64, 28x28 images, 32/64 channels:
- batch size 16 ... 256 (work grows linearly: time per image should stay flat);
- image size 14 ... 112 pixels square (work grows with the pixel count, 4x per doubling);
- channels 8/16 ... 64/128 (the second convolution's work grows with C1 * C2, 4x per doubling).

Each point is timed like the suite (blocks per side, pauses, median). For the NumPy-based sides (nnet
and the floor) it also records the peak memory held in NumPy arrays during one step (tracemalloc sees
NumPy's allocations; PyTorch's it does not) and from the batch sweep fits memory = fixed + per-image x
batch, giving the largest batch that fits the machine's memory. It prints a table and, when
matplotlib is importable, draws the curves into ``--plot``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import benchmarks  # noqa: F401  (pins the thread pools before NumPy loads)

import argparse
import json
import os
import tracemalloc
from typing import Any

import numpy as np

from benchmarks.common import batch, training_sides
from benchmarks.timing import Config, machine_info, measure, warnings_for

BASE = {"batch": 64, "image": 28, "channels": (32, 64)}
SWEEPS = {
    "batch": [16, 32, 64, 128, 256],
    "image": [14, 28, 56, 112],
    "channels": [(8, 16), (16, 32), (32, 64), (64, 128)],
}
QUICK_SWEEPS = {
    "batch": [16, 64, 256],
    "image": [14, 28, 56],
    "channels": [(8, 16), (32, 64), (64, 128)],
}
MEMORY_BYTES = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
# Share of physical memory the step's arrays may use; the rest is the process and allocator slack.
HEADROOM = 0.75


def _peak_array_mb(setup: Any) -> float:
    """Peak NumPy-array memory (MB) over building the model and two steps: parameters, optimizer
    state, buffers kept between steps, activations, gradients and temporaries."""
    tracemalloc.start()
    try:
        step = setup()
        step()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def point(
    b: int, image: int, channels: tuple[int, int], sides_wanted: list[str], cfg: Config
) -> dict:
    x, y = batch((b, image, image, 1))
    sides, why = training_sides("wide_cnn", x, y, "adam", 1e-3, channels=channels, image=image)
    sides = {k: v for k, v in sides.items() if k in sides_wanted}
    measured = measure(sides, cfg, unavailable=why)
    out: dict[str, Any] = {
        "batch": b,
        "image": image,
        "channels": list(channels),
        "ms": {},
        "mb": {},
    }
    for side, m in measured.items():
        out["ms"][side] = m.stats.median * 1e3 if m.stats else None
        if m.error:
            out.setdefault("errors", {})[side] = m.error
        if side in ("nnet", "numpy") and m.stats:
            out["mb"][side] = _peak_array_mb(sides[side])
    return out


def _fit(points: list[dict], side: str) -> tuple[float, float] | None:
    """Least-squares memory = a + b * batch over the batch sweep, for one side."""
    xs = [p["batch"] for p in points if p["mb"].get(side) is not None]
    ys = [p["mb"][side] for p in points if p["mb"].get(side) is not None]
    if len(xs) < 2:
        return None
    slope, icept = np.polyfit(xs, ys, 1)
    return float(icept), float(slope)


def _fmt(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}"


def report(results: dict[str, list[dict]], sides: list[str]) -> str:
    lines = []
    for sweep, points in results.items():
        lines.append(f"\n{sweep} sweep (others at batch 64, 28x28, channels 32/64)")
        head = f"{'batch':>6} {'image':>6} {'channels':>9}"
        for s in sides:
            head += f" {s + ' ms':>11} {s + ' us/img':>13}"
        for s in ("nnet", "numpy"):
            if s in sides:
                head += f" {s + ' MB':>10}"
        lines.append(head)
        for p in points:
            row = f"{p['batch']:>6} {p['image']:>6} {'/'.join(map(str, p['channels'])):>9}"
            for s in sides:
                ms = p["ms"].get(s)
                row += f" {_fmt(ms):>11} {_fmt(ms * 1e3 / p['batch'] if ms else None, 0):>13}"
            for s in ("nnet", "numpy"):
                if s in sides:
                    row += f" {_fmt(p['mb'].get(s)):>10}"
            lines.append(row)
            for s, e in p.get("errors", {}).items():
                lines.append(f"       {s}: {e}")
    budget = MEMORY_BYTES * HEADROOM / 2**20
    lines.append(
        f"\nlargest batch in {MEMORY_BYTES / 2**30:.0f} GiB (peak NumPy-array memory of one step, "
        f"budget {HEADROOM:.0%} = {budget:,.0f} MB; a linear fit over the batch sweep at 28x28):"
    )
    for s in ("nnet", "numpy"):
        fit = _fit(results.get("batch", []), s) if s in sides else None
        if fit is None:
            continue
        a, b = fit
        lines.append(
            f"  {s}: {a:.1f} MB + {b:.3f} MB per image -> about {int((budget - a) / b):,} images "
            "per batch for the 32/64-channel network at 28x28"
        )
        seen = set()
        for p in results.get("channels", []) + results.get("image", []):
            key = (p["image"], tuple(p["channels"]))
            if key in seen:
                continue
            seen.add(key)
            mb = p["mb"].get(s)
            if mb:
                per = mb / p["batch"]
                lines.append(
                    f"     channels {'/'.join(map(str, p['channels']))}, {p['image']}x{p['image']}: "
                    f"{per:.2f} MB per image -> about {int(budget / per):,} images per batch"
                )
    return "\n".join(lines)


def plot(results: dict[str, list[dict]], sides: list[str], path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not importable: no plot"
    fig, axes = plt.subplots(1, len(results), figsize=(4.4 * len(results), 4), squeeze=False)
    xlabel = {
        "batch": ("batch size", lambda p: p["batch"]),
        "image": ("image side (pixels)", lambda p: p["image"]),
        "channels": ("second conv channels (first = half)", lambda p: p["channels"][1]),
    }
    for ax, (sweep, points) in zip(axes[0], results.items(), strict=True):
        label, key = xlabel[sweep]
        xs = [key(p) for p in points]
        for s in sides:
            ys = [p["ms"].get(s) for p in points]
            if any(v is not None for v in ys):
                ax.plot(xs, [np.nan if v is None else v for v in ys], "o-", label=s)
        # the ideal growth, through the first measured point of the first side: linear in the
        # batch, quadratic in the image side and in the channels (per doubling: 2x and 4x)
        first = next((points[0]["ms"][s] for s in sides if points[0]["ms"].get(s)), None)
        if first:
            power = 1 if sweep == "batch" else 2
            ideal = [first * (x / xs[0]) ** power for x in xs]
            ax.plot(xs, ideal, "k--", lw=0.8, label=f"ideal (x^{power})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel(label)
        ax.set_ylabel("ms per training step")
        ax.set_title(f"wide CNN step vs {sweep}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.scaling", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--plot", metavar="PATH.png")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--sides", default="nnet,numpy,torch")
    ap.add_argument("--only", default="batch,image,channels", help="sweeps to run")
    args = ap.parse_args(argv)
    sides = [s for s in args.sides.split(",") if s]
    cfg = Config.make(args.quick)
    cfg.rounds = 1 if args.quick else 3
    info = machine_info()
    for w in warnings_for(info):
        print(f"WARNING: {w}")
    sweeps = QUICK_SWEEPS if args.quick else SWEEPS
    results: dict[str, list[dict]] = {}
    for sweep in [s for s in args.only.split(",") if s]:
        results[sweep] = []
        for v in sweeps[sweep]:
            kw = dict(BASE)
            kw[sweep] = tuple(v) if isinstance(v, tuple | list) else v
            print(f"  {sweep}={v} ...", flush=True)
            results[sweep].append(point(kw["batch"], kw["image"], kw["channels"], sides, cfg))
    print(report(results, sides))
    if args.plot:
        err = plot(results, sides, args.plot)
        print(err or f"plot written to {args.plot}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": info, "results": results}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
