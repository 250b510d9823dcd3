"""``nnet train`` and ``nnet evaluate``: the command line of the main job."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

import nnet
from nnet import distributed, nn
from nnet.data import DataLoader
from nnet.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rank_seed,
    restore_rng,
    save_checkpoint,
)
from nnet.train.data import DATASETS, DataError, load_data
from nnet.train.export import add_parser as add_export_parser
from nnet.train.export import run_export
from nnet.train.loop import NonFiniteLoss, evaluate, train_epoch
from nnet.train.models import MODELS, build_model

OPTIMIZERS = ("adam", "sgd")
SCHEDULERS = ("none", "cosine", "step")
# Per-dataset defaults. MNIST: the seed's protocol. Digits: the seed CNN's two 2x2 poolings leave
# 2x2x8 features of an 8x8 image, and it reaches only 95.6-97.8 % held out depending on the seed,
# so the digits default is the MLP (98.1-98.3 % over seeds 0-4, about a second); --model seed-cnn
# still runs on them.
_COMMON = {"optimizer": "adam", "seed": 0}
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": dict(_COMMON, model="mlp", epochs=20, batch_size=32, lr=3e-3, scheduler="cosine"),
    "mnist": dict(_COMMON, model="seed-cnn", epochs=10, batch_size=100, lr=1e-3, scheduler="none"),
}
DEFAULTS["fashion-mnist"] = DEFAULTS["mnist"]
# What a resumed run takes from its checkpoint; giving a different value is an error.
FROZEN = ("dataset", "model", "optimizer", "lr", "batch_size", "seed", "scheduler")


def defaults_text(key: str) -> str:
    """The default of ``key`` per dataset, read off DEFAULTS for ``--help``: "digits 20,
    mnist/fashion-mnist 10", or "default: adam" when every dataset has the same.

    >>> defaults_text("batch_size")
    'digits 32, mnist/fashion-mnist 100'
    """
    groups: dict[str, list[str]] = {}
    for name in DATASETS:
        groups.setdefault(str(DEFAULTS[name][key]), []).append(name)
    if len(groups) == 1:
        return f"default: {next(iter(groups))}"
    return ", ".join(f"{'/'.join(names)} {value}" for value, names in groups.items())


class UsageError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnet", description="Train and evaluate nnet's image classifiers."
    )
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,export}")
    sub.required = True
    t = sub.add_parser("train", help="train a classifier (default: on the embedded digits)")
    t.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="digits (embedded, the default), mnist or fashion-mnist",
    )
    t.add_argument(
        "--data", metavar="DIR", help="folder with the four IDX files (default: data/<dataset>)"
    )
    t.add_argument("--download", action="store_true", help="fetch missing IDX files into --data")
    t.add_argument("--model", choices=MODELS, default=None, help=defaults_text("model"))
    t.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help=f"total epochs ({defaults_text('epochs')}); with --resume, the epoch to reach",
    )
    t.add_argument(
        "--batch-size", type=_positive_int, default=None, help=defaults_text("batch_size")
    )
    t.add_argument(
        "--lr",
        type=_positive_float,
        default=None,
        help=f"learning rate ({defaults_text('lr')})",
    )
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help=defaults_text("optimizer"))
    t.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default=None,
        help=f"learning-rate schedule over the epochs ({defaults_text('scheduler')})",
    )
    t.add_argument("--seed", type=int, default=None, help=f"random seed ({defaults_text('seed')})")
    t.add_argument("--checkpoint", metavar="PATH", help="save a checkpoint here after each epoch")
    t.add_argument("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    t.add_argument("--plot", metavar="PATH.png", help="save loss and accuracy curves (matplotlib)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    e = sub.add_parser("evaluate", help="test accuracy of a checkpoint's model")
    e.add_argument("--checkpoint", metavar="PATH", required=True)
    e.add_argument("--data", metavar="DIR", help="folder with the IDX files (mnist, fashion-mnist)")
    e.add_argument("--download", action="store_true", help="fetch missing IDX files into --data")
    add_export_parser(sub)
    return parser  # fmt: skip


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def make_optimizer(name: str, params: Any, lr: float) -> nnet.optim.Optimizer:
    if name == "adam":
        return nnet.optim.Adam(params, lr=lr)
    return nnet.optim.SGD(params, lr=lr, momentum=0.9)


def make_scheduler(name: str, optimizer: nnet.optim.Optimizer, epochs: int) -> Any:
    if name == "cosine":
        return nnet.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return nnet.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3))
    return None


def resolve_config(args: argparse.Namespace, saved: dict[str, Any] | None) -> dict[str, Any]:
    """The run's settings: the checkpoint's when resuming (checked against the flags), else the
    flags over the dataset's defaults."""
    given = {k: getattr(args, k) for k in FROZEN}
    if saved is not None:
        for key, value in given.items():
            if value is not None and value != saved[key]:
                flag = "--" + key.replace("_", "-")
                raise UsageError(
                    f"--resume: the checkpoint was trained with {flag} {saved[key]}, not {value}; "
                    f"drop {flag} (or start a new run without --resume)"
                )
        config = {k: saved[k] for k in FROZEN}
        config["epochs"] = args.epochs or saved["epochs"]
        return config
    dataset = args.dataset or "digits"
    defaults = DEFAULTS[dataset]
    config = {k: defaults[k] if v is None else v for k, v in given.items() if k != "dataset"}
    return dict(config, dataset=dataset, epochs=args.epochs or defaults["epochs"])


def check_plot_dependency(path: str | None) -> None:
    if path is None:
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise UsageError(
            '--plot needs matplotlib: pip install "nnet[plot]" (or drop --plot)'
        ) from e


def say(*args: Any, **kwargs: Any) -> None:
    """``print`` on rank 0 only: under ``mpiexec`` the other ranks keep quiet."""
    if distributed.is_main():
        print(*args, **kwargs)


def run_train(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    shard = (distributed.rank(), distributed.world_size())
    check_plot_dependency(args.plot)
    saved = load_checkpoint(args.resume) if args.resume else None
    config = resolve_config(args, saved["config"] if saved else None)
    data_dir = args.data or (saved["config"].get("data") if saved else None) or None
    train_set, test_set = load_data(config["dataset"], data_dir, args.download)

    nnet.manual_seed(config["seed"])
    h, w, c = train_set.arrays[0].shape[1:]  # images are (N, H, W, C)
    net = build_model(config["model"], (h, w, c))
    model = net
    if shard[1] > 1:
        # Batch statistics over the global batch, so N ranks train like one process.
        net = distributed.convert_sync_batchnorm(net)
        model = distributed.DistributedDataParallel(net, broadcast_buffers=False)  # synced
    optimizer = make_optimizer(config["optimizer"], model.parameters(), config["lr"])
    scheduler = make_scheduler(config["scheduler"], optimizer, config["epochs"])
    loader = DataLoader(train_set, batch_size=config["batch_size"], shuffle=True)
    if shard[1] > 1:  # the loader's order is drawn alike everywhere; the dropout masks are not
        nnet.manual_seed(rank_seed(config["seed"], shard[0]))
    loss_fn = nn.CrossEntropyLoss()
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    first = 1
    if saved is not None:
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            # Only the position: the schedule spans the run's total, which --epochs may extend.
            scheduler.load_state_dict({"last_epoch": saved["scheduler"]["last_epoch"]})
        if not restore_rng(saved, loader, *shard):
            nnet.manual_seed(rank_seed(config["seed"], shard[0], saved["epoch"]))
            say(
                f"Resuming on {shard[1]} process(es) a run saved on another number: the sample "
                "order goes on, the dropout masks start new streams (not bit-identical)."
            )
        history = saved["history"]
        first = saved["epoch"] + 1
        if first > config["epochs"]:
            say(f"The checkpoint has {saved['epoch']} epochs already; nothing to train "
                  f"(pass --epochs N with N > {saved['epoch']} to continue).")  # fmt: skip
    checkpoint = args.checkpoint or args.resume
    if checkpoint and not os.path.isdir(os.path.dirname(os.path.abspath(checkpoint))):
        raise UsageError(f"--checkpoint {checkpoint}: its folder does not exist; create it first")
    stored = dict(config, data=str(data_dir or ""))
    for epoch in range(first, config["epochs"] + 1):
        try:
            # A diverging run overflows before its loss turns NaN: the check below reports it
            # with the epoch and step, in place of a screenful of NumPy warnings.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, accuracy = train_epoch(model, loader, optimizer, loss_fn, epoch,
                                             args.quiet or shard[0] > 0, shard)  # fmt: skip
        except NonFiniteLoss as e:
            kept = (f"; the last good checkpoint (epoch {epoch - 1}) is kept in {checkpoint}"
                    if checkpoint and epoch > 1 else "")  # fmt: skip
            raise UsageError(
                f"training stopped: {e}{kept}. The run diverged: try a lower --lr "
                f"(this run used {config['lr']:g}, e.g. --lr {config['lr'] / 10:g})"
            ) from e
        if scheduler is not None:
            scheduler.step()
        history["loss"].append(loss)
        history["accuracy"].append(accuracy)
        say(f"Epoch {epoch}: loss={loss:.3f}, accuracy={accuracy:.3f}", flush=True)
        # every rank's dropout stream, so that a resumed run goes on bit for bit (a collective)
        streams = (distributed.all_gather_object(nnet.random.get_rng_state())
                   if checkpoint and shard[1] > 1 else None)  # fmt: skip
        if checkpoint and distributed.is_main():
            save_checkpoint(checkpoint, config=stored, epoch=epoch, model=net,
                            optimizer=optimizer, scheduler=scheduler, loader=loader,
                            history=history, nnet_rng=streams)  # fmt: skip
    say(f"Test accuracy={evaluate(net, test_set, shard=shard):.3f}")
    if args.plot and distributed.is_main():
        from nnet.train.plot import plot_history

        plot_history(history, args.plot)
    say(f"Wall time: {time.perf_counter() - start:.1f} s")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    saved = load_checkpoint(args.checkpoint)
    config = saved["config"]
    _, test_set = load_data(config["dataset"], args.data or config.get("data") or None,
                            args.download)  # fmt: skip
    h, w, c = test_set.arrays[0].shape[1:]
    model = build_model(config["model"], (h, w, c))
    model.load_state_dict(saved["model"])
    shard = (distributed.rank(), distributed.world_size())  # under mpiexec: a share each
    say(f"Test accuracy={evaluate(model, test_set, shard=shard):.3f}")
    say(f"Wall time: {time.perf_counter() - start:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nnet`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    distributed.init()
    try:
        run = {"train": run_train, "evaluate": run_evaluate, "export": run_export}[args.command]
        return run(args)
    except (UsageError, DataError, CheckpointError, nnet.datasets.DownloadError,
            nnet.datasets.IDXError) as e:  # fmt: skip
        return _fail(f"nnet {args.command}: error: {e}", 1)
    except KeyboardInterrupt:
        return _fail(f"nnet {args.command}: interrupted", 130)


def _fail(message: str, code: int) -> int:
    """Print the error; under ``mpiexec`` name the rank and end every rank of the job now (the
    others may be waiting for this one in a collective)."""
    if distributed.world_size() == 1:
        print(message, file=sys.stderr)
        return code
    print(f"{message} (rank {distributed.rank()} of {distributed.world_size()})", file=sys.stderr)
    distributed.abort(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
