"""The scheduler as a pure decision: bind pending pods to nodes.

Filters, in kube-scheduler's order, each node stopping at its first failure (the reason texts are
the scheduler's): NodeUnschedulable ("node(s) were unschedulable": spec.unschedulable, unless the
pod tolerates node.kubernetes.io/unschedulable:NoSchedule), TaintToleration ("node(s) had
untolerated taint {key: value}": NoSchedule and NoExecute taints, e.g. the control-plane's and
node.kubernetes.io/not-ready|unreachable added by the node lifecycle controller), NodeAffinity
for spec.nodeSelector ("node(s) didn't match Pod's node affinity/selector"), NodePorts ("node(s)
didn't have free ports for the requested pod ports": a hostPort, a hostNetwork pod's ports being
hostPorts, already taken on the node by a pod bound there with the same protocol and port and an
overlapping hostIP (0.0.0.0 overlaps every address), or used by netlab itself in the node's network
namespace, as its Node object's RESERVED_PORTS annotation says: flannel's VXLAN port). Score: fewest
PreferNoSchedule taints the pod does not tolerate (kube-scheduler's TaintToleration score: such a node only when
every other is as bad), then fewest pods of the same owner on the node (spreading a ReplicaSet), then fewest
pods, then the name. A pod that
already names its node (spec.nodeName) is never scheduled: the name wins, as in Kubernetes; a pod
for another scheduler (spec.schedulerName) is left alone; Nodes being deleted are not candidates.

Binding sets spec.nodeName and the PodScheduled condition in one write (the API server's pods/binding);
events Scheduled "Successfully assigned NS/POD to NODE" and FailedScheduling "0/N nodes are available:
..." with the preemption sentence kubectl shows. A pod that stays unschedulable gets its event again only when the reason changes
(Kubernetes retries with back-off and counts every attempt).
"""

from __future__ import annotations

import heapq

from netlab.controllers.base import Action, Snapshot, bind, event, is_pod_active, update_status
from netlab.store.meta import controller_ref, fmt_time, get_condition, is_deleting

COMPONENT = "default-scheduler"
KINDS = ("Node", "Pod")
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"
RESERVED_PORTS = "netlab.io/reserved-host-ports"   # Node annotation: "8472/UDP,..." used by netlab itself


def host_ports(pod: dict) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) the pod asks for (the API server defaulted a hostNetwork pod's)."""
    spec = pod.get("spec") or {}
    out = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            hp = p.get("hostPort") or (p.get("containerPort") if spec.get("hostNetwork") else 0)
            if isinstance(hp, int) and hp > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", hp))
    return out


def reserved_ports(node: dict) -> list[tuple[str, str, int]]:
    text = ((node.get("metadata") or {}).get("annotations") or {}).get(RESERVED_PORTS) or ""
    out = []
    for item in text.split(","):
        port, _, proto = item.strip().partition("/")
        if port.isdigit():
            out.append(("0.0.0.0", proto or "TCP", int(port)))
    return out


def ports_conflict(want: list[tuple[str, str, int]], used: list[tuple[str, str, int]]) -> bool:
    """kube-scheduler's NodePorts: the same protocol and port, and hostIPs that overlap."""
    return any(wp == up and wproto == uproto and (wip == uip or "0.0.0.0" in (wip, uip))
               for wip, wproto, wp in want for uip, uproto, up in used)


def toleration_matches(tol: dict, taint: dict) -> bool:
    """Kubernetes' ToleratesTaint: effect (empty = all), key (empty with Exists = all), value."""
    if tol.get("effect") and tol["effect"] != taint.get("effect"):
        return False
    op = tol.get("operator") or "Equal"
    if tol.get("key"):
        if tol["key"] != taint.get("key"):
            return False
    elif op != "Exists":
        return False
    if op == "Exists":
        return True
    return (tol.get("value") or "") == (taint.get("value") or "")


def tolerates(tolerations, taint) -> bool:
    return any(toleration_matches(t, taint) for t in tolerations or [])


def untolerated_taint(pod: dict, node: dict, effects=("NoSchedule", "NoExecute")) -> dict | None:
    tols = (pod.get("spec") or {}).get("tolerations")
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in effects and not tolerates(tols, taint):
            return taint
    return None


def prefer_no_schedule(pod: dict, node: dict) -> int:
    """How many of the node's PreferNoSchedule taints the pod does not tolerate (kube-scheduler's
    TaintToleration score counts them: the fewer, the better)."""
    tols = (pod.get("spec") or {}).get("tolerations")
    return sum(1 for taint in (node.get("spec") or {}).get("taints") or []
               if taint.get("effect") == "PreferNoSchedule" and not tolerates(tols, taint))


def filter_node(pod: dict, node: dict, used_ports: list[tuple[str, str, int]] = ()) -> str | None:
    """None when the pod fits the node, else the scheduler's reason why not."""
    spec = pod.get("spec") or {}
    if (node.get("spec") or {}).get("unschedulable") and not tolerates(
            spec.get("tolerations"), {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}):
        return "node(s) were unschedulable"
    taint = untolerated_taint(pod, node)
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"
    labels = node["metadata"].get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return "node(s) didn't match Pod's node affinity/selector"
    want = host_ports(pod)
    if want and ports_conflict(want, list(used_ports) + reserved_ports(node)):
        return NODE_PORTS
    return None


def failed_message(n_nodes: int, reasons: dict[str, int]) -> str:
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    msg = f"0/{n_nodes} nodes are available: " + ", ".join(parts) + "."
    return msg + f" preemption: 0/{n_nodes} nodes are available: {n_nodes} Preemption is not helpful for scheduling."


def _filter_key(pod: dict, want: list[tuple[str, str, int]]) -> str | None:
    """What filter_node reads of a pod without host ports (its tolerations and nodeSelector), as a key under
    which one verdict per node serves every such pod of a round; None for a pod with host ports `want` (its
    verdict also depends on the ports the round's earlier bindings took)."""
    if want:
        return None
    spec = pod.get("spec") or {}
    return repr((spec.get("tolerations"), sorted((spec.get("nodeSelector") or {}).items())))


def decide(snap: Snapshot, now: float) -> list[Action]:
    nodes = [n for n in snap.list("Node") if not is_deleting(n)]
    load: dict[str, int] = {}
    owner_load: dict[tuple[str, str], int] = {}
    pending = []
    ports: dict[str, list[tuple[str, str, int]]] = {}   # node -> host ports of the pods bound to it
    for p in snap.list("Pod"):
        node = (p.get("spec") or {}).get("nodeName")
        owner = (controller_ref(p) or {}).get("uid", "")
        if node:
            if is_pod_active(p):
                ports.setdefault(node, []).extend(host_ports(p))
                load[node] = load.get(node, 0) + 1
                owner_load[(node, owner)] = owner_load.get((node, owner), 0) + 1
        elif is_pod_active(p) and (p.get("spec") or {}).get("schedulerName", COMPONENT) == COMPONENT:
            pending.append(p)  # pods for another scheduler (spec.schedulerName) are left to it
    pending.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
    actions: list[Action] = []
    t = fmt_time(now)
    # a ReplicaSet of 10,000 pods on 100 nodes: one filtering per kind of pod, not a million filter_node
    # calls, and the best node from a heap per (owner, kind of pod), not a min over every fitting node
    verdicts: dict[str, tuple[list[str], dict[str, int], dict[str, int]]] = {}
    heaps: dict[tuple[str, str], list[tuple[int, int, int, str]]] = {}

    def score(n: str, owner: str, avoid: dict[str, int]) -> tuple[int, int, int, str]:
        return avoid.get(n, 0), owner_load.get((n, owner), 0), load.get(n, 0), n

    def best_of(fits: list[str], owner: str, key: str | None, avoid: dict[str, int]) -> str:
        if key is None:
            return min(fits, key=lambda n: score(n, owner, avoid))
        heap = heaps.get((owner, key))
        if heap is None:
            heap = heaps[(owner, key)] = [score(n, owner, avoid) for n in fits]
            heapq.heapify(heap)
        # loads only grow, so an entry is never better than its node's current score: the first entry
        # that is still current is the minimum (a stale one goes back with its current score)
        while True:
            entry = heap[0]
            now_score = score(entry[-1], owner, avoid)
            if entry == now_score:
                return entry[-1]
            heapq.heapreplace(heap, now_score)

    for pod in pending:
        ns, name = pod["metadata"].get("namespace", "default"), pod["metadata"]["name"]
        owner = (controller_ref(pod) or {}).get("uid", "")
        want = host_ports(pod)
        key = _filter_key(pod, want)
        known = verdicts.get(key) if key is not None else None
        if known is None:
            reasons: dict[str, int] = {}
            fits = []
            avoid: dict[str, int] = {}   # fitting node -> its PreferNoSchedule taints the pod does not tolerate
            for node in nodes:
                why = filter_node(pod, node, ports.get(node["metadata"]["name"], []))
                if why is None:
                    fits.append(node["metadata"]["name"])
                    soft = prefer_no_schedule(pod, node)
                    if soft:
                        avoid[node["metadata"]["name"]] = soft
                else:
                    reasons[why] = reasons.get(why, 0) + 1
            if key is not None:
                verdicts[key] = (fits, reasons, avoid)
        else:
            fits, reasons, avoid = known
        status = dict(pod.get("status") or {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        if not fits:
            msg = failed_message(len(nodes), reasons) if nodes else "no nodes available to schedule pods"
            old = get_condition(pod, "PodScheduled")
            if old and old.get("message") == msg:
                continue
            status["conditions"] = conds + [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                             "message": msg, "lastProbeTime": None, "lastTransitionTime": t}]
            actions.append(update_status(dict(pod, status=status)))
            actions.append(event(pod, "Warning", "FailedScheduling", msg, COMPONENT))
            continue
        best = best_of(fits, owner, key, avoid)
        load[best] = load.get(best, 0) + 1
        ports.setdefault(best, []).extend(want)
        owner_load[(best, owner)] = owner_load.get((best, owner), 0) + 1
        status["conditions"] = conds + [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                         "lastTransitionTime": t}]
        actions.append(bind(dict(pod, spec=dict(pod.get("spec") or {}, nodeName=best), status=status)))
        actions.append(event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {best}", COMPONENT))
    return actions
