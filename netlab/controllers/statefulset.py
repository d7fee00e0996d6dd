"""The StatefulSet controller as a pure decision, following Kubernetes' pkg/controller/statefulset
(stateful_set_control.go, stateful_set_utils.go; read for facts, written anew).

Per StatefulSet: its pods are ``<name>-<ordinal>`` for the ordinals ``start .. start+replicas-1``
(spec.ordinals.start, default 0), labelled ``statefulset.kubernetes.io/pod-name``,
``apps.kubernetes.io/pod-index`` and ``controller-revision-hash`` (the revision's name), with a
controller ownerReference and ``spec.hostname`` = the pod's name, ``spec.subdomain`` =
spec.serviceName (how the headless Service names each pod).

Revisions: the pod template is hashed (FNV-32a of its canonical JSON, as deployutil.compute_hash)
into a ControllerRevision ``<name>-<hash>`` holding the template (``data.spec.template``) and a
``revision`` number; status.updateRevision is the current template's, status.currentRevision the one
the set last completed; unused revisions beyond revisionHistoryLimit are deleted, oldest first.

One sync, in Kubernetes' order:
1. every ordinal in range, lowest first: a Failed/Succeeded pod is deleted (it will be made again),
   a missing one is created (from the current revision's template below the rolling update's
   partition, else from the update revision's); with podManagementPolicy OrderedReady the sync stops
   after a creation or deletion and at the first pod that is terminating or not Running and
   available (Ready for minReadySeconds), so web-1 is made only once web-0 is Ready; with Parallel
   it goes on;
2. the pods out of range (scale down), highest ordinal first: OrderedReady deletes one and waits for
   it to be gone; Parallel deletes them all;
3. updateStrategy RollingUpdate: from the highest ordinal down to the partition, the first pod not
   at the update revision is deleted (step 1 makes it again, updated); a pod that is not healthy
   stops the walk, so pods are replaced one at a time (maxUnavailable 1). OnDelete: nothing; a pod
   the user deletes comes back at the update revision.
Status: replicas, readyReplicas, currentReplicas, updatedReplicas, availableReplicas,
currentRevision, updateRevision, observedGeneration, collisionCount; when every pod is updated and
ready under RollingUpdate, currentRevision becomes updateRevision.
Events: SuccessfulCreate "create Pod web-0 in StatefulSet web successful", SuccessfulDelete.

Simplifications: no adoption or release of pods by selector (ownership is by controller
reference); maxUnavailable (alpha in Kubernetes) is not used, pods are replaced one at a time;
volumeClaimTemplates make no PersistentVolumeClaims (netlab has no storage; the spec parser says so).
"""

from __future__ import annotations

import json
import re

from netlab.controllers import deployutil as du
from netlab.controllers.base import (Action, Snapshot, clone, create, delete, event, is_pod_available,
                                     is_pod_ready, ready_since, update, update_status)
from netlab.store.meta import is_deleting, owner_reference

COMPONENT = "statefulset-controller"
KINDS = ("StatefulSet", "Pod", "ControllerRevision")
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
DEFAULT_GRACE = 30


def start_ordinal(sts: dict) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def is_parallel(sts: dict) -> bool:
    return (sts.get("spec") or {}).get("podManagementPolicy") == "Parallel"


def strategy(sts: dict) -> str:
    return ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate"


def partition(sts: dict) -> int:
    ru = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(ru.get("partition") or 0)


def ordinal_of(sts: dict, pod: dict) -> int | None:
    """The ordinal of a pod named <set>-<n>, else None."""
    m = re.fullmatch(re.escape(sts["metadata"]["name"]) + r"-(0|[1-9][0-9]*)", pod["metadata"]["name"])
    return int(m.group(1)) if m else None


def revision_name(sts: dict) -> str:
    """The name of the ControllerRevision of the set's current pod template."""
    collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
    return f"{sts['metadata']['name']}-{du.compute_hash((sts.get('spec') or {}).get('template') or {}, collisions)}"


def pod_revision(pod: dict) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(REVISION_LABEL)


def new_pod(sts: dict, ordinal: int, template: dict, revision: str) -> dict:
    name = f"{sts['metadata']['name']}-{ordinal}"
    tmd = template.get("metadata") or {}
    labels = dict(tmd.get("labels") or {})
    labels.update({POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision})
    md = {"name": name, "namespace": sts["metadata"].get("namespace", "default"), "labels": labels,
          "ownerReferences": [owner_reference(sts)]}
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    spec = clone(template.get("spec") or {})
    spec["hostname"] = name
    spec["subdomain"] = (sts.get("spec") or {}).get("serviceName", "")
    # each volumeClaimTemplate is a persistentVolumeClaim volume of the pod (claim <template>-<pod>), as the
    # controller adds it (netlab has no storage: an empty directory of the pod)
    have = {v.get("name") for v in spec.get("volumes") or []}
    for claim in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        cname = (claim.get("metadata") or {}).get("name")
        if cname and cname not in have:
            spec.setdefault("volumes", []).append({"name": cname,
                                                   "persistentVolumeClaim": {"claimName": f"{cname}-{name}"}})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": {"phase": "Pending"}}


def _healthy(pod: dict, min_ready: int, now: float) -> bool:
    """Running, available (Ready for minReadySeconds) and not terminating."""
    return ((pod.get("status") or {}).get("phase") == "Running" and not is_deleting(pod)
            and is_pod_available(pod, min_ready, now))


def _delete(sts: dict, pod: dict) -> list[Action]:
    grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)
    return [delete(pod, grace_seconds=grace),
            event(sts, "Normal", "SuccessfulDelete",
                  f"delete Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} successful",
                  COMPONENT)]


def _revisions(snap: Snapshot, sts: dict) -> tuple[list[Action], dict[str, dict], str]:
    """(actions creating or renumbering the update revision, {name: revision} after them, its name)."""
    revs = {r["metadata"]["name"]: r for r in snap.owned_by("ControllerRevision", sts)}
    name = revision_name(sts)
    top = max((int(r.get("revision") or 0) for r in revs.values()), default=0)
    cur = revs.get(name)
    template = (sts.get("spec") or {}).get("template") or {}
    actions: list[Action] = []
    if cur is None:
        tlabels = ((template.get("metadata") or {}).get("labels") or {})
        cur = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
               "metadata": {"name": name, "namespace": sts["metadata"].get("namespace", "default"),
                            "labels": {**tlabels, REVISION_LABEL: name},
                            "ownerReferences": [owner_reference(sts)]},
               "data": {"spec": {"template": clone(template)}}, "revision": top + 1}
        actions.append(create(cur))
    elif int(cur.get("revision") or 0) < top:  # back to an earlier template: it is the newest again
        cur = dict(cur, revision=top + 1)
        actions.append(update(cur))
    revs = dict(revs, **{name: cur})
    return actions, revs, name


def sync_statefulset(snap: Snapshot, sts: dict, now: float) -> list[Action]:
    if is_deleting(sts):
        return []
    spec = sts.get("spec") or {}
    st = sts.get("status") or {}
    actions, revs, update_rev = _revisions(snap, sts)
    current_rev = st.get("currentRevision") or update_rev
    if current_rev not in revs:
        current_rev = update_rev
    update_tmpl = spec.get("template") or {}
    current_tmpl = ((revs[current_rev].get("data") or {}).get("spec") or {}).get("template") or update_tmpl
    start, want = start_ordinal(sts), int(spec.get("replicas", 1))
    min_ready = int(spec.get("minReadySeconds") or 0)
    monotonic = not is_parallel(sts)
    rolling = strategy(sts) == "RollingUpdate"
    part = partition(sts)

    pods: dict[int, dict] = {}
    for p in snap.owned_by("Pod", sts):
        o = ordinal_of(sts, p)
        if o is not None:
            pods[o] = p
    in_range = list(range(start, start + want))
    condemned = sorted((o for o in pods if o not in in_range), reverse=True)

    def status() -> dict:
        out = dict(st)
        everyone = list(pods.values())
        out.update({
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(everyone),
            "readyReplicas": sum(1 for p in everyone if is_pod_ready(p)),
            "availableReplicas": sum(1 for p in everyone if is_pod_available(p, min_ready, now)),
            "currentReplicas": sum(1 for p in everyone if not is_deleting(p) and pod_revision(p) == current_rev),
            "updatedReplicas": sum(1 for p in everyone if not is_deleting(p) and pod_revision(p) == update_rev),
            "currentRevision": current_rev, "updateRevision": update_rev,
            "collisionCount": st.get("collisionCount", 0),
        })
        if rolling and out["updatedReplicas"] == want and out["readyReplicas"] == want and out["replicas"] == want:
            out["currentRevision"] = update_rev
            out["currentReplicas"] = out["updatedReplicas"]
        return out

    def finish() -> list[Action]:
        new = status()
        if json.dumps(new, sort_keys=True) != json.dumps(st, sort_keys=True):
            actions.append(update_status(dict(sts, status=new)))
        actions.extend(_history_cleanup(sts, revs, pods.values(), {new["currentRevision"], update_rev}))
        return actions

    # 1. every ordinal in range, lowest first
    for o in in_range:
        p = pods.get(o)
        if p is not None and (p.get("status") or {}).get("phase") in ("Failed", "Succeeded") and not is_deleting(p):
            actions.extend(_delete(sts, p))
            if monotonic:
                return finish()
            continue
        if p is None:
            # below the partition a pod is made at the current revision (Kubernetes'
            # newVersionedStatefulSetPod); OnDelete and the rest: the update revision
            old = rolling and o - start < part
            tmpl, rev = (current_tmpl, current_rev) if old else (update_tmpl, update_rev)
            pod = new_pod(sts, o, tmpl, rev)
            pods[o] = pod
            actions.append(create(pod))
            actions.append(event(sts, "Normal", "SuccessfulCreate",
                                 f"create Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} "
                                 "successful", COMPONENT))
            if monotonic:
                return finish()
            continue
        if monotonic and not _healthy(p, min_ready, now):
            return finish()

    # 2. scale down, highest ordinal first
    for o in condemned:
        p = pods[o]
        if is_deleting(p):
            if monotonic:
                return finish()
            continue
        actions.extend(_delete(sts, p))
        if monotonic:
            return finish()

    # 3. rolling update: highest ordinal first, down to the partition, one pod at a time
    if rolling:
        for o in reversed(in_range):
            if o - start < part:
                break
            p = pods.get(o)
            if p is None:
                break
            if pod_revision(p) != update_rev and not is_deleting(p):
                actions.extend(_delete(sts, p))
                break
            if not _healthy(p, min_ready, now):
                break
    return finish()


def _history_cleanup(sts: dict, revs: dict[str, dict], pods, live: set) -> list[Action]:
    """Delete the oldest revisions no pod uses beyond revisionHistoryLimit (default 10)."""
    limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    used = live | {pod_revision(p) for p in pods}
    spare = sorted((r for n, r in revs.items() if n not in used and r["metadata"].get("uid")),
                   key=lambda r: int(r.get("revision") or 0))
    return [delete(r) for r in spare[:max(0, len(spare) - limit)]]


def decide(snap: Snapshot, now: float) -> list[Action]:
    actions: list[Action] = []
    for sts in snap.list("StatefulSet"):
        actions += sync_statefulset(snap, sts, now)
    return actions


def next_deadline(snap: Snapshot, now: float) -> float | None:
    """When a ready pod next becomes available (minReadySeconds): the loop's timer."""
    times = []
    for sts in snap.list("StatefulSet"):
        mrs = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if not mrs:
            continue
        for p in snap.owned_by("Pod", sts):
            since = ready_since(p)
            if since is not None and since + mrs >= now:
                times.append(since + mrs)
    return min(times) if times else None


def rollout_status(sts: dict) -> tuple[str, bool]:
    """(message, done) as ``kubectl rollout status sts/NAME`` prints them (its StatefulSet status
    viewer); ValueError for OnDelete, whose rollout kubectl cannot follow."""
    spec, st = sts.get("spec") or {}, sts.get("status") or {}
    if strategy(sts) != "RollingUpdate":
        raise ValueError("rollout status is only available for RollingUpdate strategy type")
    if not st.get("observedGeneration") or sts["metadata"].get("generation", 1) > st["observedGeneration"]:
        return "Waiting for statefulset spec update to be observed...", False
    want = int(spec.get("replicas", 1))
    ready = int(st.get("readyReplicas", 0))
    if ready < want:
        return f"Waiting for {want - ready} pods to be ready...", False
    part = partition(sts)
    if part > 0:
        updated = int(st.get("updatedReplicas", 0))
        if updated < want - part:
            return (f"Waiting for partitioned roll out to finish: {updated} out of {want - part} new pods have "
                    "been updated..."), False
        return f"partitioned roll out complete: {updated} new pods have been updated...", True
    if st.get("updateRevision") != st.get("currentRevision"):
        return (f"waiting for statefulset rolling update to complete {st.get('updatedReplicas', 0)} pods at revision "
                f"{st.get('updateRevision')}..."), False
    return (f"statefulset rolling update complete {st.get('currentReplicas', 0)} pods at revision "
            f"{st.get('currentRevision')}..."), True
