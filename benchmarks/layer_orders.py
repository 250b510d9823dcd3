"""layer_orders: training steps of CNNs whose blocks take conv / batch norm / ReLU / max-pool in
different orders, each built as ``nn.Sequential`` and as a define-by-run ``Module.forward`` that
calls the layers one at a time (``nnet.relu`` for the ReLU), against PyTorch (issue 12).

Wide CNN (batch 64, 28x28x1, 3x3 convs 1 -> 32 -> 64, linear 3136 -> 128 -> 10, Adam 1e-3) in the
orders conv-bn-relu-pool, conv-relu-pool-bn and conv-relu-bn-pool; the seed CNN (batch 100, 4 and
8 channels, its own order conv-relu-pool-bn, dropout) as well. Targets: each <= 1.0x PyTorch (the
seed CNN <= 0.8x), and define-by-run within 1.1x of Sequential (printed as nnet/Sequential).

    NNET_BENCH_THREADS=1 python -m benchmarks --only layer_orders
    python -m benchmarks --only layer_orders          # the machine's default threads
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import nnet_models, torch_ref
from benchmarks.common import batch
from benchmarks.results import Row, fill
from benchmarks.timing import Config, load_torch, measure

NAME = "layer_orders"
TITLE = "CNN blocks in three layer orders, Sequential and define-by-run, training steps"

#: (network, order of the layers after each conv, channels, batch, dropout)
NETWORKS = (
    ("wide", ("bn", "relu", "pool"), (32, 64), 64, False),
    ("wide", ("relu", "pool", "bn"), (32, 64), 64, False),
    ("wide", ("relu", "bn", "pool"), (32, 64), 64, False),
    ("seed", ("relu", "pool", "bn"), (4, 8), 100, True),
)


def _layers(lib: Any, order: tuple[str, ...], channels: tuple[int, int], torch: bool) -> list:
    """The feature blocks' modules in order (PyTorch's with padding 1, nnet's 'same')."""
    out: list[Any] = []
    cin = 1
    for c in channels:
        out.append(lib.Conv2d(cin, c, 3, padding=1) if torch else lib.Conv2d(cin, c, 3))
        for name in order:
            if name == "bn":
                out.append(lib.BatchNorm2d(c))
            else:
                out.append(lib.ReLU() if name == "relu" else lib.MaxPool2d(2))
        cin = c
    return out


def _head(lib: Any, c2: int, dropout: bool) -> list:
    hidden = 196 if dropout else 128
    layers = [lib.Flatten(), lib.Linear(7 * 7 * c2, hidden), lib.ReLU()]
    if dropout:
        layers.append(lib.Dropout(0.5))
    return [*layers, lib.Linear(hidden, 10)]


def nnet_sequential(order: tuple[str, ...], channels: tuple[int, int], dropout: bool) -> Any:
    nn = nnet_models.nn()
    return nn.Sequential(*_layers(nn, order, channels, False), *_head(nn, channels[1], dropout))


def nnet_define_by_run(order: tuple[str, ...], channels: tuple[int, int], dropout: bool) -> Any:
    """The same layers as attributes, called one by one from ``forward`` (the ReLUs as
    ``nnet.relu``), as a user writes a model."""
    import nnet

    nn = nnet_models.nn()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            cin = 1
            self.convs = nn.ModuleList()
            self.bns = nn.ModuleList()
            for c in channels:
                self.convs.append(nn.Conv2d(cin, c, 3))
                self.bns.append(nn.BatchNorm2d(c))
                cin = c
            self.pool = nn.MaxPool2d(2)
            hidden = 196 if dropout else 128
            self.fc1 = nn.Linear(7 * 7 * channels[1], hidden)
            self.drop = nn.Dropout(0.5) if dropout else None
            self.fc2 = nn.Linear(hidden, 10)

        def forward(self, x: Any) -> Any:
            for conv, bn in zip(self.convs, self.bns, strict=True):
                x = conv(x)
                for name in order:
                    x = bn(x) if name == "bn" else nnet.relu(x) if name == "relu" else self.pool(x)
            x = nnet.relu(self.fc1(x.reshape(x.shape[0], -1)))
            if self.drop is not None:
                x = self.drop(x)
            return self.fc2(x)

    return Net()


def _nnet_setup(build: Callable[[], Any], x: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    def setup() -> Callable[[], object]:
        import nnet

        nnet.manual_seed(0)
        model = build()
        opt = nnet_models.optim().Adam(model.parameters(), lr=1e-3)
        xt, yt = nnet_models.tensors(x, y)
        return nnet_models.train_step(model, opt, xt, yt)

    return setup


def _torch_setup(torch: Any, order: tuple[str, ...], channels: tuple[int, int], dropout: bool,
                 x: np.ndarray, y: np.ndarray) -> Callable[[], Any]:  # fmt: skip
    def setup() -> Callable[[], object]:
        nn = torch.nn
        model = nn.Sequential(*_layers(nn, order, channels, True), *_head(nn, channels[1], dropout))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        return torch_ref.train_step(
            torch, model, opt, torch_ref.nchw(torch, x), torch.from_numpy(y)
        )

    return setup


def run(cfg: Config) -> list[Row]:
    torch, reason = load_torch()
    rows = []
    for net, order, channels, n, dropout in NETWORKS:
        x, y = batch((n, 28, 28, 1))
        sides: dict[str, Any] = {
            "nnet": _nnet_setup(lambda o=order, c=channels, d=dropout: nnet_sequential(o, c, d), x, y),
            "dbr": _nnet_setup(lambda o=order, c=channels, d=dropout: nnet_define_by_run(o, c, d), x, y),
            "torch": None if torch is None else _torch_setup(torch, order, channels, dropout, x, y),
        }  # fmt: skip
        measured = measure(sides, cfg, unavailable={"torch": reason or "not available"})
        name = f"{net} conv-{'-'.join(order)}"
        target = "<= 0.8x PyTorch" if net == "seed" else "<= 1.0x PyTorch"
        bound = 0.8 if net == "seed" else 1.0
        seq = Row(NAME, f"{name}, Sequential", "ms", target=target, bounds=[("torch", bound)])
        fill(seq, {"nnet": measured["nnet"], "torch": measured["torch"]}, lambda s: s * 1e3)
        dbr = Row(NAME, f"{name}, define-by-run", "ms", target=target, bounds=[("torch", bound)])
        fill(dbr, {"nnet": measured["dbr"], "torch": measured["torch"]}, lambda s: s * 1e3)
        a, b = dbr.values.get("nnet"), seq.values.get("nnet")
        dbr.extra_ratios["Sequential (target <= 1.1x)"] = a / b if a and b else None
        rows += [seq, dbr]
    return rows


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
