"""Acceptance: the main job reaches the accuracies the project promises.

The MNIST test is the real protocol on ../shared/data/mnist (seed network, Adam lr 1e-3, batch 100,
10 epochs, trained on the 5,000 training images, tested on the 10,000 test images), so it takes
the longest of the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def test_default_command_on_digits_reaches_97_percent(nnet_cli) -> None:
    run = nnet_cli("train", "--quiet")
    assert run.status == 0, run.err
    assert run.test_accuracy() >= 0.97, run.out


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason="shared/data/mnist is not beside the repo")
def test_seed_protocol_on_real_mnist_reaches_96_percent(nnet_cli) -> None:
    run = nnet_cli("train", "--dataset", "mnist", "--data", str(REAL_MNIST), "--model",
                   "seed-cnn", "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "100",
                   "--epochs", "10", "--seed", "0", "--quiet")  # fmt: skip
    assert run.status == 0, run.err
    assert run.test_accuracy() >= 0.96, run.out
