"""Adam's small parameters updated together over flat arrays (nnet/optim/flat.py) give exactly what
updating them one at a time gives, keep per-parameter state that state dicts save and restore, and
fall back to one at a time where they cannot share arrays."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet.optim import flat

SHAPES = [(3, 4), (4,), (2, 2, 3), (5,), (130, 130)]  # the last above FLAT_MAX_ELEMENTS


def _params(rng):
    return [
        nnet.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in SHAPES
    ]


def _run(make, steps, skip=None, reload_at=None):
    rng = np.random.default_rng(0)
    ps = _params(rng)
    opt = make(ps)
    for t in range(steps):
        for i, p in enumerate(ps):
            p.grad = (
                None
                if skip and (t, i) in skip
                else nnet.tensor(rng.standard_normal(p.shape).astype(np.float32))
            )
        opt.step()
        if reload_at == t:
            state = opt.state_dict()
            opt = make(ps)
            opt.load_state_dict(state)
    return [p.data.copy() for p in ps], opt


OPTIMIZERS = {
    "adam": lambda ps: nnet.optim.Adam(ps, lr=0.01),
    "amsgrad, decay, maximize": lambda ps: nnet.optim.Adam(
        ps, lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True
    ),
    "adamw": lambda ps: nnet.optim.AdamW(ps, lr=0.01),
    "two groups": lambda ps: nnet.optim.Adam([{"params": ps[:3]}, {"params": ps[3:], "lr": 0.1}]),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize(
    "case", ["plain", "a gradient missing now and then", "reloaded from a state dict"]
)
def test_flat_update_equals_one_at_a_time(name, case, monkeypatch):
    make = OPTIMIZERS[name]
    kw = {
        "plain": {},
        "a gradient missing now and then": {"skip": {(1, 0), (2, 1), (2, 3)}},
        "reloaded from a state dict": {"reload_at": 2},
    }[case]
    got, opt = _run(make, 5, **kw)
    monkeypatch.setattr(flat, "FLAT_MAX_ELEMENTS", 0)  # every parameter on its own
    want, opt_ref = _run(make, 5, **kw)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        opt.state_dict()["state"].values(), opt_ref.state_dict()["state"].values(), strict=True
    ):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_the_small_parameters_share_one_array_and_the_state_is_per_parameter():
    _, opt = _run(OPTIMIZERS["adam"], 2)
    states = list(opt.state.values())
    small = [s for s in states if s["exp_avg"].size <= flat.FLAT_MAX_ELEMENTS]
    assert len(small) == 4 and all(s["step"] == 2 for s in states)
    bases = {id(s["exp_avg"].base) for s in small}
    assert len(bases) == 1  # views of one flat array
    assert [s["exp_avg"].shape for s in small] == SHAPES[:4]
