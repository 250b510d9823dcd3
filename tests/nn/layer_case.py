"""A small base class for layer tests, in the spirit of chainer's FunctionTestCase.

A test class subclasses :class:`LayerCase` and says three things: how to build the layer, which
inputs to feed it, and what the forward should give (written directly in NumPy). The base class
then checks the forward against that expectation and the gradients of the output with respect to
the inputs *and every parameter* against central differences in float64.

>>> class TestDouble(LayerCase):
...     def make_layer(self):
...         return nnet.nn.Identity()
...     def inputs(self, rng):
...         return [rng.standard_normal((2, 3))]
...     def expected(self, layer, x):
...         return x
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

import nnet
from nnet.nn import Module
from nnet.testing import gradcheck


@contextlib.contextmanager
def parameters_replaced(
    module: Module, names: Sequence[str], values: Sequence[Any]
) -> Iterator[None]:
    """Temporarily make ``module``'s parameters ``names`` the tensors ``values`` (what gradcheck
    perturbs), restoring the originals afterwards."""
    saved = []
    for name, value in zip(names, values, strict=True):
        *path, attr = name.split(".")
        owner = module
        for p in path:
            owner = getattr(owner, p)
        saved.append((owner, attr, owner.__dict__[attr]))
        object.__setattr__(owner, attr, value)
    try:
        yield
    finally:
        for owner, attr, original in saved:
            object.__setattr__(owner, attr, original)


def layer_gradcheck(layer: Module, *inputs: np.ndarray, seed: int | None = None, **kw: Any) -> bool:
    """gradcheck of ``layer(*inputs)`` with respect to the inputs and all the layer's parameters, in
    float64. ``seed`` reseeds nnet's generator before every evaluation (for random layers)."""
    layer.double()
    names = [n for n, _ in layer.named_parameters()]
    params = [nnet.Tensor(p.data.copy(), requires_grad=True) for _, p in layer.named_parameters()]
    xs = [nnet.Tensor(np.asarray(x, np.float64), requires_grad=True) for x in inputs]

    def fn(*args: nnet.Tensor) -> nnet.Tensor:
        if seed is not None:
            nnet.manual_seed(seed)
        with parameters_replaced(layer, names, args[len(xs) :]):
            return layer(*args[: len(xs)])

    return gradcheck(fn, *xs, *params, **kw)


class LayerCase:
    """Subclass with ``make_layer``, ``inputs`` and ``expected``; set ``seed`` for random layers."""

    atol = 1e-5
    rtol = 1e-5
    seed: int | None = None

    def make_layer(self) -> Module:
        raise NotImplementedError

    def inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        raise NotImplementedError

    def expected(self, layer: Module, *inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _setup(self) -> tuple[Module, list[np.ndarray]]:
        nnet.manual_seed(0)
        layer = self.make_layer().double()
        return layer, [np.asarray(x, np.float64) for x in self.inputs(np.random.default_rng(0))]

    def test_forward(self) -> None:
        layer, xs = self._setup()
        if self.seed is not None:
            nnet.manual_seed(self.seed)
        out = layer(*[nnet.Tensor(x) for x in xs])
        if self.seed is not None:
            nnet.manual_seed(self.seed)
        want = self.expected(layer, *xs)
        assert out.shape == np.shape(want)
        np.testing.assert_allclose(out.numpy(), want, atol=self.atol, rtol=self.rtol)

    def test_gradients(self) -> None:
        layer, xs = self._setup()
        assert layer_gradcheck(layer, *xs, seed=self.seed)

    def test_float32_stays_float32(self) -> None:
        nnet.manual_seed(0)
        layer = self.make_layer()
        xs = [np.asarray(x, np.float32) for x in self.inputs(np.random.default_rng(0))]
        out = layer(*[nnet.Tensor(x) for x in xs])
        assert out.dtype == np.float32
