"""A small garbage collector (Kubernetes' background cascading deletion): an object whose every
owner (by ownerReferences uid) is gone is deleted, pods gracefully with their
terminationGracePeriodSeconds. Only owners of the kinds in OWNER_KINDS are judged; references to
other kinds are left alone. Like Kubernetes' pod GC, a pod bound to a Node that no longer exists is
deleted at once (grace 0). Simplification: no foreground deletion and no orphan propagation; no
quarantine period before the orphaned-pod deletion."""

from __future__ import annotations

from netlab.controllers.base import Action, Snapshot, delete
from netlab.store.meta import is_deleting

OWNER_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Service", "Job", "CronJob")
DEPENDENT_KINDS = ("ReplicaSet", "Pod", "EndpointSlice", "ControllerRevision", "Job")
KINDS = tuple(dict.fromkeys(OWNER_KINDS + DEPENDENT_KINDS + ("Node",)))


def decide(snap: Snapshot, now: float) -> list[Action]:
    alive = {o["metadata"].get("uid") for k in OWNER_KINDS for o in snap.list(k)}
    nodes = {n["metadata"]["name"] for n in snap.list("Node")}
    actions: list[Action] = []
    for p in snap.list("Pod"):
        node = (p.get("spec") or {}).get("nodeName")
        if node and node not in nodes:
            actions.append(delete(p, grace_seconds=0))
    for kind in DEPENDENT_KINDS:
        for obj in snap.list(kind):
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("kind") in OWNER_KINDS]
            if not refs or is_deleting(obj) or any(r.get("uid") in alive for r in refs):
                continue
            grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30) if kind == "Pod" else None
            actions.append(delete(obj, grace_seconds=grace))
    return actions
