"""Whether a live lab's rollouts are done: what `up` waits for after its first pass (lab_spec.up)."""
from __future__ import annotations

from ..store.meta import get_condition, is_deleting


def settled(store, available: bool = True, built: bool = False) -> tuple[bool, str]:
    """Whether every Deployment's rollout is complete and no pod is being deleted; else what is
    still going on, in a few words. `built` (a lab run by agents, whose `up` builds nothing itself):
    and every pod bound to a node has its address (its host's agent built it)."""
    for d in store.list("Deployment"):
        spec, st = d.get("spec") or {}, d.get("status") or {}
        want = spec.get("replicas", 1)
        if spec.get("paused"):
            continue
        # a rollout under way or pods not available yet (`up` stops waiting on those once nothing has
        # progressed for a while: see `progress`)
        if (st.get("observedGeneration", 0) < d["metadata"].get("generation", 1)
                or st.get("updatedReplicas", 0) < want or st.get("replicas", 0) > st.get("updatedReplicas", 0)
                or (available and st.get("availableReplicas", 0) < st.get("updatedReplicas", 0))):
            cond = next((c for c in st.get("conditions") or [] if c.get("type") == "Progressing"), None)
            if cond and cond.get("reason") == "ProgressDeadlineExceeded":
                continue
            return False, f"deployment {d['metadata']['name']}: {st.get('updatedReplicas', 0)} of {want} updated, " \
                          f"{st.get('availableReplicas', 0)} available"
    for ds in store.list("DaemonSet"):   # a pod on every eligible node, of the current template, available
        st, want = ds.get("status") or {}, (ds.get("status") or {}).get("desiredNumberScheduled", 0)
        if (st.get("observedGeneration", 0) < ds["metadata"].get("generation", 1)
                or st.get("updatedNumberScheduled", 0) < want
                or (available and st.get("numberAvailable", 0) < want)):
            return False, f"daemonset {ds['metadata']['name']}: {st.get('updatedNumberScheduled', 0)} of {want} " \
                          f"updated, {st.get('numberAvailable', 0)} available"
    # (the store's shared, read-only objects: the pass before this parsed them, 10,000 of them in a big lab)
    for p in store.snapshot(("Pod",))[0]["Pod"]:
        if is_deleting(p):
            return False, f"pod {p['metadata']['name']} terminating"
        if not (p.get("spec") or {}).get("nodeName"):
            cond = get_condition(p, "PodScheduled")
            if cond is None or cond.get("reason") != "Unschedulable":
                return False, f"pod {p['metadata']['name']} pending"
        elif built and not (p.get("status") or {}).get("podIP"):
            return False, f"pod {p['metadata']['name']} being built on node {p['spec']['nodeName']}"
    return True, ""


def progress(store) -> tuple:
    """What moves while rollouts and deletions progress (not a restart count or a heartbeat): `up`
    stops waiting once this has not moved for a while."""
    # a snapshot: only what changed since the last look is parsed again (read-only objects)
    lists, _ = store.snapshot(("Deployment", "DaemonSet", "Pod"))
    deps = tuple((d["metadata"]["name"], *((d.get("status") or {}).get(k, 0) for k in
                  ("replicas", "updatedReplicas", "availableReplicas")))
                 for d in lists["Deployment"])
    deps += tuple((ds["metadata"]["name"], *((ds.get("status") or {}).get(k, 0) for k in
                   ("currentNumberScheduled", "updatedNumberScheduled", "numberAvailable")))
                  for ds in lists["DaemonSet"])
    pods = lists["Pod"]
    built = sum(1 for p in pods if (p.get("status") or {}).get("podIP"))   # a lab run by agents: pods built
    return deps, len(pods), sum(1 for p in pods if is_deleting(p)), built
