"""The ReplicaSet controller as a pure decision, following Kubernetes' pkg/controller/replicaset
(replica_set.go) and pkg/controller/controller_utils.go (read for facts, written anew).

Per ReplicaSet: count its active pods (controller reference = this ReplicaSet, not Succeeded,
Failed or being deleted); create the missing ones from the template (name = ReplicaSet name + "-"
+ 5 characters of Kubernetes' alphabet, labels and annotations from the template, a controller
ownerReference) or delete the surplus, the least valuable first (controller_utils' ranking:
unassigned < assigned; Pending < Unknown < Running; not ready < ready; a lower
controller.kubernetes.io/pod-deletion-cost first; more pods of the same ReplicaSet on its node
first; ready for less time first (compared in power-of-two buckets, LogarithmicScaleDown); more
restarts first; newer first). At most ``burst`` (Kubernetes' 500) creations or deletions per sync,
created in slow-start batches of 1, 2, 4, ... (``slow_start_batches``); status: replicas,
fullyLabeledReplicas, readyReplicas, availableReplicas (ready for minReadySeconds),
observedGeneration. Events SuccessfulCreate "Created pod: NAME", SuccessfulDelete "Deleted pod: NAME".

Simplifications: no adoption of orphan pods; no expectations cache (the snapshot is consistent and
the runner applies a sync in one transaction, so there is nothing in flight to wait for); since
one sync is one transaction, a failed creation rolls back the whole batch instead of stopping it.
"""

from __future__ import annotations

import json

from netlab.controllers import deployutil as du
from netlab.controllers.base import (PHASE_ORDINAL, Action, Snapshot, clone, create, delete, event,
                                     generated_name, is_pod_active, is_pod_available, is_pod_ready,
                                     log2_bucket, ready_since, restart_count, update_status)
from netlab.store.meta import (annotations_of, fmt_time, is_deleting, labels_of, owner_reference, parse_time,
                               selector_matches)

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
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": clone(t.get("spec") or {}),
            "status": {"phase": "Pending"}}


def rank_for_deletion(pods: list[dict], related: list[dict], now: float) -> list[dict]:
    """`pods` ordered from the first to delete to the last (see the module doc)."""
    on_node: dict[str, int] = {}
    for p in related:
        node = (p.get("spec") or {}).get("nodeName")
        if node and is_pod_active(p):
            on_node[node] = on_node.get(node, 0) + 1

    def key(p):
        spec, st = p.get("spec") or {}, p.get("status") or {}
        node = spec.get("nodeName") or ""
        ready = is_pod_ready(p)
        try:
            cost = int(annotations_of(p).get(DELETION_COST, "0"))
        except ValueError:
            cost = 0
        since = ready_since(p) if ready else None
        ready_bucket = log2_bucket(now - since) if since is not None else -1
        created = parse_time(p["metadata"].get("creationTimestamp")) or 0
        return (
            1 if node else 0,                          # unassigned first
            PHASE_ORDINAL.get(st.get("phase"), 0),     # Pending < Unknown < Running
            1 if ready else 0,                         # not ready first
            cost,                                      # lower deletion cost first
            -on_node.get(node, 0) if node else 0,      # doubled-up nodes first
            ready_bucket,                              # ready for less time first
            -restart_count(p),                         # more restarts first
            -created,                                  # newer first
            p["metadata"]["name"],
        )

    return sorted(pods, key=key)


def calculate_status(rs: dict, pods: list[dict], now: float) -> dict:
    tlabels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    mrs = du.min_ready_seconds(rs)
    status = dict(rs.get("status") or {})
    status.update({
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(1 for p in pods if selector_matches(tlabels, labels_of(p))),
        "readyReplicas": sum(1 for p in pods if is_pod_ready(p)),
        "availableReplicas": sum(1 for p in pods if is_pod_available(p, mrs, now)),
        "observedGeneration": rs["metadata"].get("generation", 1),
    })
    return status


def decide(snap: Snapshot, now: float, burst: int = BURST) -> list[Action]:
    actions: list[Action] = []
    taken = {p["metadata"]["name"] for p in snap.list("Pod")}
    for rs in snap.list("ReplicaSet"):
        actions += sync_replicaset(snap, rs, now, taken, burst)
    return actions


def sync_replicaset(snap: Snapshot, rs: dict, now: float, taken: set, burst: int = BURST) -> list[Action]:
    owned = snap.owned_by("Pod", rs)
    pods = [p for p in owned if is_pod_active(p)]
    actions: list[Action] = []
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
            for p in rank_for_deletion(pods, owned, now)[:min(diff, burst)]:
                grace = (p.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)
                actions.append(delete(p, grace_seconds=grace))
                actions.append(event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}",
                                     COMPONENT))
    status = calculate_status(rs, pods, now)
    if json.dumps(status, sort_keys=True) != json.dumps(rs.get("status") or {}, sort_keys=True):
        actions.append(update_status(dict(rs, status=status)))
    return actions


__all__ = ["decide", "sync_replicaset", "rank_for_deletion", "slow_start_batches", "pod_from_template",
           "calculate_status", "fmt_time"]
