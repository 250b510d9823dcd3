"""The data-parallel training tests that need MPI: each launches ``mpiexec -n 2`` in a subprocess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnet
from nnet.__main__ import main
from tests.distributed.conftest import mpirun, needs_mpi, nnet_command

pytestmark = needs_mpi


def _weights(path: Path) -> dict[str, np.ndarray]:
    return nnet.load(path)["model"]


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The digits MLP trained for 2 epochs on 2 ranks through the CLI, its checkpoint kept."""
    path = tmp_path_factory.mktemp("mpi") / "two.npz"
    done = mpirun([nnet_command(), "train", "--epochs", "2", "--checkpoint", str(path)])
    assert done.returncode == 0, done.stderr
    return path, done.stdout


def test_cli_two_ranks_end_with_the_one_process_weights(two_rank_run, tmp_path, capsys) -> None:
    path, out = two_rank_run
    assert main(["train", "--epochs", "2", "--checkpoint", str(tmp_path / "one.npz")]) == 0
    one_out = capsys.readouterr().out
    one, two = _weights(tmp_path / "one.npz"), _weights(path)
    assert list(one) == list(two)  # the checkpoint holds the unwrapped model
    for name in one:
        scale = max(1.0, float(np.abs(one[name]).max()))
        assert np.abs(one[name] - two[name]).max() <= 1e-5 * scale, name
    # only rank 0 prints, and the epochs' figures cover the global batch
    assert out.count("Epoch 2:") == 1
    epoch_lines = [line for line in out.splitlines() if line.startswith("Epoch")]
    assert epoch_lines == [line for line in one_out.splitlines() if line.startswith("Epoch")]


def test_resume_under_mpi_is_bit_identical(tmp_path) -> None:
    """The seed CNN (SyncBatchNorm under mpiexec, and dropout: each rank's own mask stream, all
    of them in the checkpoint) stopped after one epoch and resumed, against two epochs in one go."""
    cmd = [nnet_command(), "train", "--model", "seed-cnn"]
    whole, first = tmp_path / "whole.npz", tmp_path / "first.npz"
    for extra in (["--epochs", "2", "--checkpoint", str(whole)],
                  ["--epochs", "1", "--checkpoint", str(first)],
                  ["--resume", str(first), "--epochs", "2"]):  # fmt: skip
        done = mpirun([*cmd, *extra])
        assert done.returncode == 0, done.stderr
    resumed, uninterrupted = _weights(first), _weights(whole)
    for name in uninterrupted:
        np.testing.assert_array_equal(resumed[name], uninterrupted[name], err_msg=name)
    streams = nnet.load(whole)["rng"]["nnet"]
    assert str(streams).startswith("[")  # one generator state per rank


def test_resume_on_another_number_of_processes_says_so(two_rank_run, tmp_path, capsys) -> None:
    copy = tmp_path / "copy.npz"
    copy.write_bytes(two_rank_run[0].read_bytes())
    assert main(["train", "--resume", str(copy), "--epochs", "3"]) == 0
    assert "saved on another number" in capsys.readouterr().out


def test_evaluate_shards_the_test_set(two_rank_run, capsys) -> None:
    path = str(two_rank_run[0])
    done = mpirun([nnet_command(), "evaluate", "--checkpoint", path])
    assert done.returncode == 0, done.stderr
    assert main(["evaluate", "--checkpoint", path]) == 0
    one = capsys.readouterr().out
    line = next(line for line in one.splitlines() if line.startswith("Test accuracy"))
    assert done.stdout.count("Test accuracy") == 1
    assert line in done.stdout.splitlines()


def test_ddp_seed_cnn_sync_batchnorm_no_sync_and_sampler() -> None:
    """The checks in workers/ddp_equivalence.py; it prints "ok" when all passed."""
    done = mpirun(["ddp_equivalence.py"], env={"NNET_NUM_THREADS": ""})  # "": unset
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


def test_a_rank_that_raises_ends_the_job_with_its_message() -> None:
    done = mpirun(["faults.py", "raise"])
    assert done.returncode != 0
    assert "rank 1 of 2 failed" in done.stderr
    assert "ValueError: boom: rank 1 could not read its shard" in done.stderr
    assert "passed the barrier" not in done.stdout


def test_a_killed_rank_ends_the_job() -> None:
    done = mpirun(["faults.py", "kill"])
    assert done.returncode != 0
    assert "passed the barrier" not in done.stdout


def test_mismatched_models_are_reported_at_wrap_time() -> None:
    done = mpirun(["faults.py", "mismatch"])
    assert done.returncode != 0
    assert "rank 1's model differs from rank 0's at '0.weight'" in done.stderr
    assert "(4, 32)" in done.stderr and "(4, 16)" in done.stderr


def test_a_cli_error_on_the_ranks_ends_the_job(tmp_path) -> None:
    missing = tmp_path / "no" / "such" / "folder" / "c.npz"
    done = mpirun([nnet_command(), "train", "--epochs", "1", "--checkpoint", str(missing)])
    assert done.returncode == 1
    assert "its folder does not exist" in done.stderr and "of 2)" in done.stderr
