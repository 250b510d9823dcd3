"""Differentiable regularisation terms to add to a loss: ``loss + l2_penalty(model.parameters())``.

(``weight_decay`` in the optimizers is the other way to apply L2; see docs/optim.md.)
"""

from __future__ import annotations

from collections.abc import Iterable

from nnet.autograd.tensor import Tensor


def _params(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    if not params:
        raise ValueError("penalty: got no parameters")
    return params


def l1_penalty(parameters: Tensor | Iterable[Tensor], lam: float = 1.0) -> Tensor:
    """``lam * sum(|w|)`` over all parameters; its gradient is ``lam * sign(w)`` (0 at w = 0).

    >>> import nnet
    >>> w = nnet.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    >>> nnet.nn.utils.l1_penalty([w], lam=0.1).backward()
    >>> w.grad
    Tensor([-0.1,  0. ,  0.1], dtype=float32)
    """
    total: Tensor | None = None
    for p in _params(parameters):
        term = p.abs().sum()
        total = term if total is None else total + term
    assert total is not None
    return total * lam


def l2_penalty(parameters: Tensor | Iterable[Tensor], lam: float = 1.0) -> Tensor:
    """``lam / 2 * sum(w ** 2)`` over all parameters; its gradient is ``lam * w``.

    >>> import nnet
    >>> w = nnet.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    >>> nnet.nn.utils.l2_penalty([w], lam=0.1).backward()
    >>> w.grad
    Tensor([-0.2,  0. ,  0.3], dtype=float32)
    """
    total: Tensor | None = None
    for p in _params(parameters):
        term = (p * p).sum()
        total = term if total is None else total + term
    assert total is not None
    return total * (lam / 2)
