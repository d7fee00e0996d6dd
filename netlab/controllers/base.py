"""What every controller shares: the snapshot it decides on, the actions it returns, and the
Kubernetes helpers about pods (ready, available, active) and int-or-percent values.

A controller is a pure function ``decide(snapshot, now) -> [Action]``: it reads a consistent
snapshot of the store, never touches the store or the kernel, and returns the writes to make.
The runner (netlab/controllers/runner.py) applies one controller sync's actions in one store
transaction."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

import orjson

from netlab.store.meta import (controller_ref, get_condition, is_deleting, key_of, parse_time,
                               matcher)

# Kubernetes' alphabet for generated names (k8s.io/apimachinery/pkg/util/rand): no vowels, no
# look-alike characters.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class Action:
    """One write: verb is create, update, update_status, bind (a pod's spec.nodeName and status), delete or event."""

    verb: str
    obj: dict
    grace_seconds: float | None = None  # delete
    event: dict | None = field(default=None)  # event: type, reason, message, component

    def describe(self) -> str:
        kind, ns, name = key_of(self.obj)
        if self.verb == "event":
            return f"event {self.event['reason']} on {kind} {ns}/{name}: {self.event['message']}"
        return f"{self.verb} {kind} {ns + '/' if ns else ''}{name}"


def create(obj) -> Action:
    return Action("create", obj)


def update(obj) -> Action:
    return Action("update", obj)


def update_status(obj) -> Action:
    return Action("update_status", obj)


def bind(obj) -> Action:
    """The scheduler's binding of a pod: `obj` names its node (spec.nodeName) and carries its new status."""
    return Action("bind", obj)


def delete(obj, grace_seconds: float | None = None) -> Action:
    return Action("delete", obj, grace_seconds=grace_seconds)


def event(obj, etype: str, reason: str, message: str, component: str) -> Action:
    return Action("event", obj, event={"type": etype, "reason": reason, "message": message, "component": component})


_NO_CONTROLLER = object()   # owned_by's index: the objects without a controller reference


class Snapshot:
    """A read-only view of the store at one revision, indexed by kind and namespace."""

    def __init__(self, objects=(), revision: int = 0):
        self.revision = revision
        self._by_kind: dict[str, dict[tuple[str, str], dict]] = {}
        self._lazy: dict[str, object] = {}   # kind -> the store it is read from when first asked for
        self._owners: dict[str, dict] = {}   # kind -> controller UID -> [(namespace, object)]: owned_by's index
        for o in objects:
            kind, ns, name = key_of(o)
            self._by_kind.setdefault(kind, {})[(ns, name)] = o
        # each table in (namespace, name) order, as the store's tables are (list() relies on it)
        self._by_kind = {kind: dict(sorted(table.items())) for kind, table in self._by_kind.items()}

    @classmethod
    def from_store(cls, store, kinds, lazy=()) -> "Snapshot":
        """The store's objects of `kinds`, shared with its parse cache: read them, never change
        them in place (clone() first, or build new dicts as the controllers do). The kinds in `lazy`
        are read when a decision first asks for them (then, at the store's revision of that moment):
        a controller that looks at them only sometimes (the LoadBalancer IPAM at its own Events, only
        where MetalLB is installed) does not read them otherwise (a lab of 10,000 pods has 50,000)."""
        tables, rev = store.snapshot_index([k for k in kinds if k not in lazy])
        snap = cls((), rev)
        snap._by_kind = tables   # its tables are shared with the store's cache: never changed here
        snap._lazy = {k: store for k in lazy if k in kinds}
        return snap

    def _table(self, kind: str) -> dict[tuple[str, str], dict]:
        table = self._by_kind.get(kind)
        if table is None:
            store = self._lazy.pop(kind, None)
            if store is None:
                return {}
            table = self._by_kind[kind] = store.snapshot_index([kind])[0][kind]
        return table

    def list(self, kind: str, namespace: str | None = None, selector=None) -> list[dict]:
        table = self._table(kind)   # (in order: not sorted again for each call, 10,000 pods a dozen times a round)
        out = list(table.values()) if namespace is None else [o for k, o in table.items() if k[0] == namespace]
        if selector is not None:
            selects = matcher(selector)
            out = [o for o in out if selects(o["metadata"].get("labels"))]
        return out

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        ns = key_of({"kind": kind, "metadata": {"namespace": namespace, "name": name}})[1]
        return self._table(kind).get((ns, name))

    def owned_by(self, kind: str, owner: dict) -> list[dict]:
        """Objects of `kind` in the owner's namespace whose controller reference is `owner` (in the table's order;
        the objects of a kind are indexed by their controller's UID once per snapshot: the ReplicaSet
        controller asks for each ReplicaSet's pods, 10,000 of them, every round)."""
        ns = key_of(owner)[1] or None
        return [o for ons, o in self._owner_index(kind).get(owner["metadata"].get("uid"), ())
                if ns is None or ons == ns]

    def unowned(self, kind: str) -> list[dict]:
        """Objects of `kind` without a controller reference (in the table's order): the orphans a controller may
        adopt, from owned_by's index (not another look at every object's references)."""
        return [o for _, o in self._owner_index(kind).get(_NO_CONTROLLER, ())]

    def names(self, kind: str) -> set[str]:
        """The names of the objects of `kind`, of every namespace."""
        return {name for _, name in self._table(kind)}

    def _owner_index(self, kind: str) -> dict:
        """controller UID (or _NO_CONTROLLER) -> [(namespace, object)], in the table's order: once per snapshot."""
        index = self._owners.get(kind)
        if index is None:
            index = self._owners[kind] = {}
            for k, o in self._table(kind).items():
                ref = controller_ref(o)
                index.setdefault(_NO_CONTROLLER if ref is None else ref.get("uid"), []).append((k[0], o))
        return index

    def uids(self) -> set[str]:
        for kind in list(self._lazy):
            self._table(kind)
        return {o["metadata"].get("uid") for t in self._by_kind.values() for o in t.values()}


def clone(obj: dict) -> dict:
    return copy.deepcopy(obj)


def json_clone(obj):
    """clone() of JSON data (a stored object's part), through orjson: a tenth of copy.deepcopy's time, for 10,000
    pods' specs; deepcopy for what orjson does not write (an integer beyond 64 bits)."""
    try:
        return orjson.loads(orjson.dumps(obj))
    except orjson.JSONEncodeError:
        return clone(obj)


# ---------------------------------------------------------------- int or percent


def scaled_value(value, total: int, round_up: bool) -> int:
    """Kubernetes' GetScaledValueFromIntOrPercent: an int as is, "25%" of total rounded up or down."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value {value!r}: use a number or a percentage like 25%")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = int(value[:-1])
        except ValueError:
            raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}") from None
        prod = pct * total
        return -(-prod // 100) if round_up else prod // 100
    if isinstance(value, str):
        raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}")
    raise ValueError(f"invalid value {value!r}: use a number or a percentage like 25%")


# ---------------------------------------------------------------- pods

PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def is_pod_active(pod: dict) -> bool:
    """Kubernetes' IsPodActive: not Succeeded, not Failed, not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_deleting(pod)


def is_pod_ready(pod: dict) -> bool:
    c = get_condition(pod, "Ready")
    return bool(c and c.get("status") == "True")


def ready_since(pod: dict) -> float | None:
    c = get_condition(pod, "Ready")
    if c and c.get("status") == "True":
        return parse_time(c.get("lastTransitionTime"))
    return None


def is_pod_available(pod: dict, min_ready_seconds: float, now: float) -> bool:
    """Ready for more than minReadySeconds (Kubernetes: lastTransitionTime + minReady before now)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = ready_since(pod)
    return since is not None and since + min_ready_seconds < now


def generated_name(prefix: str, seed: str, taken) -> str:
    """prefix + 5 characters of Kubernetes' alphabet, derived from `seed` (pure and reproducible,
    where the API server draws them at random), avoiding names in `taken`."""
    attempt = 0
    while True:
        h = int.from_bytes(hashlib.sha256(f"{seed}/{attempt}".encode()).digest()[:8], "big")
        suffix = ""
        for _ in range(5):
            h, r = divmod(h, len(NAME_ALPHABET))
            suffix += NAME_ALPHABET[r]
        name = prefix + suffix
        if name not in taken:
            return name
        attempt += 1

