"""``nnet train`` / ``nnet evaluate``: output, options, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import nnet
from nnet.datasets import write_idx
from nnet.train import cli
from nnet.train.checkpoint import load_checkpoint

QUICK = ("--epochs", "2", "--batch-size", "64", "--quiet")


def test_prints_the_seed_lines(nnet_cli) -> None:
    run = nnet_cli("train", *QUICK)
    assert run.status == 0, run.err
    lines = run.out.splitlines()
    assert re.fullmatch(r"Epoch 1: loss=\d+\.\d{3}, accuracy=0\.\d{3}", lines[0])
    assert re.fullmatch(r"Epoch 2: loss=\d+\.\d{3}, accuracy=0\.\d{3}", lines[1])
    assert re.fullmatch(r"Test accuracy=\d\.\d{3}", lines[2])
    assert re.fullmatch(r"Wall time: \d+\.\d s", lines[3])
    assert run.err == ""  # no progress bar when not on a terminal


@pytest.mark.parametrize(
    ("argv", "valid"),
    [
        (("--dataset", "cifar"), ["digits", "mnist", "fashion-mnist"]),
        (("--model", "resnet"), ["seed-cnn", "mlp"]),
        (("--optimizer", "lbfgs"), ["adam", "sgd"]),
        (("--scheduler", "cyclic"), ["none", "cosine", "step"]),
    ],
)
def test_unknown_option_value_lists_the_valid_ones(argv, valid, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        nnet.__main__.main(["train", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and all(repr(v) in err for v in valid)


@pytest.mark.parametrize("argv", [("--epochs", "0"), ("--batch-size", "-3"), ("--lr", "-1")])
def test_bad_numbers(argv, capsys) -> None:
    with pytest.raises(SystemExit):
        nnet.__main__.main(["train", *argv])
    assert "must be a positive" in capsys.readouterr().err


def test_missing_data_folder_names_files_and_flags(nnet_cli, tmp_path: Path) -> None:
    run = nnet_cli("train", "--dataset", "mnist", "--data", str(tmp_path / "nope"), "--quiet")
    assert run.status == 1 and run.out == ""
    for word in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "--data", "--download",
                 str(tmp_path / "nope")):  # fmt: skip
        assert word in run.err


def test_small_mnist_folder_trains_and_evaluates(nnet_cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 20)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))  # fmt: skip
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
    ckpt = tmp_path / "run.npz"
    run = nnet_cli("train", "--dataset", "fashion-mnist", "--data", str(tmp_path), "--model",
                   "mlp", "--optimizer", "sgd", "--scheduler", "cosine", "--epochs", "2",
                   "--checkpoint", str(ckpt), "--quiet")  # fmt: skip
    assert run.status == 0, run.err
    again = nnet_cli("evaluate", "--checkpoint", str(ckpt))
    assert again.status == 0 and again.test_accuracy() == run.test_accuracy()
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 2 and state["config"]["dataset"] == "fashion-mnist"
    assert state["config"]["data"] == str(tmp_path)


def test_resume_refuses_a_different_setting(nnet_cli, tmp_path: Path) -> None:
    ckpt = tmp_path / "c.npz"
    assert nnet_cli("train", "--epochs", "1", "--batch-size", "128", "--model", "mlp",
                    "--checkpoint", str(ckpt), "--quiet").status == 0  # fmt: skip
    run = nnet_cli("train", "--resume", str(ckpt), "--model", "seed-cnn", "--epochs", "2")
    assert run.status == 1 and "--model mlp" in run.err and "drop --model" in run.err


def test_bad_checkpoint_is_named(nnet_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint")
    run = nnet_cli("evaluate", "--checkpoint", str(bad))
    assert run.status == 1 and str(bad) in run.err
    run = nnet_cli("train", "--resume", str(tmp_path / "missing.npz"))
    assert run.status == 1 and "missing.npz does not exist" in run.err


def test_plot(nnet_cli, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    run = nnet_cli("train", "--epochs", "2", "--batch-size", "128", "--model", "mlp", "--quiet",
                   "--plot", str(out))  # fmt: skip
    assert run.status == 0, run.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_python_dash_m_entry_point() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "nnet", "--help"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0 and "train" in done.stdout and "evaluate" in done.stdout


def test_checkpoint_in_a_missing_folder_fails_before_training(nnet_cli, tmp_path: Path) -> None:
    run = nnet_cli("train", "--checkpoint", str(tmp_path / "no" / "c.npz"), "--quiet")
    assert run.status == 1 and run.out == "" and "folder does not exist" in run.err


def test_plot_without_matplotlib_names_the_extra(nnet_cli, tmp_path: Path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    run = nnet_cli("train", "--plot", str(tmp_path / "c.png"), "--quiet")
    assert run.status == 1 and run.out == "" and "nnet[plot]" in run.err


def test_help_states_the_defaults_the_run_uses(capsys):
    """Every per-dataset default in ``nnet train --help`` is read off DEFAULTS, the table the run
    resolves its settings from."""
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, at hyphens too
    for key in ("model", "epochs", "batch_size", "lr", "optimizer", "scheduler", "seed"):
        assert "".join(cli.defaults_text(key).split()) in text, key
    config = cli.resolve_config(cli.build_parser().parse_args(["train"]), None)
    for key in ("model", "epochs", "batch_size", "scheduler"):
        assert f"digits{config[key]}" in text, key
