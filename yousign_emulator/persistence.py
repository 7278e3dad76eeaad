"""Keeping the emulator's signature requests across restarts, so `make run` again can still sign them.

The file is the emulator's own, written in the project's data folder: pickle is fine for that (it is
never read from anywhere else).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from .state import EmulatorState

# What a person (or a pending mandate) needs after a restart; logs of requests and faults are not.
KEPT = ("signature_requests", "documents", "signers", "identity_documents", "webhook_events", "mailbox")


def save_state(state: EmulatorState, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as file:
        pickle.dump({name: getattr(state, name) for name in KEPT}, file)
    os.replace(temporary, path)


def load_state(state: EmulatorState, path: Path) -> bool:
    if not path.exists():
        return False
    with path.open("rb") as file:
        saved = pickle.load(file)
    for name in KEPT:
        setattr(state, name, saved.get(name, getattr(state, name)))
    return True
