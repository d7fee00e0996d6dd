"""The store on a real etcd v3 cluster (the same interface and semantics as SQLite's, store/api.py).

Why the JSON gateway: no Python etcd client is locked for netlab and none can be added, and
python-etcd3 needs grpcio (not available), so netlab talks to etcd's own v3 JSON gRPC-gateway
(``/v3/kv/range``, ``/v3/kv/txn``, ``/v3/lease/grant`` ...) with http.client (netlab/etcd/client.py), and
fails over between the endpoints given.

Keys, all under the store's prefix P (e.g. ``/netlab/<lab>/``), nothing outside it:

- ``P objects/<Kind>/<namespace>/<name>``: the object's JSON (namespace empty for cluster-scoped kinds);
- ``P history/<revision, 20 digits>``: ``<type> <Kind> <JSON>``, the bounded history watch() reads
  (compaction deletes the oldest keys and moves ``P meta/compacted``);
- ``P meta/revision``: ``<revision> <writer token>``, the store's revision (its own counter: one per
  object write, as api.py wants, not etcd's revision, which moves once per etcd transaction);
- ``P meta/kind/<Kind>``: the revision of the last write of that kind;
- ``P meta/lock``: the writers' lock, held for the length of one store transaction.

A store transaction is one etcd Txn. Writers serialize on ``P meta/lock``: a put-if-absent (compare
create_revision = 0) with an etcd lease of LOCK_TTL s, so a writer killed inside a transaction blocks
the others for at most that long; the same Txn reads the revision. The transaction's writes are kept
in the client and sent at commit as one Txn whose compare says the lock is still this writer's AND
``P meta/revision`` was not written since it was read (its mod_revision): two writers never interleave,
and a commit after a lost lock fails (Conflict) instead of writing over another writer. The lock's
key is deleted in the same Txn. A commit whose answer was lost (a member died) and that is sent again
to another member is recognised by the writer token in ``meta/revision``.

Reads outside a transaction are linearizable; list_with_revision, snapshot and watch read every key
at the one etcd revision at which they read ``meta/revision`` (a consistent snapshot). ``wait()`` is woken
by a watch stream on ``meta/revision`` (a thread per store, started by the first wait) and reads it
besides with a serializable read (answered by the member itself, no consensus round) once a second, or
every `interval` while the stream is down: an idle control loop costs about what it costs on SQLite.

etcd limits: one store transaction is one Txn, so a member must accept as many operations per Txn as
the largest transaction makes (about 2 per object written): members netlab runs get
``--max-txn-ops`` and ``--max-request-bytes`` raised (netlab/etcd/members.py); an etcd of your own
needs the same (``--max-txn-ops 100000 --max-request-bytes 33554432``), or the error says so.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from netlab.errors import UsageError
from netlab.etcd.client import EtcdClient, EtcdError, EtcdUnavailable, prefix_end, unb64
from netlab.store.api import Conflict, Store, StoreError

LOCK_TTL = 10          # s: how long a writer killed inside a transaction can hold the others up
LOCK_WAIT = 60.0       # s: how long a writer waits for the lock before it gives up
LEASE_RENEW = 3.0      # s: a lease older than this is replaced before it guards a transaction
WATCH_SPAN = 5.0       # s: wait()'s watch stream is opened again this often (a closed store's ends by then)
WAIT_POLL = 1.0        # s: wait() reads the revision at least this often even while the watch streams


class EtcdEndpointsDown(UsageError):
    """etcd endpoints that do not answer (exit 2, nothing built)."""


def check_endpoints(endpoints: list[str], netns: str | None = None, timeout: float = 2.0) -> None:
    """Raise EtcdEndpointsDown (exit 2) naming every endpoint that does not answer etcd's status request."""
    if netns is not None and not os.path.exists(os.path.join("/run/netns", netns)):
        raise EtcdEndpointsDown(f"network namespace {netns} (to reach etcd from) does not exist; "
                                "give one that `ip netns list` shows")
    try:
        client = EtcdClient(endpoints, netns=netns, timeout=timeout)
    except ValueError as e:
        raise EtcdEndpointsDown(str(e)) from None
    down = []
    try:
        for i, ep in enumerate(endpoints):
            try:
                client.status(i, timeout=timeout)
            except (OSError, EtcdError, ValueError) as e:
                down.append(f"{ep} ({e.__class__.__name__}: {e})" if str(e) else ep)
    finally:
        client.close()
    if down:
        where = f" from network namespace {netns}" if netns else ""
        raise EtcdEndpointsDown(f"etcd endpoints do not answer{where}: {', '.join(down)}; start etcd there or "
                                "give endpoints that answer")


class EtcdStore(Store):
    def __init__(self, endpoints: list[str], prefix: str, netns: str | None = None, clock=None,
                 history_limit: int | None = None, timeout: float = 5.0):
        kw = {}
        if clock is not None:
            kw["clock"] = clock
        if history_limit is not None:
            kw["history_limit"] = history_limit
        super().__init__(**kw)
        if not prefix.endswith("/"):
            prefix += "/"
        try:
            self.client = EtcdClient(endpoints, netns=netns, timeout=timeout)
        except ValueError as e:
            raise StoreError(str(e)) from None
        self.endpoints, self.prefix, self.netns = list(endpoints), prefix, netns
        self._k_rev = prefix + "meta/revision"
        self._k_compacted = prefix + "meta/compacted"
        self._k_lock = prefix + "meta/lock"
        self._k_kind = prefix + "meta/kind/"
        self._k_obj = prefix + "objects/"
        self._k_hist = prefix + "history/"
        self._lease = (0, 0.0)          # (lease id, when granted: monotonic)
        self._tx = None                  # the open transaction's state
        self._rd = None                  # the open consistent read's state
        # wait(): a watch stream on meta/revision (a thread, started by the first wait) wakes waiters
        self._wcond = threading.Condition()
        self._wseen = 0                  # the highest revision the watch (or a poll) saw
        self._wlive = False              # the watch stream is up
        self._wpolled = 0.0              # when wait() last read the revision itself (monotonic)
        self._wthread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ keys
    def _okey(self, k) -> str:
        return f"{self._k_obj}{k[0]}/{k[1]}/{k[2]}"

    def _hkey(self, rev: int) -> str:
        return f"{self._k_hist}{rev:020d}"

    def _split(self, key: str) -> tuple[str, str, str]:
        kind, ns, name = key[len(self._k_obj):].split("/", 2)
        return kind, ns, name

    def _call(self, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except EtcdError as e:
            raise StoreError(f"store in etcd ({self.prefix} at {', '.join(self.endpoints)}): {e}") from e

    # ------------------------------------------------------------------ transactions
    def _lease_id(self) -> int:
        lid, since = self._lease
        if not lid or time.monotonic() - since > LEASE_RENEW:
            lid = self._call(self.client.grant, LOCK_TTL)
            self._lease = (lid, time.monotonic())
        return lid

    def _begin(self):
        token = f"{socket.gethostname()}:pid{os.getpid()}:{uuid.uuid4().hex[:12]}"   # who holds it, in errors
        c = self.client
        deadline = time.monotonic() + LOCK_WAIT
        pause = 0.002
        while True:
            lease = self._lease_id()
            out = self._call(c.txn, [c.cmp(self._k_lock, "CREATE", 0)],
                             [c.op_put(self._k_lock, token, lease), c.op_range(self._k_rev),
                              c.op_range(self._k_compacted)],
                             [c.op_range(self._k_lock), c.op_range(self._k_rev), c.op_range(self._k_compacted)])
            if out.get("succeeded"):
                break
            kvs = out["responses"][0].get("response_range", {}).get("kvs") or []
            if kvs and unb64(kvs[0].get("value")) == token:
                out["responses"] = out["responses"][1:]   # ours already: an answer lost, the request sent again
                out["responses"].insert(0, {})
                break
            if time.monotonic() > deadline:
                kvs = (out.get("responses") or [{}])[0].get("response_range", {}).get("kvs") or []
                holder = unb64(kvs[0].get("value")) if kvs else "?"
                raise StoreError(f"store in etcd ({self.prefix}): another writer ({holder}) held the lock for "
                                 f"{LOCK_WAIT:.0f} s; is a netlab process stuck? (a dead writer's lock ends "
                                 f"{LOCK_TTL} s after it died)")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        resp = out["responses"]
        rkvs = resp[1].get("response_range", {}).get("kvs") or []
        ckvs = resp[2].get("response_range", {}).get("kvs") or []
        rev = int(unb64(rkvs[0].get("value")).split()[0]) if rkvs else 0
        self._tx = {
            "token": token, "lease": lease, "renewed": time.monotonic(), "rev": rev,
            "rev_mod": int(rkvs[0].get("mod_revision", 0)) if rkvs else 0,
            "compacted": int(unb64(ckvs[0].get("value"))) if ckvs else 0, "compact_to": None,
            "objs": {}, "hist": [], "kinds": {}}

    def _touch(self):
        """A long transaction keeps its lock: the lock's lease is renewed every LEASE_RENEW s."""
        tx = self._tx
        if tx is None or time.monotonic() - tx["renewed"] < LEASE_RENEW:
            return
        ttl = self._call(self.client.keepalive, tx["lease"])
        tx["renewed"] = time.monotonic()
        if ttl <= 0:
            raise Conflict(f"store in etcd ({self.prefix}): this transaction lost its lock (its lease ended); "
                           "nothing of it was written, try again")

    def _release(self, token):
        c = self.client
        try:
            c.txn([c.cmp(self._k_lock, "VALUE", token)], [c.op_delete(self._k_lock)])
        except EtcdError:
            pass  # the lease ends it

    def _commit(self):
        tx, self._tx = self._tx, None
        c = self.client
        if not tx["objs"] and not tx["hist"] and tx["compact_to"] is None:
            self._release(tx["token"])
            return
        self._tx = tx
        try:
            self._touch()
        finally:
            self._tx = None
        new_rev = tx["hist"][-1][0] if tx["hist"] else tx["rev"]
        ops = []
        for key, raw in tx["objs"].items():
            ops.append(c.op_put(key, raw) if raw is not None else c.op_delete(key))
        for rev, etype, kind, raw in tx["hist"]:
            ops.append(c.op_put(self._hkey(rev), f"{etype} {kind} {raw}"))
        for kind, rev in tx["kinds"].items():
            ops.append(c.op_put(self._k_kind + kind, str(rev)))
        if tx["compact_to"] is not None:
            ops.append(c.op_delete(self._hkey(0), self._hkey(tx["compact_to"] + 1)))
            ops.append(c.op_put(self._k_compacted, str(tx["compact_to"])))
        stamp = f"{new_rev} {tx['token']}"
        ops.append(c.op_put(self._k_rev, stamp))
        ops.append(c.op_delete(self._k_lock))
        compare = [c.cmp(self._k_lock, "VALUE", tx["token"]), c.cmp(self._k_rev, "MOD", tx["rev_mod"])]
        try:
            out = c.txn(compare, ops, [c.op_range(self._k_rev)])
        except EtcdUnavailable as e:
            raise StoreError(f"store in etcd ({self.prefix}): the commit of revision {new_rev} got no answer "
                             f"({e}); it may or may not have happened") from e
        except EtcdError as e:
            self._release(tx["token"])
            hint = ""
            if "too many operations" in str(e) or "too large" in str(e):
                hint = ("; this transaction is too big for the etcd server: start it with --max-txn-ops 100000 "
                        "--max-request-bytes 33554432")
            raise StoreError(f"store in etcd ({self.prefix}): commit failed: {e}{hint}") from e
        if out.get("succeeded"):
            return
        kvs = (out.get("responses") or [{}])[0].get("response_range", {}).get("kvs") or []
        if kvs and unb64(kvs[0].get("value")) == stamp:
            return  # the first try went through, its answer was lost (the client sent it again)
        self._release(tx["token"])
        raise Conflict(f"store in etcd ({self.prefix}): another writer wrote while this transaction held the "
                       f"lock (it expired after {LOCK_TTL} s?); nothing of this transaction was written, try again")

    def _rollback(self):
        tx, self._tx = self._tx, None
        if tx is not None:
            self._release(tx["token"])

    def _begin_read(self):
        kvs, header = self._call(self.client.range, self._k_rev)
        rev = int(unb64(kvs[0].get("value")).split()[0]) if kvs else 0
        self._rd = {"at": header, "rev": rev, "stash": {}}

    def _end_read(self):
        self._rd = None

    # ------------------------------------------------------------------ reads
    def _at(self) -> int | None:
        return self._rd["at"] if self._rd is not None else None

    def _load(self, k):
        self._touch()
        key = self._okey(k)
        if self._tx is not None and key in self._tx["objs"]:
            return self._tx["objs"][key]
        if self._rd is not None and key in self._rd["stash"]:
            return self._rd["stash"][key]
        kvs, _ = self._call(self.client.range, key, revision=self._at())
        return unb64(kvs[0].get("value")) if kvs else None

    def _range_objects(self, kind, namespace):
        base = f"{self._k_obj}{kind}/" + (f"{namespace}/" if namespace is not None else "")
        kvs, _ = self._call(self.client.range, base, prefix=True, revision=self._at())
        got = {}
        for kv in kvs:
            key, raw, mod = EtcdClient.kv(kv)
            got[key] = (mod, raw)
        if self._tx is not None:
            for key, raw in self._tx["objs"].items():
                if key.startswith(base):
                    if raw is None:
                        got.pop(key, None)
                    else:
                        got[key] = (-1, raw)
        return sorted(((self._split(key)[1:], key, mod, raw) for key, (mod, raw) in got.items()))

    def _scan(self, kind, namespace):
        return [raw for _, _, _, raw in self._range_objects(kind, namespace)]

    def _scan_revs(self, kind):
        out = []
        for nsname, key, mod, raw in self._range_objects(kind, None):
            if self._rd is not None:
                self._rd["stash"][key] = raw
            out.append((nsname, mod))
        return out

    def _put(self, k, raw, rev, etype):
        self._touch()
        self._tx["objs"][self._okey(k)] = raw
        self._tx["hist"].append((rev, etype, k[0], raw))
        self._tx["kinds"][k[0]] = rev

    def _remove(self, k, raw, rev):
        self._tx["objs"][self._okey(k)] = None
        self._tx["hist"].append((rev, "DELETED", k[0], raw))
        self._tx["kinds"][k[0]] = rev

    def _read_revision(self):
        if self._tx is not None:
            return self._tx["rev"]
        if self._rd is not None:
            return self._rd["rev"]
        value = self._call(self.client.get, self._k_rev)
        return int(value.split()[0]) if value else 0

    def _read_compacted(self):
        if self._tx is not None:
            return self._tx["compact_to"] if self._tx["compact_to"] is not None else self._tx["compacted"]
        value = self._call(self.client.get, self._k_compacted, revision=self._at())
        return int(value) if value else 0

    def _history(self, from_rev, kind):
        kvs, _ = self._call(self.client.range, self._hkey(from_rev + 1), range_end=prefix_end(self._k_hist),
                            revision=self._at())
        rows = []
        for kv in kvs:
            key, value, _ = EtcdClient.kv(kv)
            etype, knd, raw = value.split(" ", 2)
            if kind is None or knd == kind:
                rows.append((int(key[len(self._k_hist):]), etype, raw))
        if self._tx is not None:
            rows += [(r, t, raw) for r, t, knd, raw in self._tx["hist"] if r > from_rev and kind in (None, knd)]
        return rows

    def _kind_revision(self, kind):
        return self.kind_revisions([kind])[0]

    def kind_revisions(self, kinds) -> tuple[int, ...]:
        with self._lock:
            kvs, _ = self._call(self.client.range, self._k_kind, prefix=True, revision=self._at())
            revs = {EtcdClient.kv(kv)[0][len(self._k_kind):]: int(EtcdClient.kv(kv)[1]) for kv in kvs}
            if self._tx is not None:
                revs.update(self._tx["kinds"])
            return tuple(revs.get(k, 0) for k in kinds)

    def _trim_history(self, upto):
        tx = self._tx
        if upto <= 0 or upto <= (tx["compact_to"] if tx["compact_to"] is not None else tx["compacted"]):
            return
        tx["compact_to"] = upto

    def _poll_revision(self):
        with self._lock:
            if self._tx is not None:
                return self._rev
            value = self._call(self.client.get, self._k_rev, serializable=True)
            return int(value.split()[0]) if value else 0

    # ------------------------------------------------------------------ waiting
    def _note(self, rev: int) -> None:
        with self._wcond:
            if rev > self._wseen:
                self._wseen = rev
                self._wcond.notify_all()

    def _watch_loop(self) -> None:
        """One watch stream on meta/revision at a time (its own connections), renewed every WATCH_SPAN s
        and after any failure (it fails over like every request); each event wakes the waiters."""
        client = EtcdClient(self.endpoints, netns=self.netns, timeout=self.client.timeout, retry_for=1.0)
        next_rev = 0
        try:
            while not self._closed:
                try:
                    if not next_rev:
                        kvs, header = client.range(self._k_rev, serializable=True)
                        self._note(int(unb64(kvs[0].get("value")).split()[0]) if kvs else 0)
                        next_rev = header + 1
                    done = [0]

                    def seen(events):
                        nonlocal next_rev
                        self._wlive = True
                        for e in events[done[0]:]:
                            if e["type"] == "PUT" and e["value"]:
                                self._note(int(e["value"].split()[0]))
                            next_rev = e["mod_revision"] + 1
                        done[0] = len(events)
                        return self._closed

                    client.watch(self._k_rev, next_rev, timeout=WATCH_SPAN, until=seen)
                except (EtcdError, OSError, ValueError):
                    self._wlive, next_rev = False, 0
                    time.sleep(0.5)
        finally:
            self._wlive = False
            client.close()

    def wait(self, revision: int, timeout: float, interval: float = 0.02) -> int:
        """Block until the store's revision exceeds `revision` or `timeout` passes; returns it. Woken by a
        watch on meta/revision (no polling while it streams); a serializable read of the revision at least
        every WAIT_POLL s besides, and every `interval` while the watch is down."""
        if self._tx is not None:
            return super().wait(revision, timeout, interval)
        if self._wthread is None or not self._wthread.is_alive():
            self._wthread = threading.Thread(target=self._watch_loop, name="netlab-etcd-watch", daemon=True)
            self._wthread.start()
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if not self._wlive or now - self._wpolled >= WAIT_POLL:
                self._wpolled = now
                self._note(self._poll_revision())
            with self._wcond:
                if self._wseen > revision or now >= deadline:
                    return self._wseen
                step = min(deadline - now, WAIT_POLL if self._wlive else interval)
                self._wcond.wait_for(lambda: self._wseen > revision, timeout=max(0.0, step))
                if self._wseen > revision:
                    return self._wseen

    def close(self):
        self._closed = True
        with self._lock:
            self.client.close()


def drop_store(conf_path: str) -> bool:
    """Delete the keys of the store a lab's store.json describes (its prefix), as `netlab down` removes a
    lab: etcd outlives the lab. False when etcd did not answer (its members were the lab's own and are
    gone, or it is down) or the file is not readable: nothing more to do then."""
    import json
    try:
        with open(conf_path) as f:
            conf = json.load(f)
    except (OSError, ValueError):
        return False
    return drop_keys(conf)


def drop_keys(conf: dict) -> bool:
    """drop_store of a store.json's contents (read before the file went: live/teardown.py)."""
    try:
        client = EtcdClient(list(conf["endpoints"]), netns=conf.get("netns"), timeout=2.0, retry_for=2.0)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        client.delete(conf["prefix"], prefix=True)
        return True
    except (EtcdError, OSError, ValueError):
        return False
    finally:
        client.close()


def open_from(conf: dict) -> EtcdStore:
    """The store a lab's store.json describes: {"backend": "etcd", "endpoints": [...], "prefix": ..., "netns": ...}."""
    return EtcdStore(list(conf["endpoints"]), conf["prefix"], netns=conf.get("netns"))

