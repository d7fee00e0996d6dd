"""The kubelets' probes in a live lab: which probe runs when, what its results decide.

For every container of every pod the lab runs, one worker per probe (readiness, liveness, startup)
keeps the kubelet's decisions (`controllers.kubelet.Prober`: initial delay, period, thresholds,
startup gating, hold after a liveness failure); the probes themselves run from the node's network
namespace (`live.prober`, on worker threads, never blocking the loop). What the results decide:

- readiness: a pod with a readinessProbe is ready when every such probe's worker says so (until its
  first success it is not, as in Kubernetes); `ready(uid)` is what the dataplane pass uses;
- liveness / startup failure: the container is killed (`restarts` lists it; the loop kills its
  process and the next pass starts it again as its restartPolicy says, with the kubelet's back-off);
- every failed probe is an Unhealthy event, a kill for a failed probe a Killing event.

A worker belongs to one container instance (pod uid, container, restart count): a restarted
container gets new workers, as the kubelet's are made anew. Nothing here must survive a crash: a
control loop started again begins with fresh workers, as a kubelet restarted does.
"""
from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass, field

from ..controllers.kubelet import Prober, killing_event, probe_event
from . import prober as run

KINDS = ("startup", "liveness", "readiness")


@dataclass
class Target:
    """Where a pod's probes go: what `prober.submit_probe` needs."""
    uid: str
    key: str              # namespace/name
    ip: str
    netns: str
    node_netns: str
    uts: str | None
    restarts: int
    started_at: float
    containers: list[dict]   # the pod spec's containers (with their probes and ports)
    terminating: bool = False
    procs: dict[str, dict] = field(default_factory=dict)   # container -> its process record (exec probes join it)


@dataclass
class Outcome:
    events: list[tuple[str, str, str, str]] = field(default_factory=list)   # (pod key, type, reason, message)
    kill: list[tuple[str, str, str]] = field(default_factory=list)          # (pod key, container, why)
    readiness_changed: bool = False


class Probes:
    def __init__(self, probers: run.NodeProbers | None = None):
        self.probers = probers
        self.workers: dict[tuple, Prober] = {}        # (uid, container, kind, restarts) -> worker
        self.inflight: dict[tuple, cf.Future] = {}
        self.targets: dict[str, Target] = {}          # uid -> target
        self.by_uid: dict[str, list[tuple[tuple, Prober]]] = {}   # uid -> its workers (an index of `workers`)

    def update(self, targets: list[Target]) -> None:
        """The pods running now: workers for new container instances, none for those gone."""
        self.targets = {t.uid: t for t in targets}
        keep = set()
        for t in targets:
            for c in t.containers:
                for kind in KINDS:
                    spec = c.get(f"{kind}Probe")
                    if not isinstance(spec, dict):
                        continue
                    k = (t.uid, c["name"], kind, t.restarts)
                    keep.add(k)
                    w = self.workers.get(k)
                    if w is None:
                        w = self.workers[k] = Prober(kind, spec, t.started_at)
                    if t.terminating:
                        w.terminating()
        for k in list(self.workers):
            if k not in keep:
                self.workers.pop(k)
                self.inflight.pop(k, None)
        self.by_uid = {}
        for k, w in self.workers.items():
            self.by_uid.setdefault(k[0], []).append((k, w))

    def has_readiness(self, uid: str) -> bool:
        return any(k[2] == "readiness" for k, _ in self.by_uid.get(uid, ()))

    def ready(self, uid: str) -> bool | None:
        """Whether the pod's readiness probes pass (None: it has none, or they have not run yet)."""
        ws = [w for k, w in self.by_uid.get(uid, ()) if k[2] == "readiness"]
        if not ws or any(w.last is None for w in ws):
            return None   # no verdict of this process yet: the caller keeps the last one written
        started = self._started(uid)
        return started and all(w.result for w in ws)

    def _started(self, uid: str, container: str | None = None) -> bool:
        return all(w.result is True for k, w in self.by_uid.get(uid, ())
                   if k[2] == "startup" and (container is None or k[1] == container))

    def tick(self, now: float) -> Outcome:
        """Collect finished probes, start those that are due."""
        out = Outcome()
        for k, fut in list(self.inflight.items()):
            if not fut.done():
                continue
            self.inflight.pop(k)
            w = self.workers.get(k)
            t = self.targets.get(k[0])
            if w is None or t is None:
                continue
            try:
                result, output = fut.result()
            except Exception as e:  # noqa: BLE001 - a probe that errored is a failure, as the kubelet counts it
                result, output = run.FAILURE, str(e)
            ok = result == run.SUCCESS
            changed = w.record(ok, now)
            if not ok:
                out.events.append((t.key, *probe_event(k[2], k[1], output)))
            if changed and k[2] == "readiness":
                out.readiness_changed = True
            if changed and k[2] == "startup" and ok:
                out.readiness_changed = True   # readiness probes may start now
            if changed and not ok and k[2] in ("liveness", "startup") and not t.terminating:
                out.kill.append((t.key, k[1], k[2]))
                out.events.append((t.key, *killing_event(k[1], k[2])))
        for k, w in self.workers.items():
            if k in self.inflight:
                continue
            t = self.targets.get(k[0])
            if t is None or not w.due(now, self._started(k[0], k[1])):
                continue
            container = next(c for c in t.containers if c["name"] == k[1])
            spec = dict(container[f"{k[2]}Probe"])
            try:
                self.inflight[k] = run.submit_probe(spec, t.ip, t.netns, container.get("ports") or [], t.node_netns,
                                                    t.uts, probers=self.probers, join=t.procs.get(k[1]))
            except ValueError as e:  # validation refuses these first; never loop on one
                w.on_hold = True
                out.events.append((t.key, "Warning", "Unhealthy", f"{k[2].capitalize()} probe errored: {e}"))
            # the worker's next time is set when the result is recorded; until then it is in flight
            w.next_at = now + w.spec["periodSeconds"]
        return out

    def next_due(self) -> float | None:
        times = [w.next_at for k, w in self.workers.items() if not w.on_hold and k not in self.inflight]
        return min(times) if times else None

    def busy(self) -> bool:
        return bool(self.inflight)
