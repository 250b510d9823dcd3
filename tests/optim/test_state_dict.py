"""Optimizer state dicts: plain arrays and numbers, and a resumed run continues bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import optim

MAKERS = [
    lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    lambda p: optim.Adam(p, lr=0.05, amsgrad=True),
    lambda p: optim.AdamW(p, lr=0.05, betas=(0.8, 0.95)),
    lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01),
]


def grads(w: np.ndarray) -> np.ndarray:
    return 2 * w - 1


def train(opt, ws, steps: int) -> None:
    for _ in range(steps):
        for w in ws:
            w.grad = nnet.Tensor(grads(w.data))
        opt.step()


def only_plain(value) -> bool:
    """What nnet.save stores without pickling: containers of arrays, numbers and strings."""
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and only_plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(only_plain(v) for v in value)
    return isinstance(value, (np.ndarray, int, float, str, bool))


@pytest.mark.parametrize("make", MAKERS)
def test_resume_from_state_dict_is_exact(make) -> None:
    init = [np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), np.ones(4, np.float32)]
    ws = [nnet.Tensor(a.copy(), requires_grad=True) for a in init]
    opt = make([{"params": [ws[0]]}, {"params": [ws[1]], "lr": 0.02}])
    train(opt, ws, 10)

    ws2 = [nnet.Tensor(a.copy(), requires_grad=True) for a in init]
    opt2 = make([{"params": [ws2[0]]}, {"params": [ws2[1]], "lr": 0.02}])
    train(opt2, ws2, 4)
    state = opt2.state_dict()
    assert only_plain(state)
    ws3 = [nnet.Tensor(w.data.copy(), requires_grad=True) for w in ws2]
    opt3 = make([{"params": [ws3[0]]}, {"params": [ws3[1]]}])
    opt3.load_state_dict(state)
    assert opt3.param_groups[1]["lr"] == 0.02
    train(opt3, ws3, 6)
    for a, b in zip(ws, ws3, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_a_snapshot() -> None:
    w = nnet.zeros(3, requires_grad=True)
    opt = optim.Adam([w])
    train(opt, [w], 1)
    saved = opt.state_dict()["state"][0]["exp_avg"].copy()
    snapshot = opt.state_dict()
    train(opt, [w], 1)
    np.testing.assert_array_equal(snapshot["state"][0]["exp_avg"], saved)


def test_betas_come_back_as_a_tuple() -> None:
    w = nnet.zeros(3, requires_grad=True)
    opt = optim.Adam([w], betas=(0.5, 0.6))
    opt2 = optim.Adam([nnet.zeros(3, requires_grad=True)])
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["betas"] == (0.5, 0.6)


def test_mismatched_state_is_refused() -> None:
    opt = optim.Adam([nnet.zeros(3, requires_grad=True)])
    train(opt, opt.param_groups[0]["params"], 1)
    other = optim.Adam([nnet.zeros(3, requires_grad=True), nnet.zeros(2, requires_grad=True)])
    with pytest.raises(ValueError, match="parameter group 0 has 1 parameter"):
        other.load_state_dict(opt.state_dict())
    wrong_shape = optim.Adam([nnet.zeros(4, requires_grad=True)])
    with pytest.raises(ValueError, match=r"shape \(3,\), the parameter has shape \(4,\)"):
        wrong_shape.load_state_dict(opt.state_dict())
