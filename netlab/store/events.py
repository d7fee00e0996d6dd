"""Events: ordinary objects of kind Event (core/v1 shape), recorded with Kubernetes' aggregation.

An event names its involvedObject, a reason (ScalingReplicaSet, SuccessfulCreate, Scheduled, ...),
a message, a type (Normal or Warning) and the reporting component (``source.component``). A
repeat of the same (involved object, type, reason, message, component) does not make a new object:
the existing one gets ``count`` + 1 and a new ``lastTimestamp``, as kubectl shows "(x3 over 2m)".

Simplification: Kubernetes names an event ``<object>.<hex nanoseconds>`` and finds repeats through
the client's correlator cache; here the hex suffix is a hash of the aggregation key, so a repeat is
found with one get, also by another process. Events of cluster-scoped objects (Nodes) go to the
"default" namespace, as Kubernetes puts them.

Each process's recorder correlates its events as client-go's EventCorrelator does (facts from
client-go's tools/record, written anew), with its defaults:
- aggregation: once a component has recorded 10 events about one object that differ only in their
  message within 10 minutes, the next ones become one event "(combined from similar events): <message>"
  whose count grows (a ReplicaSet creating 10,000 pods shows 10 "Created pod" events and one combined);
- spam filter: a component may write 25 events about one object at once, then one every 5 minutes (a
  token bucket per component and object); an event held back is still counted, and the next one of the
  same kind that is written carries the count.
The state is the recorder's memory (`Correlator`, one per store object, so per process), as client-go's
is the memory of each controller and kubelet: a process started again begins afresh.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from netlab.store.api import AlreadyExists
from netlab.store.meta import fmt_time, key_of

NORMAL, WARNING = "Normal", "Warning"
AGGREGATE_MAX = 10          # similar events (differing in message only) before they are combined ...
AGGREGATE_WINDOW = 600.0    # ... within this many seconds of the last one
SPAM_BURST = 25             # events a component may write about one object at once ...
SPAM_REFILL = 300.0         # ... then one every this many seconds
COMBINED = "(combined from similar events): "
CACHE_SIZE = 4096           # objects remembered (least recently seen forgotten first), as client-go's LRU


class Correlator:
    """client-go's EventCorrelator for one recorder: which event to write, under which message, or none."""

    def __init__(self):
        # least recently seen first: OrderedDict, whose oldest entry goes in constant time (a plain dict's first
        # entry, after thousands were deleted from its front, is found by a scan over their holes: 2 us an event)
        self.similar: OrderedDict[tuple, tuple[set, float]] = OrderedDict()  # aggregate key -> (messages, when last)
        self.buckets: OrderedDict[tuple, tuple[float, float]] = OrderedDict()  # component + object -> (tokens, when)
        self.held: dict[str, int] = {}                       # event name -> occurrences not written yet

    @staticmethod
    def _bounded(cache: OrderedDict, key, value) -> None:
        cache[key] = value
        cache.move_to_end(key)   # most recent last
        if len(cache) > CACHE_SIZE:
            cache.popitem(last=False)

    def aggregate(self, obj_key: tuple, etype: str, reason: str, message: str, now: float) -> tuple[str, bool]:
        """(the message to record, whether it is the combined event's)."""
        key = (*obj_key, etype, reason)
        seen, last = self.similar.get(key, (set(), float("-inf")))
        if now - last > AGGREGATE_WINDOW:
            seen = set()
        seen.add(message)
        combined = len(seen) >= AGGREGATE_MAX
        if combined:
            seen.discard(message)   # the set never grows past the limit (client-go drops one)
        self._bounded(self.similar, key, (seen, now))
        return (COMBINED + message, True) if combined else (message, False)

    def allow(self, obj_key: tuple, now: float) -> bool:
        """The spam filter's token bucket for the component and object."""
        tokens, then = self.buckets.get(obj_key, (float(SPAM_BURST), now))
        tokens = min(float(SPAM_BURST), tokens + max(0.0, now - then) / SPAM_REFILL)
        ok = tokens >= 1.0
        self._bounded(self.buckets, obj_key, (tokens - 1.0 if ok else tokens, now))
        return ok


def correlator(store) -> Correlator:
    """The recorder's memory of the process that holds `store`."""
    c = getattr(store, "_event_correlator", None)
    if c is None:
        c = store._event_correlator = Correlator()
    return c


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


def _correlated(store, involved_obj: dict, etype: str, reason: str, message: str, component: str,
                now: float, ref: dict | None = None, ts: str | None = None) -> tuple[dict, int] | None:
    """The event to write as the recorder correlates it (see the module's docstring), and how many occurrences
    it counts; None when the spam filter holds it back (counted for the next one written). `ref` and `ts`:
    involved_ref(involved_obj) and fmt_time(now), when the caller has them already."""
    if etype not in (NORMAL, WARNING):
        raise ValueError(f"event type {etype!r}: use Normal or Warning")
    ref = ref or involved_ref(involved_obj)
    ns = ref.get("namespace") or "default"
    corr = correlator(store)
    obj_key = (component, ref.get("kind", ""), ns, ref.get("name", ""), ref.get("uid", ""), ref.get("apiVersion", ""))
    message, combined = corr.aggregate(obj_key, etype, reason, message, now)
    # the combined event is one object per (object, type, reason): its repeats count up whatever the message
    name = event_name(ref, etype, reason, COMBINED if combined else message, component)
    if not corr.allow(obj_key, now):
        corr.held[name] = corr.held.get(name, 0) + 1
        return None
    times = 1 + corr.held.pop(name, 0)
    ts = ts or fmt_time(now)
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": ref, "reason": reason, "message": message, "type": etype,
        "source": {"component": component},
        "firstTimestamp": ts, "lastTimestamp": ts, "count": times,
        "reportingComponent": component,
    }, times


def _count_repeat(store, ev: dict, times: int, copy: bool = True) -> dict | None:
    """A repeat of a stored event: its count and last time moved on (and its object's reference and message
    taken, as the recorder's patch does)."""
    md = ev["metadata"]
    cur = store.get("Event", md["namespace"], md["name"])
    cur["count"] = int(cur.get("count", 1)) + times
    cur["lastTimestamp"] = ev["lastTimestamp"]
    cur["involvedObject"] = ev["involvedObject"]
    cur["message"] = ev["message"]
    return store.update(cur, copy=copy)


def record_event(store, involved_obj: dict, etype: str, reason: str, message: str, component: str,
                 now: float | None = None, copy: bool = True) -> dict | None:
    """Create the event or bump the count of its repeat, as the recorder correlates it (see the module's
    docstring); returns the stored Event, or None when the spam filter held it back (counted) or `copy`
    is False (a caller that drops it)."""
    now = store.clock() if now is None else now
    found = _correlated(store, involved_obj, etype, reason, message, component, now)
    if found is None:
        return None
    ev, times = found
    with store.transaction():
        # most events are new: created at once (a create that finds the name taken writes nothing), and
        # a repeat, the create refused, counted on the stored one
        try:
            return store.create(ev, copy=copy)
        except AlreadyExists:
            pass
        return _count_repeat(store, ev, times, copy)


def record_events(store, events: list[tuple[dict, str, str, str, str]], now: float | None = None) -> None:
    """record_event of each (involved object, type, reason, message, component) of `events`, in order, in one
    transaction: the new ones created together (Store.create_all), the repeats counted one by one. A pass
    of 10,000 new pods records 30,000 of the kubelet's events."""
    now = store.clock() if now is None else now
    ts = fmt_time(now)
    refs: dict[int, dict] = {}   # involved object's id -> its reference (a new pod has three events)

    def ref(obj: dict) -> dict:
        r = refs.get(id(obj))
        if r is None:
            r = refs[id(obj)] = involved_ref(obj)
        return r
    found = [f for f in (_correlated(store, *e, now, ref(e[0]), ts) for e in events) if f is not None]
    with store.transaction():
        stored = store.create_all([ev for ev, _ in found])
        for (ev, times), new in zip(found, stored):
            if not new:
                _count_repeat(store, ev, times, copy=False)


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
