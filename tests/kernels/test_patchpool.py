"""patchpool's shifted planes (one input channel, stride 1) against the general patch path: the same
patch rows, and the same kernel gradient from them as from the patches."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nnet.kernels.convbn import patches_offset_major
from nnet.kernels.im2col import geometry
from nnet.kernels.patchpool import (
    _kernel_gradient,
    _kernel_gradient_shifted,
    shifted_kernel,
    shifted_planes,
    takes_shifted_planes,
)


@given(
    k=st.sampled_from([(1, 1), (3, 3), (3, 1), (2, 3)]),
    kernel=st.sampled_from([(1, 1), (2, 2), (1, 2), (3, 2)]),
    n=st.integers(1, 3),
    cells=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    same=st.booleans(),
    cout=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_shifted_planes_give_the_patches_product_and_kernel_gradient(k, kernel, n, cells, same,
                                                                   cout, seed):  # fmt: skip
    (kh, kw), (ph, pw) = k, kernel
    rng = np.random.default_rng(seed)
    pads = ((kh // 2, (kh - 1) // 2), (kw // 2, (kw - 1) // 2)) if same else ((0, 0), (0, 0))
    h = ph * cells[0] + (0 if same else kh - 1)
    w = pw * cells[1] + (0 if same else kw - 1)
    x = rng.standard_normal((n, h, w, 1))
    geo = geometry(x.shape, k, (1, 1), (1, 1), pads)
    assert geo[4] == (ph * cells[0], pw * cells[1]) and takes_shifted_planes(x.shape, geo)
    quarter = (n, cells[0], cells[1])
    want = patches_offset_major(x, geo, kernel, np.empty((kh * kw + 1, ph, pw, *quarter)))
    planes = np.empty((ph + kh - 1, pw + kw - 1, *quarter))
    shifted_planes(x, geo, kernel, planes)
    # the kernel at each offset's shift times the planes and a row of ones: the patches' product
    weight, bias = rng.standard_normal((kh, kw, 1, cout)), rng.standard_normal(cout)
    w_t = np.vstack([weight.reshape(kh * kw, cout), bias]).T
    by_patches = np.einsum("ck,kabm->abcm", w_t, want.reshape(kh * kw + 1, ph, pw, -1))
    stack = np.vstack(
        [planes.reshape((ph + kh - 1) * (pw + kw - 1), -1), np.ones((1, planes[0, 0].size))]
    )
    got = (shifted_kernel(weight, bias, kernel, np.float64) @ stack).reshape(by_patches.shape)
    np.testing.assert_allclose(got, by_patches, rtol=1e-12, atol=1e-12)

    rows = n * cells[0] * cells[1]
    d = rng.standard_normal((ph * pw, cout, rows))
    by_patches = _kernel_gradient(want.reshape(kh * kw + 1, ph * pw, rows), d, rows // n)
    by_planes = _kernel_gradient_shifted(stack, d, k, kernel)
    np.testing.assert_allclose(by_planes, by_patches, rtol=1e-12, atol=1e-12)


def test_only_one_channel_at_stride_and_dilation_one_takes_the_planes():
    geo = geometry((1, 8, 8, 1), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    assert takes_shifted_planes((1, 8, 8, 1), geo)
    assert not takes_shifted_planes(
        (1, 8, 8, 2), geometry((1, 8, 8, 2), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    )
    assert not takes_shifted_planes(
        (1, 8, 8, 1), geometry((1, 8, 8, 1), (3, 3), (2, 2), (1, 1), ((1, 1), (1, 1)))
    )
    assert not takes_shifted_planes(
        (1, 8, 8, 1), geometry((1, 8, 8, 1), (3, 3), (1, 1), (2, 2), ((2, 2), (2, 2)))
    )
