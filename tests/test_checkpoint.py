"""Checkpoint files: identical states give identical bytes, whatever the file name."""

from __future__ import annotations

import hashlib

import torch

from smcore.train.checkpoint import REQUIRED_KEYS, load_checkpoint, save_checkpoint


def test_identical_states_give_identical_files(tmp_path):
    state = {k: torch.arange(3.0) for k in REQUIRED_KEYS}
    a = save_checkpoint(state, tmp_path / "a" / "best.pt")
    b = save_checkpoint(state, tmp_path / "b" / "last.pt")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)]
    assert digest[0] == digest[1]  # the temporary file's name does not enter the archive
    assert torch.equal(load_checkpoint(b)["epoch"], torch.arange(3.0))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["best.pt"]
