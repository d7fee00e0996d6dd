"""Node lifecycle and taint-based eviction as pure decisions, following Kubernetes'
pkg/controller/nodelifecycle and pkg/controller/tainteviction (read for facts, written anew).

Health: a node's last heartbeat is the later of its Lease's ``spec.renewTime`` (namespace
kube-node-lease, named after the node) and its Ready condition's ``lastHeartbeatTime``. When that
is older than the node-monitor grace period (Kubernetes' default 40 s, 50 s since v1.32; a lab
uses a short one, e.g. 10 s), the controller sets the node's conditions to Unknown
("NodeStatusUnknown", "Kubelet stopped posting node status."), or "NodeStatusNeverUpdated" for a
node that never reported within the startup grace period (Kubernetes: 60 s).

Taints: Ready=False -> node.kubernetes.io/not-ready, Ready=Unknown -> node.kubernetes.io/unreachable,
each with NoExecute (timeAdded set) and NoSchedule; spec.unschedulable (``cordon``) ->
node.kubernetes.io/unschedulable:NoSchedule. Events NodeNotReady / NodeReady ("Node N status is
now: NodeNotReady") when the not-ready/unreachable taints come and go, and the pods of a node
that is not ready are marked not ready (event NodeNotReady "Node is not ready" on each).

Eviction: a pod on a node with NoExecute taints is deleted (gracefully, event TaintManagerEviction
"Marking for deletion Pod NS/NAME") at once if it does not tolerate one of them, else when the
smallest tolerationSeconds of its matching tolerations has passed since the taints came (never
without tolerationSeconds). ``default_tolerations`` is Kubernetes' DefaultTolerationSeconds
admission: pods get not-ready and unreachable NoExecute tolerations for 300 s (a lab's
defaultTolerationSeconds) unless they already tolerate them; whatever writes a pod applies it: the
runner for the controllers' pods (runner.py), live.objects.apply_objects' `admit` for the pods `up`,
`apply`, `create`, `replace` and `patch` write (live.sync.pod_admission).

The runner runs the two halves as two controllers (``decide_health`` on Nodes and Leases,
``decide_eviction`` on Nodes and Pods), as Kubernetes runs the node lifecycle and the taint
eviction controllers; ``decide`` does both at once.

Disruption (Kubernetes' zone states): the nodes are grouped in zones by their region and zone labels
(topology.kubernetes.io/region, /zone; unlabelled nodes are one zone). A zone where no node is Ready is
in full disruption; one where more than 2 nodes and at least 55% of them are not Ready
(--unhealthy-zone-threshold) in partial disruption. When every zone is in full disruption the
controller takes it for its own connectivity problem, not the nodes' (a store that stalled for longer
than the grace period, every kubelet's renewals held up): no node gets a NoExecute not-ready or
unreachable taint and those already there are removed, so no pod is evicted; the conditions, the
NoSchedule taints and the pods' Ready still follow the heartbeats. In partial disruption a zone of at
most 50 nodes (--large-cluster-size-threshold) taints no more nodes NoExecute (its eviction rate is
0); a larger one taints one node per 100 s (--secondary-node-eviction-rate 0.01), counted from the
zone's latest NoExecute taint's timeAdded.

Simplification: the eviction clock starts at the taint's timeAdded (Kubernetes starts it when the
taint manager first sees the pod under the taint, which is the same moment for pods already
running there); a zone in its normal state taints its not-ready nodes at once (Kubernetes: one node
every 10 s, --node-eviction-rate 0.1).
"""

from __future__ import annotations

from netlab.controllers.base import Action, Snapshot, event, update, update_status
from netlab.controllers.scheduler import toleration_matches
from netlab.store.meta import fmt_time, get_condition, is_deleting, parse_time

COMPONENT = "node-controller"
EVICTION_COMPONENT = "taint-eviction-controller"
KINDS = ("Node", "Lease", "Pod")
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
OWN_TAINTS = {NOT_READY, UNREACHABLE, UNSCHEDULABLE}
LEASE_NAMESPACE = "kube-node-lease"
K8S_GRACE, K8S_STARTUP_GRACE, K8S_TOLERATION_SECONDS = 40, 60, 300
CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
ZONE_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone")
UNHEALTHY_ZONE_THRESHOLD = 0.55      # kube-controller-manager's --unhealthy-zone-threshold
LARGE_CLUSTER_SIZE = 50              # --large-cluster-size-threshold
SECONDARY_TAINT_INTERVAL = 100.0     # s between new NoExecute taints in a large partially disrupted zone (0.01/s)
NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"


def zone_of(node: dict) -> tuple[str, str]:
    labels = node["metadata"].get("labels") or {}
    return tuple(labels.get(k, "") for k in ZONE_LABELS)


def zone_state(readies: list[str | None]) -> str:
    """A zone's state from its nodes' Ready statuses (a node without one counts as not ready)."""
    not_ready = sum(1 for r in readies if r != "True")
    if not_ready and not_ready == len(readies):
        return FULL
    if not_ready > 2 and not_ready / len(readies) >= UNHEALTHY_ZONE_THRESHOLD:
        return PARTIAL
    return NORMAL


def default_tolerations(pod: dict, seconds: int = K8S_TOLERATION_SECONDS) -> dict:
    """The pod with the DefaultTolerationSeconds admission applied (a new dict)."""
    spec = dict(pod.get("spec") or {})
    tols = list(spec.get("tolerations") or [])
    for key in (NOT_READY, UNREACHABLE):
        taint = {"key": key, "effect": "NoExecute"}
        if not any(toleration_matches(t, taint) for t in tols):
            tols.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})
    spec["tolerations"] = tols
    return dict(pod, spec=spec)


def cordon(node: dict, unschedulable: bool = True) -> dict:
    """`kubectl cordon` (uncordon with False): the node with spec.unschedulable set."""
    spec = dict(node.get("spec") or {})
    if unschedulable:
        spec["unschedulable"] = True
    else:
        spec.pop("unschedulable", None)
    return dict(node, spec=spec)


def last_heartbeat(node: dict, lease: dict | None) -> float | None:
    times = []
    if lease is not None:
        times.append(parse_time((lease.get("spec") or {}).get("renewTime")))
    ready = get_condition(node, "Ready")
    if ready is not None:
        times.append(parse_time(ready.get("lastHeartbeatTime")))
    times = [t for t in times if t is not None]
    return max(times) if times else None


def min_toleration_seconds(pod: dict, taints: list[dict]) -> float | None:
    """0 when a taint is not tolerated; None when tolerated forever; else the smallest seconds."""
    tols = (pod.get("spec") or {}).get("tolerations") or []
    used = []
    for taint in taints:
        match = [t for t in tols if toleration_matches(t, taint)]
        if not match:
            return 0
        used += match
    secs = [t["tolerationSeconds"] for t in used if t.get("tolerationSeconds") is not None]
    if not secs:
        return None
    return max(0, min(secs))


class NodeLifecycle:
    """decide(snapshot, now) with the lab's periods."""

    def __init__(self, grace: float = K8S_GRACE, startup_grace: float = K8S_STARTUP_GRACE):
        self.grace, self.startup_grace = grace, startup_grace

    def node_conditions(self, node: dict, lease: dict | None, now: float) -> list[dict] | None:
        """The node's conditions set to Unknown when its heartbeat is too old, else None."""
        beat = last_heartbeat(node, lease)
        if beat is None:
            created = parse_time(node["metadata"].get("creationTimestamp")) or now
            if now <= created + self.startup_grace:
                return None
        elif now <= beat + self.grace:
            return None
        t = fmt_time(now)
        conds = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
        changed = False
        for ctype in CONDITIONS:
            cur = next((c for c in conds if c.get("type") == ctype), None)
            if cur is None:
                conds.append({"type": ctype, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                              "message": "Kubelet never posted node status.", "lastHeartbeatTime": t,
                              "lastTransitionTime": t})
                changed = True
            elif cur.get("status") != "Unknown":
                cur.update(status="Unknown", reason="NodeStatusUnknown",
                           message="Kubelet stopped posting node status.", lastTransitionTime=t)
                changed = True
        return conds if changed else None

    def decide(self, snap: Snapshot, now: float) -> list[Action]:
        """Node health and taint-based eviction in one decision (see decide_health and
        decide_eviction for the two halves the runner runs as separate controllers)."""
        actions, states = self._health(snap, now)
        return actions + self._eviction(snap, states, now)

    def decide_health(self, snap: Snapshot, now: float) -> list[Action]:
        """Conditions, taints and NodeNotReady/NodeReady events from heartbeats (kinds Node, Lease)."""
        return self._health(snap, now)[0]

    def decide_eviction(self, snap: Snapshot, now: float) -> list[Action]:
        """Pods of nodes that are not ready marked not ready; NoExecute evictions (kinds Node, Pod):
        Kubernetes' taint eviction controller, separate so that a lease renewal does not look at
        every pod."""
        states = {}
        for node in snap.list("Node"):
            conds = (node.get("status") or {}).get("conditions") or []
            ready = next((c.get("status") for c in conds if c.get("type") == "Ready"), None)
            states[node["metadata"]["name"]] = (ready, list((node.get("spec") or {}).get("taints") or []))
        return self._eviction(snap, states, now)

    @staticmethod
    def zones(nodes: list[dict], readies: dict[str, str | None]) -> dict[tuple, tuple[str, list[dict]]]:
        """zone -> (its state (zone_state) as the nodes' Ready statuses now stand, its nodes)."""
        by_zone: dict[tuple, list[dict]] = {}
        for node in nodes:
            by_zone.setdefault(zone_of(node), []).append(node)
        return {z: (zone_state([readies[n["metadata"]["name"]] for n in members]), members)
                for z, members in by_zone.items()}

    @staticmethod
    def _noexec(node: dict) -> list[dict]:
        """The node's NoExecute not-ready and unreachable taints (the ones this controller adds)."""
        return [x for x in (node.get("spec") or {}).get("taints") or []
                if x.get("key") in (NOT_READY, UNREACHABLE) and x.get("effect") == "NoExecute"]

    @classmethod
    def _latest_noexec(cls, nodes: list[dict]) -> float | None:
        """The latest timeAdded of those taints among `nodes`."""
        times = [parse_time(x.get("timeAdded")) for n in nodes for x in cls._noexec(n)]
        times = [t for t in times if t is not None]
        return max(times) if times else None

    def _health(self, snap: Snapshot, now: float):
        actions: list[Action] = []
        states: dict[str, tuple] = {}
        t = fmt_time(now)
        nodes = snap.list("Node")
        looked: list[tuple[dict, list]] = []
        for node in nodes:
            name = node["metadata"]["name"]
            lease = snap.get("Lease", LEASE_NAMESPACE, name)
            conds = self.node_conditions(node, lease, now)
            if conds is not None:
                actions.append(update_status(dict(node, status=dict(node.get("status") or {}, conditions=conds))))
            else:
                conds = (node.get("status") or {}).get("conditions") or []
            looked.append((node, conds))
        readies = {node["metadata"]["name"]: next((c.get("status") for c in conds if c.get("type") == "Ready"), None)
                   for node, conds in looked}
        zones = self.zones(nodes, readies)
        # every zone fully disrupted: the controller's own problem, not the nodes' (no NoExecute taint)
        master_down = bool(zones) and all(zst == FULL for zst, _ in zones.values())
        # a large partially disrupted zone: one new NoExecute taint per SECONDARY_TAINT_INTERVAL
        budget = {}
        for z, (zst, members) in zones.items():
            if zst == PARTIAL and len(members) > LARGE_CLUSTER_SIZE:
                last = self._latest_noexec(members)
                budget[z] = 1 if last is None or now >= last + SECONDARY_TAINT_INTERVAL else 0
            elif zst == PARTIAL:
                budget[z] = 0
        for node, conds in looked:
            name = node["metadata"]["name"]
            # A node that has not reported yet (no Ready condition, still in its startup grace)
            # gets no condition taints, as in Kubernetes.
            ready = readies[name]
            want = []
            if ready == "False":
                want += [(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")]
            elif ready == "Unknown":
                want += [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")]
            z = zone_of(node)
            if master_down:
                want = [w for w in want if w[1] != "NoExecute"]
            elif z in budget and not self._noexec(node) and any(w[1] == "NoExecute" for w in want):
                if budget[z] > 0:
                    budget[z] -= 1     # this node's taint is the zone's one for now
                else:
                    want = [w for w in want if w[1] != "NoExecute"]   # held back by the zone's rate
            if (node.get("spec") or {}).get("unschedulable"):
                want.append((UNSCHEDULABLE, "NoSchedule"))
            taints = list((node.get("spec") or {}).get("taints") or [])
            kept = [x for x in taints if x.get("key") not in OWN_TAINTS or (x["key"], x.get("effect")) in want]
            have = {(x["key"], x.get("effect")) for x in kept}
            for key, effect in want:
                if (key, effect) not in have:
                    taint = {"key": key, "effect": effect}
                    if effect == "NoExecute":
                        taint["timeAdded"] = t
                    kept.append(taint)
            was_down = any(x.get("key") in (NOT_READY, UNREACHABLE) for x in taints)
            if kept != taints:
                actions.append(update(dict(node, spec=dict(node.get("spec") or {}, taints=kept))))
                is_down = ready in ("False", "Unknown")
                if is_down and not was_down:
                    actions.append(event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady",
                                         COMPONENT))
                elif was_down and not is_down:
                    actions.append(event(node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady",
                                         COMPONENT))
            states[name] = (ready, kept)
        return actions, states

    def _eviction(self, snap: Snapshot, states: dict, now: float) -> list[Action]:
        pods_by_node: dict[str, list[dict]] = {}
        for p in snap.list("Pod"):
            n = (p.get("spec") or {}).get("nodeName")
            if n in states:
                pods_by_node.setdefault(n, []).append(p)
        t = fmt_time(now)
        actions: list[Action] = []
        for name, (ready, taints) in states.items():
            pods = pods_by_node.get(name, [])
            if ready in ("False", "Unknown"):
                actions += self.mark_pods_not_ready(pods, t)
            actions += self.evict(pods, [x for x in taints if x.get("effect") == "NoExecute"], now)
        return actions

    @staticmethod
    def mark_pods_not_ready(pods, t) -> list[Action]:
        out = []
        for p in pods:
            c = get_condition(p, "Ready")
            if c is None or c.get("status") != "True" or is_deleting(p):
                continue
            conds = [dict(x, status="False", lastTransitionTime=t) if x.get("type") == "Ready" else x
                     for x in p["status"]["conditions"]]
            out.append(update_status(dict(p, status=dict(p["status"], conditions=conds))))
            out.append(event(p, "Warning", "NodeNotReady", "Node is not ready", COMPONENT))
        return out

    @staticmethod
    def evict(pods, noexec: list[dict], now: float) -> list[Action]:
        if not noexec:
            return []
        since = min(parse_time(x.get("timeAdded")) or now for x in noexec)
        out = []
        for p in pods:
            if is_deleting(p) or (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            secs = min_toleration_seconds(p, noexec)
            if secs is None or now < since + secs:
                continue
            md = p["metadata"]
            grace = (p.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            out.append(Action("delete", p, grace_seconds=grace))
            out.append(event(p, "Normal", "TaintManagerEviction",
                             f"Marking for deletion Pod {md.get('namespace', 'default')}/{md['name']}",
                             EVICTION_COMPONENT))
        return out

    def next_deadline(self, snap: Snapshot) -> float | None:
        """The earliest time at which decide() may change something without any write (a node's
        grace running out, a toleration expiring): the control loop's next timer."""
        times = [t for t in (self.health_deadline(snap), self.eviction_deadline(snap)) if t is not None]
        return min(times) if times else None

    def health_deadline(self, snap: Snapshot) -> float | None:
        times = []
        for node in snap.list("Node"):
            beat = last_heartbeat(node, snap.get("Lease", LEASE_NAMESPACE, node["metadata"]["name"]))
            if beat is not None:
                times.append(beat + self.grace)
            elif get_condition(node, "Ready") is None and node["metadata"].get("creationTimestamp"):
                times.append(parse_time(node["metadata"]["creationTimestamp"]) + self.startup_grace)
        rated = self.rate_deadline(snap)
        if rated is not None:
            times.append(rated)
        return min(times) if times else None

    def rate_deadline(self, snap: Snapshot) -> float | None:
        """When a large partially disrupted zone may taint its next not-ready node (its rate)."""
        times = []
        nodes = snap.list("Node")
        readies = {n["metadata"]["name"]: (get_condition(n, "Ready") or {}).get("status") for n in nodes}
        for zst, members in self.zones(nodes, readies).values():
            if zst != PARTIAL or len(members) <= LARGE_CLUSTER_SIZE:
                continue
            last = self._latest_noexec(members)
            waiting = [n for n in members if readies[n["metadata"]["name"]] in ("False", "Unknown")
                       and not self._noexec(n)]
            if waiting and last is not None:
                times.append(last + SECONDARY_TAINT_INTERVAL)
        return min(times) if times else None

    def eviction_deadline(self, snap: Snapshot) -> float | None:
        noexec = {}
        for node in snap.list("Node"):
            ts = [x for x in (node.get("spec") or {}).get("taints") or []
                  if x.get("effect") == "NoExecute" and x.get("timeAdded")]
            if ts:
                noexec[node["metadata"]["name"]] = ts
        times = []
        for p in snap.list("Pod") if noexec else []:
            taints = noexec.get((p.get("spec") or {}).get("nodeName"))
            if taints and not is_deleting(p):
                secs = min_toleration_seconds(p, taints)
                if secs:
                    times.append(min(parse_time(x["timeAdded"]) for x in taints) + secs)
        return min(times) if times else None
