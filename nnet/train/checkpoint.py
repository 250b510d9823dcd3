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
                    history: dict[str, list[float]], nnet_rng: Any = None) -> None:  # fmt: skip
    """``nnet_rng``: nnet's generator state to store (default: this process's); under MPI the list
    of every rank's, which all draw their own dropout masks."""
    state = {
        "format": FORMAT,
        "config": {k: "" if v is None else v for k, v in config.items()},
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "rng": {
            "nnet": json.dumps(nnet.random.get_rng_state() if nnet_rng is None else nnet_rng),
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


def restore_rng(state: dict[str, Any], loader: Any, rank: int = 0, world: int = 1) -> bool:
    """Put nnet's and the loader's generators back where the checkpoint left them; this is rank
    ``rank`` of ``world``. False when the checkpoint holds nnet's generator for another number of
    ranks: the loader's is restored (the sample order goes on), nnet's is left to the caller."""
    loader.set_rng_state(json.loads(_plain(state["rng"]["loader"])))
    saved = json.loads(_plain(state["rng"]["nnet"]))
    if isinstance(saved, list):  # one state per rank
        if len(saved) != world:
            return False
        saved = saved[rank]
    elif world > 1:
        return False
    nnet.random.set_rng_state(saved)
    return True


def rank_seed(seed: int, rank: int, epoch: int = 0) -> int:
    """The seed of rank ``rank``'s own stream of dropout masks (from ``epoch`` on, when a resumed run
    cannot continue the saved streams): one shared stream would give row k of every rank's share
    of a batch the same mask."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1, np.uint64)[0])


def _plain(value: Any) -> Any:
    """NumPy scalars and 0-d arrays (as a loader may return them) to Python values."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        value = value.item()
    return value
