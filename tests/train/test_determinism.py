"""Same seed, same run: bit-identical losses; 4 epochs + resume to 10 equals 10 straight."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnet.train import cli
from nnet.train.checkpoint import load_checkpoint

# The seed CNN (batch norm and dropout) on the digits, in big batches to keep it quick.
FAST = ("--model", "seed-cnn", "--scheduler", "none", "--batch-size", "128", "--quiet")


def weights(path: Path) -> dict[str, np.ndarray]:
    return load_checkpoint(path)["model"]


def test_same_seed_gives_bit_identical_losses(nnet_cli, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    for path, seed in ((a, "3"), (b, "3"), (c, "4")):
        run = nnet_cli("train", "--epochs", "3", "--seed", seed, "--checkpoint", str(path), *FAST)
        assert run.status == 0, run.err
    ha, hb, hc = (load_checkpoint(p)["history"]["loss"] for p in (a, b, c))
    assert ha == hb and ha != hc


def test_resume_is_bit_identical_to_an_uninterrupted_run(nnet_cli, tmp_path: Path) -> None:
    straight, split = tmp_path / "straight.npz", tmp_path / "split.npz"
    assert nnet_cli("train", "--epochs", "10", "--checkpoint", str(straight), *FAST).status == 0
    first = nnet_cli("train", "--epochs", "4", "--checkpoint", str(split), *FAST)
    assert first.status == 0 and load_checkpoint(split)["epoch"] == 4
    second = nnet_cli("train", "--resume", str(split), "--epochs", "10", "--quiet")
    assert second.status == 0, second.err
    assert second.out.splitlines()[0].startswith("Epoch 5: ")
    s, r = load_checkpoint(straight), load_checkpoint(split)
    assert r["epoch"] == 10 and s["history"] == r["history"]
    for key, value in s["model"].items():
        np.testing.assert_array_equal(np.asarray(r["model"][key]), np.asarray(value), err_msg=key)
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_array_equal(
            r["optimizer"]["state"][0][key], s["optimizer"]["state"][0][key]
        )


def test_interrupted_run_resumes_its_schedule_exactly(
    nnet_cli, tmp_path: Path, monkeypatch
) -> None:
    argv = ("--epochs", "6", "--model", "seed-cnn", "--scheduler", "cosine", "--batch-size", "128",
            "--quiet")  # fmt: skip
    straight, cut = tmp_path / "straight.npz", tmp_path / "cut.npz"
    assert nnet_cli("train", *argv, "--checkpoint", str(straight)).status == 0
    real = cli.train_epoch

    def interrupted_in_epoch_3(*args, **kwargs):
        if args[4] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(cli, "train_epoch", interrupted_in_epoch_3)
        stopped = nnet_cli("train", *argv, "--checkpoint", str(cut))
    assert stopped.status == 130 and "interrupted" in stopped.err
    assert load_checkpoint(cut)["epoch"] == 2
    resumed = nnet_cli("train", "--resume", str(cut), "--quiet")
    assert resumed.status == 0, resumed.err
    s, r = load_checkpoint(straight), load_checkpoint(cut)
    assert r["epoch"] == 6 and s["history"] == r["history"]
    assert s["optimizer"]["param_groups"][0]["lr"] == r["optimizer"]["param_groups"][0]["lr"]
    for key, value in s["model"].items():
        np.testing.assert_array_equal(np.asarray(r["model"][key]), np.asarray(value), err_msg=key)
