"""Training checkpoints: everything a run needs to continue bit for bit, in one ``nnet.save`` file.

The file holds the configuration, the number of finished epochs, the model's, optimizer's and
scheduler's state dicts, the history of per-epoch metrics, and the two random generators' states
(nnet's, which drives dropout, and the loader's, which drives shuffling). Generator states hold
128-bit integers, so they are stored as JSON text. ``nnet.save`` writes atomically: a crash while
saving leaves the previous checkpoint in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import nnet
from nnet.serialization import CheckpointError

FORMAT = "nnet-train-checkpoint/1"


def save_checkpoint(path: str | Path, *, config: dict[str, Any], epoch: int, model: Any,
                    optimizer: Any, scheduler: Any, loader: Any,
                    history: dict[str, list[float]]) -> None:  # fmt: skip
    state = {
        "format": FORMAT,
        "config": {k: "" if v is None else v for k, v in config.items()},
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "rng": {
            "nnet": json.dumps(nnet.random.get_rng_state()),
            "loader": json.dumps(loader.get_rng_state()),
        },
        "history": {k: np.asarray(v, dtype=np.float64) for k, v in history.items()},
    }
    nnet.save(state, str(path))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint, checking that it is one; ``config`` values come back as Python values."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    state = nnet.load(path)  # its CheckpointError names the file and what is wrong with it
    if not isinstance(state, dict) or _plain(state.get("format")) != FORMAT:
        raise CheckpointError(f"{path} is not an nnet train checkpoint (no format {FORMAT!r})")
    state["config"] = {k: _plain(v) for k, v in state["config"].items()}
    state["epoch"] = int(_plain(state["epoch"]))
    state["history"] = {k: [float(x) for x in np.asarray(v).reshape(-1)]
                        for k, v in state["history"].items()}  # fmt: skip
    return state


def restore_rng(state: dict[str, Any], loader: Any) -> None:
    """Put nnet's and the loader's generators back where the checkpoint left them."""
    nnet.random.set_rng_state(json.loads(_plain(state["rng"]["nnet"])))
    loader.set_rng_state(json.loads(_plain(state["rng"]["loader"])))


def _plain(value: Any) -> Any:
    """NumPy scalars and 0-d arrays (as a loader may return them) to Python values."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        value = value.item()
    return value
