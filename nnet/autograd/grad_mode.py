"""Gradient recording on or off: a context variable, so each thread and each async task has its own."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from functools import wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

grad_enabled: ContextVar[bool] = ContextVar("nnet_grad_enabled", default=True)


def is_grad_enabled() -> bool:
    """True when operations on tensors that require gradients are being recorded."""
    return grad_enabled.get()


class _GradMode:
    """Sets recording on or off inside a ``with`` block or a decorated function.

    A fresh token stack per ``with`` entry keeps nested and concurrent uses independent. The class
    decorates a function bare (``@no_grad``) or called (``@no_grad()``), as PyTorch's.
    """

    enabled: bool

    def __new__(cls, *args: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not isinstance(args[0], bool):
            return cls()(args[0])  # bare decorator: cls(fn)
        return super().__new__(cls)

    def __init__(self) -> None:
        self._tokens: list[Token[bool]] = []

    def __enter__(self) -> None:
        self._tokens.append(grad_enabled.set(self.enabled))

    def __exit__(self, *exc: object) -> None:
        grad_enabled.reset(self._tokens.pop())

    def __call__(self, fn: F) -> F:
        mode = type(self)

        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Stop recording: results of operations inside do not require gradients.

    >>> import nnet
    >>> x = nnet.tensor([1.0, 2.0], requires_grad=True)
    >>> with nnet.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    >>> @nnet.no_grad
    ... def double(t):
    ...     return t * 2
    >>> double(x).requires_grad
    False
    """

    enabled = False


class inference_mode(_GradMode):
    """PyTorch's ``inference_mode``: nnet's :class:`no_grad` (``inference_mode(False)`` records).

    nnet has no separate inference tensors: results made inside are ordinary tensors that do not
    require gradients, so using them later in recorded code is allowed (PyTorch forbids it).

    >>> import nnet
    >>> with nnet.inference_mode():
    ...     y = nnet.tensor([1.0], requires_grad=True) * 2
    >>> y.requires_grad
    False
    """

    def __init__(self, mode: bool = True) -> None:
        super().__init__()
        self.enabled = not mode

    def __call__(self, fn: F) -> F:
        enabled = self.enabled

        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with inference_mode(not enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class enable_grad(_GradMode):
    """Record operations again, e.g. inside a ``no_grad`` block."""

    enabled = True


class set_grad_enabled(_GradMode):
    """Set recording to ``mode``: at once when called (``nnet.set_grad_enabled(False)`` turns it off
    for the rest of the current context, as PyTorch's), and back to what it was when used as a
    ``with`` block or a decorator exits.

    >>> import nnet
    >>> _ = nnet.set_grad_enabled(False)
    >>> nnet.is_grad_enabled()
    False
    >>> with nnet.set_grad_enabled(True):
    ...     nnet.is_grad_enabled()
    True
    >>> nnet.is_grad_enabled()
    False
    >>> _ = nnet.set_grad_enabled(True)
    """

    def __new__(cls, mode: bool) -> Any:
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self.enabled = bool(mode)
        self._tokens.append(grad_enabled.set(self.enabled))  # takes effect now, as PyTorch's

    def __enter__(self) -> None:
        if not self._tokens:  # entered again after an exit: set it again
            self._tokens.append(grad_enabled.set(self.enabled))

    def __call__(self, fn: F) -> F:
        # as a decorator, the mode applies when fn runs, not from the decoration on
        if self._tokens:
            grad_enabled.reset(self._tokens.pop())
        enabled = self.enabled

        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
