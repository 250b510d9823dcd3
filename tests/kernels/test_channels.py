"""per_channel: the tiled broadcast gives exactly what NumPy's plain broadcast gives."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nnet.kernels.channels import per_channel


@given(
    m=st.integers(1, 600),
    c=st.integers(1, 9),
    ufunc=st.sampled_from([np.add, np.subtract, np.multiply]),
    in_place=st.booleans(),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_matches_plain_broadcast(m, c, ufunc, in_place, transposed, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((c, m)).T if transposed else rng.standard_normal((m, c))
    v = rng.standard_normal(c)
    want = ufunc(a, v)
    got = per_channel(ufunc, a, v, out=a if in_place else None)
    assert got.shape == (m, c)
    np.testing.assert_array_equal(got, want)
    if in_place:
        np.testing.assert_array_equal(a, want)
