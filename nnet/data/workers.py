"""Loading batches in worker processes for ``DataLoader(num_workers=N)``, as PyTorch does.

Each worker has two pipes: tasks in (an epoch's sample order once, then batch numbers) and results
out. Batch ``k`` goes to worker ``k % N``, and each worker answers its tasks in order, so the main
process reads batch ``k`` from that worker's pipe and the batches come out in the order of one
process, with no reordering. At most ``prefetch_factor`` batches per worker are asked for ahead.
A thread in each worker moves its task messages into a queue as they arrive, so the main process's
sends never wait for a busy worker (an epoch's order can exceed a pipe's buffer, and a worker may sit
in ``worker_init_fn`` or on a slow batch), and ``timeout`` bounds every wait of the main process.

Seeding follows PyTorch: the loader draws ``base_seed`` from its generator each epoch; worker ``i``
seeds nnet's generator and Python's ``random`` with ``base_seed + i``, and the global NumPy state
(in the worker process only) from both, so that NumPy augmentations differ between workers.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import random
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from typing import Any

import numpy as np

from nnet.autograd.defaults import set_default_dtype
from nnet.data.collate import fetch
from nnet.random import manual_seed
from nnet.threads import set_num_threads

#: How long a stopping worker may take to finish its current batch before it is terminated.
SHUTDOWN_GRACE = 1.0


@dataclass(frozen=True)
class WorkerInfo:
    """What :func:`get_worker_info` returns inside a worker (PyTorch's fields)."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_info: WorkerInfo | None = None  # set once in each worker process; None in the main process


def get_worker_info() -> WorkerInfo | None:
    """In a loading worker: its ``id``, ``num_workers``, ``seed`` and its copy of the ``dataset``;
    ``None`` in the main process (PyTorch's ``torch.utils.data.get_worker_info``).

    >>> from nnet.data import get_worker_info
    >>> get_worker_info() is None
    True
    """
    return _info


class _Verbatim(str):
    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class WorkerError:
    """An exception raised in a worker, sent back as its type and traceback text."""

    type: type
    message: str

    def reraise(self) -> None:
        # KeyError shows its argument's repr: a str whose repr is itself keeps the lines readable
        message = _Verbatim(self.message) if issubclass(self.type, KeyError) else self.message
        try:
            error = self.type(message)
        except Exception:  # an exception type that cannot be made from one string
            error = RuntimeError(self.message)
        raise error from None


def _error(worker_id: int, where: str) -> WorkerError:
    """The exception being handled, as a :class:`WorkerError` naming the worker and the batch."""
    kind = sys.exc_info()[0] or RuntimeError
    message = (
        f"Caught {kind.__name__} in DataLoader worker {worker_id} {where}.\n"
        f"The worker's traceback:\n{traceback.format_exc()}"
    )
    try:
        pickle.dumps(kind)
    except Exception:  # a local exception class cannot travel to the main process; its name does
        kind = RuntimeError
    return WorkerError(kind, message)


def _describe(k: int, index: np.ndarray) -> str:
    shown = ", ".join(str(i) for i in index[:8]) + (", ..." if len(index) > 8 else "")
    return f"while loading batch {k} (sample indices [{shown}])"


def _receive(tasks: Connection, inbox: queue.SimpleQueue[Any]) -> None:
    """Move each task message into ``inbox`` as it arrives; ``None`` (stop) once told to stop, or
    when the main process is gone (its sentinel, since a forked sibling may hold the pipe open)."""
    parent = multiprocessing.parent_process()
    watched: list[Any] = [tasks] if parent is None else [tasks, parent.sentinel]
    try:
        while tasks in wait(watched):
            message = tasks.recv()
            inbox.put(message)
            if message is None:
                return
    except (EOFError, OSError):  # the main process closed the pipe
        pass
    inbox.put(None)


def _worker_loop(tasks: Connection, results: Connection, dataset: Any, collate_fn: Any,
                 worker_init_fn: Any, worker_id: int, num_workers: int, base_seed: int,
                 dtype: np.dtype) -> None:  # fmt: skip
    """The body of worker process ``worker_id``: answer batch numbers with batches until told to
    stop (``None``) or until the main process is gone."""
    global _info
    seed = base_seed + worker_id
    _info = WorkerInfo(worker_id, num_workers, seed, dataset)
    set_num_threads(1)  # as PyTorch: N workers share the cores, one thread each
    set_default_dtype(dtype)  # a spawned worker starts with float32
    random.seed(seed)
    manual_seed(seed)
    np.random.seed(np.random.SeedSequence([base_seed, worker_id]).generate_state(4))  # noqa: NPY002
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_receive, args=(tasks, inbox), daemon=True).start()
    init_error = None
    if worker_init_fn is not None:
        try:
            worker_init_fn(worker_id)
        except Exception:
            init_error = _error(worker_id, "in worker_init_fn")
    order: np.ndarray = np.arange(0)
    size = 1
    backlog: deque[Any] = deque()
    try:
        while True:
            if not backlog:
                backlog.append(inbox.get())
            while not inbox.empty():  # all that was sent, so a stop behind queued batches is seen
                backlog.append(inbox.get_nowait())
            if None in backlog:
                return
            message = backlog.popleft()
            if message[0] == "epoch":
                _, order, size = message
                continue
            k = message[1]
            index = order[k * size : (k + 1) * size]
            if init_error is not None:
                results.send((k, init_error))
                continue
            try:
                payload = fetch(dataset, index, collate_fn)
            except Exception:
                payload = _error(worker_id, _describe(k, index))
            try:
                results.send((k, payload))
            except (pickle.PicklingError, TypeError, AttributeError):
                results.send((k, _error(worker_id, f"sending batch {k} (collate_fn's result "
                                                   "must be picklable)")))  # fmt: skip
    except (KeyboardInterrupt, BrokenPipeError, EOFError):
        pass  # Ctrl-C reaches the main process too, which reports it; a closed pipe means stop


def get_context(method: str | BaseContext | None) -> BaseContext:
    """The multiprocessing context for ``multiprocessing_context``: a start-method name, a context,
    or ``None`` for the platform's default."""
    if method is None:
        return multiprocessing.get_context()
    if isinstance(method, str):
        methods = multiprocessing.get_all_start_methods()
        if method not in methods:
            raise ValueError(
                f"DataLoader: multiprocessing_context={method!r} is not a start method of this "
                f"platform; use one of {methods}"
            )
        return multiprocessing.get_context(method)
    if isinstance(method, BaseContext):
        return method
    raise TypeError(
        f"DataLoader: multiprocessing_context must be a start-method name (e.g. 'spawn') or a "
        f"multiprocessing context, got {type(method).__name__}"
    )


class WorkerPool:
    """``num_workers`` processes loading batches for one loader (for one epoch, or for all epochs
    with ``persistent_workers``)."""

    def __init__(self, dataset: Any, collate_fn: Any, worker_init_fn: Any, num_workers: int,
                 base_seed: int, dtype: np.dtype, context: BaseContext, prefetch_factor: int,
                 timeout: float) -> None:  # fmt: skip
        self.prefetch_factor, self.timeout = prefetch_factor, timeout
        self.tasks: list[Connection] = []
        self.results: list[Connection] = []
        self.processes: list[Any] = []
        self.pending = [0] * num_workers  # batches asked of each worker and not yet read
        self.epoch = 0  # which iteration owns the workers
        self.closed = False
        for i in range(num_workers):
            task_out, task_in = context.Pipe(duplex=False)
            result_out, result_in = context.Pipe(duplex=False)
            process = context.Process(  # type: ignore[attr-defined]
                target=_worker_loop, name=f"DataLoader worker {i}", daemon=True,
                args=(task_out, result_in, dataset, collate_fn, worker_init_fn, i, num_workers,
                      base_seed, dtype),
            )  # fmt: skip
            try:
                process.start()
            except (pickle.PicklingError, TypeError, AttributeError) as e:
                self.shutdown()
                raise TypeError(
                    f"DataLoader: the '{context.get_start_method()}' start method sends the "
                    f"dataset, collate_fn and worker_init_fn to each worker by pickling, which "
                    f"failed: {e}. Define them at module level (no lambdas or local classes), or "
                    f"use multiprocessing_context='fork' where the platform has it"
                ) from e
            task_out.close()  # the worker's ends: only the worker may hold them
            result_in.close()
            self.tasks.append(task_in)
            self.results.append(result_out)
            self.processes.append(process)

    def healthy(self) -> bool:
        """Open, with every worker alive; a persistent pool that lost a worker between epochs
        (killed, say) is stopped here, so that the loader starts a new one."""
        if not self.closed and not all(p.is_alive() for p in self.processes):
            self.shutdown(grace=0)
        return not self.closed

    def batches(self, order: np.ndarray, size: int, count: int) -> Any:
        """Yield the payloads of batches ``0 .. count - 1`` of ``order`` cut in ``size``, in order."""
        self._drain()
        self.epoch += 1
        epoch = self.epoch
        n = len(self.processes)
        for conn in self.tasks:
            conn.send(("epoch", order, size))
        ahead = self.prefetch_factor * n
        for k in range(min(ahead, count)):
            self._ask(k)
        for k in range(count):
            if self.epoch != epoch or self.closed:
                raise RuntimeError(
                    "DataLoader: another iteration over this loader started (or its workers "
                    "stopped) before this one ended; with persistent_workers=True iterate over "
                    "one loader at a time"
                )
            payload = self._read(k % n, f"batch {k}")
            if k + ahead < count:
                self._ask(k + ahead)
            if isinstance(payload, WorkerError):
                payload.reraise()
            yield payload

    def _ask(self, k: int) -> None:
        w = k % len(self.processes)
        self.tasks[w].send(("batch", k))
        self.pending[w] += 1

    def _read(self, w: int, what: str) -> Any:
        """The next result of worker ``w`` (``what`` names it in errors); a dead or silent worker
        stops the pool and raises."""
        conn, process = self.results[w], self.processes[w]
        ready = wait([conn, process.sentinel], timeout=self.timeout or None)
        if conn in ready:
            try:
                _, payload = conn.recv()
                self.pending[w] -= 1
                return payload
            except EOFError:  # the worker died while writing
                pass
        self.shutdown(grace=0)  # a worker that is silent or gone has nothing to finish
        if not ready:
            raise RuntimeError(
                f"DataLoader timed out after {self.timeout} seconds waiting for {what} from "
                f"worker {w}; raise timeout (0 waits forever) if loading a batch takes longer"
            )
        code = process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        raise RuntimeError(
            f"DataLoader worker {w} (pid {process.pid}) exited unexpectedly ({how}) while "
            f"loading {what}; if it was killed for memory, lower num_workers or batch_size"
        )

    def _drain(self) -> None:
        """Read and drop what an abandoned iteration (a ``break``) left in flight."""
        for w, count in enumerate(self.pending):
            for _ in range(count):
                self._read(w, "a batch left in flight by an iteration that was not finished")

    def shutdown(self, grace: float | None = None) -> None:
        """Ask every worker to stop, give them ``grace`` seconds (:data:`SHUTDOWN_GRACE` by
        default) to finish the batch in hand, and terminate the rest."""
        if self.closed:
            return
        self.closed = True
        for conn in self.tasks:
            try:
                conn.send(None)
            except OSError:  # the worker is gone already
                pass
        deadline = time.monotonic() + (SHUTDOWN_GRACE if grace is None else grace)
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join()
        for conn in self.tasks + self.results:
            conn.close()
