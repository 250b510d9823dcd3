"""The worker threads behind :func:`nnet.threads.parallel_for`: one lock handshake per block.

Each worker waits on a lock of its own; handing it a block is one release, and collecting the
result one acquire. Both wait in C with the GIL released. A ``ThreadPoolExecutor`` does the same
with a queue, a future and a condition variable per block, in Python: two empty blocks took 31.0 us
through it and 24.7 us through these locks (``python -m benchmarks.handoff handoff`` under
``chrt -f 10`` on the project's 2-core machine). Most of what remains is waking a thread on the
other core, so a block should carry a few hundred microseconds of NumPy work to pay.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

#: The interpreter's switch interval (seconds) while a team's tasks run. A thread whose NumPy call
#: ends while another holds the GIL sleeps until it is handed over; with the default 5 ms, the
#: thread that let go can take it back call after call before the sleeper wakes (waking a thread
#: on another core takes 20-30 us here). The wide CNN's Winograd block, forward + VJP at two
#: threads: 8.38 ms at 5 ms, 7.77 ms at 0.1 ms (12.96 at one thread; ``python -m
#: benchmarks.handoff switch`` under ``chrt -f 10``).
SWITCH_INTERVAL = 1e-4


class _Worker:
    """One thread that runs the tasks it is handed, one at a time, until handed ``None``."""

    def __init__(self, name: str) -> None:
        self._go = threading.Lock()
        self._go.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._task: Callable[[], Any] | None = None
        self._result: Any = None
        self._error: BaseException | None = None
        # a daemon: it waits in a lock's C code, so the interpreter may exit around it
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self._go.acquire()
            task = self._task
            if task is None:
                return
            try:
                self._result = task()
            except BaseException as error:  # handed to the caller, which raises it
                self._error = error
            self._done.release()

    def start(self, task: Callable[[], Any] | None) -> None:
        self._task = task
        self._go.release()

    def result(self) -> Any:
        """Wait for the task handed by :meth:`start`; its result, or its exception raised here."""
        self._done.acquire()
        result, error = self._result, self._error
        self._task = self._result = self._error = None
        if error is not None:
            raise error
        return result

    def stop(self) -> None:
        self.start(None)
        self._thread.join()


class Team:
    """``size`` workers; one caller at a time hands them tasks (:meth:`run`)."""

    def __init__(self, size: int, prefix: str = "nnet-worker") -> None:
        self._busy = threading.Lock()
        self._workers = [_Worker(f"{prefix}-{i}") for i in range(size)]

    def run(self, first: Callable[[], Any], others: list[Callable[[], Any]]) -> list[Any] | None:
        """``[first(), *[t() for t in others]]``, ``others`` on the workers while the caller runs
        ``first``; None, with nothing run, when the team is busy with another caller (a block that
        calls parallel_for, or another thread) or has too few workers. Every task has ended when
        this returns or raises; the first exception in block order is raised."""
        if len(others) > len(self._workers) or not self._busy.acquire(blocking=False):
            return None
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
        try:
            workers = self._workers[: len(others)]
            for worker, task in zip(workers, others, strict=True):
                worker.start(task)
            errors: list[BaseException] = []
            results: list[Any] = []
            try:
                results.append(first())
            except BaseException as error:
                errors.append(error)
            for worker in workers:  # every block ends before this returns, even after an error
                try:
                    results.append(worker.result())
                except BaseException as error:
                    errors.append(error)
            if errors:
                raise errors[0]
            return results
        finally:
            sys.setswitchinterval(interval)
            self._busy.release()

    def stop(self) -> None:
        """End the workers' threads (after the current caller, if any, is done)."""
        with self._busy:
            for worker in self._workers:
                worker.stop()
            self._workers = []
