"""The call store: calls with their audio, words, prosody, cues, feedback and coach notes,
in SQLite (default: one file in the data dir) or PostgreSQL (a team server).

    store = open_store()                 # sqlite:///~/.local/share/coach/coach.db
    store = open_store("postgresql://coach@db.example/coach")
    rows, total = store.list_calls(agent="Dana", cue="sorry-but")
"""

from __future__ import annotations

from coach.store.db import NewCall, Store, default_data_dir, default_url, open_store
from coach.store.schema import AlreadyStoredError, StoreError

__all__ = ["AlreadyStoredError", "NewCall", "Store", "StoreError", "default_data_dir",
           "default_url", "open_store"]
