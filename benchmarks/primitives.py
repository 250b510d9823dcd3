"""Where a training step's time goes, per primitive: every Function subclass's ``forward`` and
``vjp_arrays`` (and a few ``vjp``s that run unrecorded) wrapped in timers, inside whole training
steps of one of layer_orders' networks in ``Sequential``; the totals per step, split by the
primitive's input shape (so a network's two blocks show apart), largest first. Timers cost a few
microseconds per call, the same on both sides of an A/B: alternate fresh processes of two trees.

    python -m benchmarks.primitives crbp            # wide conv-relu-bn-pool, 60 steps
    python -m benchmarks.primitives crpb --steps 100
    python -m benchmarks.primitives seed            # the seed network (conv-relu-pool-bn)
    python -m benchmarks.primitives cbrp crpb crbp  # several in one process, steps interleaved

With several networks, one process builds them all and runs their steps in turn (the order reversed
every round), so each network's figures come from the same minutes: on a shared host whose speed
drifts by tens of percent from one process to the next, that compares orders (and their
primitives) where separate processes cannot.

Networks: cbrp, crpb, crbp (the wide CNN's orders, batch 64), seed (batch 100). The thread count
is nnet's (``NNET_NUM_THREADS``); the BLAS kernels the environment's.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks import layer_orders, nnet_models
from benchmarks.common import batch

#: name -> (order of the layers after each conv, channels, batch, dropout), as layer_orders.NETWORKS
NETWORKS = {
    "cbrp": (("bn", "relu", "pool"), (32, 64), 64, False),
    "crpb": (("relu", "pool", "bn"), (32, 64), 64, False),
    "crbp": (("relu", "bn", "pool"), (32, 64), 64, False),
    "seed": (("relu", "pool", "bn"), (4, 8), 100, True),
}

#: Classes whose ``vjp`` (not ``vjp_arrays``) is their array VJP too.
_TIMED_VJP = ("BatchNorm",)


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _shape(method: str, args: tuple[Any, ...], first: int) -> str:
    """The primitive's first input's shape without the batch axis (``first``: where the arrays
    start in a forward's arguments, after ``ctx`` or not)."""
    try:
        shape = args[first].shape if method == "forward" else args[0].inputs[0].data.shape
    except (AttributeError, IndexError, TypeError):
        return ""
    return "x".join(map(str, shape[1:]))


def instrument(totals: dict[str, float]) -> None:
    """Wrap every Function subclass's forward and array VJP so that each call adds its wall time
    to ``totals`` under "Class.method shape". A forward that is a ufunc or a staticmethod (no
    ``ctx``) stays one."""
    from nnet.autograd.function import Function

    for cls in list(_subclasses(Function)):
        for method in ("forward", "vjp_arrays", "vjp"):
            fn = cls.__dict__.get(method)
            if fn is None or (method == "vjp" and cls.__name__ not in _TIMED_VJP):
                continue
            bound = inspect.isfunction(fn)
            call = fn.__func__ if isinstance(fn, staticmethod) else fn

            def timed(*args: Any, _fn: Callable[..., Any] = call, _key: str = f"{cls.__name__}.{method}",
                      _method: str = method, _first: int = int(bound), **kwargs: Any) -> Any:  # fmt: skip
                start = time.perf_counter()
                try:
                    return _fn(*args, **kwargs)
                finally:
                    totals[f"{_key} {_shape(_method, args, _first)}"] += time.perf_counter() - start

            setattr(cls, method, timed if bound else staticmethod(timed))


def _build(network: str) -> Callable[[], Any]:
    import nnet

    order, channels, n, dropout = NETWORKS[network]
    x, y = batch((n, 28, 28, 1))
    nnet.manual_seed(0)
    model = layer_orders.nnet_sequential(order, channels, dropout)
    opt = nnet_models.optim().Adam(model.parameters(), lr=1e-3)
    return nnet_models.train_step(model, opt, *nnet_models.tensors(x, y))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", choices=sorted(NETWORKS), nargs="+")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    import nnet

    totals: dict[str, float] = collections.defaultdict(float)
    instrument(totals)
    networks = list(dict.fromkeys(args.network))
    steps = {name: _build(name) for name in networks}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in networks}
    per: dict[str, dict[str, float]] = {name: collections.defaultdict(float) for name in networks}
    for i in range(args.steps):
        for name in networks if i % 2 == 0 else networks[::-1]:
            totals.clear()
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
            for key, total in totals.items():
                per[name][key] += total
    info = nnet.threads.blas_info()
    for name in networks:
        print(
            f"{name}: {nnet.get_num_threads()} thread(s), BLAS kernels {info.get('core')}; "
            f"step median {1e3 * statistics.median(times[name]):.2f} ms over {args.steps} steps"
        )
        for key, total in sorted(per[name].items(), key=lambda kv: -kv[1]):
            if total / args.steps >= 5e-5:
                print(f"  {key:48s} {1e3 * total / args.steps:6.2f} ms")
        print(f"  {'all primitives':48s} {1e3 * sum(per[name].values()) / args.steps:6.2f} ms")


if __name__ == "__main__":
    main()
