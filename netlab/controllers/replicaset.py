"""The ReplicaSet controller as a pure decision, following Kubernetes' pkg/controller/replicaset
(replica_set.go) and pkg/controller/controller_utils.go (read for facts, written anew).

Per ReplicaSet: count its active pods (controller reference = this ReplicaSet, not Succeeded,
Failed or being deleted); create the missing ones from the template (name = ReplicaSet name + "-"
+ 5 characters of Kubernetes' alphabet, labels and annotations from the template, a controller
ownerReference) or delete the surplus, the least valuable first (controller_utils' ranking:
unassigned < assigned; Pending < Unknown < Running; not ready < ready; a lower
controller.kubernetes.io/pod-deletion-cost first; more active pods of the same Deployment (all its
ReplicaSets) on its node first; ready for less time first; more restarts (of one container) first; newer first; ready and
creation times compare in power-of-two buckets of nanoseconds with ties broken by uid, as
Kubernetes' LogarithmicScaleDown does). At most ``burst`` (Kubernetes' 500) creations or deletions per sync,
created in slow-start batches of 1, 2, 4, ... (``slow_start_batches``); status: replicas,
fullyLabeledReplicas, readyReplicas, availableReplicas (ready for minReadySeconds),
observedGeneration. Events SuccessfulCreate "Created pod: NAME", SuccessfulDelete "Deleted pod: NAME".

Pods are claimed as controller_utils' ControllerRefManager claims them: a pod it owns whose labels no longer
match its selector (`kubectl label pod P app-`, a patch) is released (its controller reference removed) and
replaced, and runs on as an orphan; an active pod without a controller whose labels match is adopted (a
controller reference added), and counts (a surplus is then deleted as any other). A pod two ReplicaSets'
selectors match goes to the first (by namespace and name), as the first sync to claim it wins in Kubernetes.
A ReplicaSet being deleted claims nothing.

Simplifications: no expectations cache (the snapshot is consistent and
the runner applies a sync in one transaction, so there is nothing in flight to wait for); since
one sync is one transaction, a failed creation rolls back the whole batch instead of stopping it.
"""

from __future__ import annotations

import functools
import json
import math

from netlab.controllers import deployutil as du
from netlab.controllers.base import (PHASE_ORDINAL, Action, Snapshot, clone, create, delete, event,
                                     generated_name, is_pod_active, is_pod_available, is_pod_ready, json_clone,
                                     ready_since, update, update_status)
from netlab.store.meta import (annotations_of, controller_ref, is_deleting, labels_of, matcher, owner_reference,
                               parse_time)

COMPONENT = "replicaset-controller"
KINDS = ("ReplicaSet", "Pod")
BURST = 500
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
DEFAULT_GRACE = 30


def slow_start_batches(n: int, initial: int = 1) -> list[int]:
    """Kubernetes' slowStartBatch sizes for n creations: 1, 2, 4, ... (the last one clipped)."""
    out, size = [], initial
    while n > 0:
        b = min(size, n)
        out.append(b)
        n -= b
        size *= 2
    return out


def pod_from_template(rs: dict, name: str) -> dict:
    t = rs["spec"].get("template") or {}
    tmd = t.get("metadata") or {}
    md = {"name": name, "generateName": rs["metadata"]["name"] + "-",
          "namespace": rs["metadata"].get("namespace", "default"),
          "labels": dict(tmd.get("labels") or {}), "ownerReferences": [owner_reference(rs)]}
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": json_clone(t.get("spec") or {}),
            "status": {"phase": "Pending"}}


def _log_rank(t: float | None, now: float) -> int:
    """floor(log2(now - t in nanoseconds)), -1 when not in the past: Kubernetes' logarithmic rank."""
    d = round((now - t) * 1e9) if t is not None else 0
    return int(math.log2(d)) if d > 0 else -1


def rank_for_deletion(pods: list[dict], related: list[dict], now: float) -> list[dict]:
    """`pods` ordered from the first to delete to the last (see the module doc). Ready and creation
    times compare in logarithmic buckets; a tie inside a bucket goes by uid, as Kubernetes does."""
    on_node: dict[str, int] = {}
    for p in related:
        if is_pod_active(p):
            node = (p.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1

    def facts(p):
        spec, st, md = p.get("spec") or {}, p.get("status") or {}, p["metadata"]
        try:
            cost = int(annotations_of(p).get(DELETION_COST, "0"))
        except ValueError:
            cost = 0
        return {"node": spec.get("nodeName") or "", "phase": PHASE_ORDINAL.get(st.get("phase"), 0),
                "ready": is_pod_ready(p), "cost": cost, "rank": on_node.get(spec.get("nodeName") or "", 0),
                "since": ready_since(p), "restarts": max_restarts(p),
                "created": parse_time(md.get("creationTimestamp")), "uid": md.get("uid", md.get("name", ""))}

    def time_order(t1, t2, a, b):
        """-1 when a comes first by its time (later/zero first, in log buckets), 1, or None on equal times."""
        if t1 == t2:
            return None
        if t1 is None or t2 is None:
            return -1 if t1 is None else 1
        diff = _log_rank(t1, now) - _log_rank(t2, now)
        if diff == 0:
            return -1 if a["uid"] < b["uid"] else 1
        return -1 if diff < 0 else 1

    def less(a, b) -> int:
        if a["node"] != b["node"] and (not a["node"] or not b["node"]):
            return -1 if not a["node"] else 1
        for f, first in (("phase", min), ("ready", min), ("cost", min), ("rank", max)):
            if a[f] != b[f]:
                return -1 if first(a[f], b[f]) == a[f] else 1
        if a["ready"] and b["ready"]:
            o = time_order(a["since"], b["since"], a, b)
            if o is not None:
                return o
        if a["restarts"] != b["restarts"]:
            return -1 if a["restarts"] > b["restarts"] else 1
        o = time_order(a["created"], b["created"], a, b)
        return 0 if o is None else o

    ranked = sorted(((facts(p), p) for p in pods), key=functools.cmp_to_key(lambda x, y: less(x[0], y[0])))
    return [p for _, p in ranked]


def max_restarts(pod: dict) -> int:
    return max((int(cs.get("restartCount", 0)) for cs in (pod.get("status") or {}).get("containerStatuses") or []),
               default=0)


def calculate_status(rs: dict, pods: list[dict], now: float) -> dict:
    tlabels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    labelled = matcher(tlabels)
    mrs = du.min_ready_seconds(rs)
    status = dict(rs.get("status") or {})
    labeled = ready = available = 0
    for p in pods:   # (one pass: 10,000 pods, every round of a big bring-up; a stored pod has its metadata)
        labeled += labelled(p["metadata"].get("labels"))
        if is_pod_ready(p):
            ready += 1
            available += not mrs or is_pod_available(p, mrs, now)
    status.update({"replicas": len(pods), "fullyLabeledReplicas": labeled, "readyReplicas": ready,
                   "availableReplicas": available, "observedGeneration": rs["metadata"].get("generation", 1)})
    return status


def next_deadline(snap: Snapshot, now: float) -> float | None:
    """When a ready pod next becomes available (minReadySeconds): the loop's timer."""
    times = []
    for rs in snap.list("ReplicaSet"):
        mrs = du.min_ready_seconds(rs)
        if not mrs:
            continue
        for p in snap.owned_by("Pod", rs):
            since = ready_since(p)
            if since is not None and since + mrs >= now:
                times.append(since + mrs)
    return min(times) if times else None


def decide(snap: Snapshot, now: float, burst: int = BURST) -> list[Action]:
    actions: list[Action] = []
    taken = snap.names("Pod")
    # the pods any ReplicaSet may adopt: active, no controller (few: a lab's own pods all have one)
    orphans = [p for p in snap.unowned("Pod") if is_pod_active(p)]
    for rs in snap.list("ReplicaSet"):
        actions += sync_replicaset(snap, rs, now, taken, burst, orphans)
    return actions


def related_pods(snap: Snapshot, rs: dict, owned: list[dict]) -> list[dict]:
    """The pods of every ReplicaSet with the same controller as `rs` (the Deployment's other
    revisions): Kubernetes counts them when it ranks pods doubled up on a node."""
    owner = (controller_ref(rs) or {}).get("uid")
    if not owner:
        return owned
    out = []
    for sib in snap.list("ReplicaSet", rs["metadata"].get("namespace", "default")):
        if (controller_ref(sib) or {}).get("uid") == owner:
            out += owned if sib is rs else snap.owned_by("Pod", sib)
    return out


def claim(rs: dict, owned: list[dict], orphans: list[dict]) -> tuple[list[dict], list[dict]]:
    """(released, adopted): the pods `rs` owns whose labels its selector no longer matches, each without its
    controller reference to `rs`, and the `orphans` of its namespace it matches, each with one (taken out of
    `orphans`: no other ReplicaSet adopts them); none while `rs` is being deleted."""
    if is_deleting(rs):
        return [], []
    wanted = matcher((rs.get("spec") or {}).get("selector") or {})
    uid = rs["metadata"].get("uid")
    released = []
    for p in owned:
        if not wanted(p["metadata"].get("labels")):
            new = clone(p)
            refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            released.append(new)
    ns = rs["metadata"].get("namespace", "default")
    adopted = []
    for p in [p for p in orphans if p["metadata"].get("namespace", "default") == ns and wanted(labels_of(p))]:
        orphans.remove(p)
        new = clone(p)
        new["metadata"]["ownerReferences"] = (new["metadata"].get("ownerReferences") or []) + [owner_reference(rs)]
        adopted.append(new)
    return released, adopted


def sync_replicaset(snap: Snapshot, rs: dict, now: float, taken: set, burst: int = BURST,
                    orphans: list[dict] | None = None) -> list[Action]:
    owned = snap.owned_by("Pod", rs)
    actions: list[Action] = []
    gone, adopted = claim(rs, owned, orphans if orphans is not None else [])
    if gone or adopted:
        actions += [update(p) for p in gone + adopted]
        left = {p["metadata"]["name"] for p in gone}
        owned = [p for p in owned if p["metadata"]["name"] not in left] + adopted
    pods = [p for p in owned if is_pod_active(p)]
    if not is_deleting(rs):
        diff = len(pods) - du.replicas(rs)
        if diff < 0:
            for i in range(min(-diff, burst)):
                name = generated_name(rs["metadata"]["name"] + "-",
                                      f"{rs['metadata'].get('uid')}/{snap.revision}/{i}", taken)
                taken.add(name)
                actions.append(create(pod_from_template(rs, name)))
                actions.append(event(rs, "Normal", "SuccessfulCreate", f"Created pod: {name}", COMPONENT))
        elif diff > 0:
            for p in rank_for_deletion(pods, related_pods(snap, rs, owned), now)[:min(diff, burst)]:
                grace = (p.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)
                actions.append(delete(p, grace_seconds=grace))
                actions.append(event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}",
                                     COMPONENT))
    status = calculate_status(rs, pods, now)
    if json.dumps(status, sort_keys=True) != json.dumps(rs.get("status") or {}, sort_keys=True):
        actions.append(update_status(dict(rs, status=status)))
    return actions


