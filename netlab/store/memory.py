"""In-memory store backend (tests, and labs that do not need to survive a restart)."""

from __future__ import annotations

from netlab.store.api import Store


class MemoryStore(Store):
    """The store semantics over dicts; a transaction keeps an undo log and rolls back from it."""

    _incremental_snapshots = True

    def __init__(self, clock=None, history_limit: int | None = None):
        kw = {}
        if clock is not None:
            kw["clock"] = clock
        if history_limit is not None:
            kw["history_limit"] = history_limit
        super().__init__(**kw)
        self._objs: dict[str, dict[tuple[str, str], tuple[int, str]]] = {}  # kind -> key -> (rev, json)
        self._hist: list[tuple[int, str, str, str]] = []  # (rev, type, kind, raw)
        self._committed_rev = 0
        self._compacted = 0
        self._kind_rev: dict[str, int] = {}  # kind -> revision of its last change
        self._undo: dict | None = None

    def _begin(self):
        self._undo = {"objs": {}, "hist": len(self._hist), "kind_rev": dict(self._kind_rev)}

    def _commit(self):
        self._committed_rev = self._rev
        self._undo = None

    def _rollback(self):
        if self._undo is None:
            return
        for (kind, ns, name), entry in self._undo["objs"].items():
            table = self._objs.setdefault(kind, {})
            if entry is None:
                table.pop((ns, name), None)
            else:
                table[(ns, name)] = entry
        del self._hist[self._undo["hist"]:]
        self._kind_rev = self._undo["kind_rev"]
        self._rev = self._committed_rev
        self._undo = None

    def _remember(self, k):
        if k not in self._undo["objs"]:
            self._undo["objs"][k] = self._objs.get(k[0], {}).get((k[1], k[2]))

    def _load(self, k):
        entry = self._objs.get(k[0], {}).get((k[1], k[2]))
        return None if entry is None else entry[1]

    def _scan(self, kind, namespace):
        table = self._objs.get(kind, {})
        return [table[key][1] for key in sorted(table) if namespace is None or key[0] == namespace]

    def _scan_revs(self, kind):
        table = self._objs.get(kind, {})
        return [(key, table[key][0]) for key in sorted(table)]

    def _put(self, k, raw, rev, etype):
        self._remember(k)
        self._objs.setdefault(k[0], {})[(k[1], k[2])] = (rev, raw)
        self._hist.append((rev, etype, k[0], raw))
        self._kind_rev[k[0]] = rev

    def _remove(self, k, raw, rev):
        self._remember(k)
        self._objs.get(k[0], {}).pop((k[1], k[2]), None)
        self._hist.append((rev, "DELETED", k[0], raw))
        self._kind_rev[k[0]] = rev

    def _read_revision(self):
        return self._committed_rev

    def _read_compacted(self):
        return self._compacted

    def _kind_revision(self, kind):
        return self._kind_rev.get(kind, 0)

    def _history(self, from_rev, kind):
        return [(r, t, raw) for r, t, kd, raw in self._hist if r > from_rev and (kind is None or kd == kind)]

    def _trim_history(self, upto):
        if upto <= self._compacted:
            return
        i = 0
        while i < len(self._hist) and self._hist[i][0] <= upto:
            i += 1
        del self._hist[:i]
        self._compacted = upto
