"""Run the suite: ``python -m benchmarks`` or ``python benchmarks/run.py``.

Options: ``--quick`` (fewer, shorter rounds), ``--json PATH`` (results for ``compare.py``),
``--only NAME[,NAME]`` (a subset; ``--list`` shows the names), ``--threads 1,default`` (the suite once per
thread setting, each in a subprocess, then one table with the ratios of every setting side by side;
threads_table.py). Each benchmark prints its own figures as it finishes; one combined table follows at
the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import benchmarks  # noqa: F401  (pins the thread pools before NumPy loads)

import argparse
import importlib
import os
import time

from benchmarks import threads_table
from benchmarks.results import LEGEND, Row, print_row, table, write_json
from benchmarks.timing import (
    CONTENDED,
    Config,
    blas_check,
    describe_error,
    ensure_repo_on_path,
    machine_info,
    warnings_for,
)

ensure_repo_on_path()

#: The table of issue 5, in order.
BENCHMARKS = (
    "overhead",
    "mlp_step",
    "seed_cnn_step",
    "wide_cnn_step",
    "layer_orders",
    "conv2d",
    "mnist_epoch",
    "deep_chain",
    "memory",
    "eval_throughput",
    "onnx_throughput",
    "loader_workers",
)


def _header(info: dict) -> str:
    blas = info.get("blas")
    blas_s = (
        ", ".join(
            f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')}, "
            f"{b.get('num_threads')} threads)"
            for b in blas
        )
        if blas
        else "BLAS details need threadpoolctl"
    )
    torch_s = (
        f"PyTorch {info['torch']} ({info.get('torch_threads')} threads)"
        if info.get("torch")
        else f"PyTorch n/a: {info.get('torch_missing')}"
    )
    lines = [
        f"nnet benchmarks  {info['date']}  commit {info.get('commit')}"
        + (" (with uncommitted changes)" if info.get("dirty") else ""),
        f"{info['cpu']}, {info['cores']} cores; threads pinned to {info['threads']} for every side",
        f"Python {info['python']}, NumPy {info['numpy']} [{blas_s}], {torch_s}, nnet {info.get('nnet')}",
    ]
    check = info.get("blas_check")
    if check and info["threads"] > 1:
        lines.append(
            f"BLAS check: 512x512 f32 matmul {check['gflops_all_threads']:.0f} GFLOP/s with "
            f"{info['threads']} threads, {check['gflops_one_thread']:.0f} with 1"
        )
    elif check:
        lines.append(f"BLAS check: 512x512 f32 matmul {check['gflops_one_thread']:.0f} GFLOP/s")
    lines += [f"WARNING: {w}" for w in warnings_for(info)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (noisier)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="run only these benchmarks")
    parser.add_argument(
        "--rounds", type=int, metavar="N", help="rounds per benchmark (default 5, quick 2)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--threads",
        metavar="N|default[,...]",
        help="run the suite once per setting (e.g. 1,default), each in a subprocess, and print the "
        "ratios of every setting side by side; --json PATH then writes one file per setting",
    )
    args = parser.parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            mod = importlib.import_module(f"benchmarks.{name}")
            print(f"{name:<16} {mod.TITLE}")
        return 0
    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            parser.error(
                f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
            )
    if args.threads is not None:
        try:
            settings = threads_table.parse_settings(args.threads)
        except ValueError as exc:
            parser.error(str(exc))
        return threads_table.run_settings(
            settings, sys.argv[1:] if argv is None else argv, args.json
        )
    cfg = Config.make(args.quick)
    if args.rounds:
        cfg.rounds = args.rounds
    info = machine_info()
    info["quick"] = args.quick
    print(_header(info))
    print(
        f"protocol: {cfg.rounds} rounds, side order rotated; per block {cfg.warmup} warm-up steps, then "
        f">= {cfg.min_steps} steps (~{cfg.block_seconds} s); {cfg.switch_sleep} s pause between sides\n"
    )
    rows: list[Row] = []
    t_start = time.perf_counter()
    for name in names:
        mod = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}: {mod.TITLE}", flush=True)
        t0 = time.perf_counter()
        try:
            got = mod.run(cfg)
        except Exception as exc:  # one broken benchmark must not hide the others
            print(f"  failed: {describe_error(exc)}\n", flush=True)
            rows.append(Row(name, "failed", "-", notes={"nnet": describe_error(exc)}))
            continue
        for row in got:
            print_row(row)
        elapsed = time.perf_counter() - t0
        note = f"{elapsed:.0f} s"
        if hasattr(os, "getloadavg"):
            note += f", load average {os.getloadavg()[0]:.1f}"
        check = blas_check(0.2) if info["threads"] > 1 else None
        if check:
            ratio = check["gflops_all_threads"] / check["gflops_one_thread"]
            note += f", BLAS {info['threads']} threads / 1 thread {ratio:.2f}x"
            if ratio < CONTENDED:
                note += ": CONTENDED, figures unreliable"
                for row in got:
                    row.contended = True
        for row in got:
            row.detail["blas_check"] = check
        print(f"  ({note})\n", flush=True)
        rows.extend(got)
    print(table(rows))
    print()
    print(LEGEND)
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if args.json:
        write_json(args.json, info, rows, sys.argv)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
