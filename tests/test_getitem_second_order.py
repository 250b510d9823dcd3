"""Indexing twice differentiated: GetItem's VJP returns one gradient per input (a, index)."""

from __future__ import annotations

import numpy as np

import nnet
from nnet.testing import gradgradcheck


def test_second_derivative_through_indexing_and_pad() -> None:
    rng = np.random.default_rng(0)
    a = nnet.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradgradcheck(lambda t: (t[1:, ::2] ** 2).sum(), a)
    assert gradgradcheck(lambda t: nnet.pad(t, ((1, 0), (0, 2))) ** 3, a)
