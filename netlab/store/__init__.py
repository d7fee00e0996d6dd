"""The store of a lab's desired and observed objects (see netlab/store/api.py and docs/controllers.md).

``open_store(directory)`` opens the embedded default (SQLite under the lab's state directory);
``MemoryStore()`` is the same interface in memory; ``netlab.store.etcd.EtcdStore`` the same on a real
etcd v3 cluster (one Txn per store transaction; a lab's ``store.json`` selects it, see netlab.live)."""

from netlab.store.api import (AlreadyExists, Conflict, Invalid, NotFoundError, Store, StoreError, TooOld,
                              WatchEvent)
from netlab.store.events import prune_events, record_event
from netlab.store.informer import Informer
from netlab.store.memory import MemoryStore
from netlab.store.sqlite import SQLiteStore


def open_store(directory: str, **kw) -> SQLiteStore:
    """The embedded default store of a lab: ``<directory>/store.db``."""
    return SQLiteStore(directory, **kw)


__all__ = ["AlreadyExists", "Conflict", "Informer", "Invalid", "MemoryStore", "NotFoundError", "SQLiteStore", "Store",
           "StoreError", "TooOld", "WatchEvent", "open_store", "prune_events", "record_event"]
