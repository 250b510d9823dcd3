"""nnet's own random-number generator: every random draw in nnet goes through it.

The global NumPy state is never read or reseeded, so user code that relies on it is unaffected.

>>> import nnet
>>> _ = nnet.manual_seed(0)
>>> a = nnet.random.get_generator().random(3)
>>> _ = nnet.manual_seed(0)
>>> bool((a == nnet.random.get_generator().random(3)).all())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed nnet's generator (weights init, dropout masks, ``rand``/``randn``) and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def get_generator() -> np.random.Generator:
    """The generator nnet draws from; reseeded by :func:`manual_seed`."""
    return _generator


def get_rng_state() -> dict[str, Any]:
    """A picklable-free snapshot (plain dict of ints and strings) of the generator, for checkpoints."""
    return dict(_generator.bit_generator.state)  # typed Mapping in NumPy's stubs


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by :func:`get_rng_state`."""
    _generator.bit_generator.state = state
