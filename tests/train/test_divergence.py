"""A loss that turns NaN or infinite stops the run, names where, hints, and keeps the checkpoint."""

from __future__ import annotations

from pathlib import Path

import nnet
from nnet.train import cli
from nnet.train.checkpoint import load_checkpoint


def test_diverging_run_stops_with_epoch_step_and_hint(nnet_cli) -> None:
    run = nnet_cli("train", "--model", "seed-cnn", "--optimizer", "sgd", "--lr", "1e6", "--quiet")
    assert run.status == 1
    assert "epoch 1, step" in run.err and "lower --lr" in run.err and "1e+06" in run.err


def test_last_good_checkpoint_is_kept(nnet_cli, tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}
    real = nnet.nn.CrossEntropyLoss

    class BreaksInEpochTwo(real):
        def forward(self, logits, target):
            calls["n"] += 1
            loss = super().forward(logits, target)
            return loss * float("nan") if calls["n"] > 12 + 3 else loss  # 12 steps per epoch

    monkeypatch.setattr(cli.nn, "CrossEntropyLoss", BreaksInEpochTwo)
    ckpt = tmp_path / "run.npz"
    run = nnet_cli("train", "--epochs", "3", "--batch-size", "128", "--model", "seed-cnn",
                   "--checkpoint", str(ckpt), "--quiet")  # fmt: skip
    assert run.status == 1
    assert "the loss became nan at epoch 2, step 4" in run.err
    assert f"last good checkpoint (epoch 1) is kept in {ckpt}" in run.err
    assert run.out.startswith("Epoch 1: ") and "Epoch 2" not in run.out
    assert load_checkpoint(ckpt)["epoch"] == 1
