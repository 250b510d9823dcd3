"""Optimizers that update a group's parameters together over flat arrays (nnet/optim/flat.py: Adam,
AdamW, SGD) give exactly what updating them one at a time gives, keep per-parameter state that
state dicts save and restore, read a declared gradient buffer in place, and fall back to one at a
time where parameters cannot share arrays."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet.optim import flat

SHAPES = [(3, 4), (4,), (2, 2, 3), (5,), (130, 130)]  # the last above FLAT_MAX_ELEMENTS


def _params(rng, dtypes=None):
    dtypes = dtypes or ["float32"] * len(SHAPES)
    return [nnet.tensor(rng.standard_normal(s).astype(d), requires_grad=True)
            for s, d in zip(SHAPES, dtypes, strict=True)]  # fmt: skip


def _run(make, steps, skip=(), reload_at=None, frozen=(), dtypes=None):
    """``steps`` steps from seeded gradients; ``skip``: (step, parameter) pairs without a gradient;
    ``frozen``: parameters that never get one; ``reload_at``: a new optimizer from the state dict
    after that step."""
    rng = np.random.default_rng(0)
    ps = _params(rng, dtypes)
    opt = make(ps)
    for t in range(steps):
        for i, p in enumerate(ps):
            grad = rng.standard_normal(p.shape).astype(p.dtype)
            p.grad = None if (t, i) in skip or i in frozen else nnet.tensor(grad)
        opt.step()
        if reload_at == t:
            state = opt.state_dict()
            opt = make(ps)
            opt.load_state_dict(state)
    return [p.data.copy() for p in ps], opt


OPTIMIZERS = {
    "adam": lambda ps: nnet.optim.Adam(ps, lr=0.01),
    "adam amsgrad, decay, maximize": lambda ps: nnet.optim.Adam(
        ps, lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True
    ),
    "adam decay": lambda ps: nnet.optim.Adam(ps, lr=0.01, weight_decay=0.1),
    "adamw": lambda ps: nnet.optim.AdamW(ps, lr=0.01),
    "adamw amsgrad, maximize": lambda ps: nnet.optim.AdamW(
        ps, lr=0.01, amsgrad=True, maximize=True
    ),
    "adam, two groups": lambda ps: nnet.optim.Adam(
        [{"params": ps[:3]}, {"params": ps[3:], "lr": 0.1}]
    ),
    "sgd": lambda ps: nnet.optim.SGD(ps, lr=0.01),
    "sgd momentum, dampening, decay": lambda ps: nnet.optim.SGD(
        ps, lr=0.01, momentum=0.9, dampening=0.2, weight_decay=0.1
    ),
    "sgd nesterov, maximize": lambda ps: nnet.optim.SGD(
        ps, lr=0.01, momentum=0.9, nesterov=True, maximize=True
    ),
}
CASES = {
    "plain": {},
    "a gradient missing now and then": {"skip": {(1, 0), (2, 1), (2, 3)}},
    "a frozen parameter": {"frozen": {1}},
    "reloaded from a state dict": {"reload_at": 2},
    "two dtypes": {"dtypes": ["float32", "float64", "float32", "float64", "float32"]},
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("case", CASES)
def test_flat_update_equals_one_at_a_time(name, case, monkeypatch):
    make, kw = OPTIMIZERS[name], CASES[case]
    got, opt = _run(make, 5, **kw)
    assert opt._flats  # some parameters were updated together
    monkeypatch.setattr(flat, "ENABLED", False)  # every parameter on its own
    want, opt_ref = _run(make, 5, **kw)
    assert not opt_ref._flats
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    ours, theirs = opt.state_dict()["state"], opt_ref.state_dict()["state"]
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].keys() == theirs[key].keys()
        for k in ours[key]:
            np.testing.assert_array_equal(ours[key][k], theirs[key][k])


def test_the_parameters_share_one_array_and_the_state_is_per_parameter():
    """The small parameters' state entries are views of one flat array; the large one (above
    FLAT_MAX_ELEMENTS, its gradient in no declared buffer) keeps arrays of its own."""
    _, opt = _run(OPTIMIZERS["adam"], 2)
    states = [opt.state[p] for p in opt.param_groups[0]["params"]]
    assert all(s["step"] == 2 for s in states)
    assert [s["exp_avg"].shape for s in states] == SHAPES
    small = [s for s in states if s["exp_avg"].size <= flat.FLAT_MAX_ELEMENTS]
    assert len(small) == 4 and len({id(s["exp_avg"].base) for s in small}) == 1
    assert states[4]["exp_avg"].base is None


@pytest.mark.parametrize("name", ["adam", "sgd momentum, dampening, decay"])
def test_a_state_dict_round_trip_continues_exactly(name):
    """Saving after two steps and loading into a new optimizer continues as without the break, and
    the saved state is a copy, not the live flat arrays."""
    straight, _ = _run(OPTIMIZERS[name], 5)
    resumed, opt = _run(OPTIMIZERS[name], 5, reload_at=1)
    for a, b in zip(resumed, straight, strict=True):
        np.testing.assert_array_equal(a, b)
    saved = opt.state_dict()["state"]
    key = "exp_avg" if "exp_avg" in saved[0] else "momentum_buffer"
    before = saved[0][key].copy()
    opt.step()
    np.testing.assert_array_equal(saved[0][key], before)


def test_steps_that_differ_fall_back_to_one_at_a_time():
    """A parameter that missed a step has another step count: all are then updated one at a time,
    each with its own count, as PyTorch counts them."""
    _, opt = _run(OPTIMIZERS["adam"], 3, skip={(0, 2)})
    steps = [opt.state[p]["step"] for p in opt.param_groups[0]["params"]]
    assert steps == [3, 3, 2, 3, 3]


def _declared_gradients(ps, rng, order):
    """Gradients as views of one buffer, laid out in ``order``, declared as DistributedDataParallel
    declares its bucket."""
    total = sum(p.data.size for p in ps)
    buffer = rng.standard_normal(total).astype(np.float32)
    views, offset = {}, 0
    for i in order:
        views[i] = buffer[offset : offset + ps[i].data.size].reshape(ps[i].shape)
        offset += ps[i].data.size
    for i, p in enumerate(ps):
        p.grad = nnet.Tensor._make(views[i], False, None)
    flat.share_gradients(buffer, [views[i] for i in order])
    return buffer


@pytest.mark.parametrize("name", ["adam", "adamw amsgrad, maximize", "sgd nesterov, maximize"])
def test_a_declared_gradient_buffer_is_read_in_place(name, monkeypatch):
    """Gradients that lie in a declared buffer (another order than the parameters') are read from it
    without a gathering copy, and give what one at a time gives."""
    order = [4, 2, 0, 3, 1]
    results = []
    gathered = []
    real = np.concatenate

    def counting(arrays, *args, **kwargs):
        gathered.append(len(arrays))
        return real(arrays, *args, **kwargs)

    for enabled in (True, False):
        monkeypatch.setattr(flat, "ENABLED", enabled)
        rng = np.random.default_rng(1)
        ps = _params(rng)
        opt = OPTIMIZERS[name](ps)
        gathered.clear()
        monkeypatch.setattr(np, "concatenate", counting)
        for _ in range(3):
            buffer = _declared_gradients(ps, rng, order)
            opt.step()
            np.testing.assert_array_equal(ps[4].grad.data.reshape(-1), buffer[: 130 * 130])
        monkeypatch.setattr(np, "concatenate", real)
        if enabled:
            (f,) = opt._flats.values()
            assert f.in_shared and f.order == order and not gathered
        results.append([p.data.copy() for p in ps])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradients_no_longer_in_the_declared_buffer_are_gathered():
    """A .grad replaced by another array after the flat arrays were laid out by the buffer is
    gathered like any other: the result is still exact."""
    rng = np.random.default_rng(2)
    ps = _params(rng)
    opt = nnet.optim.Adam(ps, lr=0.01)
    _declared_gradients(ps, rng, [4, 3, 2, 1, 0])
    opt.step()
    ps[0].grad = nnet.tensor(rng.standard_normal(ps[0].shape).astype(np.float32))
    expected = [p.data.copy() for p in ps]
    ref = nnet.optim.Adam([nnet.tensor(e, requires_grad=True) for e in expected], lr=0.01)
    ref.load_state_dict(opt.state_dict())
    for q, p in zip(ref.param_groups[0]["params"], ps, strict=True):
        q.grad = nnet.tensor(p.grad.data.copy())
    opt.step()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(flat, "ENABLED", False)
        ref.step()
    for p, q in zip(ps, ref.param_groups[0]["params"], strict=True):
        np.testing.assert_array_equal(p.data, q.data)


def test_a_declaration_is_forgotten_with_its_buffer():
    buffer = np.zeros(6, np.float32)
    flat.share_gradients(buffer, [buffer[:2], buffer[2:]])
    key = id(buffer)
    assert key in flat._shared
    del buffer
    assert key not in flat._shared


def test_a_graph_that_saved_a_parameter_cannot_backward_after_a_flat_step():
    rng = np.random.default_rng(3)
    ps = _params(rng)
    opt = nnet.optim.Adam(ps, lr=0.01)
    loss = sum((p * p).sum() for p in ps)
    for p in ps:
        p.grad = nnet.tensor(np.ones(p.shape, np.float32))
    opt.step()
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()
