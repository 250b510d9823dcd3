"""Every fused primitive has its oracle and gradient tests: the files in tests/fused together name
every entry of ``nnet.kernels.FUSED``, and each of them asserts that the fused op really is the
one in the graph it checks (``type(y.grad_fn) is ...``)."""

from __future__ import annotations

from nnet.kernels import FUSED

from . import (
    test_batchnorm,
    test_bnpool,
    test_conv,
    test_convbn,
    test_convrelu,
    test_crossentropy,
    test_linear,
    test_pool,
)

FILES = [
    test_pool,
    test_conv,
    test_convbn,
    test_convrelu,
    test_batchnorm,
    test_bnpool,
    test_crossentropy,
    test_linear,
]


def test_every_fused_primitive_is_tested():
    tested = set().union(*(m.FUSED_TESTED for m in FILES))
    missing = sorted(p.__name__ for p in set(FUSED) - tested)
    assert not missing, f"fused primitives without tests in tests/fused: {missing}"
    unknown = sorted(p.__name__ for p in tested - set(FUSED))
    assert not unknown, f"tests name fused primitives missing from FUSED: {unknown}"
