"""Events: ordinary objects of kind Event (core/v1 shape), recorded with Kubernetes' aggregation.

An event names its involvedObject, a reason (ScalingReplicaSet, SuccessfulCreate, Scheduled, ...),
a message, a type (Normal or Warning) and the reporting component (``source.component``). A
repeat of the same (involved object, type, reason, message, component) does not make a new object:
the existing one gets ``count`` + 1 and a new ``lastTimestamp``, as kubectl shows "(x3 over 2m)".

Simplification: Kubernetes names an event ``<object>.<hex nanoseconds>`` and finds repeats through
the client's correlator cache; here the hex suffix is a hash of the aggregation key, so a repeat is
found with one get, also by another process. Events of cluster-scoped objects (Nodes) go to the
"default" namespace, as Kubernetes puts them.
"""

from __future__ import annotations

import hashlib

from netlab.store.meta import fmt_time, key_of

NORMAL, WARNING = "Normal", "Warning"


def involved_ref(obj: dict) -> dict:
    md = obj.get("metadata") or {}
    kind, ns, name = key_of(obj)
    ref = {"apiVersion": obj.get("apiVersion", "v1"), "kind": kind, "name": name, "uid": md.get("uid", "")}
    if ns:
        ref["namespace"] = ns
    if md.get("resourceVersion"):
        ref["resourceVersion"] = md["resourceVersion"]
    return ref


def event_name(involved: dict, etype: str, reason: str, message: str, component: str) -> str:
    key = "\x00".join([involved.get("kind", ""), involved.get("namespace", ""), involved.get("name", ""),
                       involved.get("uid", ""), etype, reason, message, component])
    return f"{involved.get('name', '')}.{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def record_event(store, involved_obj: dict, etype: str, reason: str, message: str, component: str,
                 now: float | None = None) -> dict:
    """Create the event or bump the count of its repeat; returns the stored Event."""
    if etype not in (NORMAL, WARNING):
        raise ValueError(f"event type {etype!r}: use Normal or Warning")
    now = store.clock() if now is None else now
    ref = involved_ref(involved_obj)
    ns = ref.get("namespace") or "default"
    name = event_name(ref, etype, reason, message, component)
    ts = fmt_time(now)
    with store.transaction():
        cur = store.try_get("Event", ns, name)
        if cur is not None:
            cur["count"] = int(cur.get("count", 1)) + 1
            cur["lastTimestamp"] = ts
            cur["involvedObject"] = ref
            return store.update(cur)
        return store.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref, "reason": reason, "message": message, "type": etype,
            "source": {"component": component},
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
            "reportingComponent": component,
        })


def events_for(store_or_list, obj: dict | None = None) -> list[dict]:
    """Events (of one object when given) in time order, as ``kubectl get events`` sorts them."""
    evs = store_or_list if isinstance(store_or_list, list) else store_or_list.list("Event")
    if obj is not None:
        uid = (obj.get("metadata") or {}).get("uid")
        evs = [e for e in evs if e["involvedObject"].get("uid") == uid]
    return sorted(evs, key=lambda e: (e.get("lastTimestamp", ""), int(e["metadata"].get("resourceVersion", 0))))


def prune_events(store, now: float, ttl: float = 3600) -> int:
    """Delete events whose lastTimestamp is older than `ttl` (Kubernetes' --event-ttl, 1 h by
    default); returns how many went."""
    from netlab.store.meta import parse_time
    gone = 0
    with store.transaction():
        for e in store.list("Event"):
            if (parse_time(e.get("lastTimestamp")) or now) + ttl < now:
                store.delete("Event", e["metadata"]["namespace"], e["metadata"]["name"])
                gone += 1
    return gone
