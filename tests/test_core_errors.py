"""Core errors that no other test reads: each names the op, the problem and what to do."""

from __future__ import annotations

import operator

import pytest

import nnet


def test_clip_without_bounds_says_to_give_one():
    with pytest.raises(ValueError, match="clip: give at least one of min and max"):
        nnet.clip(nnet.ones(2))


@pytest.mark.parametrize("join", [nnet.concatenate, nnet.stack])
def test_joining_no_tensors_names_the_op(join):
    with pytest.raises(ValueError, match=rf"{join.__name__}: need at least one tensor"):
        join([])


def test_a_float_tensor_is_not_an_index():
    with pytest.raises(
        TypeError, match="only integer tensors can be used as an index, got float32"
    ):
        operator.index(nnet.ones(1))
    assert operator.index(nnet.tensor([3], dtype="int64")) == 3
