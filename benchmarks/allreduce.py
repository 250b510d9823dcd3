"""allreduce: MPI Allreduce time against message size, and what overlapping it with the backward buys.

Run under ``mpiexec -n 2`` (the script relaunches itself so when started plainly):

* Allreduce (sum, float32, in place) of 1 to 4M floats: median of many calls, each after a barrier;
  a least-squares fit of ``t = alpha + beta * bytes`` gives the latency and the inverse bandwidth
  that docs/distributed.md's scaling model uses (for two ranks a ring all-reduce moves each byte
  once each way: ``2 (P-1)/P = 1``);
* the seed CNN (batch 50 per rank, SyncBatchNorm) and the wide CNN (batch 32 per rank, local batch
  norm: it has no fused SyncBatchNorm path) training steps under DistributedDataParallel with small
  buckets (started during the backward), with one bucket (sent after the backward), and without
  communication (each rank steps alone: nothing averaged, local batch norm): the mean step time of
  a timed block, so that steps in which a rank lost its core count (see step_times).

    python -m benchmarks.allreduce [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = [4**k for k in range(12)]  # 1 .. 4,194,304 floats


def allreduce_sweep(comm, MPI) -> list[dict[str, float]]:
    out = []
    for n in SIZES:
        buf = np.ones(n, np.float32)
        reps = max(10, min(400, 2_000_000 // max(n, 1)))
        times = []
        for _ in range(reps):
            comm.Barrier()
            t = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append(time.perf_counter() - t)
        # the slowest rank's time is the collective's time
        med = comm.allreduce(statistics.median(times), op=MPI.MAX)
        out.append({"floats": n, "bytes": 4 * n, "seconds": med})
    return out


def fit(points: list[dict[str, float]]) -> tuple[float, float]:
    """alpha (s) and beta (s per byte) of ``t = alpha + beta * bytes``, least squares weighted
    by 1/t so that small and large messages count alike."""
    b = np.array([p["bytes"] for p in points])
    t = np.array([p["seconds"] for p in points])
    w = 1 / t
    a = np.stack([np.ones_like(b), b], axis=1) * w[:, None]
    alpha, beta = np.linalg.lstsq(a, t * w, rcond=None)[0]
    return float(alpha), float(beta)


def step_times(kind: str, comm) -> dict[str, float]:
    """Median training-step time of ``kind`` per communication mode (every rank steps alike)."""
    import nnet
    from benchmarks import nnet_models
    from nnet import distributed, nn

    rng = np.random.default_rng(comm.Get_rank())
    batch = 50 if kind == "seed" else 32
    x = nnet.Tensor(rng.random((batch, 28, 28, 1), dtype=np.float32))
    y = nnet.Tensor(rng.integers(0, 10, batch))
    loss_fn = nn.CrossEntropyLoss()
    result = {}
    for mode, cap in (
        ("overlapped buckets", 0.02),
        ("one bucket", 1000.0),
        ("no communication", 0),
    ):
        nnet.manual_seed(0)
        net = nnet_models.seed_cnn() if kind == "seed" else nnet_models.wide_cnn()
        if kind == "seed" and cap:
            net = distributed.convert_sync_batchnorm(net)
        model = distributed.DistributedDataParallel(net, bucket_cap_mb=cap) if cap else net
        opt = nnet.optim.Adam(model.parameters(), lr=1e-3)
        steps = 60 if kind == "seed" else 25
        times = []
        for i in range(steps + 5):
            if i == 5:  # after the warm-up: one block, timed whole
                distributed.barrier()
                start = time.perf_counter()
            t = time.perf_counter()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            times.append(time.perf_counter() - t)
        distributed.barrier()
        # The figure is the block's mean step: on a shared machine a median of steps hides the
        # steps in which a rank lost its core, and with collectives every rank waits for the
        # slowest, so those steps are what communication costs here. The median of the steps
        # without communication stands for the computation on an idle core (scaling_model.py).
        result[mode] = (time.perf_counter() - start) / steps
        result[f"{mode} median"] = statistics.median(times[5:])
        if cap:
            result[f"{mode} buckets"] = len(model._buckets)
        time.sleep(0.3)
    params = sum(p.numel() for p in net.parameters())
    result["gradient floats"] = params
    return result


def worker(json_path: str | None) -> None:
    from mpi4py import MPI

    os.environ.setdefault("NNET_NUM_THREADS", "1")
    comm = MPI.COMM_WORLD
    sweep = allreduce_sweep(comm, MPI)
    alpha, beta = fit(sweep)
    steps = {kind: step_times(kind, comm) for kind in ("seed", "wide")}
    if comm.Get_rank() != 0:
        return
    print(
        f"Allreduce, {comm.Get_size()} ranks, float32 sum in place (median; shared 2-core machine)"
    )
    print(f"{'floats':>9} {'bytes':>10} {'us':>10} {'GB/s':>7}")
    for p in sweep:
        rate = p["bytes"] / p["seconds"] / 1e9
        print(f"{p['floats']:9d} {p['bytes']:10d} {p['seconds'] * 1e6:10.1f} {rate:7.2f}")
    print(f"fit t = alpha + beta * bytes: alpha = {alpha * 1e6:.1f} us, "
          f"1/beta = {1 / beta / 1e9:.2f} GB/s")  # fmt: skip
    for kind, r in steps.items():
        print(f"\n{kind} CNN step, {r['gradient floats']} gradient floats:")
        for mode in ("no communication", "one bucket", "overlapped buckets"):
            extra = f" ({r[mode + ' buckets']} buckets)" if mode + " buckets" in r else ""
            median = r[mode + " median"] * 1e3
            print(f"  {mode:20} {r[mode] * 1e3:7.2f} ms mean step (median {median:.2f}){extra}")
    if json_path:
        figures = {"sweep": sweep, "alpha_s": alpha, "beta_s_per_byte": beta, "steps": steps}
        Path(json_path).write_text(json.dumps(figures, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("-n", type=int, default=2, help="ranks (default 2)")
    args = parser.parse_args()
    if any(v in os.environ for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")):
        worker(args.json)
        return
    beside = Path(sys.executable).parent / "mpiexec"
    cmd = [str(beside) if beside.exists() else "mpiexec", "-n", str(args.n), sys.executable,
           "-m", "benchmarks.allreduce"] + (["--json", args.json] if args.json else [])  # fmt: skip
    sys.exit(subprocess.run(cmd, env={**os.environ, "NNET_NUM_THREADS": "1"}).returncode)


if __name__ == "__main__":
    main()
