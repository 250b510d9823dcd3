"""``DistributedDataParallel``: every rank holds the whole model, trains on its share of the batch,
and the ranks average their gradients with MPI before each optimizer step.

Gradients travel in buckets of about ``bucket_cap_mb`` megabytes, parameters in reverse order of
registration (roughly the order in which the backward finishes them). Each parameter has a
post-accumulate-grad hook: the engine runs it as soon as that parameter's ``.grad`` is final, the
hook copies it into its bucket, and a bucket whose parameters are all in is sent with a
non-blocking ``Iallreduce`` while the backward goes on. The last hook of the backward waits for all
buckets and makes each ``.grad`` the average, so ``optimizer.step()`` reads averaged gradients.
Buckets are started in index order on every rank, so the collectives always match.

A model whose gradients fit in one bucket (the default cap holds the seed CNN's 79 k parameters)
has nothing to start before the backward's last gradient, so it skips the per-parameter hooks,
whose edge counting costs the engine a walk over the graph in every backward: one callback at the
backward's end fills the bucket and averages it.

When all ranks share one machine, that one bucket is summed through shared memory
(:class:`~nnet.distributed.node_sum.NodeSum`: each rank writes its scaled gradients straight into its
slot of an MPI shared-memory window, one barrier, a NumPy sum), not by MPI's all-reduce: 16-17 us
against 40-64 us for the seed CNN's 79 k floats on two ranks in isolation, same bits.

Then the optimizer's update is split over the ranks too (ZeRO stage 1, :mod:`nnet.distributed.zero`):
the bucket is declared with an :class:`~nnet.distributed.zero.OptimizerShard`, and Adam, AdamW and
SGD update only this rank's part of the flat arrays, in shared memory, then apply the whole step.

The averaged ``.grad`` of each parameter is a view of its bucket's buffer, not a copy written back
(a pass over every gradient saved), and each averaging takes a fresh buffer, so a ``.grad`` that a
caller keeps from one step is never overwritten by the next.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from nnet.autograd import leaf_hooks
from nnet.autograd.tensor import Tensor
from nnet.distributed import comm
from nnet.distributed.node_sum import NodeSum
from nnet.distributed.zero import OptimizerShard
from nnet.nn.module import Module
from nnet.optim.flat import share_gradients

#: Buckets reuse a handed-out buffer once nothing holds it (tests switch it off to compare).
REUSE = True


def _refcounts(buffer: np.ndarray, views: list[np.ndarray]) -> list[int]:
    """The reference counts of ``buffer`` and of each of ``views``, seen from this call."""
    counts = [sys.getrefcount(buffer)]
    for v in views:
        counts.append(sys.getrefcount(v))
    return counts


def _calibrate() -> tuple[int, int]:
    """The counts :func:`_refcounts` sees for a buffer and its views that only a spare pair holds,
    as in :meth:`_Bucket.renew` (the buffer's count less its views'): measured, not assumed, since
    what ``sys.getrefcount`` counts differs between Python versions."""

    def unheld(buffer: np.ndarray, views: list[np.ndarray]) -> list[int]:  # _unheld's frame
        return _refcounts(buffer, views)

    buffer = np.empty(2)
    spare = (buffer, [buffer[:1], buffer[1:]])
    del buffer
    counts = unheld(*spare)
    return counts[0] - len(spare[1]), counts[1]


_BUFFER_REFS, _VIEW_REFS = _calibrate()


def _unheld(buffer: np.ndarray, views: list[np.ndarray]) -> bool:
    """Whether only the bucket holds ``buffer`` and its slot ``views``: no ``.grad`` Tensor, no
    array taken from one (a view of a view has the buffer as its base, so it counts there)."""
    counts = _refcounts(buffer, views)
    return counts[0] == len(views) + _BUFFER_REFS and all(c == _VIEW_REFS for c in counts[1:])


class _Bucket:
    """A flat buffer that carries the gradients of a few parameters of one dtype."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.offsets: list[int] = []
        total = 0
        for p in params:
            self.offsets.append(total)
            total += p.data.size
        self.size = total
        self.buffer = np.empty(self.size, params[0].data.dtype)
        self.views = self.views_of(self.buffer)
        self._spare: tuple[np.ndarray, list[np.ndarray]] | None = None
        self.waiting = len(params)
        self.request: Any = None

    def renew(self) -> None:
        """A buffer to fill and each parameter's slot in it, shaped like it: the one handed out
        before the last when nothing holds it or its slots any more (``zero_grad`` dropped those
        ``.grad``), else a fresh one; the buffer just handed out belongs to its ``.grad`` views.
        Reusing it saves a step the allocation, the slots' views and the first touch of fresh
        memory (the seed CNN's 318 KB)."""
        spare = self._spare
        self._spare = (self.buffer, self.views)
        if spare is not None and REUSE and _unheld(*spare):
            self.buffer, self.views = spare
            return
        self.buffer = np.empty(self.size, self.params[0].data.dtype)
        self.views = self.views_of(self.buffer)

    def views_of(self, flat: np.ndarray) -> list[np.ndarray]:
        """Each parameter's slot in ``flat`` (an array laid out like the buffer), shaped like it."""
        return [flat[o : o + p.data.size].reshape(p.data.shape)
                for o, p in zip(self.offsets, self.params, strict=True)]  # fmt: skip

    def fill(
        self, i: int, grad: np.ndarray, scale: float, views: list[np.ndarray] | None = None
    ) -> None:
        """Parameter ``i``'s gradient times ``scale`` into its slot of the buffer (or of ``views``),
        dividing on the way in: the sum that comes back is the average."""
        np.multiply(grad, scale, out=(self.views if views is None else views)[i], casting="unsafe")

    def hand_out(self, shard: OptimizerShard | None = None) -> None:
        """Make each parameter's ``.grad`` its averaged slot, and take a fresh buffer. The slots
        are declared as one flat buffer (``nnet.optim.flat.share_gradients``), so an optimizer
        that updates the parameters together reads it in place rather than gathering a copy
        (and with ``shard`` splits its update over the ranks of this machine)."""
        for p, view in zip(self.params, self.views, strict=True):
            p.grad = Tensor._make(view, False, None)
        share_gradients(self.buffer, self.views, shard)
        self.renew()
        self.waiting = len(self.params)
        self.request = None


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the ranks of an MPI job.

    At wrap time rank 0's parameters and buffers are broadcast to every rank, after checking that
    every rank built the same model (names, shapes, dtypes; a mismatch raises ``ValueError`` on every
    rank). Calling the wrapper calls ``module``; the backward of its loss averages the gradients over
    the ranks (see the module docstring). Inside :meth:`no_sync` gradients stay local and accumulate,
    and the first backward after it averages the accumulated sums. ``broadcast_buffers`` sends rank
    0's buffers (e.g. batch-norm running statistics) before each training forward, as PyTorch does
    (one broadcast per dtype); with :func:`~nnet.distributed.convert_sync_batchnorm` the statistics
    are over the global batch and alike on every rank, so ``broadcast_buffers=False`` saves that.

    >>> import nnet
    >>> from nnet.distributed import DistributedDataParallel
    >>> model = DistributedDataParallel(nnet.nn.Linear(3, 2))
    >>> model(nnet.ones(4, 3)).sum().backward()  # in a world of one: a plain backward
    >>> model.module.weight.grad.shape
    (3, 2)
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 1.0,
                 broadcast_buffers: bool = True) -> None:  # fmt: skip
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel: expected an nnet.nn.Module, got {type(module).__name__}"
            )
        if not bucket_cap_mb > 0:
            raise ValueError(
                f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}"
            )
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self._size = comm.init()
        self._sync = True
        self._buckets: list[_Bucket] = []
        self._next = 0  # the first bucket not yet started in this backward
        self._handles: list[Any] = []
        self._node_sum: NodeSum | None = None  # one bucket, all ranks on one machine
        self._shard: OptimizerShard | None = None  # the optimizer's update split, then
        if self._size == 1:
            return
        _check_same_model(module)
        _broadcast_coalesced([*module.parameters(), *module.buffers()])
        # A communicator of its own: DDP's non-blocking collectives never interleave with the
        # blocking ones a model may run during the backward (SyncBatchNorm).
        self._comm = comm.communicator().Dup()
        self._mpi = comm.mpi()
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = _buckets(list(reversed(params)), int(bucket_cap_mb * 2**20))
        if len(self._buckets) == 1:
            handle = leaf_hooks.register_backward_end(self._at_backward_end())
            weakref.finalize(self, handle.remove)
            node = self._comm.Split_type(self._mpi.COMM_TYPE_SHARED)
            if node.Get_size() == self._size:  # every rank on this machine
                bucket = self._buckets[0]
                self._node_sum = NodeSum(node, bucket.size, bucket.buffer.dtype)
                self._shard = OptimizerShard(node, bucket.size, bucket.buffer.dtype,
                                             self._node_sum)  # fmt: skip
                self._slot_views = {id(s): bucket.views_of(s) for s in self._node_sum.own_slots()}
            return
        for b, bucket in enumerate(self._buckets):
            for i, p in enumerate(bucket.params):
                hook = self._hook(b, i)
                self._handles.append(p.register_post_accumulate_grad_hook(hook))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._size > 1 and self.training:
            self._check_finished()
            if self.broadcast_buffers:
                _broadcast_coalesced(list(self.module.buffers()))
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backwards inside keep their gradients local (accumulating in ``.grad``); the first
        backward after it averages the sums.

        >>> import nnet
        >>> from nnet.distributed import DistributedDataParallel
        >>> model = DistributedDataParallel(nnet.nn.Linear(3, 2))
        >>> with model.no_sync():
        ...     model(nnet.ones(4, 3)).sum().backward()
        """
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def _hook(self, b: int, i: int) -> Any:
        # Weakly: the hook registry holds hooks strongly, and a hook that held the wrapper would
        # keep it, the model and the parameters alive after the user let them go.
        wrapper = weakref.ref(self)

        def on_final_gradient(p: Tensor) -> None:
            self = wrapper()
            if self is None or not self._sync:
                return
            bucket = self._buckets[b]
            assert p.grad is not None  # the engine runs the hook after accumulating into .grad
            bucket.fill(i, p.grad.data, 1.0 / self._size)
            bucket.waiting -= 1
            # a bucket just filled may start; one in flight needs MPI calls to move on
            if bucket.waiting == 0 or self._next:
                self._start_ready()

        return on_final_gradient

    def _at_backward_end(self) -> Any:
        """The one-bucket model's callback: after a backward that gave every parameter a gradient,
        average them all (one sum over the ranks); after one that reached only some, leave the
        bucket partly filled for the next forward to report; ignore backwards of other models."""
        wrapper = weakref.ref(self)

        def at_backward_end(leaf_ids: Collection[int]) -> None:
            self = wrapper()
            if self is None or not self._sync:
                return
            bucket = self._buckets[0]
            reached = [i for i, p in enumerate(bucket.params) if id(p) in leaf_ids]
            if not reached:
                return
            if len(reached) < len(bucket.params):
                bucket.waiting = len(bucket.params) - len(reached)
                return
            scale = 1.0 / self._size
            shared = self._node_sum
            views = None if shared is None else self._slot_views[id(shared.slot())]
            for i, p in enumerate(bucket.params):
                assert p.grad is not None  # reached: the engine accumulated into .grad
                bucket.fill(i, p.grad.data, scale, views)
            if shared is not None:
                shared.total(out=bucket.buffer)
            else:
                MPI = self._mpi
                comm.wait(self._comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM))
            bucket.hand_out(self._shard if shared is not None else None)

        return at_backward_end

    def _start_ready(self) -> None:
        """Start the ready buckets in index order (the same order on every rank), and when the
        last one has started, wait for all and write the averages into ``.grad``."""
        MPI = self._mpi
        while self._next < len(self._buckets) and self._buckets[self._next].waiting == 0:
            bucket = self._buckets[self._next]
            bucket.request = self._comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)
            self._next += 1
        # MPICH moves a non-blocking collective on only inside MPI calls: a test is such a call.
        started = [b.request for b in self._buckets[: self._next] if b.request is not None]
        if self._next < len(self._buckets):
            MPI.Request.Testall(started)
            return
        comm.wait(*started)
        for bucket in self._buckets:
            bucket.hand_out()
        self._next = 0

    def _check_finished(self) -> None:
        """A backward that left buckets unfinished had parameters that got no gradient; every rank
        would wait for them forever, so say which."""
        partial = [b for b in self._buckets if b.waiting < len(b.params)]
        if self._next == 0 and not partial:
            return
        names = {id(p): n for n, p in self.module.named_parameters()}
        missing = [names.get(id(p), "?") for b in self._buckets for p in b.params
                   if p.grad is None]  # fmt: skip
        raise RuntimeError(
            "DistributedDataParallel: the last backward gave no gradient to parameter(s) "
            f"{', '.join(missing) or '(unknown)'}, so their average was never started. Every "
            "parameter that requires a gradient must take part in the loss; freeze the others "
            "with requires_grad_(False) before wrapping"
        )


def _broadcast_coalesced(tensors: list[Tensor]) -> None:
    """Rank 0's values of ``tensors`` on every rank: one broadcast per dtype, not one per tensor
    (each collective is a point where every rank waits for the slowest)."""
    by_dtype: dict[np.dtype, list[Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.data.dtype, []).append(t)
    for group in by_dtype.values():
        flat = np.concatenate([t.data.ravel() for t in group])
        comm.broadcast(flat)
        offset = 0
        for t in group:
            t.data[...] = flat[offset : offset + t.data.size].reshape(t.data.shape)
            offset += t.data.size


def _buckets(params: list[Tensor], cap_bytes: int) -> list[_Bucket]:
    """Consecutive runs of ``params`` of one dtype, each up to ``cap_bytes`` (at least one each)."""
    out: list[_Bucket] = []
    run: list[Tensor] = []
    size = 0
    for p in params:
        if run and (size + p.data.nbytes > cap_bytes or p.data.dtype != run[0].data.dtype):
            out.append(_Bucket(run))
            run, size = [], 0
        run.append(p)
        size += p.data.nbytes
    if run:
        out.append(_Bucket(run))
    return out


def _check_same_model(module: Module) -> None:
    """Raise ValueError on every rank unless every rank's parameters and buffers have the same
    names, shapes and dtypes as rank 0's."""
    mine = [(n, tuple(t.shape), str(t.dtype))
            for n, t in [*module.named_parameters(), *module.named_buffers()]]  # fmt: skip
    everyone = comm.all_gather_object(mine)
    reference = everyone[0]
    for r, theirs in enumerate(everyone[1:], start=1):
        if theirs == reference:
            continue
        ref, other = dict((n, s) for n, *s in reference), dict((n, s) for n, *s in theirs)
        for name in [*ref, *other]:
            if ref.get(name) != other.get(name):
                raise ValueError(
                    f"DistributedDataParallel: rank {r}'s model differs from rank 0's at "
                    f"{name!r}: (shape, dtype) {_show(other.get(name))} on rank {r}, "
                    f"{_show(ref.get(name))} on rank 0. Every rank must build the same model"
                )
        raise ValueError(
            f"DistributedDataParallel: rank {r} registers the same tensors as rank 0 in a "
            "different order; every rank must build the same model"
        )


def _show(entry: list[Any] | None) -> str:
    return "missing" if entry is None else f"({entry[0]}, {entry[1]})"
