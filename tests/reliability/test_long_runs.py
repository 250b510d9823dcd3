"""Long runs: memory stays flat, no graph outlives its step, runs repeat bit for bit, grad mode is
per thread, and evaluation under ``no_grad`` records nothing.

The 2,000-step run is the slowest test here (about 25 s on a loaded 2-core machine with one BLAS
thread); it pins BLAS to one thread when threadpoolctl is importable, because OpenBLAS's threads
make the seed network's small matrix products 2-3x slower on a busy machine.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import tracemalloc
import weakref

import numpy as np
import pytest

import nnet
from nnet import nn, optim

from .seed_net import graph_tensors, seed_network

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size, from /proc/self/statm (its second field, in pages)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


@contextlib.contextmanager
def gc_disabled():
    """Reference counting alone must free each step's graph: no cycle collector to lean on."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Trainer:
    """The seed network, Adam, cross-entropy; batches of 8 drawn from a fixed random pool."""

    def __init__(self, seed: int, side: int = 28, pool: int = 256) -> None:
        nnet.manual_seed(seed)
        data = np.random.default_rng(seed)
        self.images = data.random((pool, side, side, 1), dtype=np.float32)
        self.labels = data.integers(0, 10, pool)
        self.model = seed_network(side)
        self.opt = optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss_fn = nn.CrossEntropyLoss()

    def step(self, i: int, batch: int = 8) -> tuple[list[weakref.ref], float]:
        """One training step; returns weak references to every tensor the step recorded."""
        j = (i * batch) % len(self.images)
        x = nnet.Tensor(self.images[j : j + batch])
        loss = self.loss_fn(self.model(x), self.labels[j : j + batch])
        recorded = [weakref.ref(t) for t in graph_tensors(loss) if t.grad_fn is not None]
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return recorded, loss.item()


def test_2000_steps_hold_memory_flat_and_free_every_graph():
    trainer = Trainer(seed=0)
    growth_window = []
    with one_blas_thread(), gc_disabled():
        for i in range(2000):
            recorded, loss = trainer.step(i)
            assert len(recorded) >= 8  # the seed network records 9 ops with the fused layers
            alive = [r() for r in recorded if r() is not None]
            assert not alive, f"step {i}: {len(alive)} recorded tensors outlived the step"
            assert np.isfinite(loss)
            if i == 100:
                baseline = rss_bytes()
            if i >= 100 and i % 50 == 0:
                growth_window.append(rss_bytes() - baseline)
    growth = max(growth_window)
    assert growth < 5 * 2**20, f"resident memory grew {growth / 2**20:.1f} MB after step 100"


def test_a_detected_leak_would_fail():
    """The weak-reference check catches a graph kept alive, e.g. by appending losses to a list."""
    trainer = Trainer(seed=0, side=12, pool=16)
    kept = []
    real_loss = trainer.loss_fn
    trainer.loss_fn = lambda out, y: kept.append(real_loss(out, y)) or kept[-1]
    recorded, _ = trainer.step(0)
    assert any(r() is not None for r in recorded)


def final_weights(seed: int, steps: int = 15) -> dict[str, np.ndarray]:
    trainer = Trainer(seed=seed, side=12, pool=64)
    with one_blas_thread():
        for i in range(steps):
            trainer.step(i)
    return trainer.model.state_dict()


def test_the_same_seed_gives_bit_identical_weights_and_another_seed_does_not():
    first, again, other = final_weights(3), final_weights(3), final_weights(4)
    assert first.keys() == again.keys()
    for key in first:
        assert first[key].tobytes() == again[key].tobytes(), key
    assert any(first[k].tobytes() != other[k].tobytes() for k in first)


def test_no_grad_in_one_thread_does_not_affect_another():
    x = nnet.tensor([1.0, 2.0], requires_grad=True)
    in_block, checked, done = (threading.Barrier(2, timeout=30) for _ in range(3))
    seen: dict[str, bool] = {}
    errors: list[BaseException] = []

    def quiet():
        try:
            with nnet.no_grad():
                in_block.wait()  # the other thread records while this one is inside no_grad
                checked.wait()
                seen["quiet"] = (x * 2).requires_grad
                seen["quiet enabled"] = nnet.is_grad_enabled()
            done.wait()
        except BaseException as e:
            errors.append(e)
            raise

    def recording():
        try:
            in_block.wait()
            seen["recording"] = (x * 2).requires_grad
            seen["recording enabled"] = nnet.is_grad_enabled()
            checked.wait()
            done.wait()
        except BaseException as e:
            errors.append(e)
            raise

    threads = [threading.Thread(target=quiet), threading.Thread(target=recording)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert seen == {
        "recording": True,
        "recording enabled": True,
        "quiet": False,
        "quiet enabled": False,
    }
    assert nnet.is_grad_enabled()  # and the main thread is untouched


def test_evaluating_10000_images_builds_no_graph_and_holds_one_batch():
    nnet.manual_seed(0)
    model = seed_network(28).eval()
    images = np.random.default_rng(0).random((10_000, 28, 28, 1), dtype=np.float32)
    batch = 250

    def evaluate(n: int) -> tuple[int, int]:
        """Predict n images batch by batch; returns (correct-class count, peak traced bytes)."""
        tracemalloc.start()
        predicted = 0
        with nnet.no_grad():
            for j in range(0, n, batch):
                out = model(nnet.Tensor(images[j : j + batch]))
                assert out.grad_fn is None and not out.requires_grad
                predicted += int((out.data.argmax(axis=1) >= 0).sum())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return predicted, peak

    with one_blas_thread():
        _, one_batch_peak = evaluate(batch)
        predicted, all_peak = evaluate(len(images))
    assert predicted == len(images)
    # 40 batches cost no more memory than one (allowing for allocator noise), and far less than
    # keeping every batch's activations: the input alone is 31 MB
    assert all_peak < 1.5 * one_batch_peak + 2**20, (all_peak, one_batch_peak)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_no_grad_outputs_carry_no_graph_in_either_mode(mode):
    nnet.manual_seed(0)
    model = seed_network(12)
    model.train(mode == "train")
    x = nnet.Tensor(np.random.default_rng(0).random((4, 12, 12, 1), dtype=np.float32))
    with nnet.no_grad():
        out = model(x)
    assert out.grad_fn is None and not out.requires_grad
    assert model(x).grad_fn is not None  # and recording resumes after the block
