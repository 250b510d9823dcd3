"""Fusion serves every model a user writes: random define-by-run forwards of conv / batch norm /
ReLU (module or ``nnet.relu``) / max-pool, with the things users do between layers (keep a tensor,
``retain_grad``, a residual add, a forward hook that stores an output, a layer used twice), give
the plain compositions' outputs, gradients, running statistics and held tensors
(``use_fused(False)``). 16 float64 channels, so the fused kernels apply (bnpool.MIN_PIXEL_BYTES)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import nnet
from nnet import nn
from nnet.kernels import use_fused

C = 16
LAYERS = ["conv", "bn", "relu", "relu_fn", "pool"]
EXTRAS = ["keep", "retain", "residual", "hook", "pool_twice"]


class Random(nn.Module):
    """The forward runs ``plan``, a list of layer names and extras, in order."""

    def __init__(self, plan: list[str], cin: int = C) -> None:
        super().__init__()
        self.plan = plan
        convs = sum(s == "conv" for s in plan)
        self.convs = nn.ModuleList([nn.Conv2d(cin if i == 0 else C, C, 3) for i in range(convs)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(C) for s in plan if s == "bn"])
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.held: list[nnet.Tensor] = []
        self.hooked: list[nnet.Tensor] = []
        if "hook" in plan:
            self.relu.register_forward_hook(lambda m, i, out: self.hooked.append(out))

    def forward(self, x: nnet.Tensor) -> nnet.Tensor:
        convs, bns = iter(self.convs), iter(self.bns)
        for step in self.plan:
            if step == "conv":
                x = next(convs)(x)
            elif step == "bn":  # training needs more than one value per channel
                bn = next(bns)
                x = bn(x) if x.shape[0] * x.shape[1] * x.shape[2] > 1 else x
            elif step == "relu":
                x = self.relu(x)
            elif step == "relu_fn":
                x = nnet.relu(x)
            elif step == "pool":
                x = self.pool(x) if x.shape[1] >= 2 else x
            elif step == "pool_twice":  # one input, two pools: the input is used twice
                x = self.pool(x) + self.pool(x) if x.shape[1] >= 2 else x
            elif step in ("keep", "retain"):
                if step == "retain":
                    x.retain_grad()
                self.held.append(x)
            elif step == "residual":
                same = [h for h in self.held if h.shape == x.shape]
                x = x + same[-1] * 0.5 if same else x
        return (x * x).mean(axis=(1, 2)) @ nnet.tensor(np.linspace(-1, 1, C * 3).reshape(C, 3))


def _run(plan: list[str], fused: bool, x: np.ndarray, input_grad: bool):
    nnet.manual_seed(0)
    model = Random(plan, x.shape[3]).double()
    xt = nnet.tensor(x, requires_grad=input_grad)
    with use_fused(fused):
        out = model(xt)
        (out * out).sum().backward()
    got = [out.numpy()] + ([xt.grad.numpy()] if input_grad else [])
    got += [p.grad.numpy() for p in model.parameters() if p.grad is not None]
    got += [b.running_mean.numpy() for b in model.bns] + [b.running_var.numpy() for b in model.bns]
    got += [t.numpy() for t in model.held + model.hooked]
    got += [t.grad.numpy() for t in model.held if t._retains_grad]
    return got


@st.composite
def plans(draw) -> list[str]:
    """One to three blocks, each a convolution then bn / ReLU / pool in any order (a layer may be
    left out), with at most one extra somewhere in the block: most draws give runs the kernels
    take, and the extras test what fusion must leave alone."""
    plan: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        block = draw(st.permutations(["bn", draw(st.sampled_from(["relu", "relu_fn"])), "pool"]))
        block = block[: draw(st.integers(1, 3))] if draw(st.integers(0, 3)) == 0 else block
        if draw(st.integers(0, 2)) == 0:
            block.insert(draw(st.integers(0, len(block))), draw(st.sampled_from(EXTRAS)))
        plan += ["conv", *block]
    return plan


@settings(max_examples=60, deadline=None)
@given(
    plan=plans(),
    n=st.sampled_from([1, 2, 3, 24]),  # 24 images of 8x8: enough pixels for Winograd (conv.py)
    cin=st.sampled_from([1, C]),
    input_grad=st.booleans(),  # without, a first convolution may take the patch path
    seed=st.integers(0, 2**16),
)
def test_random_define_by_run_forwards_equal_the_compositions(plan, n, cin, input_grad, seed):
    x = np.random.default_rng(seed).standard_normal((n, 8, 8, cin))
    fused, plain = _run(plan, True, x, input_grad), _run(plan, False, x, input_grad)
    assert len(fused) == len(plain)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
