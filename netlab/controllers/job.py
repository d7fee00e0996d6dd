"""The Job controller (batch/v1), as Kubernetes' pkg/controller/job runs it (read for facts, written
anew): a pure `decide(snapshot, now)`.

For each Job:
- the selector is generated when the Job has none (not manualSelector): the labels
  batch.kubernetes.io/controller-uid and batch.kubernetes.io/job-name (and the legacy controller-uid
  and job-name) on the selector and the pod template, as the API server sets them on create;
- min(parallelism, remaining completions) pods are kept active; Indexed: one pod per index not yet
  succeeded, lowest first, each with the annotation and label batch.kubernetes.io/job-completion-index
  and the env JOB_COMPLETION_INDEX; after failures a new pod waits the controller's back-off
  (10 s doubling, at most 6 min);
- succeeded and failed pods are counted (the pods are kept, as Kubernetes keeps them); the Job fails
  (FailureTarget, then Failed once no pod runs; reason BackoffLimitExceeded) when failed pods exceed
  backoffLimit or, with restartPolicy OnFailure, the active pods' container restarts reach it; or
  when it has been active longer than activeDeadlineSeconds (DeadlineExceeded); on failure its active
  pods are deleted;
- it succeeds (SuccessCriteriaMet, then Complete with completionTime once no pod runs) when
  `completions` pods succeeded (Indexed: every index), or, without completions (a work queue), once
  one pod succeeded and none is active;
- suspend: active pods deleted, condition Suspended; startTime is reset when it resumes;
- ttlSecondsAfterFinished: the finished Job is deleted that long after it finished (its pods go with
  it through the garbage collector).
Not emulated: podFailurePolicy, successPolicy, backoffLimitPerIndex, podReplacementPolicy (the
spec layer reports them as ignored). Counting reads the pods that exist (Kubernetes keeps counts in
status with tracking finalizers): a finished pod deleted by hand is no longer counted.
"""
from __future__ import annotations

import json

from netlab.controllers.base import (Action, Snapshot, clone, create, delete, event, generated_name, is_pod_active,
                                     is_pod_ready, update, update_status)
from netlab.store.meta import controller_ref, fmt_time, get_condition, is_deleting, owner_reference, parse_time

KINDS = ("Job", "Pod")
COMPONENT = "job-controller"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_UID, LEGACY_NAME = "controller-uid", "job-name"
INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
BACKOFF_BASE, BACKOFF_MAX = 10.0, 360.0
DEFAULT_GRACE = 30


def finished(job: dict) -> str | None:
    """"Complete" or "Failed" when the Job has finished."""
    for t in ("Complete", "Failed"):
        c = get_condition(job, t)
        if c and c.get("status") == "True":
            return t
    return None


def finish_time(job: dict) -> float | None:
    t = finished(job)
    return parse_time(get_condition(job, t).get("lastTransitionTime")) if t else None


def _set_condition(conds: list[dict], ctype: str, reason: str, message: str, now: float) -> list[dict]:
    out = [c for c in conds if c["type"] != ctype]
    out.append({"type": ctype, "status": "True", "lastProbeTime": fmt_time(now), "lastTransitionTime": fmt_time(now),
                "reason": reason, "message": message})
    return out


def index_of(pod: dict) -> int | None:
    md = pod["metadata"]
    v = (md.get("annotations") or {}).get(INDEX, (md.get("labels") or {}).get(INDEX))
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def with_selector(job: dict) -> dict | None:
    """The Job with its generated selector and template labels, or None when it needs none."""
    spec = job.get("spec") or {}
    if spec.get("manualSelector") or spec.get("selector"):
        return None
    uid, name = job["metadata"].get("uid"), job["metadata"]["name"]
    labels = {CONTROLLER_UID: uid, JOB_NAME: name, LEGACY_UID: uid, LEGACY_NAME: name}
    new = clone(job)
    new["spec"]["selector"] = {"matchLabels": {CONTROLLER_UID: uid}}
    tmpl = new["spec"].setdefault("template", {})
    tmd = tmpl.setdefault("metadata", {})
    tmd["labels"] = dict(tmd.get("labels") or {}, **labels)
    return new


def pod_for(job: dict, name: str, index: int | None) -> dict:
    t = job["spec"].get("template") or {}
    tmd = t.get("metadata") or {}
    md = {"name": name, "generateName": name.rsplit("-", 1)[0] + "-",
          "namespace": job["metadata"].get("namespace", "default"),
          "labels": dict(tmd.get("labels") or {}), "ownerReferences": [owner_reference(job)]}
    ann = dict(tmd.get("annotations") or {})
    spec = clone(t.get("spec") or {})
    if index is not None:
        ann[INDEX] = str(index)
        md["labels"][INDEX] = str(index)
        for c in spec.get("containers") or []:
            env = [e for e in c.get("env") or [] if e.get("name") != INDEX_ENV]
            c["env"] = env + [{"name": INDEX_ENV, "value": str(index)}]
    if ann:
        md["annotations"] = ann
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": {"phase": "Pending"}}


def _restarts(pods: list[dict]) -> int:
    return sum(int(cs.get("restartCount", 0)) for p in pods
               for cs in (p.get("status") or {}).get("containerStatuses") or [])


def _ended_at(pod: dict) -> float:
    times = [parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
             for cs in (pod.get("status") or {}).get("containerStatuses") or []]
    times = [t for t in times if t is not None]
    return max(times) if times else parse_time(pod["metadata"].get("creationTimestamp")) or 0.0


def backoff_until(failed: list[dict]) -> float | None:
    """When the controller may create a pod again after `failed` pods (10 s doubling, at most 6 min)."""
    if not failed:
        return None
    delay = min(BACKOFF_BASE * 2 ** (len(failed) - 1), BACKOFF_MAX)
    return max(_ended_at(p) for p in failed) + delay


def completions_of(job: dict) -> int | None:
    return (job.get("spec") or {}).get("completions")


def sync_job(snap: Snapshot, job: dict, now: float, taken: set) -> list[Action]:
    spec = job.get("spec") or {}
    if is_deleting(job):
        return []
    gen = with_selector(job)
    if gen is not None:
        return [update(gen)]
    pods = snap.owned_by("Pod", job)
    active = [p for p in pods if is_pod_active(p)]
    succeeded = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    old = job.get("status") or {}
    status = dict(old)
    conds = list(old.get("conditions") or [])
    actions: list[Action] = []
    done = finished(job)
    indexed = spec.get("completionMode") == "Indexed"
    completions = completions_of(job)
    parallelism = int(spec.get("parallelism", 1))
    backoff = int(spec.get("backoffLimit", 6))
    policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")

    def grace(p):
        return (p.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)

    if done is None:
        failing = get_condition(job, "FailureTarget")
        succeeding = get_condition(job, "SuccessCriteriaMet")
        done_idx = sorted({i for i in map(index_of, succeeded) if i is not None and i < (completions or 0)})
        if failing is None and succeeding is None:
            why = None
            start = parse_time(old.get("startTime"))
            ads = spec.get("activeDeadlineSeconds")
            if ads is not None and start is not None and not spec.get("suspend") and now >= start + ads:
                why = ("DeadlineExceeded", "Job was active longer than specified deadline")
            elif len(failed) > backoff or (policy == "OnFailure" and (
                    _restarts(active) > 0 if backoff == 0 else _restarts(active) >= backoff)):
                why = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            if why:
                conds = _set_condition(conds, "FailureTarget", *why, now)
                failing = conds[-1]
            elif (indexed and len(done_idx) >= (completions or 0)) or (
                    not indexed and completions is not None and len(succeeded) >= completions) or (
                    completions is None and succeeded and not active):
                conds = _set_condition(conds, "SuccessCriteriaMet", "CompletionsReached",
                                       "Reached expected number of succeeded pods", now)
                succeeding = conds[-1]
        if failing is not None or succeeding is not None:
            for p in active:
                actions.append(delete(p, grace_seconds=grace(p)))
            if not active and not any(is_deleting(p) for p in pods):   # once no pod of it runs
                if failing is not None:
                    conds = _set_condition(conds, "Failed", failing["reason"], failing["message"], now)
                    actions.append(event(job, "Warning", failing["reason"], failing["message"], COMPONENT))
                else:
                    conds = _set_condition(conds, "Complete", "CompletionsReached",
                                           "Reached expected number of succeeded pods", now)
                    status["completionTime"] = fmt_time(now)
                    actions.append(event(job, "Normal", "Completed", "Job completed", COMPONENT))
            active = []
        elif spec.get("suspend"):
            for p in active:
                actions.append(delete(p, grace_seconds=grace(p)))
            if not any(c["type"] == "Suspended" and c.get("status") == "True" for c in conds):
                conds = _set_condition(conds, "Suspended", "JobSuspended", "Job suspended", now)
                actions.append(event(job, "Normal", "Suspended", "Job suspended", COMPONENT))
            status.pop("startTime", None)
            active = []
        else:
            if any(c["type"] == "Suspended" for c in conds):
                conds = [c for c in conds if c["type"] != "Suspended"]
                actions.append(event(job, "Normal", "Resumed", "Job resumed", COMPONENT))
            status.setdefault("startTime", fmt_time(now))
            wait = backoff_until(failed)
            if wait is None or now >= wait:
                if indexed:
                    busy = {index_of(p) for p in active}
                    todo = [i for i in range(completions or 0) if i not in done_idx and i not in busy]
                    want = [(i, f"{job['metadata']['name']}-{i}-") for i in todo[:max(0, parallelism - len(active))]]
                else:
                    if completions is None:
                        n = 0 if succeeded else parallelism - len(active)
                    else:
                        n = min(parallelism, completions - len(succeeded)) - len(active)
                    want = [(None, job["metadata"]["name"] + "-")] * max(0, n)
                for k, (index, prefix) in enumerate(want):
                    name = generated_name(prefix, f"{job['metadata'].get('uid')}/{snap.revision}/{k}", taken)
                    taken.add(name)
                    actions.append(create(pod_for(job, name, index)))
                    actions.append(event(job, "Normal", "SuccessfulCreate", f"Created pod: {name}", COMPONENT))
                    active.append({"metadata": {"name": name}, "status": {}})
        if indexed:
            text = _ranges(done_idx)
            if text:
                status["completedIndexes"] = text
            else:
                status.pop("completedIndexes", None)
    status["active"] = len(active)
    status["ready"] = sum(1 for p in active if is_pod_ready(p))
    status["succeeded"] = len(succeeded)
    status["failed"] = len(failed)
    status["terminating"] = sum(1 for p in pods if is_deleting(p))
    for k in ("active", "succeeded", "failed", "terminating"):
        if not status[k] and k not in old:
            status.pop(k)
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)
    if json.dumps(status, sort_keys=True) != json.dumps(old, sort_keys=True):
        actions.append(update_status(dict(job, status=status)))
    return actions


def _ranges(idx: list[int]) -> str:
    """Completed indexes as the API writes them: "0-2,5"."""
    out, i = [], 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        out.append(str(idx[i]) if i == j else f"{idx[i]}-{idx[j]}")
        i = j + 1
    return ",".join(out)


def ttl_action(job: dict, now: float) -> list[Action]:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    at = finish_time(job)
    if ttl is None or at is None or is_deleting(job) or now < at + ttl:
        return []
    return [delete(job)]


def decide(snap: Snapshot, now: float) -> list[Action]:
    taken = {p["metadata"]["name"] for p in snap.list("Pod")}
    out: list[Action] = []
    for job in snap.list("Job"):
        if finished(job):
            out += ttl_action(job, now)
            out += _finished_status(snap, job)
            continue
        out += sync_job(snap, job, now, taken)
    return out


def _finished_status(snap: Snapshot, job: dict) -> list[Action]:
    """A finished Job's counts follow its pods' last changes (a pod that ended as the Job finished)."""
    pods = snap.owned_by("Pod", job)
    old = job.get("status") or {}
    status = dict(old, active=0, ready=0)
    status["terminating"] = sum(1 for p in pods if is_deleting(p))
    for k in ("active", "ready", "terminating"):
        if not status[k] and k not in old:
            status.pop(k)
    return [update_status(dict(job, status=status))] if status != old else []


def next_deadline(snap: Snapshot, now: float) -> float | None:
    """When a Job's timer comes: its activeDeadlineSeconds, the end of a back-off, its TTL."""
    times = []
    for job in snap.list("Job"):
        spec = job.get("spec") or {}
        if finished(job):
            ttl, at = spec.get("ttlSecondsAfterFinished"), finish_time(job)
            if ttl is not None and at is not None:
                times.append(at + ttl)
            continue
        start = parse_time((job.get("status") or {}).get("startTime"))
        if spec.get("activeDeadlineSeconds") is not None and start is not None:
            times.append(start + spec["activeDeadlineSeconds"])
        failed = [p for p in snap.owned_by("Pod", job) if (p.get("status") or {}).get("phase") == "Failed"]
        wait = backoff_until(failed)
        if wait is not None and wait > now:
            times.append(wait)
    future = [t for t in times if t > now]
    return min(future) if future else None
