"""Pods that end: what the kubelet reports of a container whose process exited, as its pod's
restartPolicy decides (pure given what was observed; `observe` reads the kernel's side).

A container with a command runs under its supervisor (dataplane/procs.spawn_container), which writes
the command's exit status when it ends. The kubelet's rule (pkg/kubelet, read for facts):
- restartPolicy Always: an ended container is restarted (waiting: CrashLoopBackOff while backing off);
- OnFailure: restarted after a non-zero exit status, kept terminated (reason Completed) after 0;
- Never: kept terminated, reason Completed (0) or Error (anything else).
Once every container is terminated for good the pod's phase is Succeeded (all exited 0) or Failed;
a terminal phase is never left again. Its Ready condition is False (reason PodCompleted), so it is
never an endpoint. Its network namespace and logs are kept (`netlab logs` works, as `kubectl logs`
does on a completed pod) until the pod object is deleted.

A container without a command (served by the node's built-in server) or without any process runs
as long as its pod: it never ends on its own here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..controllers.kubelet import container_status
from ..dataplane.plan import restarts
from ..store.meta import fmt_time

TERMINAL = ("Succeeded", "Failed")


@dataclass
class Seen:
    """One container as observed: running, or ended with `code` (None: status unknown) at `finished`."""
    running: bool
    code: int | None = None
    finished: float | None = None


def observe(lab: str, pod, rec: dict) -> dict[str, Seen]:
    """The containers with a command of model pod `pod` (`rec`: its record in the lab's state). A container
    whose exit status its supervisor has not written yet still counts as running: the next look reads it."""
    from ..dataplane import procs, supervise
    out = {}
    recs = rec.get("procs") or {}
    for name, _argv in pod.commands:
        crec = recs.get(name)
        if crec is None or supervise.container_running(lab, pod, name, crec):
            out[name] = Seen(True)   # not started yet (no record) counts as running: the pass starts it
            continue
        path = supervise.exit_path(lab, pod, name)
        try:
            finished = os.stat(path).st_mtime
        except OSError:
            finished = None
        out[name] = Seen(False, procs.exit_status(path), finished)
    return out


def statuses(names: list[str], seen: dict[str, Seen], policy: str, restart_count: int, ready: bool,
             started: dict[str, float], now: float) -> list[dict]:
    """containerStatuses of a pod's containers (`names`, in order) from what was observed."""
    out = []
    for name in names:
        s = seen.get(name) or Seen(True)
        if s.running:
            out.append(container_status(name, "running", started_at=started.get(name, now),
                                        restart_count=restart_count, ready=ready, started=True))
            continue
        code = 1 if s.code is None else s.code   # an unknown status is a failure (never a success)
        if not restarts(policy, s.code):
            out.append(container_status(name, "terminated", started_at=started.get(name, now),
                                        finished_at=s.finished or now, exit_code=code, restart_count=restart_count))
            continue
        last = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": fmt_time(started.get(name, now)), "finishedAt": fmt_time(s.finished or now)}
        out.append(container_status(name, "waiting", restart_count=restart_count, waiting_reason="CrashLoopBackOff",
                                    waiting_message=f"back-off restarting failed container {name}",
                                    last_terminated=last))
    return out


def phase(cstatuses: list[dict], policy: str) -> str:
    """Succeeded or Failed once every container is terminated for good, else Running."""
    term = [s["state"].get("terminated") for s in cstatuses]
    if cstatuses and all(term):
        return "Succeeded" if all(t["exitCode"] == 0 for t in term) else "Failed"
    return "Running"


def terminal_conditions(conditions: list[dict], now: float) -> list[dict]:
    """Ready and ContainersReady False with the kubelet's reason for a pod that ended."""
    out = []
    for c in conditions:
        if c["type"] in ("Ready", "ContainersReady"):
            t = c["lastTransitionTime"] if c.get("status") == "False" else fmt_time(now)
            c = {"type": c["type"], "status": "False", "lastProbeTime": None, "lastTransitionTime": t,
                 "reason": "PodCompleted"}
        out.append(c)
    return out
