"""One catalogue of functions, written once, run on NumPy (the reference) and on Tensors (the subject),
as minitorch's ``MathTest``. Each entry names the primitive it exercises and the input domain that
keeps it away from kinks and domain edges (see ``gradtest.DOMAINS``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import nnet
from nnet.autograd import Function
from nnet.autograd import ops as P


def _np_sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _np_logsumexp(a: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _np_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@dataclass(frozen=True)
class Case:
    name: str
    nnet_fn: Callable[..., Any]
    numpy_fn: Callable[..., Any]
    domains: tuple[str, ...]  # one per operand
    primitive: type[Function]

    def __str__(self) -> str:  # the pytest id
        return self.name


UNARY = [
    Case("neg", lambda a: -a, np.negative, ("real",), P.Neg),
    Case("exp", nnet.exp, np.exp, ("real",), P.Exp),
    Case("log", nnet.log, np.log, ("positive",), P.Log),
    Case("sqrt", nnet.sqrt, np.sqrt, ("positive",), P.Sqrt),
    Case("abs", nnet.abs, np.abs, ("off_kinks",), P.Abs),
    Case("sigmoid", nnet.sigmoid, _np_sigmoid, ("real",), P.Sigmoid),
    Case("tanh", nnet.tanh, np.tanh, ("real",), P.Tanh),
    Case("relu", nnet.relu, lambda a: np.maximum(a, 0.0), ("off_kinks",), P.Relu),
    Case("clip", lambda a: nnet.clip(a, -1.0, 1.0), lambda a: np.clip(a, -1.0, 1.0),
         ("off_kinks",), P.Clip),
    Case("clip_min_only", lambda a: a.clip(min=0.0), lambda a: np.clip(a, 0.0, None),
         ("off_kinks",), P.Clip),
    Case("square", lambda a: a**2, np.square, ("real",), P.Pow),
    Case("rpow", lambda a: 2.0**a, lambda a: np.power(2.0, a), ("real",), P.Pow),
    Case("astype", lambda a: a.astype(np.float64), lambda a: a.astype(np.float64), ("real",),
         P.AsType),
]  # fmt: skip

BINARY = [
    Case("add", lambda a, b: a + b, np.add, ("real", "real"), P.Add),
    Case("sub", lambda a, b: a - b, np.subtract, ("real", "real"), P.Sub),
    Case("mul", lambda a, b: a * b, np.multiply, ("real", "real"), P.Mul),
    Case("div", lambda a, b: a / b, np.divide, ("real", "nonzero"), P.Div),
    Case("pow", lambda a, b: a**b, np.power, ("positive", "real"), P.Pow),
    Case("maximum", nnet.maximum, np.maximum, ("off_kinks", "off_lattice"), P.Maximum),
    Case("minimum", nnet.minimum, np.minimum, ("off_kinks", "off_lattice"), P.Minimum),
]

#: Reductions: ``nnet_fn(a, axis, keepdims)`` against ``numpy_fn(a, axis, keepdims)``. ``domains[0]``
#: is the element domain; max and min also need distinct elements (no ties), see ``unique``.
REDUCTIONS = [
    Case("sum", lambda a, ax, kd: a.sum(axis=ax, keepdims=kd),
         lambda a, ax, kd: np.sum(a, axis=ax, keepdims=kd), ("real",), P.Sum),
    Case("mean", lambda a, ax, kd: a.mean(axis=ax, keepdims=kd),
         lambda a, ax, kd: np.mean(a, axis=ax, keepdims=kd), ("real",), P.Mean),
    # nnet's var follows PyTorch (correction=1 by default); NumPy's np.var defaults to ddof=0
    Case("var", lambda a, ax, kd: a.var(axis=ax, keepdims=kd),
         lambda a, ax, kd: np.var(a, axis=ax, ddof=1, keepdims=kd), ("real",), P.Var),
    Case("var_ddof0", lambda a, ax, kd: nnet.var(a, axis=ax, ddof=0, keepdims=kd),
         lambda a, ax, kd: np.var(a, axis=ax, keepdims=kd), ("real",), P.Var),
    Case("max", lambda a, ax, kd: a.amax(axis=ax, keepdims=kd),
         lambda a, ax, kd: np.max(a, axis=ax, keepdims=kd), ("off_kinks",), P.Max),
    Case("min", lambda a, ax, kd: a.amin(axis=ax, keepdims=kd),
         lambda a, ax, kd: np.min(a, axis=ax, keepdims=kd), ("off_kinks",), P.Min),
    Case("logsumexp", lambda a, ax, kd: a.logsumexp(axis=ax, keepdims=kd),
         _np_logsumexp, ("real",), P.LogSumExp),
]  # fmt: skip

#: Normalisations along one axis: ``nnet_fn(a, axis)`` against ``numpy_fn(a, axis)``.
NORMALISATIONS = [
    Case("softmax", lambda a, ax: nnet.softmax(a, axis=ax), _np_softmax, ("real",), P.Softmax),
    Case("log_softmax", lambda a, ax: a.log_softmax(axis=ax),
         lambda a, ax: np.log(_np_softmax(a, ax)), ("real",), P.LogSoftmax),
]  # fmt: skip

UNIQUE = {"max", "min"}
