"""kubectl's client-side verbs on Deployments as pure functions: each takes objects as read from
the store and returns the object to write and kubectl's message, or raises ControllerError with
kubectl's text (exit status 1). ``rollout_status`` is kubectl's status viewer: the CLI loops on it
while watching the store until it reports done or raises.
"""

from __future__ import annotations

from netlab.controllers import deployutil as du
from netlab.controllers.base import clone
from netlab.controllers.validation import ControllerError
from netlab.store.meta import controller_ref, fmt_time, key_of

SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def scale(obj: dict, replicas) -> dict:
    """`kubectl scale`: a copy of `obj` with spec.replicas set; an error for kinds without replicas
    or for a negative count."""
    kind, _, name = key_of(obj)
    if kind not in SCALABLE:
        raise ControllerError(f"cannot scale {kind.lower()}/{name}: a {kind} has no replicas; scale a "
                              "Deployment, ReplicaSet or StatefulSet instead")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise ControllerError(f"The {kind} \"{name}\" is invalid: spec.replicas: Invalid value: {replicas!r}: "
                              "must be greater than or equal to 0; pass --replicas with 0 or more")
    out = clone(obj)
    out.setdefault("spec", {})["replicas"] = replicas
    return out


def history(d: dict, rss: list[dict]) -> list[tuple[int, dict]]:
    """(revision, ReplicaSet) of the Deployment's ReplicaSets, oldest revision first
    (``kubectl rollout history``)."""
    uid = d["metadata"].get("uid")
    own = [rs for rs in rss if (controller_ref(rs) or {}).get("uid") == uid]
    return sorted(((du.revision(rs), rs) for rs in own), key=lambda x: x[0])


def history_lines(d: dict, rss: list[dict]) -> list[str]:
    """`kubectl rollout history deploy/NAME`: the header and one line per revision with the
    kubernetes.io/change-cause annotation (<none> without one)."""
    rows = [("REVISION", "CHANGE-CAUSE")]
    rows += [(str(rev), (rs["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause", "<none>"))
             for rev, rs in history(d, rss)]
    width = max(len(r[0]) for r in rows) + 2
    return [f"deployment.apps/{d['metadata']['name']}"] + [r[0].ljust(width) + r[1] for r in rows]


def rollout_undo(d: dict, rss: list[dict], to_revision: int = 0) -> tuple[dict, str]:
    """`kubectl rollout undo [--to-revision N]`: (the Deployment with that ReplicaSet's pod template
    and annotations, kubectl's message). Revision 0 means the previous one."""
    name = d["metadata"]["name"]
    hist = history(d, rss)
    if (d.get("spec") or {}).get("paused"):
        raise ControllerError("you cannot rollback a paused deployment; resume it first with 'kubectl rollout "
                              "resume' and try again")
    if to_revision < 0:
        raise ControllerError(f"deployment/{name}: --to-revision {to_revision}: revision must be 0 or more")
    if to_revision == 0:
        revs = [r for r, _ in hist]
        prev = du.last_revision([rs for _, rs in hist])
        if not revs or prev == 0:
            raise ControllerError(f'no rollout history found for deployment "{name}"; '
                                  "there is no previous revision to go back to")
        to_revision = prev
    target = next((rs for r, rs in hist if r == to_revision), None)
    if target is None:
        have = ", ".join(str(r) for r, _ in hist) or "none"
        raise ControllerError(f"unable to find specified revision {to_revision} in history of deployment/{name}; "
                              f"revisions are: {have} (see rollout history)")
    out = clone(d)
    template = clone(target["spec"]["template"])
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(du.HASH_LABEL, None)
    if du.equal_ignore_hash(template, d["spec"].get("template")):
        return out, f"deployment.apps/{name} skipped rollback (current template already matches revision {to_revision})"
    out["spec"]["template"] = template
    ann = {k: v for k, v in (out["metadata"].get("annotations") or {}).items() if k in du._SKIP_COPY}
    for k, v in (target["metadata"].get("annotations") or {}).items():
        if k not in du._SKIP_COPY:
            ann[k] = v
    out["metadata"]["annotations"] = ann
    return out, f"deployment.apps/{name} rolled back"


def rollout_status(d: dict) -> tuple[str, bool]:
    """(message, done) as ``kubectl rollout status`` prints it; ControllerError on a deadline exceeded."""
    name, st = d["metadata"]["name"], d.get("status") or {}
    if d["metadata"].get("generation", 1) > st.get("observedGeneration", 0):
        return "Waiting for deployment spec update to be observed...", False
    cond = du.get_cond(st, "Progressing")
    if cond is not None and cond.get("reason") == du.TIMED_OUT:
        raise ControllerError(f'deployment "{name}" exceeded its progress deadline')
    want, updated = du.replicas(d), st.get("updatedReplicas", 0)
    if updated < want:
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} new replicas '
                "have been updated..."), False
    if st.get("replicas", 0) > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {st["replicas"] - updated} old replicas '
                "are pending termination..."), False
    if st.get("availableReplicas", 0) < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {st.get("availableReplicas", 0)} of '
                f"{updated} updated replicas are available..."), False
    return f'deployment "{name}" successfully rolled out', True


def rollout_restart(d: dict, now: float) -> tuple[dict, str]:
    """`kubectl rollout restart`: a new restartedAt annotation on the pod template starts a rollout."""
    name = d["metadata"]["name"]
    if (d.get("spec") or {}).get("paused"):
        raise ControllerError(f"deployments.apps \"{name}\" can't restart paused deployment (run rollout resume first)")
    out = clone(d)
    md = out["spec"].setdefault("template", {}).setdefault("metadata", {})
    md.setdefault("annotations", {})[RESTARTED_AT] = fmt_time(int(now))
    return out, f"deployment.apps/{name} restarted"


def set_paused(d: dict, paused: bool) -> tuple[dict, str]:
    """`kubectl rollout pause` (paused=True) / `rollout resume`."""
    name = d["metadata"]["name"]
    if bool((d.get("spec") or {}).get("paused")) == paused:
        raise ControllerError(f'deployments.apps "{name}" is {"already" if paused else "not"} paused')
    out = clone(d)
    if paused:
        out["spec"]["paused"] = True
    else:
        out["spec"].pop("paused", None)
    return out, f"deployment.apps/{name} {'paused' if paused else 'resumed'}"


def set_image(d: dict, images: dict[str, str]) -> tuple[dict, str]:
    """`kubectl set image deploy/NAME CONTAINER=IMAGE ...` ("*" sets every container)."""
    out = clone(d)
    containers = ((out.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    for cname, image in images.items():
        hit = [c for c in containers if cname in ("*", c.get("name"))]
        if not hit:
            raise ControllerError(f'unable to find container named "{cname}" in deployment/{d["metadata"]["name"]}; '
                                  "containers are: " + ", ".join(c.get("name", "") for c in containers))
        for c in hit:
            c["image"] = image
    return out, f"deployment.apps/{d['metadata']['name']} image updated"


def drain(node: dict, pods: list[dict], force: bool = False, ignore_daemonsets: bool = False,
          delete_emptydir_data: bool = False) -> tuple[dict, list[dict], list[str]]:
    """`kubectl drain NODE`: (the cordoned node, the pods to evict gracefully, kubectl's lines).
    Raises ControllerError (nothing changed) when a pod blocks the drain, naming the flag that
    overrides it, as kubectl does: pods without a controller (--force), DaemonSet pods
    (--ignore-daemonsets), pods with emptyDir volumes (--delete-emptydir-data)."""
    from netlab.controllers.nodelifecycle import cordon
    name = node["metadata"]["name"]
    mine = [p for p in pods if (p.get("spec") or {}).get("nodeName") == name
            and not p["metadata"].get("deletionTimestamp")]
    blockers: dict[str, list[str]] = {}
    evict = []
    for p in mine:
        ref = f"{p['metadata'].get('namespace', 'default')}/{p['metadata']['name']}"
        if "kubernetes.io/config.mirror" in (p["metadata"].get("annotations") or {}):
            continue
        owner = controller_ref(p)
        terminal = (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if owner and owner.get("kind") == "DaemonSet" and not terminal:
            if not ignore_daemonsets:
                blockers.setdefault("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)",
                                    []).append(ref)
            continue
        if owner is None and not terminal and not force:
            blockers.setdefault("cannot delete Pods that declare no controller (use --force to override)",
                                []).append(ref)
            continue
        if any("emptyDir" in v for v in (p.get("spec") or {}).get("volumes") or []) and not delete_emptydir_data:
            blockers.setdefault("cannot delete Pods with local storage (use --delete-emptydir-data to override)",
                                []).append(ref)
            continue
        evict.append(p)
    if blockers:
        detail = ", ".join(f"{why}: {', '.join(refs)}" for why, refs in sorted(blockers.items()))
        raise ControllerError(f'unable to drain node "{name}" due to error: {detail}')
    lines = [f"node/{name} cordoned"]
    lines += [f"evicting pod {p['metadata'].get('namespace', 'default')}/{p['metadata']['name']}" for p in evict]
    lines += [f"pod/{p['metadata']['name']} evicted" for p in evict]
    lines.append(f"node/{name} drained")
    return cordon(node), evict, lines


def wait_for(obj: dict | None, condition: str) -> tuple[bool, str]:
    """`kubectl wait --for=...` on one object as last read (None when it is gone): (met, message).
    Understands ``condition=NAME`` (status True), ``condition=NAME=VALUE`` (case-insensitive, as
    kubectl) and ``delete``; raises ControllerError for anything else."""
    if condition == "delete":
        return obj is None, "" if obj is not None else "condition met"
    if not condition.startswith("condition="):
        raise ControllerError(f'unrecognized condition: "{condition}"; use --for=condition=NAME[=VALUE] or --for=delete')
    want = condition[len("condition="):]
    name, _, value = want.partition("=")
    value = value or "True"
    if obj is None:
        return False, ""
    kind, _, oname = key_of(obj)
    group = {"Deployment": "deployment.apps", "ReplicaSet": "replicaset.apps", "Job": "job.batch",
             "CronJob": "cronjob.batch"}.get(kind, kind.lower())
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type", "").lower() == name.lower() and str(c.get("status", "")).lower() == value.lower():
            return True, f"{group}/{oname} condition met"
    return False, ""
