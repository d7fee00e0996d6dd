"""What the kubelets see of each pod's containers, as the pod's status reports it (`sync.write_status`):
`containerStatuses[].state` (running; terminated with its reason and exit code; waiting in
CrashLoopBackOff with the last termination; waiting in ContainerCreating before the pod is built), the
pod's phase from them (Pending, Running, Succeeded, Failed) and the kubelet's events for the changes
(Created/Started when a container starts, BackOff when it is held back after failing again), as a
kubelet reports them. The containers are read as `netlab get pods` reads them
(`dataplane.status.container_statuses`), without entering the pods' namespaces (readiness stays what
the pass decided).
"""
from __future__ import annotations

from typing import Any

from ..controllers.kubelet import container_status, pod_phase
from ..dataplane import status as dstatus
from ..dataplane import supervise
from ..model.objects import Cluster, Pod
from ..store.meta import fmt_time, parse_time


def views(cluster: Cluster, st: dict[str, Any]) -> dict[str, dstatus.Builtin]:
    """pod key -> its node's built-in server as seen now (alive, what its status file says of the pod);
    one process check and one file read per node; no namespace is entered."""
    servers = st.get("servers") or {}
    alive = {n.name: supervise.server_alive(cluster, n, servers.get(n.name)) for n in cluster.nodes}
    said = {n: supervise.server_pods(cluster.name, n, servers.get(n)) if ok else {} for n, ok in alive.items()}
    return {p.key: dstatus.Builtin(alive.get(p.node, False), said.get(p.node, {}).get(p.key) or {}, look=False)
            for p in cluster.pods}


def container_statuses(cluster: Cluster, pod: Pod, rec: dict, view: dstatus.Builtin, old: dict, ready: bool,
                       started: float, now: float) -> list[dict]:
    """The pod's containerStatuses: running ones as before (ready as the pass decided), ended ones
    terminated (Completed / Error, exit code, finishedAt kept from the first time it was seen),
    CrashLoopBackOff ones waiting with their last termination; all waiting in ContainerCreating while
    the pod is not built yet."""
    restarts = int(rec.get("restarts", 0))
    old_cs = {c["name"]: c for c in old.get("containerStatuses") or []}
    if rec.get("uid") != pod.uid:
        return [container_status(c.name, "waiting", waiting_reason="ContainerCreating") for c in pod.containers]
    seen = {c.name: c for c in dstatus.container_statuses(cluster, pod, rec, view)}
    out = []
    for c in pod.containers:
        prev = old_cs.get(c.name) or {}
        pstate = prev.get("state") or {}
        obs = seen.get(c.name)
        started_at = parse_time((pstate.get("running") or {}).get("startedAt")) or started
        if obs is None or obs.state == "running":
            out.append(container_status(c.name, "running", started_at=started_at, restart_count=restarts,
                                        ready=ready, started=True))
            continue
        finished = parse_time((pstate.get("terminated") or {}).get("finishedAt")) or now
        code = obs.exit_code if obs.state == "terminated" else obs.last_exit
        if obs.state == "terminated":
            cs = container_status(c.name, "terminated", started_at=started_at, finished_at=finished,
                                  exit_code=code if code is not None else 1, restart_count=restarts)
        else:   # CrashLoopBackOff: held back after ending again
            last = {"exitCode": code if code is not None else 1, "reason": obs.last_reason or "Error",
                    "finishedAt": fmt_time(finished)}
            cs = container_status(c.name, "waiting", restart_count=restarts, waiting_reason=obs.reason,
                                  waiting_message=f"back-off restarting failed container={c.name} "
                                                  f"pod={pod.name}_{pod.namespace}({pod.uid})",
                                  last_terminated=last)
        out.append(cs)
    return out


def phase(statuses: list[dict], restart_policy: str) -> str:
    return pod_phase(statuses, restart_policy)


def completed(conditions: list[dict], phase_: str) -> list[dict]:
    """A pod that succeeded: its ContainersReady and Ready are False for reason PodCompleted, as the
    kubelet says."""
    if phase_ != "Succeeded":
        return conditions
    out = []
    for c in conditions:
        if c["type"] in ("ContainersReady", "Ready"):
            c = {k: v for k, v in c.items() if k != "message"}
            c["reason"] = "PodCompleted"
        out.append(c)
    return out


def events(pod: Pod, old: dict, new: list[dict]) -> list[tuple[str, str, str]]:
    """The kubelet's events for what changed: (type, reason, message)."""
    out = []
    before = {c["name"]: c for c in old.get("containerStatuses") or []}
    images = {c.name: c.image or "netlab/netexec" for c in pod.containers}
    for cs in new:
        prev = before.get(cs["name"]) or {}
        pstate, state = prev.get("state") or {}, cs["state"]
        ran = "running" in state or "terminated" in state or "lastState" in cs
        if (not prev and ran) or ("running" in state and (
                "running" not in pstate or cs.get("restartCount", 0) != prev.get("restartCount", 0))):
            if not prev or "running" not in pstate:
                out.append(("Normal", "Pulled", f'Container image "{images.get(cs["name"], "")}" already present '
                                                "on machine"))
            out.append(("Normal", "Created", f"Created container: {cs['name']}"))
            out.append(("Normal", "Started", f"Started container {cs['name']}"))
        reason = (state.get("waiting") or {}).get("reason")
        if reason == "CrashLoopBackOff" and (pstate.get("waiting") or {}).get("reason") != reason:
            out.append(("Warning", "BackOff", f"Back-off restarting failed container {cs['name']} in pod "
                                              f"{pod.name}_{pod.namespace}({pod.uid})"))
    return out
