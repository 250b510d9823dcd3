"""Thread control: nnet.set_num_threads / get_num_threads, NNET_NUM_THREADS, BLAS, parallel_for."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import nnet
from nnet import threads


@pytest.fixture
def restore_threads():
    before = nnet.get_num_threads()
    yield
    nnet.set_num_threads(before)


def test_set_then_get_round_trips_and_governs_blas(restore_threads):
    for n in (1, 2, 3):
        nnet.set_num_threads(n)
        assert nnet.get_num_threads() == n
        info = threads.blas_info()
        if info["controllable"]:
            assert info["threads"] == (1 if info["idle_workers_spin"] and n > 1 else n)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "two", None, True])
def test_a_bad_count_names_the_function_and_the_value(bad):
    with pytest.raises(ValueError, match=r"set_num_threads: the thread count must be a positive"):
        nnet.set_num_threads(bad)


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout + out.stderr


def test_the_environment_variable_sets_nnet_and_blas_at_import():
    out = _run(
        "import nnet; from nnet import threads; "
        "print(nnet.get_num_threads(), threads.blas_info()['threads'])",
        NNET_NUM_THREADS="1",
    )
    assert out.split()[0] == "1", out
    assert out.split()[1] in ("1", "None"), out


def test_a_bad_environment_value_is_named():
    out = _run("import nnet", NNET_NUM_THREADS="lots")
    assert "NNET_NUM_THREADS" in out and "'lots'" in out


_REPORT = (
    "import nnet; from nnet import threads; i = threads.blas_info(); "
    "print(nnet.get_num_threads(), i['threads'], i['idle_workers_spin'])"
)


def _openblas() -> None:
    if not threads.blas_info()["controllable"] or threads._blas.timeout is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS whose spinning nnet can read")


def test_imported_first_nnet_stops_blas_workers_spinning_and_shares_the_cores():
    _openblas()
    out = _run(_REPORT, NNET_NUM_THREADS="2").split()
    assert out == ["2", "2", "False"], out


def test_imported_after_numpy_nnet_stops_the_spinning_too():
    # OpenBLAS loaded with its default spin: nnet has it read the timeout again and restart its
    # workers, so BLAS shares the cores as when nnet is imported first
    _openblas()
    out = _run("import numpy; " + _REPORT, NNET_NUM_THREADS="2").split()
    assert out == ["2", "2", "False"], out


def test_products_after_the_restart_are_right():
    _openblas()
    code = (
        "import numpy as np; a = np.random.default_rng(0).random((300, 300), np.float32); "
        "before = a @ a; import nnet; after = a @ a; "
        "exact = a.astype(np.float64) @ a; "
        "print(np.allclose(after, exact, rtol=1e-4), np.allclose(before, after, rtol=1e-5))"
    )
    assert _run(code, NNET_NUM_THREADS="2").split() == ["True", "True"]


def test_the_users_own_openblas_timeout_is_kept():
    _openblas()
    out = _run(_REPORT, NNET_NUM_THREADS="2", OPENBLAS_THREAD_TIMEOUT="28").split()
    assert out == ["2", "1", "True"], out
    out = _run("import numpy; " + _REPORT, NNET_NUM_THREADS="2", OPENBLAS_THREAD_TIMEOUT="8")
    assert out.split() == ["2", "2", "False"], out
    # the user's spinning is kept even where nnet could change it: BLAS then runs on one thread
    out = _run("import numpy; " + _REPORT, NNET_NUM_THREADS="2", OPENBLAS_THREAD_TIMEOUT="28")
    assert out.split() == ["2", "1", "True"], out


def test_blas_info_names_the_kernels_openblas_runs_and_the_environment_forces_them():
    _openblas()
    code = "from nnet import threads; print(threads.blas_info()['core'])"
    assert _run(code, OPENBLAS_CORETYPE="Haswell").strip() == "Haswell"
    assert _run(code, OPENBLAS_CORETYPE="Sandybridge").strip() == "Sandybridge"


def test_numpy_wheels_blas_is_found():
    info = threads.blas_info()
    if "openblas" not in str(np.show_config(mode="dicts")).lower():
        pytest.skip("NumPy is not built on OpenBLAS here")
    assert info["controllable"], info


def test_parallel_for_covers_the_range_once_in_order(restore_threads):
    nnet.set_num_threads(2)
    seen: list[tuple[int, int, str]] = []

    def block(start: int, stop: int) -> list[int]:
        seen.append((start, stop, threading.current_thread().name))
        return list(range(start, stop))

    parts = threads.parallel_for(block, 11)
    assert len(parts) == 2
    assert [i for part in parts for i in part] == list(range(11))
    assert {name.startswith("nnet-worker") for *_, name in seen} == {True, False}


def test_parallel_for_keeps_small_work_on_the_caller(restore_threads):
    nnet.set_num_threads(2)
    assert threads.parallel_for(lambda a, b: (a, b), 5, min_block=4) == [(0, 5)]
    nnet.set_num_threads(1)
    assert threads.parallel_for(lambda a, b: (a, b), 100) == [(0, 100)]


def test_parallel_for_pins_blas_inside_and_restores_it(restore_threads):
    nnet.set_num_threads(2)
    if not threads.blas_info()["controllable"]:
        pytest.skip("BLAS thread count not controllable here")
    threads._blas.set_threads(2)  # as when BLAS's workers do not spin
    inside = threads.parallel_for(lambda a, b: threads.blas_info()["threads"], 4)
    assert inside == [1, 1]
    assert threads.blas_info()["threads"] == 2


def test_a_worker_error_reaches_the_caller_after_every_block_ended(restore_threads):
    nnet.set_num_threads(2)
    done: list[int] = []

    def block(start: int, stop: int) -> None:
        if start > 0:
            raise RuntimeError("block failed")
        done.append(start)

    with pytest.raises(RuntimeError, match="block failed"):
        threads.parallel_for(block, 4)
    assert done == [0]


def test_parallel_for_inside_a_block_runs_inline(restore_threads):
    """A block that calls parallel_for again finds the workers busy and runs that call itself,
    instead of waiting for a worker that is waiting for it."""
    nnet.set_num_threads(2)
    inner = threads.parallel_for(lambda a, b: threads.parallel_for(lambda c, d: (c, d), 10), 4)
    assert inner == [[(0, 10)], [(0, 10)]]


def test_changing_the_count_ends_the_old_workers(restore_threads):
    nnet.set_num_threads(2)
    threads.parallel_for(lambda a, b: None, 4)
    before = {t for t in threading.enumerate() if t.name.startswith("nnet-worker")}
    assert before
    nnet.set_num_threads(3)
    assert not any(t.is_alive() for t in before)
    names = threads.parallel_for(lambda a, b: threading.current_thread().name, 6)
    assert len(set(names)) == 3


def test_small_products_run_on_one_blas_thread_and_large_ones_on_the_count(restore_threads):
    if not threads.blas_info()["controllable"]:
        pytest.skip("BLAS thread count not controllable here")
    nnet.set_num_threads(2)
    threads._blas.set_threads(2)  # as when BLAS's workers do not spin
    with threads.blas_for(threads.SMALL_PRODUCT_MACS - 1):
        assert threads.blas_info()["threads"] == 1
    assert threads.blas_info()["threads"] == 2
    with threads.blas_for(threads.SMALL_PRODUCT_MACS):
        assert threads.blas_info()["threads"] == 2


def test_the_kernel_gradient_splits_only_above_the_small_product_size(restore_threads, monkeypatch):
    from nnet.kernels import conv

    nnet.set_num_threads(2)
    rng = np.random.default_rng(0)
    seen: list[int] = []

    def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        seen.append(a.shape[0])
        return a.T @ b

    a, b = rng.standard_normal((8192, 9)), rng.standard_normal((8192, 4))
    monkeypatch.setattr(conv, "tall_product", product)
    np.testing.assert_allclose(conv.weight_product(a, b), a.T @ b)
    assert seen == [8192]  # 295k multiply-adds: one block
    seen.clear()
    monkeypatch.setattr(conv, "SMALL_PRODUCT_MACS", 8192 * 9 * 4 // 2)
    np.testing.assert_allclose(conv.weight_product(a, b), a.T @ b)
    assert sorted(seen) == [4096, 4096]
