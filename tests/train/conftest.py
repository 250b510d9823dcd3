"""Helpers for the main job's tests: run ``nnet`` in-process and read what it printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnet.__main__ import main

REAL_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


class Run:
    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err

    def test_accuracy(self) -> float:
        match = re.search(r"^Test accuracy=([0-9.]+)$", self.out, re.M)
        assert match, self.out + self.err
        return float(match.group(1))


@pytest.fixture
def nnet_cli(capsys: pytest.CaptureFixture[str]):
    def run(*argv: str) -> Run:
        status = main(list(argv))
        captured = capsys.readouterr()
        return Run(status, captured.out, captured.err)

    return run
