"""Numerical gradient checks: central differences in float64 against the VJPs nnet computes.

Two complementary comparisons are made for every input that requires a gradient:

* for small inputs, the **full Jacobian**: one central difference per input element, compared
  element by element with the analytical Jacobian (one VJP per output element when the output is
  small too, else the VJP of the random ``v``), so a failure names the worst element;
* always, the **dot-product test** (HIPS autograd's ``check_grads``): for random directions ``u``
  (input side) and ``v`` (output side), the numerical directional derivative ``<v, J u>`` must equal
  ``<J^T v, u>`` from one VJP. It is cheap at any size and catches an error in ``J^T v`` with
  probability one.

>>> import nnet
>>> from nnet.testing import gradcheck
>>> x = nnet.tensor([0.5, -1.0, 2.0], requires_grad=True)
>>> gradcheck(lambda t: (t * t.sigmoid()).sum(), x)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnet.autograd.engine import grad as _grad
from nnet.autograd.tensor import Tensor

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]

#: Inputs with at most this many elements in total also get the full-Jacobian comparison.
FULL_JACOBIAN_MAX_INPUTS = 200
#: The analytical Jacobian is built row by row (one VJP per output element) up to this output size.
FULL_JACOBIAN_MAX_OUTPUTS = 400


class GradcheckError(AssertionError):
    """The analytical gradient (the VJP) disagrees with central differences."""


def _differentiable(x: Any) -> bool:
    return isinstance(x, Tensor) and x.requires_grad and x.data.dtype.kind == "f"


def _as_outputs(result: Any) -> list[Tensor]:
    items = result if isinstance(result, (tuple, list)) else (result,)
    for o in items:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor or a tuple of Tensors, got {o!r}")
    return list(items)


def _float_outputs(outputs: Sequence[Tensor]) -> list[int]:
    return [k for k, o in enumerate(outputs) if o.data.dtype.kind == "f"]


class _Problem:
    """fn, its float64 inputs and a way to evaluate it at perturbed values of one input."""

    def __init__(self, fn: Callable[..., Any], inputs: Sequence[Any]) -> None:
        self.fn = fn
        if (
            len(inputs) == 1
            and isinstance(inputs[0], (tuple, list))
            and any(isinstance(x, Tensor) for x in inputs[0])
        ):
            inputs = inputs[0]  # PyTorch's spelling, gradcheck(fn, (a, b)): the tuple is the inputs
        self.inputs = [
            Tensor(np.array(x.data, dtype=np.float64), requires_grad=True)
            if _differentiable(x)
            else x
            for x in inputs
        ]
        self.diff = [i for i, x in enumerate(self.inputs) if _differentiable(x)]
        if not self.diff:
            raise ValueError(
                "gradcheck: no input requires gradients; "
                "pass floating-point tensors with requires_grad=True"
            )
        self.outputs = _as_outputs(fn(*self.inputs))
        self.ops = _ops_in(self.outputs)
        self.float_outs = _float_outputs(self.outputs)
        self.out_shapes = [self.outputs[k].shape for k in self.float_outs]
        self.out_sizes = [int(np.prod(s, dtype=np.int64)) for s in self.out_shapes]

    def evaluate(self, i: int, value: np.ndarray) -> np.ndarray:
        """All float outputs, flattened and joined, with input ``i`` replaced by ``value``."""
        args = list(self.inputs)
        args[i] = Tensor(value, requires_grad=True)
        outs = _as_outputs(self.fn(*args))
        flat = [np.asarray(outs[k].data, dtype=np.float64).ravel() for k in self.float_outs]
        return np.concatenate(flat) if flat else np.zeros(0)

    def central(self, i: int, direction: np.ndarray, eps: float) -> np.ndarray:
        """(f(x + eps d) - f(x - eps d)) / (2 eps) for input ``i``: the numerical J d."""
        x = self.inputs[i].data
        return (self.evaluate(i, x + eps * direction) - self.evaluate(i, x - eps * direction)) / (
            2 * eps
        )

    def vjp(self, vs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """J^T v for every differentiable input, from nnet's backward (zeros for unused inputs)."""
        roots, gos = [], []
        for k, v in zip(self.float_outs, vs, strict=True):
            if self.outputs[k].requires_grad:
                roots.append(self.outputs[k])
                gos.append(Tensor(v.reshape(self.outputs[k].shape)))
        ins = [self.inputs[i] for i in self.diff]
        if not roots:
            return [np.zeros(x.shape) for x in ins]
        grads = _grad(roots, ins, grad_outputs=gos, retain_graph=True, allow_unused=True)
        result = []
        for x, g, i in zip(ins, grads, self.diff, strict=True):
            if g is None:
                result.append(np.zeros(x.shape))
                continue
            if g.shape != x.shape:
                raise GradcheckError(
                    f"gradcheck: the gradient of input {i} has shape {g.shape}, "
                    f"but the input has shape {x.shape}"
                )
            result.append(np.array(g.data, dtype=np.float64))
        return result

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        return np.split(flat, np.cumsum(self.out_sizes)[:-1]) if self.out_sizes else []

    def output_index(self, o: int) -> str:
        """Row ``o`` of the joined outputs as ``output[(i, j)]`` (``output 1[...]`` if several)."""
        k = 0
        while o >= self.out_sizes[k]:
            o -= self.out_sizes[k]
            k += 1
        name = "output" if len(self.out_sizes) == 1 else f"output {self.float_outs[k]}"
        return f"{name}[{tuple(int(j) for j in np.unravel_index(o, self.out_shapes[k]))}]"


def _ops_in(outputs: Sequence[Tensor]) -> list[str]:
    """The names of the Functions in the outputs' graph, most recently recorded first."""
    found: dict[int, Any] = {}
    stack = list(outputs)
    while stack:
        fn = stack.pop().grad_fn
        if fn is None or id(fn) in found:
            continue
        found[id(fn)] = fn
        stack.extend(x for x in fn.inputs or () if isinstance(x, Tensor))
    ordered = sorted(found.values(), key=lambda fn: -fn.seq)
    return list(dict.fromkeys(fn.name for fn in ordered))


def _hint(numerical: np.ndarray, analytical: np.ndarray, ignores_grad: bool) -> str:
    """What the two gradients' relation suggests about the bug, or ''."""
    close = lambda a, b: np.allclose(a, b, rtol=1e-3, atol=1e-6)  # noqa: E731
    if ignores_grad:
        return (
            " Hint: the VJP gives the same result for two different upstream gradients: it ignores "
            "grad (multiply the local derivative by grad)."
        )
    if not np.any(numerical) or not np.any(analytical):
        return ""
    if close(analytical, -numerical):
        return " Hint: the analytical gradient is the numerical one with the sign flipped."
    for factor in (2.0, 0.5):
        if close(analytical, factor * numerical):
            return f" Hint: the analytical gradient is {factor:g} times the numerical one."
    if numerical.ndim == 2 and numerical.shape[0] == numerical.shape[1] > 1:
        if close(analytical, numerical.T):
            return " Hint: the analytical gradient is the numerical one transposed."
    return ""


def _fail(message: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False


def _worst(numerical: np.ndarray, analytical: np.ndarray, atol: float, rtol: float) -> Any:
    """Index of the element that exceeds its tolerance most, or None when all are within it."""
    excess = np.abs(numerical - analytical) - (atol + rtol * np.abs(numerical))
    bad = ~(excess <= 0)  # NaN counts as a failure
    if not bad.any():
        return None
    excess = np.where(np.isnan(excess), np.inf, excess)
    return np.unravel_index(int(np.argmax(np.where(bad, excess, -np.inf))), excess.shape)


def _check_jacobian(
    problem: _Problem,
    i: int,
    n: int,
    ana: np.ndarray,
    v_flat: np.ndarray,
    rows: list[list[np.ndarray]] | None,
    eps: float,
    atol: float,
    rtol: float,
) -> str | None:
    """The numerical Jacobian of input ``i``, one column per element, against the analytical one
    (``rows``, when it was built) and against the VJP of ``v``; a failure names both multi-indices,
    the input's value there, and a hint when the two gradients are related simply."""
    x = problem.inputs[i].data
    shape = x.shape
    jac_num = np.empty((v_flat.size, x.size))
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = 1.0
        jac_num[:, j] = problem.central(i, e.reshape(shape), eps)
    tol = f"(tolerance atol={atol}, rtol={rtol})"
    vjp_num = (v_flat @ jac_num).reshape(shape)
    hint = _hint(vjp_num, ana, _ignores_grad(problem, n, ana, v_flat))
    if rows is not None:
        jac_ana = np.stack([r[n].ravel() for r in rows]) if rows else np.zeros((0, x.size))
        worst = _worst(jac_num, jac_ana, atol, rtol)
        if worst is not None:
            o, j = (int(w) for w in worst)
            where = tuple(int(k) for k in np.unravel_index(j, shape))
            return (
                f"Jacobian mismatch at d {problem.output_index(o)} / d input {i}[{where}] "
                f"(where input {i} = {x[where]:.6g}): numerical {jac_num[o, j]:.8g} vs analytical "
                f"{jac_ana[o, j]:.8g} {tol}.{hint}"
            )
    worst = _worst(vjp_num, ana, atol, rtol)
    if worst is not None:
        where = tuple(int(w) for w in worst)
        return (
            f"J^T v mismatch at input {i}[{where}] (value {x[worst]:.6g}): numerical "
            f"{vjp_num[worst]:.8g} vs analytical {ana[worst]:.8g} {tol}.{hint}"
        )
    return None


def _ignores_grad(problem: _Problem, n: int, ana: np.ndarray, v_flat: np.ndarray) -> bool:
    """Whether J^T v stays the same for a second upstream gradient (a VJP that ignores grad)."""
    if not v_flat.size or not np.any(ana):
        return False
    other = problem.vjp(problem.split(2.0 * v_flat + 1.0))[n]
    return bool(np.allclose(other, ana, rtol=1e-9, atol=1e-12))


def _check_dot_product(
    problem: _Problem,
    i: int,
    ana: np.ndarray,
    v_flat: np.ndarray,
    rng: np.random.Generator,
    eps: float,
    atol: float,
    rtol: float,
) -> str | None:
    """<v, J u> by central differences along a random direction u, against <J^T v, u>."""
    x = problem.inputs[i].data
    u = rng.standard_normal(x.shape)
    num = float(v_flat @ problem.central(i, u, eps)) if x.size else 0.0
    an = float(np.sum(ana * u))
    if abs(num - an) <= atol + rtol * abs(num):
        return None
    n = problem.diff.index(i)
    hint = _hint(np.array([num]), np.array([an]), _ignores_grad(problem, n, ana, v_flat))
    return (
        f"dot-product test fails: numerical <v, J u> = {num:.8g} vs analytical <J^T v, u> = "
        f"{an:.8g} (difference {abs(num - an):.3g}, tolerance atol={atol}, rtol={rtol}).{hint}"
    )


def gradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` against central differences.

    Parameters
    ----------
    fn
        A function of the inputs returning a Tensor or a tuple of Tensors (non-float outputs are
        ignored).
    *inputs
        Tensors (those with ``requires_grad=True`` and a floating dtype are checked, as float64
        copies) and any other arguments, passed to ``fn`` unchanged. PyTorch's spelling, one tuple
        of them (``gradcheck(fn, (a, b))``), works too.
    eps
        The central-difference step.
    atol, rtol
        An element passes when ``|numerical - analytical| <= atol + rtol * |numerical|``.
    raise_exception
        Raise :class:`GradcheckError` on a mismatch (the default) rather than return False.
    nondet_tol
        How far two VJPs with the same upstream gradient may differ.
    seed
        Seeds the random directions, so a failure reproduces.

    Returns
    -------
    bool
        True when every check passes.

    Examples
    --------
    >>> import nnet
    >>> from nnet.testing import gradcheck
    >>> a = nnet.randn(3, 4, dtype="float64", requires_grad=True)
    >>> b = nnet.randn(4, dtype="float64", requires_grad=True)
    >>> gradcheck(lambda a, b: nnet.tanh(a @ b), a, b)
    True
    """
    problem = _Problem(fn, inputs)
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(s) for s in problem.out_shapes]
    v_flat = np.concatenate([v.ravel() for v in vs]) if vs else np.zeros(0)
    analytical = problem.vjp(vs)
    for i, a1 in zip(problem.diff, analytical, strict=True):
        finite = np.isfinite(a1)
        if not finite.all():
            at = tuple(int(k) for k in np.unravel_index(np.argmin(finite), a1.shape))
            return _fail(
                f"gradcheck: input {i} (shape {a1.shape}): the VJP returned {a1[at]} at {at} "
                f"({a1.size - int(finite.sum())} non-finite elements); "
                "look for a 0/0 or a kink in the rule",
                raise_exception,
            )
    for i, a1, a2 in zip(problem.diff, analytical, problem.vjp(vs), strict=True):
        diff = float(np.max(np.abs(a1 - a2), initial=0.0))
        if not diff <= nondet_tol:
            return _fail(
                f"gradcheck: input {i}: two VJPs with the same upstream gradient differ by "
                f"{diff:.3g} > nondet_tol={nondet_tol}; the backward is not deterministic",
                raise_exception,
            )

    total_in = sum(problem.inputs[i].data.size for i in problem.diff)
    total_out = int(v_flat.size)
    full = total_in <= FULL_JACOBIAN_MAX_INPUTS
    rows: list[list[np.ndarray]] | None = None
    if full and total_out <= FULL_JACOBIAN_MAX_OUTPUTS:
        rows = []
        for k in range(total_out):
            onehot = np.zeros(total_out)
            onehot[k] = 1.0
            rows.append(problem.vjp(problem.split(onehot)))

    for n, (i, ana) in enumerate(zip(problem.diff, analytical, strict=True)):
        x = problem.inputs[i].data
        message = None
        if full and x.size:
            message = _check_jacobian(problem, i, n, ana, v_flat, rows, eps, atol, rtol)
        if message is None:
            message = _check_dot_product(problem, i, ana, v_flat, rng, eps, atol, rtol)
        if message is not None:
            ops = ", ".join(problem.ops) or "none recorded"
            return _fail(
                f"gradcheck: input {i} (shape {x.shape}): {message} The Functions in fn's graph, "
                f"last recorded first: {ops}",
                raise_exception,
            )
    return True


def gradgradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    grad_outputs: Sequence[Any] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    seed: int = 0,
) -> bool:
    """Check second derivatives: :func:`gradcheck` applied to the VJP of ``fn``.

    The VJP ``(x, v) -> J(x)^T v`` is computed with ``nnet.grad(..., create_graph=True)`` and
    checked numerically with respect to both the inputs ``x`` and the upstream gradient ``v``
    (random unless ``grad_outputs`` is given).

    Examples
    --------
    >>> import nnet
    >>> from nnet.testing import gradgradcheck
    >>> x = nnet.tensor([0.3, -1.2], dtype="float64", requires_grad=True)
    >>> gradgradcheck(lambda t: nnet.sigmoid(t) * t, x)
    True
    """
    problem = _Problem(fn, inputs)
    n_in = len(problem.inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        vs = [Tensor(rng.standard_normal(s), requires_grad=True) for s in problem.out_shapes]
    else:
        vs = [
            Tensor(np.array(v.data if isinstance(v, Tensor) else v, np.float64), requires_grad=True)
            for v in grad_outputs
        ]
        if len(vs) != len(problem.out_shapes):
            raise ValueError(
                f"gradgradcheck: fn has {len(problem.out_shapes)} float outputs but "
                f"{len(vs)} grad_outputs were given"
            )
    diff = problem.diff

    def vjp_fn(*args: Any) -> tuple[Tensor, ...]:
        xs, gs = args[:n_in], args[n_in:]
        outs = _as_outputs(fn(*xs))
        pairs = [
            (outs[k], g)
            for k, g in zip(_float_outputs(outs), gs, strict=True)
            if outs[k].requires_grad
        ]
        wrt = [xs[i] for i in diff]
        if not pairs:
            return tuple(Tensor(np.zeros(x.shape)) for x in wrt)
        grads = _grad(
            [o for o, _ in pairs],
            wrt,
            grad_outputs=[g for _, g in pairs],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(
            g if g is not None else Tensor(np.zeros(x.shape))
            for g, x in zip(grads, wrt, strict=True)
        )

    return gradcheck(
        vjp_fn,
        *problem.inputs,
        *vs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        nondet_tol=nondet_tol,
        seed=seed,
    )
