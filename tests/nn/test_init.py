"""nnet.nn.init: in place, seeded, with the fans of nnet's layouts."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnet
from nnet.nn import init


def test_fans_follow_nnet_layouts():
    assert init.calculate_fan_in_and_fan_out(nnet.zeros((784, 10))) == (784, 10)
    assert init.calculate_fan_in_and_fan_out(nnet.zeros((3, 5, 16, 32))) == (240, 480)
    with pytest.raises(ValueError, match="at least 2 axes"):
        init.calculate_fan_in_and_fan_out(nnet.zeros(3))


def test_in_place_and_seeded():
    w = nnet.zeros((200, 300))
    array = w.data
    nnet.manual_seed(0)
    assert init.xavier_uniform_(w) is w and w.data is array
    first = w.numpy().copy()
    nnet.manual_seed(0)
    np.testing.assert_array_equal(init.xavier_uniform_(w).numpy(), first)


@pytest.mark.parametrize(
    ("fill", "std"),
    [
        (lambda w: init.xavier_uniform_(w, gain=2.0), 2.0 * math.sqrt(2 / 500)),
        (lambda w: init.xavier_normal_(w), math.sqrt(2 / 500)),
        (lambda w: init.kaiming_uniform_(w, nonlinearity="relu"), math.sqrt(2 / 200)),
        (
            lambda w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
            math.sqrt(2 / 300),
        ),
        (lambda w: init.normal_(w, 1.0, 0.5), 0.5),
        (lambda w: init.uniform_(w, -1.0, 1.0), 1 / math.sqrt(3)),
    ],
)
def test_distributions_have_the_documented_spread(fill, std):
    nnet.manual_seed(1)
    w = fill(nnet.zeros((200, 300)))
    assert w.dtype == np.float32
    assert abs(w.numpy().std() / std - 1) < 0.02


def test_constants_and_gains():
    w = nnet.zeros((2, 2))
    assert (init.ones_(w).numpy() == 1).all() and (init.zeros_(w).numpy() == 0).all()
    assert (init.constant_(w, 3.5).numpy() == 3.5).all()
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal_(w, mode="fan")
