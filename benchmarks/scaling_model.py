"""scaling_model: predicted data-parallel speed-ups beyond one machine, from measured figures.

Reads the JSON files that ``python -m benchmarks.allreduce --json FILE`` writes (Allreduce times by
message size, each network's compute time per step without communication, and its gradient size).
On a shared machine every run is slowed by other work by a different amount, so it takes, over all
the files given, the least time for each message size (then fits the latency alpha and inverse
bandwidth beta) and the least compute time per step: the estimates of what idle cores do. It
prints, for P = 2, 8, 64 nodes, one rank each and a fixed batch per rank (weak scaling, DDP's
usual use), the time per step

    t(P) = t_compute + ring(P, gradient bytes) + syncbn(P)
    ring(P, S)  = 2 (P - 1) alpha + 2 (P - 1) / P * S * beta       (reduce-scatter + all-gather)
    syncbn(P)   = 2 L * ceil(log2 P) * alpha                       (L batch norms: tiny messages)

and the speed-up ``P t_compute / t(P)`` in throughput, with no overlap of communication and
computation (what MPICH without a progress thread gives; see docs/distributed.md). The second
set of columns replaces the measured shared-memory alpha and beta with a 10 Gb/s Ethernet
(alpha = 50 us, 1.1 GB/s), an assumption for a commodity cluster, not a measurement.

    python -m benchmarks.scaling_model run1.json [run2.json ...]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from benchmarks.allreduce import fit

NODES = (2, 8, 64)
ETHERNET = (50e-6, 1 / 1.1e9)  # alpha (s), beta (s per byte): assumed, not measured
BATCH_NORMS = {"seed": 2, "wide": 0}  # the wide CNN's runs use local batch norm (allreduce.py)


def step_time(t_compute: float, grad_bytes: float, p: int, alpha: float, beta: float,
              batch_norms: int) -> float:  # fmt: skip
    ring = 2 * (p - 1) * alpha + 2 * (p - 1) / p * grad_bytes * beta
    syncbn = 2 * batch_norms * math.ceil(math.log2(p)) * alpha
    return t_compute + ring + syncbn


def crossover(t_compute: float, grad_bytes: float, alpha: float, beta: float, bn: int) -> int:
    """The smallest power-of-two node count at which communication outlasts computation."""
    p = 2
    while step_time(0.0, grad_bytes, p, alpha, beta, bn) < t_compute and p < 2**20:
        p *= 2
    return p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("figures", nargs="+", help="JSON files of python -m benchmarks.allreduce")
    args = parser.parse_args()
    runs = [json.loads(Path(f).read_text()) for f in args.figures]
    best: dict[int, float] = {}
    for run in runs:
        for point in run["sweep"]:
            b = point["bytes"]
            best[b] = min(best.get(b, float("inf")), point["seconds"])
    sweep = [{"bytes": b, "seconds": t} for b, t in sorted(best.items())]
    alpha, beta = fit(sweep)
    steps = {kind: dict(runs[0]["steps"][kind]) for kind in runs[0]["steps"]}
    for kind in steps:
        steps[kind]["no communication median"] = min(
            r["steps"][kind].get("no communication median", r["steps"][kind]["no communication"])
            for r in runs
        )
    print(f"measured (least of {len(runs)} runs): alpha = {alpha * 1e6:.1f} us, "
          f"1/beta = {1 / beta / 1e9:.2f} GB/s (shared memory, one machine); "
          f"assumed Ethernet: alpha = 50 us, 1.1 GB/s")  # fmt: skip
    for kind, step in steps.items():
        t_c = step["no communication median"]  # the computation on an idle core
        grad = 4 * step["gradient floats"]
        bn = BATCH_NORMS[kind]
        print(f"\n{kind} CNN: compute {t_c * 1e3:.2f} ms per step, gradient {grad / 1e6:.2f} MB")
        print(f"{'nodes':>6} {'step ms':>9} {'speed-up':>9} {'comm %':>7}   "
              f"{'step ms':>9} {'speed-up':>9} {'comm %':>7}  (Ethernet)")  # fmt: skip
        for p in NODES:
            cells = []
            for a, b in ((alpha, beta), ETHERNET):
                t = step_time(t_c, grad, p, a, b, bn)
                cells.append(f"{t * 1e3:9.2f} {p * t_c / t:8.1f}x {100 * (t - t_c) / t:6.0f}%")
            print(f"{p:6d} " + "   ".join(cells))
        print(f"communication outlasts computation from {crossover(t_c, grad, alpha, beta, bn)} "
              f"nodes (measured alpha, beta), {crossover(t_c, grad, *ETHERNET, bn)} (Ethernet)")  # fmt: skip


if __name__ == "__main__":
    main()
