"""Check that the sides compute the same thing: the NumPy floor and nnet against PyTorch.

``python -m benchmarks.verify`` loads one set of weights into each side, runs a training step on a
dense random batch (dropout switched off on every side, so the masks cannot differ) and compares the
loss, every parameter gradient, the parameters after one optimizer step and the BatchNorm running
statistics. Dense random inputs avoid max-pool ties, which PyTorch's own backends break differently
(../shared/PERF-FACTS.md). A timing is only worth comparing if this passes.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from benchmarks import nnet_models, numpy_ref, torch_ref
from benchmarks.timing import describe_error, load_torch

RTOL = 2e-3  # float32 through a few layers: relative to each array's largest magnitude


def _close(a: np.ndarray, b: np.ndarray, floor: float = 1e-12) -> float:
    """Largest difference relative to the largest magnitude of ``b`` (at least ``floor``)."""
    scale = max(float(np.abs(b).max()), floor)
    return float(np.abs(a - b).max()) / scale


def _numpy_side(net: numpy_ref.Net, opt: Any, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    for layer in net.layers:
        if isinstance(layer, numpy_ref.Dropout):
            layer.forward = lambda x, train: x  # type: ignore[method-assign]
            layer.backward = lambda g: g  # type: ignore[method-assign]
    loss = net.loss_and_grads(x, y)
    grads = [g.copy() for g in net.grads.values()]
    opt.step()
    stats = [
        a.copy()
        for layer in net.layers
        if hasattr(layer, "running_mean")
        for a in (layer.running_mean, layer.running_var)
    ]
    return {
        "loss": loss,
        "grads": grads,
        "params": [p.copy() for p in net.params.values()],
        "bn": stats,
    }


def _torch_side(
    torch: Any, model: Any, opt: Any, x: np.ndarray, y: np.ndarray, hwc: tuple[int, int, int] | None
) -> dict[str, Any]:
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    xt = torch_ref.nchw(torch, x) if x.ndim == 4 else torch.from_numpy(x)
    loss = torch.nn.functional.cross_entropy(model(xt), torch.from_numpy(y))
    opt.zero_grad()
    loss.backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    opt.step()
    bn = [
        a.numpy().copy()
        for m in model.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for a in (m.running_mean, m.running_var)
    ]
    return {
        "loss": float(loss.detach()),
        "grads": [_to_nnet_layout(g, hwc, i) for i, g in enumerate(grads)],
        "params": [
            _to_nnet_layout(p.detach().numpy(), hwc, i) for i, p in enumerate(model.parameters())
        ],
        "bn": bn,
    }


_first_linear_index: dict[int, int] = {}


def _to_nnet_layout(a: np.ndarray, hwc: tuple[int, int, int] | None, index: int) -> np.ndarray:
    if a.ndim == 4:
        return a.transpose(2, 3, 1, 0)
    if a.ndim == 2:
        if hwc is not None and index == _first_linear_index.get(id(hwc), -1):
            h, w, c = hwc
            return a.reshape(a.shape[0], c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)
        return a.T
    return a


def _nnet_side(model: Any, opt: Any, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    import nnet

    model.train()
    for m in model.modules():
        if type(m).__name__ == "Dropout":
            m.eval()
    loss = nnet_models.nn().CrossEntropyLoss()(model(nnet.Tensor(x)), nnet.Tensor(y))
    opt.zero_grad()
    loss.backward()
    grads = [p.grad.data.copy() for p in model.parameters()]
    opt.step()
    bn = []
    for m in model.modules():
        if type(m).__name__ == "BatchNorm2d":
            bn += [np.asarray(m.running_mean).copy(), np.asarray(m.running_var).copy()]
    return {
        "loss": float(loss.item()),
        "grads": grads,
        "params": [p.data.copy() for p in model.parameters()],
        "bn": bn,
    }


def _compare(name: str, got: dict[str, Any], ref: dict[str, Any], names: list[str]) -> bool:
    ok = True
    d = abs(got["loss"] - ref["loss"]) / max(abs(ref["loss"]), 1e-12)
    worst = [("loss", d)]
    for what in ("grads", "params", "bn"):
        if len(got[what]) != len(ref[what]):
            print(f"  {name}: {len(got[what])} {what} against {len(ref[what])}")
            return False
    # A gradient that is zero in exact arithmetic (a conv bias before batch norm) is float32 noise on
    # both sides: measure gradients against the largest gradient in the network, not their own size.
    gscale = max(float(np.abs(g).max()) for g in ref["grads"])
    for label, a, b in zip(names, got["grads"], ref["grads"], strict=True):
        if a.shape != b.shape:
            print(f"  {name}: grads {label}: shape {a.shape} against {b.shape}")
            return False
        worst.append((f"grads {label}", _close(a, b, 1e-3 * gscale)))
    # Adam's first step moves each weight by about lr * sign(g), so where g is noise the sign is too:
    # compare updated parameters only where the reference gradient is clearly non-zero.
    for label, a, b, g in zip(names, got["params"], ref["params"], ref["grads"], strict=True):
        keep = np.abs(g) > 1e-3 * gscale
        if keep.any():
            worst.append((f"params {label}", _close(a[keep], b[keep])))
    for i, (a, b) in enumerate(zip(got["bn"], ref["bn"], strict=True)):
        worst.append((f"bn running stat {i}", _close(a, b)))
    bad = [(k, v) for k, v in worst if not v <= RTOL]
    top = max(worst, key=lambda kv: kv[1])
    if bad:
        ok = False
        for k, v in bad:
            print(f"  {name}: {k} differs by {v:.2e} of its scale (tolerance {RTOL:.0e})")
    print(
        f"  {name}: {'OK' if ok else 'MISMATCH'} (largest relative difference {top[1]:.1e}, {top[0]})"
    )
    return ok


CASES = {
    "mlp": ((128, 784), None, "sgd"),
    "seed_cnn": ((32, 28, 28, 1), (7, 7, 8), "adam"),
    "wide_cnn": ((16, 28, 28, 1), (7, 7, 64), "adam"),
}


def main() -> int:
    torch, why = load_torch()
    if torch is None:
        print(f"verify needs PyTorch as the reference: {why}")
        return 2
    all_ok = True
    rng = np.random.default_rng(0)
    for case, (shape, hwc, opt_name) in CASES.items():
        print(case)
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, 10, shape[0])
        net = getattr(numpy_ref, case)(seed=3)
        params = {k: v.copy() for k, v in net.params.items()}
        names = list(params)
        tmodel = getattr(torch_ref, case)(torch)
        torch_ref.load_numpy_weights(tmodel, params, hwc)
        if hwc is not None:
            linear_at = next(i for i, a in enumerate(params.values()) if a.ndim == 2)
            _first_linear_index[id(hwc)] = linear_at
        if opt_name == "adam":
            topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
            nopt: Any = numpy_ref.Adam(net, lr=1e-3)
        else:
            topt = torch.optim.SGD(tmodel.parameters(), lr=0.1)
            nopt = numpy_ref.SGD(net, lr=0.1)
        ref = _torch_side(torch, tmodel, topt, x, y, hwc)
        all_ok &= _compare("NumPy floor vs PyTorch", _numpy_side(net, nopt, x, y), ref, names)
        try:
            model = getattr(nnet_models, case)()
            nnet_models.load_numpy_weights(model, params)
            optim = nnet_models.optim()
            if opt_name == "adam":
                o = optim.Adam(model.parameters(), lr=1e-3)
            else:
                o = optim.SGD(model.parameters(), lr=0.1)
            got = _nnet_side(model, o, x, y)
        except Exception as exc:
            print(f"  nnet: cannot run ({describe_error(exc)})")
            all_ok = False
            continue
        all_ok &= _compare("nnet vs PyTorch", got, ref, names)
    print("all sides agree" if all_ok else "some side disagrees: its timings are not comparable")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
