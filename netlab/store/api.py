"""The store interface: Kubernetes-API-like objects with etcd-like revisions.

Semantics (shared by every backend; a backend supplies only the primitive operations at the end):

- One global revision, a monotonically increasing integer. Every write (create, update,
  update_status, delete, and the marking of a graceful deletion) takes the next revision; the
  object's ``metadata.resourceVersion`` is the revision of its last write, as a string.
- ``metadata.uid`` (random), ``creationTimestamp`` and ``generation`` (1 at creation, +1 when the
  spec changes or a deletion is marked; never for status or metadata-only writes) are set by the
  store. ``update`` keeps the stored status and ``update_status`` keeps everything but the status,
  as the Kubernetes API server does for resources with a status subresource.
- Optimistic concurrency: an update whose ``resourceVersion`` differs from the stored one raises
  Conflict; an update without one is unconditional. A write that changes nothing is not a write
  (no new revision), so controllers that converge reach quiet.
- ``delete``: an object with finalizers, or a delete with a grace period > 0, is only marked
  (``deletionTimestamp`` = now + grace, ``deletionGracePeriodSeconds``; a MODIFIED event); it is
  removed when its last finalizer goes (update) or on a later delete with grace 0.
- ``watch(from_revision)``: every change after that revision in order (ADDED, MODIFIED, DELETED
  with the object and its revision). History is bounded; asking for a compacted revision raises
  TooOld (Kubernetes' "410 Gone: too old resource version"); the caller then lists and watches
  from the list's revision, as a Kubernetes informer does.
- ``transaction()``: every write inside happens atomically (all or none) and in one backend
  transaction; a controller's actions of one sync go through one.
- Waiting for changes from another process: ``wait(revision, timeout)`` returns the current
  revision as soon as it exceeds `revision` (polling a cheap counter; see each backend).

Objects handed out are copies: changing them changes nothing in the store.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass

import orjson

from netlab.errors import NetlabError
from netlab.store.meta import fmt_time, key_of, selector_matches

HISTORY_LIMIT = 10_000
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' alphabet for generated names


class StoreError(NetlabError):
    """A store operation failed; the message names the object."""

    exit_code = 1
    reason = "InternalError"


class NotFoundError(StoreError):
    reason = "NotFound"


class AlreadyExists(StoreError):
    reason = "AlreadyExists"


class Conflict(StoreError):
    reason = "Conflict"


class TooOld(StoreError):
    reason = "Expired"


class Invalid(StoreError):
    reason = "Invalid"
    exit_code = 2


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    object: dict
    revision: int


def _ref(kind: str, ns: str, name: str) -> str:
    return f"{kind}/{name}" if not ns else f"{kind} {ns}/{name}"


def _num(x):
    return int(x) if float(x).is_integer() else x


def _generated(prefix: str) -> str:
    """A name for metadata.generateName, as the API server makes it: the prefix and 5 random characters of
    Kubernetes' alphabet."""
    return prefix + "".join(random.choice(NAME_ALPHABET) for _ in range(5))


_DUMP_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _dump(obj) -> str:
    """An object's stored text: JSON with sorted keys and no spaces, so equal objects have equal texts.
    orjson, not the standard library's json: every write dumps the object and parses it back (the copy
    handed out), and a 10,000-pod bring-up spent about 4 s of its 43 s in json doing so (orjson does the
    same in a fifth of the time). An integer beyond 64 bits is stored as a float, as the API server's
    decoder reads one (and as orjson parses one back), so that writing it again is no change."""
    try:
        return orjson.dumps(obj, option=_DUMP_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(_wide_ints_as_floats(obj), option=_DUMP_OPTIONS).decode()


def _wide_ints_as_floats(x):
    if isinstance(x, dict):
        return {k: _wide_ints_as_floats(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_wide_ints_as_floats(v) for v in x]
    if isinstance(x, int) and not isinstance(x, bool) and not -2 ** 63 <= x < 2 ** 64:
        return float(x)
    return x


_parse = orjson.loads   # a stored text, parsed (as json.loads; ValueError on a torn one)


def new_uids(n: int) -> list[str]:
    """`n` random (version 4) UUIDs as text, as str(uuid.uuid4()) writes them, from one read of the system's
    random source (a pass's 30,000 events spent a tenth of a second in uuid4, one system call each). The
    store's only source of uids."""
    raw = bytearray(os.urandom(16 * n))
    out = []
    for i in range(0, 16 * n, 16):
        raw[i + 6] = (raw[i + 6] & 0x0F) | 0x40   # version 4
        raw[i + 8] = (raw[i + 8] & 0x3F) | 0x80   # the RFC 4122 variant
        h = raw[i:i + 16].hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def _stamp_new(md: dict, created: str, uid: str) -> None:
    """A new object's metadata as the store sets it (create, create_all): its uid (kept if given, else `uid`,
    one of `new_uids`), generation 1, its creation time, and no deletion marks."""
    md["uid"] = md.get("uid") or uid
    md["generation"] = 1
    md["creationTimestamp"] = created
    md.pop("deletionTimestamp", None)
    md.pop("deletionGracePeriodSeconds", None)


def _keyed(obj: dict) -> tuple[str, str, str]:
    """The object's key, with its metadata.namespace as the key says (none for a cluster-scoped kind)."""
    k = key_of(obj)
    if k[1]:
        obj["metadata"]["namespace"] = k[1]
    else:
        obj["metadata"].pop("namespace", None)
    return k


class _Transaction:
    """Store.transaction's context: the store's lock held throughout; the outermost one begins the
    backend's transaction and commits it (after compacting the history), or rolls it back if its block
    raised or the commit failed."""
    __slots__ = ("store",)

    def __init__(self, store: "Store"):
        self.store = store

    def __enter__(self) -> "Store":
        s = self.store
        s._lock.acquire()
        try:
            if s._depth == 0:
                s._begin()
                s._rev = s._read_revision()
        except BaseException:
            s._lock.release()
            raise
        s._depth += 1
        return s

    def __exit__(self, etype, value, tb) -> bool:
        s = self.store
        try:
            s._depth -= 1
            if s._depth == 0:
                if etype is not None:
                    s._rollback()
                else:
                    try:
                        s._compact_history()
                        s._commit()
                    except BaseException:
                        s._rollback()
                        raise
        finally:
            s._lock.release()
        return False


class Store:
    """Base class: the semantics above over a backend's primitives. Thread-safe (one lock)."""

    def __init__(self, clock=time.time, history_limit: int = HISTORY_LIMIT):
        self.clock = clock
        self.history_limit = history_limit
        self._lock = threading.RLock()
        self._depth = 0
        self._rev = 0  # revision inside the open transaction
        self._cache: dict[str, dict] = {}  # kind -> (namespace, name) -> (revision, parsed object)
        self._whole: dict[str, tuple[int, dict]] = {}  # kind -> (its kind revision, the last snapshot's table)

    # a backend whose history is cheap to read by revision (one local query) moves a kind's snapshot on from
    # the history rows written since it (Store._snapshot_from_history); others compare every key's revision
    _incremental_snapshots = False

    # ------------------------------------------------------------------ transactions
    def transaction(self) -> "_Transaction":
        """All writes inside happen atomically; nested transactions join the outer one. (A class, not a
        contextlib generator: a bring-up of 10,000 pods enters one about 150,000 times, mostly nested.)"""
        return _Transaction(self)

    # ------------------------------------------------------------------ reads
    def revision(self) -> int:
        with self._lock:
            return self._read_revision() if self._depth == 0 else self._rev

    def kind_revisions(self, kinds) -> tuple[int, ...]:
        """For each kind, a revision that moves whenever an object of that kind is written (the
        last change's revision; at least the compaction mark): a cheap "did anything of these kinds
        change?" for a controller that would otherwise decide again on an unchanged world."""
        with self._lock:
            return tuple(self._kind_revision(k) for k in kinds)

    def compacted(self) -> int:
        """The oldest revision watch() can start from (history before it was dropped)."""
        with self._lock:
            return self._read_compacted()

    def get(self, kind: str, namespace: str | None, name: str) -> dict:
        obj = self.try_get(kind, namespace, name)
        if obj is None:
            raise NotFoundError(f'{kind} "{name}" not found' + (f' in namespace "{namespace}"' if namespace else ""))
        return obj

    def try_get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        k = key_of({"kind": kind, "metadata": {"namespace": namespace, "name": name}})
        with self._lock:
            raw = self._load(k)
        return None if raw is None else _parse(raw)

    def list(self, kind: str, namespace: str | None = None, label_selector=None) -> list[dict]:
        """Objects of `kind` (all namespaces when namespace is None), ordered by namespace, name."""
        with self._lock:
            raws = self._scan(kind, namespace)
        out = [_parse(r) for r in raws]
        if label_selector:
            out = [o for o in out if selector_matches(label_selector, o["metadata"].get("labels"))]
        return out

    def list_with_revision(self, kinds) -> tuple[dict[str, list[dict]], int]:
        """A consistent snapshot of several kinds and the revision it reflects (one read
        transaction: it does not block writers of other processes)."""
        with self._lock:
            if self._depth:
                return {k: self.list(k) for k in kinds}, self.revision()
            self._begin_read()
            try:
                return {k: self.list(k) for k in kinds}, self._read_revision()
            finally:
                self._end_read()

    def snapshot(self, kinds) -> tuple[dict[str, list[dict]], int]:
        """Like list_with_revision, but objects unchanged since the last snapshot are not parsed
        again: they are SHARED with the store's cache and must not be modified (the controllers
        copy before they change anything). Outside a transaction only; inside one it lists."""
        with self._lock:
            if self._depth:
                return self.list_with_revision(kinds)
            tables, rev = self._snapshot(kinds)
            return {kind: list(table.values()) for kind, table in tables.items()}, rev

    def snapshot_index(self, kinds) -> tuple[dict[str, dict[tuple[str, str], dict]], int]:
        """`snapshot`'s objects by kind, each kind's keyed by (namespace, name) in the store's order
        (controllers.base.Snapshot's tables). The tables themselves are shared too, while their kind is
        not written: read them, never change them."""
        with self._lock:
            if self._depth:
                lists, rev = self.list_with_revision(kinds)
                return {kind: {key_of(o)[1:]: o for o in objs} for kind, objs in lists.items()}, rev
            return self._snapshot(kinds)

    def _snapshot(self, kinds) -> tuple[dict[str, dict[tuple[str, str], dict]], int]:
        """Each kind's objects keyed by (namespace, name), in the store's order: kept until the kind is written."""
        self._begin_read()
        try:
            out = {}
            for kind in kinds:
                # no object of the kind written since the last snapshot: the same table (scanning
                # 10,000 pods' keys again for each controller of each round was seconds of a bring-up)
                krev = self._kind_revision(kind)
                whole = self._whole.get(kind)
                if whole is not None and whole[0] == krev:
                    out[kind] = whole[1]
                    continue
                cache = self._cache.setdefault(kind, {})
                if whole is not None and self._incremental_snapshots and whole[0] >= self._read_compacted():
                    # the kind's writes since its last snapshot, from the history: a round that wrote 500
                    # of 10,000 pods reads 500 rows, not the keys of all 10,000
                    out[kind] = index = self._snapshot_from_history(kind, whole, cache)
                    self._whole[kind] = (krev, index)
                    continue
                index = {}
                # objects written since the kind's last snapshot come with their data, in the same scan
                for key, rev, raw in self._scan_since(kind, whole[0] if whole is not None else 0):
                    hit = cache.get(key)
                    if hit is None or hit[0] != rev:
                        hit = (rev, _parse(raw if raw is not None else self._load((kind, *key))))
                        cache[key] = hit
                    index[key] = hit[1]
                for key in [k for k in cache if k not in index]:
                    del cache[key]
                out[kind] = index
                self._whole[kind] = (krev, index)
            return out, self._read_revision()
        finally:
            self._end_read()

    def _snapshot_from_history(self, kind: str, whole: tuple[int, dict], cache: dict) -> dict:
        """The kind's last snapshot table (`whole`: its revision and table) moved on by the history rows
        of the kind written after it (the last write of each object wins; DELETED removes it), in the
        store's order. The old table is shared: a new one is made."""
        index = dict(whole[1])
        added = False
        for rev, etype, raw in self._history(whole[0], kind):
            obj = _parse(raw)
            key = key_of(obj)[1:]
            if etype == "DELETED":
                index.pop(key, None)
                cache.pop(key, None)
                continue
            added = added or key not in index
            cache[key] = (rev, obj)
            index[key] = obj
        return dict(sorted(index.items())) if added else index

    def watch(self, from_revision: int, kind: str | None = None) -> list[WatchEvent]:
        """Changes after `from_revision`, oldest first; TooOld if history no longer reaches back."""
        with self._lock:
            reading = not self._depth
            if reading:
                self._begin_read()
            try:
                compacted = self._read_compacted()
                if from_revision < compacted:
                    raise TooOld(f"too old resource version: {from_revision} ({compacted})")
                rows = self._history(from_revision, kind)
            finally:
                if reading:
                    self._end_read()
        return [WatchEvent(t, _parse(raw), rev) for rev, t, raw in rows]

    def wait(self, revision: int, timeout: float, interval: float = 0.02) -> int:
        """Block until the store's revision exceeds `revision` or `timeout` passes; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            cur = self._poll_revision()
            if cur > revision or time.monotonic() >= deadline:
                return cur
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    # ------------------------------------------------------------------ writes
    def create(self, obj: dict, *, copy: bool = True) -> dict | None:
        """Store a new object; returns it as stored (`copy=False`: returns None, for a caller that drops
        it: a copy is its text parsed back). AlreadyExists if the name is taken."""
        # the caller's object is never changed: its top and its metadata are copied (what is set below), the
        # rest is only read (written as JSON by _write, and handed back parsed from that)
        obj = dict(obj)
        md = obj["metadata"] = dict(obj.get("metadata") or {})
        with self.transaction():
            generated = not md.get("name") and md.get("generateName")
            if generated:
                md["name"] = _generated(md["generateName"])
            if not obj.get("kind") or not md.get("name"):
                raise Invalid("object needs kind and metadata.name (or metadata.generateName)")
            _stamp_new(md, fmt_time(self.clock()), new_uids(1)[0])
            while True:
                kind, ns, name = k = _keyed(obj)
                written = self._write(k, obj, "ADDED", copy)
                if written is not None:
                    return written if copy else None
                if not generated:
                    raise AlreadyExists(f'{kind} "{name}" already exists' + (f' in namespace "{ns}"' if ns else ""))
                # the API server's generateName: another random suffix when the name is taken
                md["name"] = _generated(md["generateName"])

    def create_all(self, objs: list[dict]) -> list[bool]:
        """create() of each of `objs` in one transaction, for a caller that writes thousands and drops the
        copies (a pass's events): True for each one stored, False where its name was taken, by the store or by
        one before it in `objs` (nothing written for it, where create raises AlreadyExists). The names are
        looked up together and the new rows written together (`_taken`, `_put_all`): 30,000 creates one by
        one spent about half their time in the per-call lock, lookup and statement. No generateName."""
        now = fmt_time(self.clock())
        with self.transaction():
            keyed = []
            for obj, uid in zip(objs, new_uids(len(objs))):
                obj = dict(obj)   # (the caller's object unchanged, as create leaves it)
                md = obj["metadata"] = dict(obj.get("metadata") or {})
                if not obj.get("kind") or not md.get("name"):
                    raise Invalid("object needs kind and metadata.name")
                _stamp_new(md, now, uid)
                keyed.append((_keyed(obj), obj))
            taken = self._taken([k for k, _ in keyed])
            rows, stored = [], []
            for k, obj in keyed:
                if k in taken:
                    stored.append(False)
                    continue
                taken.add(k)
                self._rev += 1
                obj["metadata"]["resourceVersion"] = str(self._rev)
                rows.append((k, _dump(obj), self._rev))
                stored.append(True)
            self._put_all(rows, "ADDED")
        return stored

    def update(self, obj: dict, *, copy: bool = True) -> dict | None:
        """Write metadata and spec (the stored status is kept). Removing the last finalizer of an
        object marked for deletion removes it. Returns the object as stored (`copy=False`: None)."""
        obj = dict(obj)   # (copied as create copies it)
        md = obj["metadata"] = dict(obj.get("metadata") or {})
        k = key_of(obj)
        with self.transaction():
            cur, raw = self._current(k, obj)
            cmd = cur["metadata"]
            for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace"):
                if f in cmd:
                    md[f] = cmd[f]
                else:
                    md.pop(f, None)
            md["generation"] = cmd.get("generation", 1)
            if "status" in cur:
                obj["status"] = cur["status"]
            else:
                obj.pop("status", None)
            if _dump(obj.get("spec")) != _dump(cur.get("spec")):
                md["generation"] += 1
            md["resourceVersion"] = cmd["resourceVersion"]
            if (cmd.get("deletionTimestamp") and not md.get("finalizers") and cmd.get("finalizers")
                    and not cmd.get("deletionGracePeriodSeconds")):
                return self._erase(k, obj)  # the last finalizer went and no grace period is running
            if _dump(obj) == raw:   # (the stored text is the stored object as _dump writes it)
                return cur if copy else None
            written = self._write(k, obj, "MODIFIED", copy)
            return written if copy else None

    def update_status(self, obj: dict, *, copy: bool = True) -> dict | None:
        """Write the status only. Returns the object as stored (`copy=False`: None)."""
        k = key_of(obj)
        with self.transaction():
            cur, raw = self._current(k, obj)
            new = self._status_of(obj, cur)
            if _dump(new) == raw:
                return cur if copy else None
            written = self._write(k, new, "MODIFIED", copy)
            return written if copy else None

    def update_status_all(self, objs: list[dict]) -> None:
        """update_status() of each of `objs` in order, in one transaction, for a caller that drops the copies
        (a pass's pod statuses, by the thousand): the stored objects read together and the changed ones written
        together (`_load_all`, `_put_all`). NotFoundError or Conflict as update_status raises them, and then
        nothing is written."""
        with self.transaction():
            keys = [key_of(obj) for obj in objs]
            raws = self._load_all(keys)
            rows = []
            for k, obj in zip(keys, objs):
                raw = raws.get(k)
                new = self._status_of(obj, self._checked(k, obj, raw))
                if _dump(new) == raw:
                    continue
                self._rev += 1
                new["metadata"]["resourceVersion"] = str(self._rev)
                raws[k] = text = _dump(new)   # (an object twice in `objs`: its second write on its first)
                rows.append((k, text, self._rev))
            self._put_all(rows, "MODIFIED")

    def bind(self, obj: dict, *, copy: bool = True) -> dict | None:
        """A pod's binding (the API server's pods/binding): its spec.nodeName and its status (the scheduler's
        PodScheduled condition) in one write, on the stored pod. Conflict if the pod is already bound to a
        node, as the API server refuses to bind a pod twice. Returns the pod as stored (`copy=False`: None)."""
        k = key_of(obj)
        with self.transaction():
            cur, _ = self._current(k, obj)
            written = self._write(k, self._bound(k, obj, cur), "MODIFIED", copy)
            return written if copy else None

    def bind_all(self, objs: list[dict]) -> None:
        """bind() of each of `objs` in order, in one transaction, for a caller that drops the copies (the
        scheduler's pass binds by the thousand): the pods read together and written together (`_load_all`,
        `_put_all`). Invalid, NotFoundError or Conflict as bind raises them, and then nothing is written."""
        with self.transaction():
            keys = [key_of(obj) for obj in objs]
            raws = self._load_all(keys)
            rows = []
            for k, obj in zip(keys, objs):
                new = self._bound(k, obj, self._checked(k, obj, raws.get(k)))
                self._rev += 1
                new["metadata"]["resourceVersion"] = str(self._rev)
                raws[k] = text = _dump(new)   # (a pod twice in `objs`: its second binding finds it bound)
                rows.append((k, text, self._rev))
            self._put_all(rows, "MODIFIED")

    @staticmethod
    def _bound(k, obj: dict, cur: dict) -> dict:
        """The stored pod `cur` bound as the binding `obj` says (bind, bind_all); Invalid without a node,
        Conflict if `cur` is bound already."""
        node = (obj.get("spec") or {}).get("nodeName")
        if not node:
            raise Invalid("a binding needs spec.nodeName")
        bound = (cur.get("spec") or {}).get("nodeName")
        if bound:
            raise Conflict(f"{_ref(*k)}: pod is already assigned to node {bound!r}")
        md = dict(cur["metadata"])
        md["generation"] = md.get("generation", 1) + 1   # its spec changed, as update() counts it
        new = dict(cur, metadata=md, spec=dict(cur.get("spec") or {}, nodeName=node))
        if "status" in obj:
            new["status"] = obj["status"]   # (only read: written as JSON)
        return new

    def delete(self, kind: str, namespace: str | None, name: str, grace_seconds: float | None = None,
               resource_version: str | None = None, uid: str | None = None) -> dict:
        """Delete, or with finalizers or grace_seconds > 0 mark for deletion (see the module doc).
        Returns the object as removed or as marked."""
        k = key_of({"kind": kind, "metadata": {"namespace": namespace, "name": name}})
        with self.transaction():
            raw = self._load(k)
            if raw is None:
                raise NotFoundError(f'{kind} "{name}" not found' + (f' in namespace "{k[1]}"' if k[1] else ""))
            cur = _parse(raw)
            md = cur["metadata"]
            if resource_version and md.get("resourceVersion") != resource_version:
                raise Conflict(f"{_ref(*k)}: the object has been modified (resourceVersion "
                               f"{md.get('resourceVersion')}, not {resource_version}); read it again")
            if uid and md.get("uid") != uid:
                raise Conflict(f"{_ref(*k)}: uid precondition failed (the object was recreated)")
            grace = grace_seconds or 0
            now = self.clock()
            if md.get("deletionTimestamp"):
                if not md.get("finalizers") and grace <= 0:
                    return self._erase(k, cur)
                if grace < (md.get("deletionGracePeriodSeconds") or 0):
                    md["deletionTimestamp"] = fmt_time(now + grace)
                    md["deletionGracePeriodSeconds"] = _num(grace)
                    return self._write(k, cur, "MODIFIED")
                return cur
            if md.get("finalizers") or grace > 0:
                md["generation"] = md.get("generation", 1) + 1
                md["deletionTimestamp"] = fmt_time(now + grace)
                md["deletionGracePeriodSeconds"] = _num(grace)
                return self._write(k, cur, "MODIFIED")
            return self._erase(k, cur)

    # ------------------------------------------------------------------ helpers
    def _current(self, k, obj) -> tuple[dict, str]:
        """The stored object `obj` updates, parsed, and its stored text; Conflict if `obj` names another
        resourceVersion."""
        raw = self._load(k)
        return self._checked(k, obj, raw), raw

    @staticmethod
    def _checked(k, obj, raw: str | None) -> dict:
        """The stored text `raw` of the object `obj` updates, parsed; NotFoundError if there is none, Conflict if
        `obj` names another resourceVersion."""
        if raw is None:
            raise NotFoundError(f'{k[0]} "{k[2]}" not found' + (f' in namespace "{k[1]}"' if k[1] else ""))
        cur = _parse(raw)
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv and rv != cur["metadata"].get("resourceVersion"):
            raise Conflict(f"Operation cannot be fulfilled on {_ref(*k)}: the object has been modified; "
                           "please apply your changes to the latest version and try again")
        return cur

    @staticmethod
    def _status_of(obj: dict, cur: dict) -> dict:
        """The stored object `cur` with the status of `obj` (none if it has none), for update_status."""
        new = dict(cur, metadata=dict(cur["metadata"]))   # (cur is the caller's own parse: shared, not changed)
        if "status" in obj:
            new["status"] = obj["status"]   # (only read: written as JSON, handed back parsed)
        else:
            new.pop("status", None)
        return new

    def _insert(self, k, raw: str, rev: int) -> bool:
        """_put of a new object ("ADDED"); False (and nothing written) if `k` exists."""
        if self._load(k) is not None:
            return False
        self._put(k, raw, rev, "ADDED")
        return True

    def _taken(self, keys: list) -> set:
        """Which of `keys` name a stored object (a backend may look them up together)."""
        return {k for k in keys if self._load(k) is not None}

    def _load_all(self, keys: list) -> dict:
        """The stored text of each of `keys` that names a stored object (a backend may read them together)."""
        out = {}
        for k in keys:
            raw = self._load(k)
            if raw is not None:
                out[k] = raw
        return out

    def _put_all(self, rows: list[tuple], etype: str) -> None:
        """_put of each (key, text, revision) of `rows` (a backend may write them together)."""
        for k, raw, rev in rows:
            self._put(k, raw, rev, etype)

    def _write(self, k, obj: dict, etype: str, copy: bool = True) -> dict | None:
        """Write `obj` at the next revision and hand it back as stored (`copy=False`: `obj` itself, not
        parsed back from its text); an ADDED one only if `k` is free (else None, nothing written, no
        revision spent)."""
        self._rev += 1
        obj["metadata"]["resourceVersion"] = str(self._rev)
        raw = _dump(obj)
        if etype == "ADDED":
            if not self._insert(k, raw, self._rev):
                self._rev -= 1
                return None
        else:
            self._put(k, raw, self._rev, etype)
        return _parse(raw) if copy else obj

    def _erase(self, k, obj: dict) -> dict:
        self._rev += 1
        obj["metadata"]["resourceVersion"] = str(self._rev)
        raw = _dump(obj)
        self._remove(k, raw, self._rev)
        return _parse(raw)

    def _compact_history(self) -> None:
        self._trim_history(self._rev - self.history_limit)

    # ------------------------------------------------------------------ backend primitives
    def _begin(self): raise NotImplementedError
    def _commit(self): raise NotImplementedError
    def _rollback(self): raise NotImplementedError
    def _load(self, k) -> str | None: raise NotImplementedError
    def _scan(self, kind: str, namespace: str | None) -> list[str]: raise NotImplementedError
    def _scan_revs(self, kind: str) -> list[tuple[tuple[str, str], int]]: raise NotImplementedError

    def _scan_since(self, kind: str, since: int) -> list[tuple[tuple[str, str], int, str | None]]:
        """`_scan_revs` with the data of the objects written after revision `since` (None: ask `_load`)."""
        return [(key, rev, None) for key, rev in self._scan_revs(kind)]
    def _put(self, k, raw: str, rev: int, etype: str): raise NotImplementedError
    def _remove(self, k, raw: str, rev: int): raise NotImplementedError
    def _read_revision(self) -> int: raise NotImplementedError
    def _read_compacted(self) -> int: raise NotImplementedError
    def _history(self, from_rev: int, kind: str | None) -> list[tuple[int, str, str]]: raise NotImplementedError
    def _trim_history(self, upto: int): raise NotImplementedError
    def _kind_revision(self, kind: str) -> int: raise NotImplementedError
    def _poll_revision(self) -> int: return self.revision()
    def _begin_read(self): pass
    def _end_read(self): pass
    def close(self): pass
