"""The kubelet's decisions as pure functions: probe workers, restart back-off, container and pod
status, graceful termination timing. The process side (running a probe from the node's namespace,
starting and signalling the container's process) belongs to the dataplane; this module only says
what a kubelet would conclude and when. Facts from kubernetes' pkg/kubelet/prober/worker.go,
kuberuntime (back-off, killContainer) and pkg/printers (read for facts, written anew).

Probes (``Prober``): readiness starts as failed, liveness as succeeded, startup as unknown. Nothing
is probed before initialDelaySeconds after the container started; while a startup probe has not
succeeded only it runs. A result counts once it repeats successThreshold (success) or
failureThreshold (failure) times in a row. A liveness or startup failure puts the worker on hold
(the container is killed and restarted; a new container gets new workers). During pod deletion,
liveness and startup count as succeeded and stop; readiness goes on (so a terminating pod's
``serving`` follows its probe).

Restart back-off (``BackOff``): the first restart is immediate; later ones wait 10 s, 20 s, 40 s ...
up to 300 s after the container finished (CrashLoopBackOff meanwhile); a container that ran for
more than 10 minutes (twice the maximum) since the last restart starts again at 10 s.

Termination (``termination_times``): preStop first, then SIGTERM; SIGKILL when the grace period
(what is left of it after preStop, at least 2 s) runs out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.store.meta import fmt_time

BACKOFF_BASE, BACKOFF_MAX = 10.0, 300.0
MIN_GRACE = 2.0
PROBE_DEFAULTS = {"initialDelaySeconds": 0, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                  "failureThreshold": 3}
INITIAL = {"readiness": False, "liveness": True, "startup": None}


@dataclass
class Prober:
    """One probe worker of one container instance."""

    kind: str  # readiness | liveness | startup
    spec: dict
    started_at: float  # the container's start
    result: bool | None = None
    last: bool | None = None
    run: int = 0
    next_at: float = 0.0
    on_hold: bool = False

    def __post_init__(self):
        self.spec = {**PROBE_DEFAULTS, **(self.spec or {})}
        self.result = INITIAL[self.kind]
        self.next_at = self.started_at + self.spec["initialDelaySeconds"]

    @property
    def timeout(self) -> float:
        return float(self.spec["timeoutSeconds"])

    def due(self, now: float, started: bool = True) -> bool:
        """Whether to probe now; `started`: the startup probe has succeeded (or there is none)."""
        if self.on_hold or now < self.next_at:
            return False
        return (self.kind == "startup") != started

    def record(self, ok: bool, now: float) -> bool:
        """Count one probe result (a timeout is a failure); True when the settled result changed."""
        self.next_at = now + self.spec["periodSeconds"]
        if self.last == ok:
            self.run += 1
        else:
            self.last, self.run = ok, 1
        threshold = self.spec["successThreshold"] if ok else self.spec["failureThreshold"]
        if self.run < threshold:
            return False
        changed = self.result != ok
        self.result = ok
        if (self.kind == "liveness" and not ok) or self.kind == "startup":
            self.on_hold, self.run = True, 0
        return changed

    def terminating(self) -> None:
        """The pod is being deleted: liveness and startup stop and count as succeeded."""
        if self.kind in ("liveness", "startup"):
            self.result, self.on_hold = True, True


def probe_event(kind: str, container: str, output: str) -> tuple[str, str, str]:
    """(type, reason, message) of the kubelet's event for a failed probe."""
    return "Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {output}".rstrip()


def killing_event(container: str, why: str | None = None) -> tuple[str, str, str]:
    """(type, reason, message) when the kubelet kills a container: for a failed liveness/startup
    probe (`why` = "liveness" or "startup") or for pod deletion (None)."""
    if why:
        return "Normal", "Killing", f"Container {container} failed {why} probe, will be restarted"
    return "Normal", "Killing", f"Stopping container {container}"


@dataclass
class BackOff:
    """Kubernetes' container restart back-off for one container (flowcontrol.Backoff)."""

    backoff: float | None = None
    last_update: float | None = None
    history: list = field(default_factory=list)

    def _expired(self, event_time: float) -> bool:
        return self.last_update is None or event_time - self.last_update > 2 * BACKOFF_MAX

    def restart_at(self, finished_at: float) -> float:
        """When the container that finished at `finished_at` may start again."""
        if self.backoff is None or self._expired(finished_at):
            return finished_at
        return finished_at + self.backoff

    def restarted(self, finished_at: float, now: float) -> None:
        """Record a restart (Next): the following one waits twice as long, up to 300 s."""
        if self.backoff is None or self._expired(finished_at):
            self.backoff = BACKOFF_BASE
        else:
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        self.last_update = now
        self.history.append(now)

    def waiting_message(self, container: str, pod: str, namespace: str, uid: str) -> str:
        return f"back-off {int(self.backoff or BACKOFF_BASE)}s restarting failed container={container} pod={pod}_{namespace}({uid})"


def should_restart(restart_policy: str, exit_code: int) -> bool:
    policy = restart_policy or "Always"
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def termination_times(start: float, grace: float, prestop_seconds: float | None = None) -> tuple[float, float]:
    """(SIGTERM time, SIGKILL time) for a container stopped at `start` with `grace` seconds;
    `prestop_seconds`: how long its preStop hook ran (None: no hook)."""
    used = min(prestop_seconds or 0.0, grace)
    left = max(MIN_GRACE, grace - used) if prestop_seconds is not None else max(grace, 0.0)
    sigterm = start + used
    return sigterm, sigterm + left


def container_status(name: str, state: str, *, started_at: float | None = None, finished_at: float | None = None,
                     exit_code: int = 0, restart_count: int = 0, ready: bool = False, started: bool = False,
                     waiting_reason: str = "", waiting_message: str = "", last_terminated: dict | None = None) -> dict:
    """A containerStatuses entry as the kubelet reports it (state running, waiting or terminated)."""
    if state == "running":
        st = {"running": {"startedAt": fmt_time(started_at or 0)}}
    elif state == "terminated":
        st = {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                             "startedAt": fmt_time(started_at or 0), "finishedAt": fmt_time(finished_at or 0)}}
    else:
        st = {"waiting": {"reason": waiting_reason or "ContainerCreating"}}
        if waiting_message:
            st["waiting"]["message"] = waiting_message
    out = {"name": name, "state": st, "ready": ready and state == "running", "restartCount": restart_count,
           "started": started and state == "running"}
    if last_terminated:
        out["lastState"] = {"terminated": last_terminated}
    return out


def pod_phase(statuses: list[dict], restart_policy: str) -> str:
    """Pending until a container ran; Running while one runs or will be restarted; Succeeded or
    Failed once all terminated for good."""
    if not statuses or all("waiting" in s["state"] and "lastState" not in s for s in statuses):
        return "Pending"
    term = [s["state"].get("terminated") for s in statuses]
    if all(term) and (restart_policy == "Never" or (restart_policy == "OnFailure" and
                                                   all(t["exitCode"] == 0 for t in term))):
        return "Succeeded" if all(t["exitCode"] == 0 for t in term) else "Failed"
    return "Running"


def pod_conditions(statuses: list[dict], now: float, old: list[dict] | None = None) -> list[dict]:
    """Initialized, ContainersReady and Ready (all containers ready), keeping lastTransitionTime
    of conditions whose status did not change; PodScheduled is kept from `old`."""
    prev = {c["type"]: c for c in old or []}
    ready = bool(statuses) and all(s.get("ready") for s in statuses)
    out = [c for c in old or [] if c["type"] == "PodScheduled"]
    for ctype, status in (("Initialized", True), ("ContainersReady", ready), ("Ready", ready)):
        value = "True" if status else "False"
        p = prev.get(ctype)
        t = p["lastTransitionTime"] if p and p.get("status") == value else fmt_time(now)
        c = {"type": ctype, "status": value, "lastProbeTime": None, "lastTransitionTime": t}
        if not status and ctype != "Initialized":
            c["reason"] = "ContainersNotReady"
            c["message"] = "containers with unready status: [" + " ".join(
                s["name"] for s in statuses if not s.get("ready")) + "]"
        out.append(c)
    return out
