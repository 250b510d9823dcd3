"""Every primitive has a property-based gradient test: the families' test files together name every
entry of ``nnet.autograd.ops.PRIMITIVES`` (each name is backed by ``check_grad``'s check that the
primitive really is in the graph it differentiates)."""

from __future__ import annotations

import test_grad_elementwise
import test_grad_linalg
import test_grad_linalg_ops
import test_grad_reduction
import test_grad_scan
import test_grad_shape
import test_grad_unary
import test_grad_window

from nnet.autograd.ops import PRIMITIVES

FAMILIES = [test_grad_elementwise, test_grad_reduction, test_grad_shape, test_grad_linalg,
            test_grad_window, test_grad_unary, test_grad_scan, test_grad_linalg_ops]  # fmt: skip


def test_every_primitive_has_a_gradient_test():
    tested = set().union(*(m.PRIMITIVES_TESTED for m in FAMILIES))
    missing = sorted(p.__name__ for p in set(PRIMITIVES) - tested)
    assert not missing, f"primitives without a property-based gradient test: {missing}"
    unknown = sorted(p.__name__ for p in tested - set(PRIMITIVES))
    assert not unknown, f"tests name primitives missing from PRIMITIVES: {unknown}"
