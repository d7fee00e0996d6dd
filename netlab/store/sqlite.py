"""The embedded default store: one SQLite file (stdlib sqlite3) under a directory the caller
gives (a lab's state directory), mode 0600.

Durability and crash safety: the database runs in WAL mode with ``synchronous=NORMAL``; every
store transaction is one SQLite transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a process
killed at any point (SIGKILL included) leaves either all of a transaction or none of it, and
nothing that was committed is lost (WAL with NORMAL loses nothing on a process crash; only a
power loss or kernel crash may drop the last transactions, never corrupting the file). Several
processes may open the same file: writers serialize on SQLite's write lock (``busy_timeout``).

Change notification across processes: ``wait(revision, timeout)`` polls ``PRAGMA data_version``
(a counter in SQLite's shared memory that changes when another connection commits; reading it
touches no table) and reads the revision only when it moved, so an idle waiter costs a few
microseconds per poll and needs no inotify or signals.

Tables: ``objects`` (kind, namespace, name -> JSON, revision), ``history`` (revision -> event
type and JSON; bounded, older rows are compacted away), ``meta`` (revision, compacted, and the
revision of the last write of each kind, ``kind:<Kind>``).

``objects`` is an ordinary (rowid) table with its key in an index of its own: a new row goes at the
table's end and only the small key goes into the index where its name sorts. Until 2026-12-04 it was a
WITHOUT ROWID table, whose one tree holds the whole rows, objects of kilobytes each: an object written
where its name sorts moved kilobytes of others, and 10,000 pods' statuses with 30,000 events took about
1.7 times as long (a synthetic transaction of each, in a file on tmpfs; SQLite's own advice is WITHOUT
ROWID for rows of a twentieth of a page or less). A store made before keeps its table: the statements are
the same for both.
"""

from __future__ import annotations

import os
import sqlite3

from netlab.store.api import Store, StoreError

DB_NAME = "store.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    rev INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name));
CREATE TABLE IF NOT EXISTS history (
    rev INTEGER PRIMARY KEY, type TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('revision', 0), ('compacted', 0);
"""


class SQLiteStore(Store):
    _incremental_snapshots = True

    def __init__(self, directory: str, clock=None, history_limit: int | None = None, name: str = DB_NAME):
        kw = {}
        if clock is not None:
            kw["clock"] = clock
        if history_limit is not None:
            kw["history_limit"] = history_limit
        super().__init__(**kw)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.path = os.path.join(directory, name)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError(f"store {self.path}: {e}; check the file and its directory") from e
        self._data_version = None
        self._seen_rev = 0
        # the meta rows a transaction moves (the revision, each written kind's last revision): kept here and
        # written once at its commit, not once per object (two statements fewer per write of thousands)
        self._meta: dict[str, int] = {}
        # the transaction's history rows, written in one executemany before anything reads the history (and
        # at the latest with the commit): a row per statement was about a tenth of a write's cost
        self._pending: list[tuple] = []

    # transactions
    def _begin(self):
        self._db.execute("BEGIN IMMEDIATE")

    def _flush_history(self):
        if self._pending:
            self._db.executemany("INSERT INTO history VALUES (?,?,?,?)", self._pending)
            self._pending.clear()

    def _commit(self):
        self._flush_history()
        if self._meta:
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(self._meta.items()))
            self._meta.clear()
        self._db.execute("COMMIT")
        self._data_version = None  # data_version does not move on this connection's own commits

    def _begin_read(self):
        self._db.execute("BEGIN DEFERRED")

    def _end_read(self):
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def _rollback(self):
        self._meta.clear()
        self._pending.clear()
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # primitives
    def _load(self, k):
        row = self._db.execute("SELECT data FROM objects WHERE kind=? AND namespace=? AND name=?", k).fetchone()
        return row[0] if row else None

    def _scan(self, kind, namespace):
        if namespace is None:
            rows = self._db.execute("SELECT data FROM objects WHERE kind=? ORDER BY namespace, name", (kind,))
        else:
            rows = self._db.execute("SELECT data FROM objects WHERE kind=? AND namespace=? ORDER BY name",
                                    (kind, namespace))
        return [r[0] for r in rows]

    def _scan_since(self, kind, since):
        rows = self._db.execute("SELECT namespace, name, rev, CASE WHEN rev > ? THEN data END FROM objects "
                                "WHERE kind=? ORDER BY namespace, name", (since, kind))
        return [((ns, name), rev, raw) for ns, name, rev, raw in rows]

    def _scan_revs(self, kind):
        rows = self._db.execute("SELECT namespace, name, rev FROM objects WHERE kind=? ORDER BY namespace, name",
                                (kind,))
        return [((ns, name), rev) for ns, name, rev in rows]

    def _put(self, k, raw, rev, etype):
        self._db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?)", (*k, rev, raw))
        self._log(k[0], raw, rev, etype)

    def _insert(self, k, raw, rev):
        # one statement where the base class reads first: the primary key refuses a taken name (and a
        # refused statement leaves the transaction as it was)
        try:
            self._db.execute("INSERT INTO objects VALUES (?,?,?,?,?)", (*k, rev, raw))
        except sqlite3.IntegrityError:
            return False
        self._log(k[0], raw, rev, "ADDED")
        return True

    def _grouped(self, keys, what: str):
        # one statement per kind and namespace and up to 500 names (SQLite's limit on a statement's variables
        # is 32,766 since 3.32, 999 before)
        groups: dict[tuple, list[str]] = {}
        for kind, ns, name in keys:
            groups.setdefault((kind, ns), []).append(name)
        for (kind, ns), names in groups.items():
            for i in range(0, len(names), 500):
                part = names[i:i + 500]
                for row in self._db.execute(f"SELECT {what} FROM objects WHERE kind=? AND namespace=? AND name IN "
                                            f"({','.join('?' * len(part))})", (kind, ns, *part)):
                    yield (kind, ns, row[0]), row

    def _taken(self, keys):
        return {k for k, _ in self._grouped(keys, "name")}

    def _load_all(self, keys):
        return {k: row[1] for k, row in self._grouped(keys, "name, data")}

    def _put_all(self, rows, etype):
        self._db.executemany("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?)",
                             [(*k, rev, raw) for k, raw, rev in rows])
        for k, raw, rev in rows:
            self._log(k[0], raw, rev, etype)

    def _remove(self, k, raw, rev):
        self._db.execute("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?", k)
        self._log(k[0], raw, rev, "DELETED")

    def _log(self, kind, raw, rev, etype):
        """A write's history row, and the revisions it moves (written with the transaction's commit, the row
        before anything reads the history: `_flush_history`)."""
        self._pending.append((rev, etype, kind, raw))
        self._meta["revision"] = self._meta["kind:" + kind] = rev

    def _read_revision(self):
        if "revision" in self._meta:
            return self._meta["revision"]
        return self._db.execute("SELECT value FROM meta WHERE key='revision'").fetchone()[0]

    def _read_compacted(self):
        return self._db.execute("SELECT value FROM meta WHERE key='compacted'").fetchone()[0]

    def _history(self, from_rev, kind):
        self._flush_history()
        if kind is None:
            rows = self._db.execute("SELECT rev, type, data FROM history WHERE rev>? ORDER BY rev", (from_rev,))
        else:
            rows = self._db.execute("SELECT rev, type, data FROM history WHERE rev>? AND kind=? ORDER BY rev",
                                    (from_rev, kind))
        return list(rows)

    def _kind_revision(self, kind):
        if "kind:" + kind in self._meta:
            return self._meta["kind:" + kind]
        row = self._db.execute("SELECT value FROM meta WHERE key=?", ("kind:" + kind,)).fetchone()
        return row[0] if row else 0

    def _trim_history(self, upto):
        if upto <= 0 or upto <= self._read_compacted():
            return
        self._flush_history()
        self._db.execute("DELETE FROM history WHERE rev<=?", (upto,))
        self._db.execute("UPDATE meta SET value=? WHERE key='compacted'", (upto,))

    def _poll_revision(self):
        with self._lock:
            dv = self._db.execute("PRAGMA data_version").fetchone()[0]
            if dv != self._data_version or self._depth:
                self._data_version = dv
                self._seen_rev = self.revision()
            return self._seen_rev

    def close(self):
        with self._lock:
            self._db.close()
