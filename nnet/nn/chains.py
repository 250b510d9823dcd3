"""Resolving runs of pending layers (nnet/autograd/pending.py) with the kernel registry.

A define-by-run ``forward`` that calls ``conv``, ``bn``, ``nnet.relu`` and ``pool`` one at a time
leaves a chain of pending tensors, each holding its layer and its input. When the last one's value
is needed, :func:`resolve` walks the chain back to a computed tensor and runs it from there, the
longest runs first (``Sequential`` calls its layers inside its own call, so its runs fuse here
too):

* ``conv2d, batch_norm, relu, max_pool2d``, ``conv2d, relu, batch_norm, max_pool2d`` and
  ``conv2d, relu, max_pool2d, batch_norm`` (batch statistics);
* ``conv2d, relu, max_pool2d, sync_batch_norm`` (a SyncBatchNorm: conv-relu-pool-bn's kernel,
  its sums over the ranks);
* ``conv2d, relu, max_pool2d``;
* ``batch_norm, relu, max_pool2d`` (batch statistics);
* ``relu, max_pool2d``;

each only where the registry (nnet/kernels/registry.py, table in docs/kernels.md) has a kernel that
applies, and only over intermediate tensors that nothing else holds; anything else runs layer by
layer, by the same calls as the layers make when nothing is pending. Which kernel runs is the
registry's decision. A layer with hooks is not held back by them: a forward hook that reads its
output resolves the run up to it (which then ends there), and a backward hook's ops do the same.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from nnet.autograd.activation import Relu
from nnet.autograd.grad_mode import grad_enabled
from nnet.autograd.pending import Pending, Step, resolved, set_resolver, step_of
from nnet.autograd.tensor import Tensor
from nnet.kernels import registry
from nnet.kernels.batchnorm import BatchStats
from nnet.kernels.convpoolbn import ConvReluPoolBatchNorm
from nnet.kernels.mode import fused_enabled

Layers = tuple[str, ...]

CONV_BN_RELU_POOL = ("conv2d", "batch_norm", "relu", "max_pool2d")
CONV_RELU_BN_POOL = ("conv2d", "relu", "batch_norm", "max_pool2d")
CONV_RELU_POOL = ("conv2d", "relu", "max_pool2d")
CONV_RELU_POOL_BN = ("conv2d", "relu", "max_pool2d", "batch_norm")
CONV_RELU_POOL_SYNC_BN = ("conv2d", "relu", "max_pool2d", "sync_batch_norm")
BN_RELU_POOL = ("batch_norm", "relu", "max_pool2d")
RELU_POOL = ("relu", "max_pool2d")


def _refs(chain: list[Tensor], i: int) -> int:
    return sys.getrefcount(chain[i])


def _calibrate() -> int:
    """References to an intermediate that only its successor's step holds, seen from
    :func:`_held`'s call: the successor's ``src``, the chain list, the call's argument."""
    probe = Tensor._make(None, False, None)  # type: ignore[arg-type]
    holder = Step("relu", probe, (), (), None, False)  # type: ignore[arg-type]
    chain = [probe]
    del probe
    count = _refs(chain, 0)
    del holder
    return count


_UNHELD = _calibrate()


def _held(chain: list[Tensor], i: int) -> bool:
    """Whether something besides the next pending step holds ``chain[i]`` (a user's variable,
    another consumer's step, a container): then it is computed on its own."""
    return _refs(chain, i) > _UNHELD


def _plain_pool(step: Step) -> tuple[int, int] | None:
    k, s, pads, d = step.args
    return k if s == k and pads == ((0, 0), (0, 0)) and d == (1, 1) else None


def _update(step: Step, stats: BatchStats) -> None:
    """Batch norm's running statistics move once per step, however often it is computed."""
    if step.applied:
        return
    step.applied = True
    _, _, _, running_mean, running_var, momentum, n = step.args
    if running_mean is not None and running_var is not None:
        running_mean.data *= 1.0 - momentum
        running_mean.data += momentum * stats.mean
        running_var.data *= 1.0 - momentum
        running_var.data += momentum * (stats.var * (n / (n - 1)))


def _single(x: Tensor, step: Step) -> Tensor:
    """One layer, by the call the layer makes when nothing is pending."""
    layer, a = step.layer, step.args
    if layer == "conv2d":
        return registry.run(("conv2d",), x, *a)
    if layer == "batch_norm":
        stats = BatchStats()
        y = registry.run(("batch_norm",), x, a[0], a[1], a[2], stats)
        _update(step, stats)
        return y
    if layer == "relu":
        return Relu.apply(x)
    if layer == "sync_batch_norm":
        return a[0].step_alone(x, step)  # type: ignore[no-any-return]
    return registry.run(("max_pool2d",), x, *a)


def _conv_block(x: Tensor, steps: list[Step]) -> Tensor | None:
    """conv, batch norm, ReLU and pool, batch norm before or after the ReLU or after the pool."""
    conv = steps[0]
    pool = next(s for s in steps if s.layer == "max_pool2d")
    bn = next(s for s in steps if s.layer == "batch_norm")
    kernel = _plain_pool(pool)
    if kernel is None:
        return None
    weight, conv_bias, geo = conv.args
    stats = BatchStats()
    args = (x, weight, conv_bias, bn.args[0], bn.args[1], bn.args[2], stats, geo, kernel)
    chosen = registry.select(tuple(s.layer for s in steps), *args)
    if chosen is None:
        return None
    y = chosen.run(*args)
    _update(bn, stats)
    return y


def _conv_sync_block(x: Tensor, steps: list[Step]) -> Tensor | None:
    """conv, ReLU, pool and a SyncBatchNorm: conv-relu-pool-bn's kernel, with the statistics and
    their gradients summed over the ranks (the layer's ``block_stats``: ConvReluPoolBatchNorm
    takes them; the other kernels for these layers do not)."""
    conv, _, pool, bn = steps
    kernel = _plain_pool(pool)
    if kernel is None:
        return None
    weight, conv_bias, geo = conv.args
    layer = bn.args[0]
    stats = layer.block_stats()
    args = (x, weight, conv_bias, layer.weight, layer.bias, layer.eps, stats, geo, kernel)
    chosen = registry.select(CONV_RELU_POOL_BN, *args)
    if chosen is None or chosen.node is not ConvReluPoolBatchNorm:
        return None
    y = chosen.run(*args)
    layer.moved(stats, bn)
    return y


def _conv_relu_pool(x: Tensor, steps: list[Step]) -> Tensor | None:
    conv, _, pool = steps
    kernel = _plain_pool(pool)
    if kernel is None:
        return None
    args = (x, *conv.args, kernel)
    chosen = registry.select(CONV_RELU_POOL, *args)
    return None if chosen is None else chosen.run(*args)


def _bn_relu_pool(x: Tensor, steps: list[Step]) -> Tensor | None:
    bn, _, pool = steps
    kernel = _plain_pool(pool)
    if kernel is None:
        return None
    stats = BatchStats()
    args = (x, bn.args[0], bn.args[1], bn.args[2], stats, kernel)
    chosen = registry.select(BN_RELU_POOL, *args)
    if chosen is None:
        return None
    y = chosen.run(*args)
    _update(bn, stats)
    return y


def _relu_pool(x: Tensor, steps: list[Step]) -> Tensor | None:
    pool = steps[1]

    def run_pool(t: Tensor) -> Tensor:
        return registry.run(("max_pool2d",), t, *pool.args)

    chosen = registry.select(RELU_POOL, x, run_pool)
    return None if chosen is None else chosen.run(x, run_pool)


#: The runs tried at each position, longest first.
_RUNS: tuple[tuple[Layers, Callable[[Tensor, list[Step]], Tensor | None]], ...] = (
    (CONV_BN_RELU_POOL, _conv_block),
    (CONV_RELU_BN_POOL, _conv_block),
    (CONV_RELU_POOL_BN, _conv_block),
    (CONV_RELU_POOL_SYNC_BN, _conv_sync_block),
    (CONV_RELU_POOL, _conv_relu_pool),
    (BN_RELU_POOL, _bn_relu_pool),
    (RELU_POOL, _relu_pool),
)


#: The runs of ``_RUNS`` by their first layer, in the same order: a position tries only those.
_RUNS_FROM: dict[str, list[tuple[Layers, Callable[[Tensor, list[Step]], Tensor | None]]]] = {}
for _run in _RUNS:
    _RUNS_FROM.setdefault(_run[0][0], []).append(_run)


def _run_from(x: Tensor, steps: list[Step], names: list[str], i: int,
              held: list[bool]) -> tuple[int, Tensor]:  # fmt: skip
    """The first run of ``steps`` (layers ``names``) at ``i`` that a kernel computes, else the one
    layer there: (the index after it, its result)."""
    if fused_enabled.get():
        for layers, run in _RUNS_FROM.get(names[i], ()):
            stop = i + len(layers)
            if tuple(names[i:stop]) != layers or any(held[i : stop - 1]):
                continue
            part = steps[i:stop]
            if any(s.recording != part[0].recording for s in part):
                continue
            y = run(x, part)
            if y is not None:
                return stop, y
    return i + 1, _single(x, steps[i])


def resolve(t: Tensor) -> None:
    """Compute pending ``t`` and the pending run before it (see the module docstring)."""
    chain: list[Tensor] = []
    x: Tensor = t
    while type(x) is Pending:
        chain.append(x)
        x = step_of(x).src
    chain.reverse()
    held = [_held(chain, i) for i in range(len(chain) - 1)]
    held.append(True)
    steps = [step_of(c) for c in chain]
    names = [s.layer for s in steps]
    i = 0
    while i < len(steps):
        token = grad_enabled.set(steps[i].recording)
        try:
            stop, y = _run_from(x, steps, names, i, held)
        finally:
            grad_enabled.reset(token)
        for s in steps[i:stop]:
            s.src = None  # type: ignore[assignment]  # done: the run no longer holds its input
        x = chain[stop - 1]
        resolved(x, y)
        i = stop


def run_effect(step: Step) -> None:
    """A batch norm whose result was dropped unread: computed for its running statistics only."""
    token = grad_enabled.set(False)
    try:
        _single(step.src, step)
    finally:
        grad_enabled.reset(token)


set_resolver(resolve, run_effect, fused_enabled)
