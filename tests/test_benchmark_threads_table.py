"""``python -m benchmarks --threads 1,default``: the settings it accepts, the environment each
subprocess gets, and the side-by-side table (benchmarks/threads_table.py). No benchmark runs here."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def tt():
    # importing the `benchmarks` package pins thread pools in os.environ for the suite's own runs:
    # keep that from leaking into other tests' subprocesses
    before = dict(os.environ)
    from benchmarks import threads_table

    os.environ.clear()
    os.environ.update(before)
    return threads_table


def test_settings_parse_and_bad_ones_are_named(tt):
    assert tt.parse_settings("1, default") == ["1", "default"]
    assert tt.parse_settings("2") == ["2"]
    for bad, word in [("0", "'0'"), ("one", "'one'"), ("", "at least one"), ("1,1", "repeated")]:
        with pytest.raises(ValueError, match=word):
            tt.parse_settings(bad)


def test_each_setting_gets_its_own_thread_variables(tt, monkeypatch):
    monkeypatch.setenv("NNET_NUM_THREADS", "3")
    monkeypatch.setenv("NNET_BENCH_THREADS", "3")
    one = tt.environment("1")
    assert one["NNET_NUM_THREADS"] == one["NNET_BENCH_THREADS"] == "1"
    default = tt.environment("default")
    assert "NNET_NUM_THREADS" not in default and "NNET_BENCH_THREADS" not in default


def test_the_subprocess_arguments_drop_threads_and_json(tt):
    argv = ["--only", "seed_cnn_step", "--threads", "1,default", "--quick", "--json=a.json"]
    assert tt._strip_threads(argv) == ["--only", "seed_cnn_step", "--quick"]
    assert tt.json_path("out/after.json", "1") == "out/after.threads-1.json"
    assert tt.json_path("after", "default") == "after.threads-default.json"


def _doc(threads, nnet, torch, met, matmul=None):
    row = {
        "benchmark": "seed_cnn_step",
        "metric": "seed CNN step, batch 100",
        "unit": "ms",
        "higher_is_better": False,
        "values": {"nnet": nnet, "numpy": 3.0, "torch": torch},
        "ratios": {"numpy": nnet / 3.0, "torch": nnet / torch},
        "extra_ratios": {} if matmul is None else {"matmul": matmul},
        "target": "<= 0.8x PyTorch",
        "met": met,
    }
    return {"machine": {"threads": threads}, "rows": [row]}


def test_the_table_puts_each_settings_ratios_side_by_side(tt):
    text = tt.side_by_side(
        {"1": _doc(1, 4.0, 5.0, True), "default": _doc(2, 4.0, 3.2, False, matmul=0.5)}
    )
    head, _, line = text.splitlines()[:3]
    assert "nnet [1 thread]" in head and "nnet [default (2)]" in head
    assert head.count("NumPy floor") == 2 and head.count("PyTorch") == 4
    assert line.split()[:2] == ["seed_cnn_step", "seed"]
    cells = line.split()
    assert "0.80x" in cells and "1.25x" in cells  # 4.0 / 5.0 at one thread, 4.0 / 3.2 at two
    assert cells.index("met") < cells.index("NOT")
    assert "[nnet/matmul 0.50x (default (2))]" in line


def test_the_thread_gains_name_the_figures_slower_at_the_default(tt):
    one, default = _doc(1, 4.0, 5.0, True), _doc(2, 5.0, 3.2, False)
    rate = {**one["rows"][0], "benchmark": "eval", "metric": "img/s", "unit": "img/s",
            "higher_is_better": True, "values": {"nnet": 100.0}}  # fmt: skip
    memory = {**one["rows"][0], "benchmark": "memory", "unit": "MB", "values": {"nnet": 40.0}}
    one["rows"] += [rate, memory]
    default["rows"] += [{**rate, "values": {"nnet": 150.0}}, {**memory, "values": {"nnet": 50.0}}]
    text = tt.thread_gains(one, default)
    slower, faster = text.splitlines()[1:]
    assert "seed_cnn_step: seed CNN step, batch 100 0.80x" in slower  # 4.0 ms -> 5.0 ms
    assert "eval: img/s 1.50x" in faster and "eval" not in slower  # a rate: higher is better
    assert "memory" not in text  # not a speed
    assert "no speed figure" in tt.thread_gains(one, {"machine": {}, "rows": []})
