"""Leader election among a lab's agents (one control loop per host): the controllers run in one agent at
a time, the holder of the Lease `kube-system/netlab-controllers` in the lab's store, as
kube-controller-manager's leader election (client-go's leaderelection) does it:

- the Lease's spec names the holder (`holderIdentity`), when it last renewed (`renewTime`), for how long
  a renewal counts (`leaseDurationSeconds`), when it was acquired and how often it changed hands
  (`acquireTime`, `leaseTransitions`);
- the holder renews every RETRY_SECONDS; one that could not renew for RENEW_DEADLINE seconds stops
  leading (it runs no controller from then on), before anyone may take over;
- another candidate takes the Lease over once it has seen the same record unchanged for
  leaseDurationSeconds of its own clock (client-go's rule: a record's age is measured from when this
  candidate observed it, so the hosts' clocks need not agree);
- every write is conditional on the resourceVersion read (the store's optimistic concurrency): of two
  candidates that take over at once, one gets a Conflict and stays a follower.

`decide` is pure (a fake clock in the unit tests); `Elector` applies its decisions to a store.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..store.meta import fmt_time

NAMESPACE = "kube-system"
NAME = "netlab-controllers"
LEASE_SECONDS = 8          # kube-controller-manager: 15 s, renew deadline 10 s, retry 2 s (a lab's are
RENEW_DEADLINE = 5.0       # shorter: a lost agent's controllers move in seconds)
RETRY_SECONDS = 1.0


@dataclass
class Observed:
    """What a candidate last saw of the Lease: its record (holder, renewTime, transitions) and when, by
    the candidate's own clock."""
    record: tuple | None = None
    at: float = 0.0


@dataclass
class Decision:
    action: str            # "create" | "renew" | "take" | "wait"
    spec: dict | None = None   # the Lease spec to write (create, renew, take)


def record_of(lease: dict | None) -> tuple | None:
    if lease is None:
        return None
    s = lease.get("spec") or {}
    return (s.get("holderIdentity"), s.get("renewTime"), s.get("leaseTransitions"))


def decide(lease: dict | None, me: str, now: float, seen: Observed, duration: int = LEASE_SECONDS,
           last_renew: float | None = None) -> Decision:
    """What candidate `me` does now with the Lease as read (`lease`, None: there is none). `seen` is updated
    in place (the record and when it changed, by this candidate's clock `now`). `last_renew`: when this
    candidate last wrote the Lease successfully as its holder (renewals are spaced RETRY_SECONDS)."""
    rec = record_of(lease)
    if rec != seen.record:
        seen.record, seen.at = rec, now
    stamp = fmt_time(now)
    if lease is None:
        return Decision("create", {"holderIdentity": me, "leaseDurationSeconds": duration, "acquireTime": stamp,
                                   "renewTime": stamp, "leaseTransitions": 0})
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    if holder == me:
        if last_renew is not None and now - last_renew < RETRY_SECONDS:
            return Decision("wait")
        return Decision("renew", dict(spec, renewTime=stamp, leaseDurationSeconds=duration))
    held_for = float(spec.get("leaseDurationSeconds") or duration)
    if holder and now < seen.at + held_for:
        return Decision("wait")   # someone holds it and renewed (as far as this candidate saw) recently enough
    return Decision("take", {"holderIdentity": me, "leaseDurationSeconds": duration, "acquireTime": stamp,
                             "renewTime": stamp, "leaseTransitions": int(spec.get("leaseTransitions") or 0) + 1})


def leading(last_renew: float | None, now: float) -> bool:
    """Whether a holder that last renewed at `last_renew` still leads (client-go's renew deadline: it
    stops before its Lease can expire in another candidate's eyes)."""
    return last_renew is not None and now - last_renew < RENEW_DEADLINE


def lease_object(spec: dict, resource_version: str | None = None) -> dict:
    meta: dict = {"name": NAME, "namespace": NAMESPACE}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


class Elector:
    """One candidate's leader election against a store (`tick` at least every RETRY_SECONDS)."""

    def __init__(self, store, identity: str, clock=time.time, duration: int = LEASE_SECONDS):
        self.store = store
        self.identity = identity
        self.clock = clock
        self.duration = duration
        self.seen = Observed()
        self.last_renew: float | None = None   # this candidate's last successful write as the holder
        self.transitions = 0                   # times this candidate became the leader

    def tick(self) -> bool:
        """Read the Lease, renew or take it over when due; True while this candidate leads."""
        from ..store.api import StoreError
        now = self.clock()
        lease = self.store.try_get("Lease", NAMESPACE, NAME)
        d = decide(lease, self.identity, now, self.seen, self.duration, self.last_renew)
        was = leading(self.last_renew, now)
        if d.action == "wait":
            if (record_of(lease) or (None,))[0] != self.identity:
                self.last_renew = None   # another holds it now (it took over): this one leads no more
            return leading(self.last_renew, now)
        try:
            if d.action == "create":
                self.store.create(lease_object(d.spec))
            else:
                self.store.update(lease_object(d.spec, lease["metadata"]["resourceVersion"]))
        except StoreError:   # another candidate wrote first (Conflict, AlreadyExists): read again next tick
            if (record_of(lease) or (None,))[0] != self.identity:
                self.last_renew = None
            return leading(self.last_renew, now)
        self.last_renew = now
        if not was:
            self.transitions += 1
        return True

    def next_tick(self) -> float:
        """When `tick` must run again (POSIX time)."""
        return self.clock() + RETRY_SECONDS

    def release(self) -> None:
        """Give the Lease up on a clean stop (client-go's ReleaseOnCancel): the others need not wait for it
        to expire."""
        from ..store.api import StoreError
        lease = self.store.try_get("Lease", NAMESPACE, NAME)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        spec = dict(lease["spec"], holderIdentity="", leaseDurationSeconds=1, renewTime=fmt_time(self.clock()))
        try:
            self.store.update(lease_object(spec, lease["metadata"]["resourceVersion"]))
        except StoreError:
            pass
        self.last_renew = None
