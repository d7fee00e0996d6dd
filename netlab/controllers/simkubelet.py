"""A simulated kubelet for unit tests and dry runs: no containers, only the status a kubelet
would write, driven by a (fake) clock.

Per node that is up: the node Lease is renewed every `heartbeat` seconds and the Ready condition
is True. Pods bound to it: `start_seconds` after being scheduled they are Running with an IP;
`ready_seconds` later they are Ready (never, when the pod carries the annotation
``sim.netlab.io/never-ready: "true"``, which stands for a failing readiness probe). A pod marked
for deletion is removed (grace 0) once its deletionTimestamp has come. Nodes in `down` do nothing
at all, like a partitioned node: no heartbeats, no status, their pods stay as they are.
"""

from __future__ import annotations

import ipaddress

from netlab.controllers.base import Action, Snapshot, delete, update_status
from netlab.controllers.nodelifecycle import LEASE_NAMESPACE
from netlab.store.meta import fmt_time, get_condition, is_deleting, parse_time

NEVER_READY = "sim.netlab.io/never-ready"
KINDS = ("Node", "Lease", "Pod")


class SimKubelet:
    def __init__(self, start_seconds: float = 1, ready_seconds: float = 1, heartbeat: float = 10,
                 pod_cidr: str = "10.244.0.0/16"):
        self.start_seconds, self.ready_seconds, self.heartbeat = start_seconds, ready_seconds, heartbeat
        self.down: set[str] = set()
        self.net = ipaddress.ip_network(pod_cidr)

    def decide(self, snap: Snapshot, now: float) -> list[Action]:
        t = fmt_time(now)
        out: list[Action] = self.node_actions(snap, now)
        used = {(p.get("status") or {}).get("podIP") for p in snap.list("Pod")}
        hosts = (str(ip) for ip in self.net.hosts() if str(ip) not in used)
        for pod in snap.list("Pod"):
            node = (pod.get("spec") or {}).get("nodeName")
            if not node or node in self.down or snap.get("Node", None, node) is None:
                continue
            out += self.pod_actions(pod, now, t, hosts)
        return out

    def node_actions(self, snap: Snapshot, now: float) -> list[Action]:
        """What the kubelets of the nodes that are up write about their nodes: the Lease renewed
        every `heartbeat` seconds, the Ready condition True (the lab's live kubelet uses this too)."""
        t = fmt_time(now)
        out: list[Action] = []
        for node in snap.list("Node"):
            name = node["metadata"]["name"]
            if name in self.down:
                continue
            lease = snap.get("Lease", LEASE_NAMESPACE, name)
            if lease is None:
                out.append(Action("create", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                             "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
                                             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                                      "renewTime": t}}))
            elif parse_time(lease["spec"].get("renewTime")) + self.heartbeat <= now:
                out.append(Action("update", dict(lease, spec=dict(lease["spec"], renewTime=t))))
            ready = get_condition(node, "Ready")
            if ready is None or ready.get("status") != "True":
                conds = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") != "Ready"]
                conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                              "message": "kubelet is posting ready status", "lastHeartbeatTime": t,
                              "lastTransitionTime": t})
                out.append(update_status(dict(node, status=dict(node.get("status") or {}, conditions=conds))))
        return out

    def pod_actions(self, pod: dict, now: float, t: str, hosts) -> list[Action]:
        md, st = pod["metadata"], dict(pod.get("status") or {})
        if is_deleting(pod):
            if parse_time(md["deletionTimestamp"]) <= now:
                return [delete(pod, grace_seconds=0)]
            return []
        sched = get_condition(pod, "PodScheduled")
        since = parse_time(sched.get("lastTransitionTime")) if sched else now
        conds = {c["type"]: c for c in st.get("conditions") or []}
        if st.get("phase") == "Pending" and now >= since + self.start_seconds:
            st.update(phase="Running", podIP=next(hosts), startTime=t,
                      containerStatuses=[{"name": c.get("name", "c"), "ready": False, "restartCount": 0,
                                          "started": True, "state": {"running": {"startedAt": t}}}
                                         for c in (pod.get("spec") or {}).get("containers") or [{}]])
            for ctype in ("Initialized", "ContainersReady", "Ready"):
                conds[ctype] = {"type": ctype, "status": "True" if ctype == "Initialized" else "False",
                                "lastProbeTime": None, "lastTransitionTime": t}
            st["podIPs"] = [{"ip": st["podIP"]}]
            st["conditions"] = list(conds.values())
            return [update_status(dict(pod, status=st))]
        if (st.get("phase") == "Running" and conds.get("Ready", {}).get("status") != "True"
                and (md.get("annotations") or {}).get(NEVER_READY) != "true"
                and now >= parse_time(st.get("startTime")) + self.ready_seconds):
            for ctype in ("ContainersReady", "Ready"):
                conds[ctype] = {"type": ctype, "status": "True", "lastProbeTime": None, "lastTransitionTime": t}
            st["conditions"] = list(conds.values())
            st["containerStatuses"] = [dict(c, ready=True) for c in st.get("containerStatuses") or []]
            return [update_status(dict(pod, status=st))]
        return []
