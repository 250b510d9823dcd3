"""DataLoader(num_workers=N): the batches of one process from worker processes, PyTorch's seeding,
and clean shutdown. Every loader that starts workers has a timeout, so a bug fails instead of hanging.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import signal
import time

import numpy as np
import pytest

import nnet
from nnet.data import DataLoader, Dataset, Subset, TensorDataset, get_worker_info, random_split

X = np.arange(46, dtype=np.float64).reshape(23, 2)
Y = np.arange(23, dtype=np.int64)
TIMEOUT = 20  # seconds; far above what any batch here takes


def workers(dataset, **kw):
    """A loader with a timeout, by 'fork' unless asked (so that local functions need no pickling;
    the default start method differs between platforms and Python versions)."""
    kw.setdefault("multiprocessing_context", "fork")
    return DataLoader(dataset, timeout=TIMEOUT, **kw)


def as_lists(loader):
    return [[np.asarray(t.data if isinstance(t, nnet.Tensor) else t).tolist() for t in batch]
            for batch in loader]  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Squares(Dataset):
    """Per-sample access (no __getitems__), float64 samples: the stacking path."""

    def __getitem__(self, i):
        return np.array([i, i * i], dtype=np.float64), i % 3

    def __len__(self):
        return 23


class WhoAmI(Dataset):
    """Each sample says which worker loaded it, with that worker's draws from every generator."""

    def __getitem__(self, i):
        info = get_worker_info()
        return (
            np.array([info.id, info.num_workers, info.seed, os.getpid()], dtype=np.int64),
            np.array([nnet.random.get_generator().random(), random.random(),
                      np.random.random()]),  # noqa: NPY002 - the worker's global state is the subject
            info.dataset is not None,
        )  # fmt: skip

    def __len__(self):
        return 8


def first_draws(seed: int, worker: int) -> list[float]:
    """What worker ``worker`` must draw first: nnet's and Python's generators seeded with
    ``base_seed + worker``, as PyTorch seeds torch's and Python's."""
    return [np.random.default_rng(seed + worker).random(), random.Random(seed + worker).random()]


@pytest.mark.parametrize("num_workers", [1, 3])
@pytest.mark.parametrize(
    "make",
    [
        lambda: dict(dataset=TensorDataset(X, Y), batch_size=4, shuffle=True),
        lambda: dict(dataset=Squares(), batch_size=5, shuffle=True, drop_last=True),
        lambda: dict(dataset=Squares(), batch_size=3, collate_fn=lambda s: [a[1] for a in s]),
        lambda: dict(dataset=TensorDataset(X, Y), batch_size=2, sampler=[5, 3, 22, 0, 7]),
        lambda: dict(dataset=TensorDataset(X, Y), batch_size=None, shuffle=True),
    ],
    ids=["tensor-dataset", "per-sample", "collate_fn", "sampler", "whole"],
)
def test_same_batches_in_the_same_order_as_one_process(make, num_workers) -> None:
    one = DataLoader(**make(), generator=7)
    many = workers(**make(), generator=7, num_workers=num_workers, prefetch_factor=1)
    for _ in range(2):  # two epochs: the generators stay in step
        assert as_lists(many) == as_lists(one)


def test_batches_are_tensors_with_the_default_dtype() -> None:
    (x, y), *_ = workers(Squares(), batch_size=4, num_workers=2)
    assert isinstance(x, nnet.Tensor) and x.dtype == np.float32 and y.dtype == np.int64


def test_worker_seeding_follows_pytorch() -> None:
    loader = workers(WhoAmI(), batch_size=2, num_workers=2, generator=11, worker_init_fn=None)
    for epoch in range(2):
        rng = np.random.default_rng(11)
        for _ in range(epoch + 1):
            base_seed = int(rng.integers(2**63))  # what the loader draws each epoch, as PyTorch
        batches = list(loader)
        assert [b[0].data[0, 0] for b in batches] == [0, 1, 0, 1]  # batch k from worker k % 2
        assert all(b[0].data[0, 1] == 2 and b[2].tolist() == [True, True] for b in batches)
        for worker in (0, 1):
            (info, draws, _) = batches[worker]
            assert info.data[0, 2] == base_seed + worker
            want = np.float32(first_draws(base_seed, worker))  # batches are float32
            np.testing.assert_array_equal(draws.data[0, :2], want)
        numpy_global = [b[1].data[0, 2] for b in batches[:2]]
        assert numpy_global[0] != numpy_global[1]  # forked copies of one state would agree


def test_get_worker_info_is_none_in_the_main_process() -> None:
    assert get_worker_info() is None


def test_worker_init_fn_runs_in_each_worker_with_its_id(tmp_path) -> None:
    def init(worker_id):
        (tmp_path / f"{worker_id}-{get_worker_info().id}").write_text(str(os.getpid()))

    list(workers(TensorDataset(X), batch_size=4, num_workers=3, worker_init_fn=init))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0-0", "1-1", "2-2"]


def test_persistent_workers_keep_their_processes_and_seeds() -> None:
    def two_epochs() -> set[int]:
        # in a function of its own: the graph-lifetime check reads the loop's frame.f_locals, and
        # on Python < 3.13 that snapshot keeps the locals alive (past a `del`) until the frame ends
        loader = workers(WhoAmI(), batch_size=2, num_workers=2, persistent_workers=True,
                         generator=3)  # fmt: skip
        first, second = list(loader), list(loader)
        assert [b[0].data[0].tolist() for b in first] == [b[0].data[0].tolist() for b in second]
        return {int(b[0].data[0, 3]) for b in first}

    pids = two_epochs()
    gc.collect()
    assert len(pids) == 2 and os.getpid() not in pids
    assert not any(alive(p) for p in pids)  # stopped when the loader was collected


def test_persistent_workers_after_a_break_give_the_next_epoch_whole() -> None:
    one = DataLoader(TensorDataset(X, Y), batch_size=2, shuffle=True, generator=5)
    many = workers(TensorDataset(X, Y), batch_size=2, shuffle=True, generator=5, num_workers=2,
                   persistent_workers=True, prefetch_factor=3)  # fmt: skip
    for loader in (one, many):
        for _ in loader:
            break
    assert as_lists(many) == as_lists(one)


def test_persistent_workers_that_died_between_epochs_are_replaced() -> None:
    loader = workers(WhoAmI(), batch_size=2, num_workers=2, persistent_workers=True)
    first = {pid for b in loader for pid in pids_of(b)}
    (victim,) = [p for p in loader._pool.processes if p.pid == min(first)]
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(TIMEOUT)  # dead before the next epoch (one that dies during it raises, as above)
    second = {pid for b in loader for pid in pids_of(b)}
    assert len(second) == 2 and not second & first


def test_two_iterations_at_once_over_persistent_workers_are_refused() -> None:
    loader = workers(TensorDataset(X), batch_size=2, num_workers=1, persistent_workers=True)
    first = iter(loader)
    next(first)
    list(loader)
    with pytest.raises(RuntimeError, match="another iteration over this loader started"):
        next(first)


def pids_of(batch) -> set[int]:
    return {int(p) for p in batch[0].data[:, 3]}


def test_break_stops_the_workers() -> None:
    pids: set[int] = set()
    for batch in workers(WhoAmI(), batch_size=1, num_workers=2):
        pids |= pids_of(batch)
        if len(pids) == 2:
            break
    assert len(pids) == 2 and not any(alive(p) for p in pids)


def test_a_dropped_iterator_stops_its_workers() -> None:
    def two_batches() -> set[int]:  # a function of its own, for the reason given above
        it = iter(workers(WhoAmI(), batch_size=1, num_workers=2))
        return pids_of(next(it)) | pids_of(next(it))

    pids = two_batches()
    gc.collect()
    assert len(pids) == 2 and not any(alive(p) for p in pids)


class Faulty(Dataset):
    def __getitem__(self, i):
        if i == 7:
            raise KeyError(f"sample {i} is corrupt")
        return np.array([os.getpid()])

    def __len__(self):
        return 12


def test_a_worker_exception_is_raised_naming_the_worker_and_the_index() -> None:
    pids: set[int] = set()
    with pytest.raises(KeyError) as caught:
        for (batch,) in workers(Faulty(), batch_size=3, num_workers=2):
            pids |= set(batch.data.ravel().tolist())
    message = str(caught.value)
    assert "Caught KeyError in DataLoader worker 0 while loading batch 2" in message
    assert "sample indices [6, 7, 8]" in message
    assert "sample 7 is corrupt" in message and "in __getitem__" in message  # the traceback
    assert len(pids) == 2 and not any(alive(p) for p in pids)


def test_an_exception_in_worker_init_fn_is_raised() -> None:
    def init(worker_id):
        raise ValueError("no such file")

    with pytest.raises(ValueError, match=r"(?s)worker 0 in worker_init_fn.*no such file"):
        list(workers(TensorDataset(X), batch_size=4, num_workers=1, worker_init_fn=init))


class TwoArguments(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


def test_an_exception_that_cannot_be_remade_or_sent_becomes_runtime_error() -> None:
    class Local(Exception):
        pass

    def collate(samples):
        raise TwoArguments(1, 2) if len(samples) == 4 else Local()

    loader = workers(TensorDataset(X), batch_size=4, num_workers=1, collate_fn=collate)
    with pytest.raises(RuntimeError, match="Caught TwoArguments in DataLoader worker 0"):
        list(loader)
    loader.batch_size = 3
    with pytest.raises(RuntimeError, match="Caught Local in DataLoader worker 0"):
        list(loader)


class Dies(Dataset):
    def __getitem__(self, i):
        os._exit(3)

    def __len__(self):
        return 4


def test_a_worker_that_dies_is_reported() -> None:
    with pytest.raises(
        RuntimeError, match=r"worker 0 \(pid \d+\) exited unexpectedly \(exit code 3\)"
    ):
        list(workers(Dies(), batch_size=2, num_workers=1))


class Sleeps(Dataset):
    def __getitem__(self, i):
        time.sleep(30)  # unless the worker is terminated
        return np.zeros(1)

    def __len__(self):
        return 2


def test_timeout() -> None:
    loader = DataLoader(Sleeps(), batch_size=1, num_workers=1, timeout=0.2,
                        multiprocessing_context="fork")  # fmt: skip
    # batch 0, whatever the machine's load: a timeout on a later batch would race the first one
    with pytest.raises(RuntimeError, match=r"timed out after 0\.2 seconds waiting for batch 0"):
        list(loader)


def test_timeout_bounds_a_worker_stuck_in_worker_init_fn_with_a_long_order() -> None:
    """The epoch's order (20,000 int64 indices, more than a pipe's buffer) reaches a worker that is
    still in worker_init_fn: the main process must not block sending it, so the timeout fires."""
    loader = DataLoader(TensorDataset(np.zeros((20_000, 1))), batch_size=4, num_workers=1,
                        timeout=0.2, worker_init_fn=lambda _: time.sleep(60),
                        multiprocessing_context="fork")  # fmt: skip
    with pytest.raises(RuntimeError, match=r"timed out after 0\.2 seconds waiting for batch 0"):
        list(loader)


class Counts(Dataset):
    """Counts the samples loaded, across the forked workers."""

    def __init__(self):
        self.loaded = multiprocessing.get_context("fork").Value("i", 0)

    def __getitem__(self, i):
        with self.loaded.get_lock():
            self.loaded.value += 1
        return np.zeros(1)

    def __len__(self):
        return 40


@pytest.mark.parametrize(("num_workers", "prefetch_factor"), [(1, 1), (2, 3)])
def test_prefetch_factor_bounds_the_batches_loaded_ahead(num_workers, prefetch_factor) -> None:
    ds = Counts()
    loader = workers(ds, batch_size=2, num_workers=num_workers, prefetch_factor=prefetch_factor)
    for k, _ in enumerate(loader):
        # batch k is in hand; at most prefetch_factor * num_workers more have been asked for
        assert ds.loaded.value <= 2 * (k + 1 + prefetch_factor * num_workers)
    assert ds.loaded.value == 40


def test_spawn_with_a_picklable_dataset() -> None:
    train, _ = random_split(TensorDataset(X, Y), [15, 8], generator=0)
    one = DataLoader(train, batch_size=4, shuffle=True, generator=2)
    spawned = workers(train, batch_size=4, shuffle=True, generator=2, num_workers=1,
                      multiprocessing_context="spawn")  # fmt: skip
    assert as_lists(spawned) == as_lists(one)


def test_spawn_with_a_lambda_says_what_to_do() -> None:
    loader = workers(TensorDataset(X), num_workers=1, collate_fn=lambda s: s,
                     multiprocessing_context="spawn")  # fmt: skip
    with pytest.raises(TypeError, match=r"'spawn' start method .* pickling.*module level"):
        list(loader)


def test_a_subset_pickles() -> None:
    import pickle

    sub = pickle.loads(pickle.dumps(Subset(TensorDataset(X, Y), [3, 1])))
    assert [a.tolist() for a in sub.__getitems__(np.array([1, 0]))] == [
        [[2.0, 3.0], [6.0, 7.0]],
        [1, 3],
    ]
    assert getattr(Subset(Squares(), [1]), "__getitems__", None) is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(num_workers=-1), r"num_workers must be a non-negative integer, got -1"),
        (dict(num_workers=1.5), r"num_workers must be a non-negative integer, got 1\.5"),
        (dict(prefetch_factor=2), r"prefetch_factor=2 needs worker processes, but num_workers=0"),
        (dict(persistent_workers=True), r"persistent_workers=True needs num_workers > 0"),
        (dict(multiprocessing_context="spawn"), r"multiprocessing_context='spawn' needs worker"),
        (dict(num_workers=1, prefetch_factor=0), r"prefetch_factor .* positive integer, got 0"),
        (dict(num_workers=1, multiprocessing_context="thread"), r"'thread' is not a start method"),
        (dict(timeout=-1), r"timeout must be >= 0 seconds .* got -1"),
    ],
)
def test_bad_worker_options(kw, message) -> None:
    with pytest.raises(ValueError, match=message):
        DataLoader(TensorDataset(X), **kw)


def test_pytorch_defaults() -> None:
    loader = DataLoader(TensorDataset(X), num_workers=2, pin_memory=True)
    assert loader.prefetch_factor == 2 and loader.timeout == 0 and not loader.persistent_workers
    assert DataLoader(TensorDataset(X)).prefetch_factor is None
