"""Self-describing YNet checkpoints: save atomically, load with ``weights_only=True``.

A checkpoint is a dict (see docs/workdir.md, ``training/``) holding ``model_state``,
``optimizer_state``, ``scheduler_state``, ``epoch`` (epochs completed), ``best_val_loss``,
``model_args`` (YNet constructor kwargs), ``config_json``, ``channels``, ``rng_state``,
and ``normalization`` (the training-split scaling, tensors and numbers only), so that
inference can rebuild the network and its scaling from the file alone.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from smcore.errors import InputError
from smcore.io.atomic import atomic_path
from smcore.models.ynet import YNet

if TYPE_CHECKING:
    from smcore.workdir import WorkDir

__all__ = [
    "REQUIRED_KEYS", "save_checkpoint", "load_checkpoint", "file_sha256", "model_from_checkpoint",
    "ensemble_checkpoints",
]

REQUIRED_KEYS = (
    "model_state",
    "optimizer_state",
    "scheduler_state",
    "epoch",
    "best_val_loss",
    "model_args",
    "config_json",
    "channels",
    "rng_state",
    "normalization",
)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` with ``torch.save`` to a temporary file, then rename it onto ``path``."""
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks {', '.join(missing)}")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        # a file object, not a path: torch names the archive's records after the file, and a
        # temporary name would make identical checkpoints differ byte for byte
        torch.save(state, fh)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); one-line :class:`InputError` if unusable."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no checkpoint here: run `smcore train` first")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise InputError(p, f"cannot read checkpoint: {str(exc).splitlines()[0]}") from exc
    if not isinstance(state, dict):
        raise InputError(p, "not a smcore checkpoint (expected a dict)")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise InputError(p, f"not a smcore checkpoint: lacks {', '.join(missing)}")
    return state


def model_from_checkpoint(state: dict[str, Any], path: str | Path | None = None) -> YNet:
    """Rebuild the YNet of a loaded checkpoint with its weights (on the CPU, eval mode)."""
    try:
        model = YNet.from_config(state["model_args"])
        model.load_state_dict(state["model_state"])
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(path, f"checkpoint weights do not fit its model_args: {str(exc).splitlines()[0]}") from exc
    return model.eval()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def ensemble_checkpoints(wd: WorkDir, first: dict[str, Any] | None = None) -> list[Path]:
    """The ``best.pt`` of every network the last ``smcore train`` of ``wd`` trained.

    Their number is the ``train.members`` recorded in ``training/best.pt`` (1 for checkpoints
    of a single network); ``first`` is that checkpoint when the caller has loaded it already.
    A member without its ``best.pt`` (training stopped before it was done) is an
    :class:`InputError` naming it, never a silently smaller ensemble.
    """
    path = wd.member(0).checkpoint_best
    state = load_checkpoint(path) if first is None else first
    try:
        k = int(json.loads(state["config_json"]).get("train", {}).get("members", 1))
    except (TypeError, ValueError, AttributeError) as exc:
        raise InputError(path, f"unreadable config_json: {exc}") from exc
    paths = [wd.member(m).checkpoint_best for m in range(max(k, 1))]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError(
            missing[0],
            f"member {paths.index(missing[0])} of the {k}-network ensemble has no checkpoint: "
            f"its training did not finish; run `smcore train --resume --members {k}`",
        )
    return paths
