"""The DaemonSet controller as a pure decision, following Kubernetes' pkg/controller/daemon
(daemon_controller.go, update.go; read for facts, written anew).

Per DaemonSet: a node should run its pod when the template's nodeName (if any) is the node, the
node's labels match the template's nodeSelector, and every NoSchedule/NoExecute taint of the node
(the control-plane taint included: it is tolerated only when the template tolerates it) is tolerated
by the template's tolerations plus those the controller adds to every daemon pod
(node.kubernetes.io/not-ready and unreachable: NoExecute without tolerationSeconds; disk-pressure,
memory-pressure, pid-pressure and unschedulable: NoSchedule; so a cordoned node keeps its pod). A pod
already on a node that no longer should run it continues while only NoSchedule taints are
untolerated (Kubernetes' shouldContinueRunning) and counts as misscheduled; otherwise it is deleted.

Binding: the controller names the node in spec.nodeName itself, as Kubernetes did before the
scheduler placed daemon pods (1.12), instead of a nodeAffinity matchFields term for the scheduler:
netlab's scheduler does not read nodeAffinity, and this controller has already applied the same
filters the scheduler would (nodeSelector, taints, unschedulable), so the result is the same pod on
the same node, one round earlier. Pods get the labels controller-revision-hash (a hash of the
template) and pod-template-generation (the DaemonSet's generation), a controller ownerReference and
a name <daemonset>-<5 characters>.

Updates: RollingUpdate with maxSurge 0 deletes old pods (those whose controller-revision-hash is not
the template's) while the number of eligible nodes without an available pod stays within
maxUnavailable (an int, or a percentage of the eligible nodes rounded up; old pods that are not
available go at once); the next round makes the new pod on the emptied node. With maxSurge > 0 the
new pod is made next to the old one (at most maxSurge nodes at a time) and the old one deleted once
the new one is available (ready for minReadySeconds). OnDelete: a pod is replaced by the new
template only when someone deletes it.

Status: desiredNumberScheduled, currentNumberScheduled, numberMisscheduled, numberReady,
updatedNumberScheduled, numberAvailable, numberUnavailable, observedGeneration. Events
SuccessfulCreate / SuccessfulDelete as Kubernetes words them.

Simplifications: no ControllerRevision objects (the revision hash is computed from the template;
revisionHistoryLimit is stored, `rollout undo ds` is not offered); nodeAffinity is not evaluated
(the pod parser reports affinity as ignored); no back-off for failed daemon pods.
"""

from __future__ import annotations

import hashlib
import json

from netlab.controllers.base import (NAME_ALPHABET, Action, Snapshot, create, delete, event, generated_name,
                                     is_pod_available, is_pod_ready, ready_since, scaled_value, update_status)
from netlab.controllers.scheduler import UNSCHEDULABLE_TAINT, tolerates, untolerated_taint
from netlab.controllers.validation import default_pod_spec
from netlab.store.meta import fmt_time, is_deleting, owner_reference, parse_time

COMPONENT = "daemonset-controller"
KINDS = ("DaemonSet", "Pod", "Node")
REVISION_HASH = "controller-revision-hash"
TEMPLATE_GENERATION = "pod-template-generation"
DEFAULT_GRACE = 30

# the tolerations the DaemonSet controller adds to every daemon pod (Kubernetes' AddOrUpdateDaemonPodTolerations)
DAEMON_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
)


def default_daemonset(obj: dict) -> dict:
    """The DaemonSet as the API server stores it (apps/v1 defaults)."""
    spec = dict(obj.get("spec") or {})
    strategy = dict(spec.get("updateStrategy") or {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = dict(strategy.get("rollingUpdate") or {})
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
        strategy["rollingUpdate"] = ru
    spec["updateStrategy"] = strategy
    spec.setdefault("revisionHistoryLimit", 10)
    template = dict(spec.get("template") or {})
    template["spec"] = default_pod_spec(template.get("spec") or {})
    spec["template"] = template
    return dict(obj, spec=spec)


def with_daemon_tolerations(tolerations) -> list[dict]:
    tols = [dict(t) for t in tolerations or []]
    for t in DAEMON_TOLERATIONS:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
            tols.append(dict(t))
    return tols


def revision_hash(ds: dict) -> str:
    """Stands in for the ControllerRevision hash: changes exactly when the pod template changes."""
    text = json.dumps((ds.get("spec") or {}).get("template") or {}, sort_keys=True, separators=(",", ":"))
    h = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")
    out = ""
    for _ in range(10):
        h, r = divmod(h, len(NAME_ALPHABET))
        out += NAME_ALPHABET[r]
    return out


def daemon_pod_spec(ds: dict) -> dict:
    """The template's pod spec with the daemon tolerations (what eligibility is judged on)."""
    pspec = dict(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    pspec["tolerations"] = with_daemon_tolerations(pspec.get("tolerations"))
    return pspec


def node_should_run(pspec: dict, node: dict) -> tuple[bool, bool]:
    """(should run, should continue running) of a daemon pod with spec `pspec` on `node`."""
    name = node["metadata"]["name"]
    if pspec.get("nodeName") and pspec["nodeName"] != name:
        return False, False
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pspec.get("nodeSelector") or {}).items()):
        return False, False
    pod = {"spec": pspec}
    if untolerated_taint(pod, node, effects=("NoExecute",)) is not None:
        return False, False
    if (node.get("spec") or {}).get("unschedulable") and not tolerates(
            pspec.get("tolerations"), {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}):
        return False, True
    if untolerated_taint(pod, node, effects=("NoSchedule",)) is not None:
        return False, True
    return True, True


def rolling_params(ds: dict, desired: int) -> tuple[int, int] | None:
    """(maxSurge, maxUnavailable) as numbers of nodes (percentages of `desired`, rounded up, as the
    DaemonSet controller rounds both), or None for OnDelete."""
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return None
    ru = strategy.get("rollingUpdate") or {}
    surge = scaled_value(ru.get("maxSurge", 0) or 0, desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", 1) if ru.get("maxUnavailable") is not None else 1,
                               desired, True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def daemon_pod(ds: dict, name: str, node: str, rev: str, now: float) -> dict:
    t = (ds.get("spec") or {}).get("template") or {}
    tmd = t.get("metadata") or {}
    labels = dict(tmd.get("labels") or {})
    labels[REVISION_HASH] = rev
    labels[TEMPLATE_GENERATION] = str(ds["metadata"].get("generation", 1))
    md = {"name": name, "generateName": ds["metadata"]["name"] + "-",
          "namespace": ds["metadata"].get("namespace", "default"), "labels": labels,
          "ownerReferences": [owner_reference(ds)]}
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    spec = json.loads(json.dumps(t.get("spec") or {}))
    spec["tolerations"] = with_daemon_tolerations(spec.get("tolerations"))
    spec["nodeName"] = node
    # bound at creation: PodScheduled is True from the start (no scheduler takes part)
    cond = {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": fmt_time(now)}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec,
            "status": {"phase": "Pending", "conditions": [cond]}}


def _created(p: dict) -> tuple:
    return (parse_time(p["metadata"].get("creationTimestamp")) or 0.0, p["metadata"]["name"])


def _grace(p: dict) -> int:
    return (p.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)


def decide(snap: Snapshot, now: float) -> list[Action]:
    nodes = [n for n in snap.list("Node") if not is_deleting(n)]
    taken = {p["metadata"]["name"] for p in snap.list("Pod")}
    actions: list[Action] = []
    for ds in snap.list("DaemonSet"):
        if not is_deleting(ds):
            actions += sync_daemonset(snap, ds, nodes, now, taken)
    return actions


def sync_daemonset(snap: Snapshot, ds: dict, nodes: list[dict], now: float, taken: set) -> list[Action]:
    rev = revision_hash(ds)
    mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    pspec = daemon_pod_spec(ds)
    by_node: dict[str, list[dict]] = {}
    for p in snap.owned_by("Pod", ds):
        if not is_deleting(p):
            by_node.setdefault((p.get("spec") or {}).get("nodeName") or "", []).append(p)
    actions: list[Action] = []
    dsname = ds["metadata"]["name"]

    def remove(p: dict) -> None:
        actions.append(delete(p, grace_seconds=_grace(p)))
        actions.append(event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}", COMPONENT))

    def make(node: str) -> None:
        name = generated_name(dsname + "-", f"{ds['metadata'].get('uid')}/{node}/{rev}/{snap.revision}", taken)
        taken.add(name)
        actions.append(create(daemon_pod(ds, name, node, rev, now)))
        actions.append(event(ds, "Normal", "SuccessfulCreate", f"Created pod: {name}", COMPONENT))

    updated = lambda p: (p["metadata"].get("labels") or {}).get(REVISION_HASH) == rev  # noqa: E731
    surging = False
    wanted: dict[str, tuple[dict | None, dict | None]] = {}   # node -> (its old pod, its updated pod)
    status = {"desired": 0, "current": 0, "misscheduled": 0, "ready": 0, "updated": 0, "available": 0}
    known = {n["metadata"]["name"] for n in nodes}
    for node_name, pods in by_node.items():
        if node_name not in known:   # no such node (any more): the pod goes
            for p in pods:
                remove(p)
    for node in nodes:
        name = node["metadata"]["name"]
        pods = sorted(by_node.get(name, []), key=_created)
        failed = [p for p in pods if (p.get("status") or {}).get("phase") in ("Failed", "Succeeded")]
        for p in failed:   # a daemon pod that ended is replaced
            remove(p)
        pods = [p for p in pods if p not in failed]
        run, keep = node_should_run(pspec, node)
        if not run:
            if pods and keep:
                status["misscheduled"] += 1
            elif pods:
                for p in pods:
                    remove(p)
            continue
        status["desired"] += 1
        if not pods:
            make(name)
            continue
        status["current"] += 1
        old = [p for p in pods if not updated(p)]
        new = [p for p in pods if updated(p)]
        keep_old, keep_new = (old[0] if old else None), (new[0] if new else None)
        if keep_old is not None and keep_new is not None:
            surging = True
        for p in pods:   # more than one pod of each kind on a node: the oldest stays
            if p is not keep_old and p is not keep_new:
                remove(p)
        wanted[name] = (keep_old, keep_new)
        alive = [p for p in (keep_old, keep_new) if p is not None]
        status["ready"] += any(is_pod_ready(p) for p in alive)
        status["available"] += any(is_pod_available(p, mrs, now) for p in alive)
        status["updated"] += keep_new is not None
    params = rolling_params(ds, status["desired"])
    if params is not None:
        surge, max_unavailable = params
        if surge == 0:
            # nodes that should run a pod and have no available one (missing pods count)
            unavailable = status["desired"] - sum(
                1 for o, n in wanted.values() if any(is_pod_available(p, mrs, now) for p in (o, n) if p is not None))
            candidates = []
            for name in sorted(wanted):
                o, n = wanted[name]
                if o is None:
                    continue
                if n is not None:   # both (the strategy changed): the new one stays
                    remove(o)
                elif not is_pod_available(o, mrs, now):
                    remove(o)   # not available anyway: replacing it costs nothing
                else:
                    candidates.append(o)
            for o in candidates[:max(0, max_unavailable - unavailable)]:
                remove(o)
        else:
            in_flight = sum(1 for o, n in wanted.values() if o is not None and n is not None)
            room = surge - in_flight
            for name in sorted(wanted):
                o, n = wanted[name]
                if o is None:
                    continue
                if n is not None:
                    if is_pod_available(n, mrs, now):
                        remove(o)
                elif not is_pod_available(o, mrs, now):
                    remove(o)
                elif room > 0:
                    room -= 1
                    make(name)
    elif surging:   # OnDelete with two pods on a node: keep the older
        for o, n in wanted.values():
            if o is not None and n is not None:
                remove(n)
    st = dict(ds.get("status") or {})
    st.update({"desiredNumberScheduled": status["desired"], "currentNumberScheduled": status["current"],
               "numberMisscheduled": status["misscheduled"], "numberReady": status["ready"],
               "observedGeneration": ds["metadata"].get("generation", 1)})
    for field, value in (("updatedNumberScheduled", status["updated"]), ("numberAvailable", status["available"]),
                         ("numberUnavailable", status["desired"] - status["available"])):
        if value:
            st[field] = value
        else:
            st.pop(field, None)   # omitempty, as the API server shows them
    if json.dumps(st, sort_keys=True) != json.dumps(ds.get("status") or {}, sort_keys=True):
        actions.append(update_status(dict(ds, status=st)))
    return actions


def next_deadline(snap: Snapshot, now: float) -> float | None:
    """When a ready daemon pod next becomes available (minReadySeconds): the loop's timer."""
    times = []
    for ds in snap.list("DaemonSet"):
        mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if not mrs:
            continue
        for p in snap.owned_by("Pod", ds):
            since = ready_since(p)
            if since is not None and since + mrs >= now:
                times.append(since + mrs)
    return min(times) if times else None


def rollout_status(ds: dict) -> tuple[str, bool]:
    """`kubectl rollout status ds/NAME`: (the line kubectl prints, whether the rollout is done).
    Raises ValueError for a DaemonSet whose updateStrategy is not RollingUpdate, as kubectl refuses it."""
    spec, st = ds.get("spec") or {}, ds.get("status") or {}
    if ((spec.get("updateStrategy") or {}).get("type") or "RollingUpdate") != "RollingUpdate":
        raise ValueError("rollout status is only available for RollingUpdate strategy type")
    name = ds["metadata"]["name"]
    if ds["metadata"].get("generation", 1) > st.get("observedGeneration", 0):
        return "Waiting for daemon set spec update to be observed...", False
    desired = st.get("desiredNumberScheduled", 0)
    if st.get("updatedNumberScheduled", 0) < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {st.get("updatedNumberScheduled", 0)} out of '
                f"{desired} new pods have been updated...", False)
    if st.get("numberAvailable", 0) < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {st.get("numberAvailable", 0)} of {desired} '
                "updated pods are available...", False)
    return f'daemon set "{name}" successfully rolled out', True
