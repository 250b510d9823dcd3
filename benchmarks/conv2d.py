"""conv2d: Conv2d forward plus backward in GFLOP/s, against the machine's float32 matmul GFLOP/s.

N=64, 32x32 images, 32 -> 64 channels, 3x3, 'same', stride 1; backward from a fixed random upstream
gradient, computing the input, kernel and bias gradients (``.grad`` reset to None each step on every
side, so no accumulation is timed). FLOPs counted: 3 x 2*N*H*W*C_in*C_out*9 (forward, input gradient,
kernel gradient): the direct convolution's work on every side, so a side that does fewer
multiplications (nnet takes Winograd's F(2x2, 3x3) at this shape) shows as an effective rate. The
ceiling is NumPy's float32 1024x1024 matmul, timed as a fourth side in the same rounds. Target
(issue 5): nnet's GFLOP/s at least 0.6x the matmul's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks import nnet_models, numpy_ref
from benchmarks.results import Row, fill
from benchmarks.timing import Config, Setup, load_torch, measure

NAME = "conv2d"
TITLE = "Conv2d forward + backward, N=64, 32x32, 32 -> 64, 3x3 'same', GFLOP/s"
N, H, W, CIN, COUT = 64, 32, 32, 32, 64
FLOPS = 3 * 2 * N * H * W * CIN * COUT * 9
MATMUL = 1024
MATMUL_FLOPS = 2 * MATMUL**3


def sides() -> tuple[dict[str, Setup | None], dict[str, str]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, H, W, CIN), dtype=np.float32)
    g = rng.standard_normal((N, H, W, COUT), dtype=np.float32)

    def numpy_setup() -> Callable[[], object]:
        conv = numpy_ref.Conv3x3("c", CIN, COUT)
        numpy_ref.Net([conv])  # allocates and binds its parameters and gradients
        conv.need_input_grad = True  # the input gradient is part of this benchmark

        def step() -> object:
            conv.forward(x, True)
            return conv.backward(g)

        return step

    def nnet_setup() -> Callable[[], object]:
        import nnet

        conv = nnet_models.nn().Conv2d(CIN, COUT, 3)
        xt = nnet.Tensor(x, requires_grad=True)
        gt = nnet.Tensor(g)
        params = list(conv.parameters())

        def step() -> object:
            xt.grad = None
            for p in params:
                p.grad = None
            conv(xt).backward(gt)
            return xt.grad

        return step

    def matmul_setup() -> Callable[[], object]:
        r = np.random.default_rng(1)
        a = r.standard_normal((MATMUL, MATMUL), dtype=np.float32)
        b = r.standard_normal((MATMUL, MATMUL), dtype=np.float32)
        out = np.empty((MATMUL, MATMUL), np.float32)
        return lambda: np.matmul(a, b, out=out)

    out: dict[str, Setup | None] = {
        "nnet": nnet_setup,
        "numpy": numpy_setup,
        "torch": None,
        "matmul": matmul_setup,
    }
    why = {}
    torch, reason = load_torch()
    if torch is None:
        why["torch"] = reason or "not available"
    else:
        from benchmarks import torch_ref

        def torch_setup() -> Callable[[], object]:
            conv = torch.nn.Conv2d(CIN, COUT, 3, padding=1)
            xt = torch_ref.nchw(torch, x).requires_grad_()
            gt = torch_ref.nchw(torch, g)

            def step() -> object:
                xt.grad = None
                conv.zero_grad(set_to_none=True)
                conv(xt).backward(gt)
                return xt.grad

            return step

        out["torch"] = torch_setup
    return out, why


def run(cfg: Config) -> list[Row]:
    s, why = sides()
    measured = measure(s, cfg, unavailable=why)
    mm = measured.pop("matmul")
    ceiling = MATMUL_FLOPS / mm.stats.median / 1e9 if mm.stats else None
    ceiling_row = Row(
        NAME,
        "ceiling: NumPy f32 matmul 1024x1024",
        "GFLOP/s",
        higher_is_better=True,
    )
    fill(ceiling_row, {"numpy": mm}, lambda t: MATMUL_FLOPS / t / 1e9)
    row = Row(
        NAME,
        "conv fwd+bwd, N=64 32x32 32->64",
        "GFLOP/s",
        higher_is_better=True,
        target=">= 0.6x matmul",
        bounds=[("matmul", 0.6)],
    )
    fill(row, measured, lambda t: FLOPS / t / 1e9)
    nn_v = row.values.get("nnet")
    row.extra_ratios["matmul"] = nn_v / ceiling if nn_v is not None and ceiling else None
    row.detail["ms"] = {k: (FLOPS / v / 1e6 if v else None) for k, v in row.values.items()}
    return [ceiling_row, row]


if __name__ == "__main__":
    from benchmarks.run import main

    main(["--only", NAME])
