"""Apply controllers' decisions to a store, and run them until nothing changes.

``apply_actions`` writes one controller sync's actions in ONE store transaction (a conflict with
a concurrent writer rolls all of it back; the controller decides again on the next round, as a
Kubernetes controller requeues). Pods created through it pass the admission functions (e.g.
DefaultTolerationSeconds). ``Runner`` runs the controllers in order (Deployment, ReplicaSet,
StatefulSet, DaemonSet, CronJob, Job, scheduler, EndpointSlice, MetalLB's IPAM, node lifecycle, taint
eviction, garbage collector), each on a fresh snapshot (a controller marked ``requeue`` syncs again at once
while it writes), and ``run_until_quiescent`` repeats rounds until one writes nothing: the shape of the
lab's control loop, and with a fake clock, of unit tests that drive a whole rolling update.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from netlab.controllers import (cronjob, daemonset, deployment, endpointslice, gc, job, lbipam, replicaset, scheduler,
                                statefulset)
from netlab.controllers.base import Action, Snapshot
from netlab.controllers.nodelifecycle import K8S_GRACE, K8S_TOLERATION_SECONDS, NodeLifecycle, default_tolerations
from netlab.store.api import AlreadyExists, Conflict, NotFoundError
from netlab.store.events import record_events
from netlab.store.meta import key_of


@dataclass
class Controller:
    name: str
    kinds: tuple
    decide: Callable[[Snapshot, float], list]
    # when decide() may next act without any write (a timer), given a snapshot and now
    deadline: Callable[[Snapshot, float], float | None] | None = None
    # decide() depends on `now` only through `deadline` (or not at all): it may be skipped while
    # its kinds are unchanged
    time_free: bool = True
    # kinds (of `kinds`) decide() reads only sometimes: read when it first asks (Snapshot.from_store)
    lazy: tuple = ()
    # a sync that wrote is followed at once by another of the same controller, before the next controller's
    # (up to REQUEUE_MAX in a round): the ReplicaSet controller, which creates at most its burst (500) pods a
    # sync and is requeued by Kubernetes as soon as it has seen them, reaches 10,000 replicas in one round
    # rather than in 20 rounds of every controller reading every pod
    requeue: bool = False


REQUEUE_MAX = 100


def default_controllers(node_grace: float = K8S_GRACE) -> list[Controller]:
    nodes = NodeLifecycle(grace=node_grace)
    return [
        Controller("deployment", deployment.KINDS, deployment.decide, lambda s, now: deployment.next_deadline(s)),
        Controller("replicaset", replicaset.KINDS, replicaset.decide, replicaset.next_deadline, requeue=True),
        Controller("statefulset", statefulset.KINDS, statefulset.decide, statefulset.next_deadline),
        Controller("daemonset", daemonset.KINDS, daemonset.decide, daemonset.next_deadline),
        Controller("cronjob", cronjob.KINDS, cronjob.decide, cronjob.next_deadline),
        Controller("job", job.KINDS, job.decide, job.next_deadline),
        Controller("scheduler", scheduler.KINDS, scheduler.decide),
        Controller("endpointslice", endpointslice.KINDS, endpointslice.decide),
        Controller("lbipam", lbipam.KINDS, lbipam.decide, lazy=lbipam.LAZY),   # MetalLB's controller: LoadBalancer addresses
        Controller("nodelifecycle", ("Node", "Lease"), nodes.decide_health, lambda s, now: nodes.health_deadline(s)),
        Controller("tainteviction", ("Node", "Pod"), nodes.decide_eviction, lambda s, now: nodes.eviction_deadline(s)),
        Controller("garbagecollector", gc.KINDS, gc.decide),
    ]


def apply_actions(store, actions: list[Action], now: float, admission=()) -> None:
    """Write `actions` in one transaction. Updates of an object this transaction already wrote
    go on top of that write (a sync's own writes do not conflict with each other). Consecutive creates
    (named ones), bindings or status writes of objects not written before go to the store together
    (Store.create_all, bind_all, update_status_all: a bring-up creates, binds and starts 10,000 pods), and the
    events are recorded last, together (events.record_events), in the order the actions give them."""
    batched = None   # the verb of the objects in `batch`
    with store.transaction():
        written: set = set()
        events = []
        batch: dict = {}    # key -> object, all of the verb `batched`

        def flush() -> None:
            if not batch:
                return
            objs = list(batch.values())
            if batched == "update_status":
                store.update_status_all(objs)
            elif batched == "bind":
                store.bind_all(objs)
            else:
                for (kind, ns, name), stored in zip(batch, store.create_all(objs)):
                    if not stored:   # (as create raises it: the whole transaction is rolled back)
                        raise AlreadyExists(f'{kind} "{name}" already exists' +
                                            (f' in namespace "{ns}"' if ns else ""))
            written.update(batch)
            batch.clear()

        for a in actions:
            k = key_of(a.obj)
            obj = a.obj
            if a.verb == "event":
                e = a.event
                events.append((obj, e["type"], e["reason"], e["message"], e["component"]))
                continue
            if a.verb == "create" and obj.get("kind") == "Pod":
                for admit in admission:
                    obj = admit(obj)
            if a.verb in BATCHED and k not in written and k not in batch and \
                    (a.verb != "create" or (obj.get("metadata") or {}).get("name")):
                if batched != a.verb:
                    flush()
                    batched = a.verb
                batch[k] = obj
                continue
            flush()
            if a.verb == "create":
                store.create(obj, copy=False)
            elif a.verb in ("update", "update_status"):
                if k in written:
                    cur = store.get(*k)
                    obj = dict(obj, metadata=dict(obj["metadata"], resourceVersion=cur["metadata"]["resourceVersion"]))
                (store.update if a.verb == "update" else store.update_status)(obj, copy=False)
            elif a.verb == "bind":
                store.bind(obj, copy=False)
            elif a.verb == "delete":
                grace = a.grace_seconds
                if k[0] == "Pod" and not (obj.get("spec") or {}).get("nodeName"):
                    grace = 0  # the API server deletes a pod no node runs at once (no kubelet to confirm)
                try:
                    store.delete(*k, grace_seconds=grace, uid=obj["metadata"].get("uid"))
                except NotFoundError:
                    pass
            else:
                raise ValueError(f"unknown action verb {a.verb!r}")
            written.add(k)
        flush()
        if events:
            record_events(store, events, now)


# the verbs apply_actions writes together when consecutive (each a Store method taking a list)
BATCHED = frozenset({"create", "bind", "update_status"})


class Runner:
    def __init__(self, store, controllers: list[Controller] | None = None, clock=None,
                 default_toleration_seconds: int = K8S_TOLERATION_SECONDS, admission=None, on_error=None):
        """`on_error(controller_name, exception)`: when given, a controller whose decision raises
        is reported there and skipped for this round (the lab's loop logs and goes on, as a
        Kubernetes controller requeues); without it the exception propagates (tests)."""
        self.store = store
        self.controllers = controllers if controllers is not None else default_controllers()
        self.clock = clock or store.clock
        self.admission = admission if admission is not None else [
            lambda p: default_tolerations(p, default_toleration_seconds)]
        self.on_error = on_error
        self.conflicts = 0
        self.skipped = 0
        self._quiet: dict[str, tuple] = {}  # controller -> (kind revisions, next deadline) when it had nothing to do

    def sync(self, controller: Controller, now: float) -> int:
        # A controller is a pure function of its kinds and the time: when none of its kinds changed
        # since it last decided "nothing to do" and none of its timers has come, skip it.
        fingerprint = self.store.kind_revisions(controller.kinds)
        quiet = self._quiet.get(controller.name)
        if quiet is not None and quiet[0] == fingerprint and (quiet[1] is None or now < quiet[1]):
            self.skipped += 1
            return 0
        snap = Snapshot.from_store(self.store, controller.kinds, controller.lazy)
        try:
            actions = controller.decide(snap, now)
        except Exception as e:  # noqa: BLE001 - reported, the loop goes on
            if self.on_error is None:
                raise
            self.on_error(controller.name, e)
            return 0
        if not actions:
            if controller.deadline is None and controller.time_free:
                self._quiet[controller.name] = (fingerprint, None)
            elif controller.deadline is not None:
                self._quiet[controller.name] = (fingerprint, controller.deadline(snap, now))
            return 0
        self._quiet.pop(controller.name, None)
        try:
            apply_actions(self.store, actions, now, self.admission)
        except (Conflict, AlreadyExists, NotFoundError):
            # Someone wrote in between (another process, a CLI verb): nothing of this sync was
            # written; the controller decides again on the next round.
            self.conflicts += 1
        return len(actions)

    def round(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        total = 0
        for c in self.controllers:
            n = self.sync(c, now)
            total += n
            for _ in range(REQUEUE_MAX if c.requeue else 0):
                if not n:
                    break
                n = self.sync(c, now)
                total += n
        return total

    def next_wakeup(self, now: float | None = None) -> float | None:
        """The earliest controller deadline (a timer no write will announce), if any."""
        now = self.clock() if now is None else now
        times = []
        for c in self.controllers:
            if c.deadline is None:
                continue
            quiet = self._quiet.get(c.name)
            if quiet is not None and quiet[0] == self.store.kind_revisions(c.kinds):
                t = quiet[1]  # computed when it last had nothing to do, on the same inputs
            else:
                t = c.deadline(Snapshot.from_store(self.store, c.kinds), now)
            if t is not None:
                times.append(t)
        return min(times) if times else None

    def serve(self, stop, max_wait: float = 5.0, settle: float = 0.001) -> None:
        """Run until `stop` (a threading.Event) is set: settle the controllers, then sleep until
        the store's revision moves (any writer, any process) or the next deadline comes. Idle, it
        costs one cheap revision poll per store.wait interval."""
        while not stop.is_set():
            self.run_until_quiescent()
            rev = self.store.revision()
            now = self.clock()
            wake = self.next_wakeup(now)
            timeout = max_wait if wake is None else max(settle, min(max_wait, wake - now + settle))
            end = time.monotonic() + timeout
            while not stop.is_set():  # wait in slices so that `stop` is seen within 0.2 s
                left = end - time.monotonic()
                if left <= 0 or self.store.wait(rev, min(0.2, left)) > rev:
                    break

    def run_until_quiescent(self, now: float | None = None, max_rounds: int = 200, between=None) -> int:
        """Rounds until one writes nothing; returns the number of rounds that wrote. `between()`, when
        given, is called after each round that wrote (the lab's kubelets renew their nodes' Leases there:
        settling thousands of pods takes longer than a node's grace period)."""
        for i in range(max_rounds):
            if self.round(now) == 0:
                return i
            if between is not None:
                between()
        raise RuntimeError(f"controllers did not settle within {max_rounds} rounds")
