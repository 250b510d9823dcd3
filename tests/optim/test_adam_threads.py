"""Adam and AdamW split a large parameter's update over nnet's threads: bit for bit what one thread
gives, in every variant, and a non-contiguous parameter still updated in place."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import threads


@pytest.fixture
def restore_threads():
    before = nnet.get_num_threads()
    yield
    nnet.set_num_threads(before)


def _steps(opt_cls, count, shapes, transposed=False, **kw):
    nnet.set_num_threads(count)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    params = [nnet.tensor(a.T if transposed else a, requires_grad=True) for a in arrays]
    opt = opt_cls(params, lr=0.01, **kw)
    for _ in range(3):
        for p in params:
            p.grad = nnet.tensor(rng.standard_normal(p.shape).astype(np.float32))
        opt.step()
    return [p.numpy().copy() for p in params], opt.state_dict()["state"]


@pytest.mark.parametrize(
    ("opt_cls", "kw"),
    [
        (nnet.optim.Adam, {}),
        (nnet.optim.Adam, {"amsgrad": True, "weight_decay": 0.1}),
        (nnet.optim.Adam, {"maximize": True}),
        (nnet.optim.AdamW, {"weight_decay": 0.1, "maximize": True, "amsgrad": True}),
    ],
)
@pytest.mark.parametrize("transposed", [False, True])
def test_adam_on_two_threads_matches_one(opt_cls, kw, transposed, monkeypatch, restore_threads):
    monkeypatch.setattr(threads, "MIN_BLOCK_BYTES", 64)  # a few elements a block
    shapes = [(37, 5), (3,), (1,)]
    one, state_one = _steps(opt_cls, 1, shapes, transposed, **kw)
    two, state_two = _steps(opt_cls, 2, shapes, transposed, **kw)
    for a, a0 in zip(two, one, strict=True):
        np.testing.assert_array_equal(a, a0)
    for s, s0 in zip(state_two.values(), state_one.values(), strict=True):
        for key, value in s0.items():
            np.testing.assert_array_equal(s[key], value)
