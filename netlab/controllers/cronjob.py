"""The CronJob controller (batch/v1), as Kubernetes' pkg/controller/cronjob (v2) runs it (read for
facts, written anew): a pure `decide(snapshot, now)`; `next_deadline` wakes the lab's loop at the next
scheduled time.

For each CronJob not suspended, the most recent scheduled time in (lastScheduleTime or creation, now]
(no earlier than now - startingDeadlineSeconds) is run, once: a Job named
<cronjob>-<scheduled time in minutes since the epoch>, from jobTemplate, owned by the CronJob, with
the annotation batch.kubernetes.io/cronjob-scheduled-timestamp; a time older than
startingDeadlineSeconds is missed (event MissedSchedule). concurrencyPolicy: Allow runs it beside
active Jobs; Forbid skips it while one is active; Replace deletes the active Jobs
first. Finished Jobs beyond successfulJobsHistoryLimit (3) / failedJobsHistoryLimit (1) are deleted,
oldest first. status: active (references to the Jobs running), lastScheduleTime, lastSuccessfulTime.
Schedules: netlab/controllers/cron.py.
"""
from __future__ import annotations

import json

from netlab.controllers import cron
from netlab.controllers.base import Action, Snapshot, clone, create, delete, event, update_status
from netlab.controllers.job import finished
from netlab.store.meta import fmt_time, is_deleting, owner_reference, parse_time

KINDS = ("CronJob", "Job")
COMPONENT = "cronjob-controller"
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100


def job_name(cj: dict, scheduled: float) -> str:
    return f"{cj['metadata']['name']}-{int(scheduled // 60)}"


def job_for(cj: dict, scheduled: float) -> dict:
    jt = (cj.get("spec") or {}).get("jobTemplate") or {}
    jmd = jt.get("metadata") or {}
    md = {"name": job_name(cj, scheduled), "namespace": cj["metadata"].get("namespace", "default"),
          "labels": dict(jmd.get("labels") or {}),
          "annotations": dict(jmd.get("annotations") or {}, **{SCHEDULED: fmt_time(scheduled)}),
          "ownerReferences": [owner_reference(cj)]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": clone(jt.get("spec") or {})}


def most_recent(cj: dict, now: float) -> tuple[float | None, int]:
    """(the most recent scheduled time not yet run, how many were due) in (earliest, now]."""
    spec = cj.get("spec") or {}
    st = cj.get("status") or {}
    earliest = parse_time(st.get("lastScheduleTime")) or parse_time(cj["metadata"].get("creationTimestamp")) or now
    sds = spec.get("startingDeadlineSeconds")
    if sds is not None:
        earliest = max(earliest, now - sds)
    last, count, t = None, 0, earliest
    while True:
        nxt = cron.next_after(spec.get("schedule", ""), spec.get("timeZone"), t)
        if nxt is None or nxt > now:
            break
        last, count, t = nxt, count + 1, nxt
        if count > 10000:   # a schedule far in the past: only the most recent matters
            t = max(t, now - 60)
    return last, count


def _ref(job: dict) -> dict:
    md = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": md["name"], "namespace": md.get("namespace", "default"),
            "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")}


def _started(job: dict) -> float:
    return (parse_time((job.get("status") or {}).get("startTime"))
            or parse_time(job["metadata"].get("creationTimestamp")) or 0.0)


def sync_cronjob(snap: Snapshot, cj: dict, now: float) -> list[Action]:
    spec = cj.get("spec") or {}
    jobs = [j for j in snap.owned_by("Job", cj) if not is_deleting(j)]
    active = [j for j in jobs if not finished(j)]
    done_ok = [j for j in jobs if finished(j) == "Complete"]
    done_bad = [j for j in jobs if finished(j) == "Failed"]
    actions: list[Action] = []
    old = cj.get("status") or {}
    status = dict(old)
    if done_ok:
        t = max(parse_time((j.get("status") or {}).get("completionTime")) or 0.0 for j in done_ok)
        if t and (parse_time(old.get("lastSuccessfulTime")) or 0.0) < t:
            status["lastSuccessfulTime"] = fmt_time(t)
    for items, limit in ((done_ok, spec.get("successfulJobsHistoryLimit", 3)),
                         (done_bad, spec.get("failedJobsHistoryLimit", 1))):
        for j in sorted(items, key=_started)[:max(0, len(items) - int(limit))]:
            actions.append(delete(j))
            actions.append(event(cj, "Normal", "SuccessfulDelete", f"Deleted job {j['metadata']['name']}", COMPONENT))
    if not spec.get("suspend") and not is_deleting(cj):
        scheduled, count = most_recent(cj, now)
        if scheduled is not None:
            name = job_name(cj, scheduled)
            sds = spec.get("startingDeadlineSeconds")
            exists = snap.get("Job", cj["metadata"].get("namespace", "default"), name) is not None
            if count > MAX_MISSED:
                actions.append(event(cj, "Warning", "TooManyMissedTimes",
                                     f"too many missed start times: {count}. Set or decrease .spec."
                                     "startingDeadlineSeconds or check clock skew", COMPONENT))
            if exists:
                status["lastScheduleTime"] = fmt_time(scheduled)
            elif sds is not None and scheduled + sds < now:
                actions.append(event(cj, "Warning", "MissedSchedule",
                                     f"Missed scheduled time to start a job: {fmt_time(scheduled)}", COMPONENT))
                status["lastScheduleTime"] = fmt_time(scheduled)
            elif spec.get("concurrencyPolicy") == "Forbid" and active:
                pass   # skipped while one runs (Kubernetes says JobAlreadyActive on each requeue; an event
                # here would be written on every round: the next scheduled time is looked at instead)
            else:
                if spec.get("concurrencyPolicy") == "Replace":
                    for j in active:
                        actions.append(delete(j))
                        actions.append(event(cj, "Normal", "SuccessfulDelete",
                                             f"Deleted job {j['metadata']['name']}", COMPONENT))
                    active = []
                job = job_for(cj, scheduled)
                actions.append(create(job))
                actions.append(event(cj, "Normal", "SuccessfulCreate", f"Created job {name}", COMPONENT))
                status["lastScheduleTime"] = fmt_time(scheduled)
                active = active + [job]
    refs = [_ref(j) for j in active]
    if refs:
        status["active"] = refs
    else:
        status.pop("active", None)
    if json.dumps(status, sort_keys=True) != json.dumps(old, sort_keys=True):
        actions.append(update_status(dict(cj, status=status)))
    return actions


def decide(snap: Snapshot, now: float) -> list[Action]:
    out: list[Action] = []
    for cj in snap.list("CronJob"):
        out += sync_cronjob(snap, cj, now)
    return out


def next_deadline(snap: Snapshot, now: float) -> float | None:
    """The next scheduled time of every CronJob not suspended: the loop wakes then."""
    times = []
    for cj in snap.list("CronJob"):
        spec = cj.get("spec") or {}
        if spec.get("suspend"):
            continue
        t = cron.next_after(spec.get("schedule", ""), spec.get("timeZone"), now)
        if t is not None:
            times.append(t)
    return min(times) if times else None
