"""One pass of a live lab: the controllers, the kubelets' part, and the dataplane made to match.

A pass (`LiveLab.sync`), under the lab's lock:
1. the controllers run until they have nothing more to do (Deployment → ReplicaSet → Pod, the
   scheduler binds, EndpointSlices, node lifecycle and eviction, garbage collection);
2. the kubelets of the nodes that are up renew their Leases and report Ready;
3. the pods bound to nodes are read back from the store into the model (`build` with the store's
   pods: addresses stay as the lab's state allocated them) and the dataplane is reconciled to it
   (`dataplane.lab.apply`: namespaces, processes, proxy rules on every node; only differences);
   a pod being deleted stays running as a terminating endpoint (chosen only by kube-proxy's
   fallback, when its Service port has no ready endpoint);
4. what the kubelets saw is written back as each pod's status (Running, podIP, Ready, restarts);
   the kubelets' graceful termination of the pods being deleted starts or goes on (preStop, SIGTERM,
   SIGKILL at the end of the grace period: netlab/live/terminate.py, which also runs between passes,
   from `probe_tick`); a pod whose containers are all done is removed from the store, and the next
   pass removes its namespace;
5. the controllers run again (EndpointSlices follow the new readiness).

Nothing here keeps state that matters across a crash: a pass starts from the store and the
kernel, so a control loop killed at any point resumes with the next pass.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Any, Callable

import yaml

from ..controllers.kubelet import container_status, pod_conditions
from ..controllers.runner import Runner, default_controllers
from ..controllers.simkubelet import SimKubelet
from ..controllers.base import Snapshot
from ..controllers.endpointslice import CONTROLLER_NAME, MANAGED_BY
from ..gcpause import gc_paused
from ..model.build import build
from ..model.objects import Cluster
from ..spec.parse import parse_documents
from ..spec.types import Scenario
from ..store.meta import fmt_time, get_condition, is_deleting, parse_time
from . import objects, podexit
from .kubelet import Probes, Target
from .staticpods import static_uid
from .terminate import DRAIN_SECONDS  # noqa: F401 - a deleted pod gets SIGTERM no sooner after the rules
                                      # stopped choosing it (netlab/live/terminate.py)

DATAPLANE_KINDS = ("Pod", "Service", "EndpointSlice", "Endpoints", "Namespace", "Node",
                   "NetworkPolicy")   # what a pass reads
FULL_RESYNC = 3600.0    # a loop's pass reads back every pod's network at least this often (see LiveLab.scope)
LAB_NODE_GRACE = 10.0   # lab defaults (Kubernetes': 40 s and 300 s; see docs/controllers.md)
LAB_TOLERATION = 10
STOPPED = objects.STOPPED


def partitioned(cluster: Cluster) -> set[str]:
    """Nodes `netlab node stop` partitioned (read from the store once a pass, by `desired`)."""
    return {n.name for n in cluster.nodes if n.partitioned}


def cluster_document(text: str) -> dict | None:
    """The Cluster document of a scenario text (already validated when it was stored)."""
    for doc in yaml.safe_load_all(text or ""):
        if isinstance(doc, dict) and doc.get("kind") == "Cluster":
            return doc
    return None


def lab_scenario(text: str, source: str, store, name: str, proxy_mode: str | None) -> Scenario:
    """The lab's scenario as it is now: its Cluster document, with the Namespaces, Services and bare
    Pods of the store (what `up` and `apply` wrote since), parsed as any scenario is."""
    docs: list[Any] = []
    cdoc = cluster_document(text)
    if cdoc is not None:
        docs.append(cdoc)
    kinds = ("Namespace", "Service", "Pod", "EndpointSlice", "Endpoints", "NetworkPolicy")
    objs, _ = store.snapshot(kinds)   # shared, read only (manifest copies)
    for kind in kinds:
        for obj in objs[kind]:
            if kind == "Pod" and (obj["metadata"].get("ownerReferences") or is_deleting(obj)):
                continue
            if kind == "EndpointSlice" and (obj["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER_NAME:
                continue   # the controller's slices (from selectors): only hand-written ones are read
            if kind == "Pod":  # bare pods: their spec as applied (the store's may name their node)
                obj = json.loads((obj["metadata"].get("annotations") or {}).get(objects.LAST_APPLIED) or "null") or obj
            docs.append(objects.manifest(obj))
    if cdoc is None and not docs:
        docs.append({"apiVersion": "netlab.io/v1alpha1", "kind": "Cluster"})
    sc = parse_documents(docs, source)
    sc.name = name
    # status.loadBalancer.ingress as the IPAM controller wrote it (controllers/lbipam.py): kube-proxy's
    # LoadBalancer addresses (render.services.lb_ingress_ips)
    ingress = {(o["metadata"].get("namespace", "default"), o["metadata"]["name"]):
               ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [] for o in objs["Service"]}
    for spec in sc.services:
        spec.lb_ingress = [dict(e) for e in ingress.get((spec.namespace, spec.name), []) if isinstance(e, dict)]
    if proxy_mode:
        sc.networking.proxy_mode = proxy_mode
    return sc


def heartbeat_period(grace: float) -> float:
    """How often a kubelet renews its node's Lease: a quarter of the node monitor grace period, as
    Kubernetes' 10 s against its 40 s (the lab's 10 s grace: 2.5 s; the shortest grace, 1 s: 0.25 s).
    A floor of a second would be no heartbeat at all against a grace of a second."""
    return grace / 4


def periods(scenario_text: str) -> tuple[float, int]:
    """(node monitor grace period, default toleration seconds) from the Cluster document
    (spec fields nodeMonitorGracePeriod, defaultTolerationSeconds), else the lab defaults."""
    doc = cluster_document(scenario_text) or {}
    live = doc.get("controlPlane") or {}
    return float(live.get("nodeMonitorGracePeriod", LAB_NODE_GRACE)), int(
        live.get("defaultTolerationSeconds", LAB_TOLERATION))


def pod_admission(scenario_text: str):
    """The API server's admission of a Pod in the lab of `scenario_text` (live.objects.apply_objects' `admit`):
    DefaultTolerationSeconds with the lab's defaultTolerationSeconds, as the controllers' pods get it."""
    from ..controllers.nodelifecycle import default_tolerations
    seconds = periods(scenario_text)[1]
    return lambda pod: default_tolerations(pod, seconds)


def has_readiness_probe(obj: dict) -> bool:
    """Whether a Pod object has a container with a readinessProbe (its readiness is then the kubelet's
    verdict, not netlab's "ready once it listens")."""
    return any(isinstance(c.get("readinessProbe"), dict) for c in (obj.get("spec") or {}).get("containers") or [])


def assumed_ready(rec: dict, uid: str, decided: bool | None) -> bool:
    """The readiness a pass's first proxy sync assumes for a pod (its record in state.json `rec`, the kubelet's
    verdict now `decided`): as the last pass saw it, and as the kubelet decides now. A probe that said ready
    since then makes it follow what the last pass saw listening, so the verdict costs one sync of every
    node's rules, not a sync that assumes not ready and a second one when the pass sees it listening. A pod
    the record does not know (another UID) is not ready until seen."""
    if rec.get("uid") != uid:
        return False
    seen = rec.get("listening", rec.get("ready")) if decided is True else rec.get("ready")
    return seen is not False and decided is not False


class LiveLab:
    host: str | None = None
    own: set[str] | None = None
    leader = True

    def __init__(self, lab: str, store=None, kubelet: bool = False, host: str | None = None):
        """`kubelet`: this process runs the probes (the control loop); others read their verdicts from
        the pods' status in the store. `host`: an agent's (netlab/live/agent.py): only the nodes placed on
        that host (label netlab.dev/host) and their pods are built, reconciled and heartbeated here, and
        the controllers run only while `leader` is true (the agent holds the controllers' Lease)."""
        from . import store_for
        self.lab = lab
        self.host = host
        # the nodes this process builds (None: all of them; an agent's: none until it read the Node objects)
        self.own: set[str] | None = None if host is None else set()
        self.leader = True                 # whether the controllers run here (an agent: its Lease says)
        # whether this process is the kubelet of its nodes (renews their Leases, reports them Ready): not the
        # `up` of a lab run by agents (register), whose nodes' kubelets are their hosts' agents
        self.reports = True
        self.separate = False              # an agent of a real host: its machine's disk is its own (the loop sets it)
        self.store = store if store is not None else store_for(lab)
        self.errors: list[str] = []
        self._runner: Runner | None = None
        self._periods: tuple[float, int] | None = None
        self.last_heartbeat = 0.0
        # one beat at a time: the pass's own beats and `beating`'s thread write the same Leases, and two
        # concurrent writers of a Lease conflict (the second's write is lost until the next beat)
        self._beat_lock = threading.RLock()
        self.last_full = 0.0
        self.let_go_pods = False  # the last pass removed pods from the store: their namespaces go next pass
        self.kubelet = kubelet
        self.probes = Probes()
        self.instances: dict[tuple[str, int], float] = {}   # (pod uid, restarts) -> first seen running
        self.dirty = False      # a probe changed a pod's readiness: the dataplane must follow now
        self.backoff: dict[str, tuple[int, float, float]] = {}   # pod uid -> (restarts seen, when, delay)
        self.last_pass = 0.0
        self.young_unready = False
        self.hold_restarts = False   # `up --no-control-loop` waiting after its pass: it restarts nothing
        self.builtin_kills: dict[str, tuple[str, int]] = {}   # pod key -> (uid, restarts) whose built-in
        # container a failed liveness probe killed, until its restart is counted
        self.spec_cache: dict = {}       # objects.pod_specs' parsed pods, by (uid, resourceVersion)
        self.seen: tuple | None = None   # the store's revisions of DATAPLANE_KINDS the last pass read
        self.last_deep = float("-inf")   # monotonic time of this process' last whole (unscoped) pass
        self.proxy_state = None          # the loop's proxy SyncState (incremental syncs), made on first use
        from ..dataplane import layout
        from .terminate import Terminator
        # (a process that is no host's agent reads the agents' terminations too: `signalled` below)
        self.terminator = Terminator(lab, layout.terminating_file(lab),
                                     also=None if layout.host() else lambda: layout.host_terminating_dirs(lab))
        from .staticpods import StaticPods
        self.static = StaticPods(lab)   # the kubelets' static pods (manifest files per node)
        self.addon_files = None         # the add-ons' published files (addonfiles.py), made with `errors`
        self.last_cluster: Cluster | None = None   # the model the last pass built (the nodes' flannel leases)
        self.last_by_key: dict[str, dict] = {}     # and the pods' objects it read

    # ---------------------------------------------------------------- host scope
    def refresh_own(self) -> None:
        """An agent's nodes, as the Node objects' labels place them now."""
        if self.host is not None:
            from .hostscope import own_nodes
            self.own = own_nodes(self.store.list("Node"), self.host)

    def mine(self, node: str) -> bool:
        return self.own is None or node in self.own

    def load_state(self) -> dict:
        """The previous state a pass builds from: the lab's; an agent's, its host's own records joined with
        the lab's shared decisions and the other hosts' nodes and pods from the store (hostscope.py)."""
        from ..dataplane import layout, state
        st = state.load(self.lab)
        if self.host is None:
            return st or {}
        from .hostscope import CONFIG_NAME, CONFIG_NAMESPACE, agent_state, config_of
        self.refresh_own()
        objs, _ = self.store.snapshot(("Node", "Pod"))
        shared = config_of(self.store.try_get("ConfigMap", CONFIG_NAMESPACE, CONFIG_NAME))
        return agent_state(st, state.read(layout.lab_state_file(self.lab)), objs["Node"], objs["Pod"], self.own,
                           shared)

    def run_controllers(self, runner: Runner) -> None:
        """The controllers until quiet, where they run (an agent that does not lead: nowhere)."""
        if self.leader:
            # the kubelets first: what this process spent since their last heartbeat (a pass's kernel work,
            # its status writes) is not a node that stopped reporting
            self.keep_alive()
            runner.run_until_quiescent(between=self.keep_alive)

    @contextlib.contextmanager
    def beating(self):
        """The kubelets' heartbeats on a thread of their own while the pass inside does long work (building
        10,000 pods takes longer than the lab's 10 s node grace period): a kubelet renews its Lease whatever
        else its node is busy with, and the node lifecycle controller (this process's or, with agents, the
        leader's) must not mark the nodes NotReady and their pods with them."""
        period = heartbeat_period(self._periods[0] if self._periods else LAB_NODE_GRACE) / 2
        stop = threading.Event()

        def beat():
            while not stop.wait(period):
                try:
                    self.keep_alive()
                except Exception as e:  # noqa: BLE001 - a concurrent writer: the next beat tries again
                    self.errors.append(f"heartbeat: {e}")
        t = threading.Thread(target=beat, name="netlab-heartbeat", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()

    # ---------------------------------------------------------------- controllers
    def runner(self, text: str) -> Runner:
        p = periods(text)
        if self._runner is None or p != self._periods:
            grace, toleration = p
            self._periods = p
            self._runner = Runner(self.store, default_controllers(grace), default_toleration_seconds=toleration,
                                  on_error=lambda name, e: self.errors.append(f"{name}: {e}"))
        return self._runner

    def keep_alive(self) -> None:
        """Heartbeats between controller rounds, once half a heartbeat period has passed since the last
        (a kubelet renews a Lease a period old: the Lease is never older than one and a half periods when
        the controllers look): a lab of thousands of pods settles for longer than the grace period, and
        nodes whose Leases lapsed meanwhile would be tainted and their pods evicted (the pass feeding on
        itself)."""
        grace = self._periods[0] if self._periods else LAB_NODE_GRACE
        now = time.time()
        if self.reports and now - self.last_heartbeat >= heartbeat_period(grace) / 2:
            self.heartbeats(grace, now)

    def heartbeats(self, grace: float, now: float) -> None:
        """The kubelets of the nodes that are up: Lease renewed, Ready reported."""
        with self._beat_lock:
            if self.last_heartbeat > now:
                return   # another beat, newer than this one, ran while this one waited
            self._heartbeats(grace, now)

    def _heartbeats(self, grace: float, now: float) -> None:
        self.last_heartbeat = now
        from ..controllers.runner import apply_actions
        snap = Snapshot.from_store(self.store, ("Node", "Lease"))
        kubelet = SimKubelet(heartbeat=heartbeat_period(grace))
        kubelet.down = {n["metadata"]["name"] for n in snap.list("Node")
                        if (n["metadata"].get("annotations") or {}).get(STOPPED) == "true" or not self.mine(
                            n["metadata"]["name"])}
        actions = kubelet.node_actions(snap, now)
        if actions:
            apply_actions(self.store, actions, now)
        try:   # and their static pods (netlab/live/staticpods.py)
            self.errors += self.static.sync(self.store, now, kubelet.down)
        except Exception as e:  # noqa: BLE001 - a concurrent writer: the next heartbeat looks again
            self.errors.append(f"static pods: {e}")

    # ---------------------------------------------------------------- the pass
    def desired(self, st: dict, proxy_mode: str | None = None) -> tuple[Cluster, dict[str, dict]]:
        """The model of what should run now: the lab's scenario with the store's pods."""
        text = st.get("scenario") or ""
        mode = proxy_mode or st.get("proxyMode")
        sc = lab_scenario(text, st.get("source") or "<state>", self.store, self.lab, mode)
        # the store's cached objects (shared, read only: nothing here changes them; writes copy)
        objs, _ = self.store.snapshot(("Pod", "ReplicaSet"))
        pods = objects.pod_specs(objs["Pod"], objs["ReplicaSet"], self.spec_cache)
        if self.own is not None:   # an agent: another host's pod only once its agent gave it an address
            from .hostscope import modelled
            pods = [(ps, o) for ps, o in pods if modelled(o, self.own)]
        stopped = self.stopped_nodes()
        # and nodes that no kubelet reports (NotReady in the store: a host lost, its agent cut off): their
        # terminating pods serve no one either, as every other host's agent sees them (the store's Ready)
        lost = stopped | {n["metadata"]["name"] for n in self.store.list("Node")
                          if (get_condition(n, "Ready") or {}).get("status") in ("False", "Unknown")}
        cluster = build(sc, st, pods=[ps for ps, _ in pods])
        for n in cluster.nodes:
            n.partitioned = n.name in stopped
        by_key = {f"{o['metadata'].get('namespace', 'default')}/{o['metadata']['name']}": o for _, o in pods}
        for pod in cluster.pods:
            obj = by_key[pod.key]
            # a static pod is known by its config hash, not by its mirror's UID (a deleted mirror comes
            # back with a new UID; the pod runs on)
            pod.uid = static_uid(obj) or obj["metadata"]["uid"]
            if is_deleting(obj):
                # a terminating endpoint: serving follows its readiness (probe or observed) as before;
                # its containers are not restarted; the built-in server hears of its SIGTERM
                pod.terminating = True
                pod.stopping = self.terminator.signalled(pod.uid)
            if pod.node in lost:
                # a pod evicted from a lost node no longer serves anyone (the node lifecycle controller
                # marked it not Ready): no fallback may choose it
                pod.decided_ready = False if pod.terminating else None
            elif has_readiness_probe(obj):
                verdict = self.probes.ready(pod.uid) if self.kubelet else None
                if verdict is None:  # the control loop's last verdict, as it wrote it (a loop started
                    # again keeps it until its own probes have run: no request fails meanwhile)
                    cond = get_condition(obj, "Ready")
                    verdict = bool(cond and cond.get("status") == "True")
                pod.decided_ready = verdict
            rec = (st.get("pods") or {}).get(pod.key) or {}
            kill = self.builtin_kills.get(pod.key)
            if kill is not None:   # until the restart is counted (then the flag goes, and the entry)
                if kill == (pod.uid, int(rec.get("restarts", 0))) and rec.get("uid") == pod.uid:
                    pod.killed = True
                else:
                    del self.builtin_kills[pod.key]
            if self.hold_restarts or pod.terminating:
                pod.restart_held = True
            elif self.kubelet:
                pod.restart_held = self.held(pod.uid, int(rec.get("restarts", 0)) if rec.get("uid") == pod.uid else 0)
            pod.ready = assumed_ready(rec, pod.uid, pod.decided_ready)
        return cluster, by_key

    def held(self, uid: str, restarts: int, now: float | None = None) -> bool:
        """The kubelet's restart back-off (controllers.kubelet: 10 s after the first restart, doubling up
        to 300 s): whether a container of the pod that ended now must wait before it starts again."""
        from ..controllers.kubelet import BACKOFF_BASE, BACKOFF_MAX
        now = time.time() if now is None else now
        seen, when, delay = self.backoff.get(uid, (0, 0.0, 0.0))
        if restarts > seen:
            delay = BACKOFF_BASE if seen == 0 else min(delay * 2, BACKOFF_MAX)
            if now - when > 2 * BACKOFF_MAX and seen:
                delay = BACKOFF_BASE
            seen, when = restarts, now
            self.backoff[uid] = (seen, when, delay)
        return restarts > 0 and now < when + delay

    def next_restart(self) -> float | None:
        now = time.time()
        times = [when + delay for _, when, delay in self.backoff.values() if when + delay > now]
        return min(times) if times else None

    def stopped_nodes(self) -> set[str]:
        return {n["metadata"]["name"] for n in self.store.list("Node")
                if (n["metadata"].get("annotations") or {}).get(STOPPED) == "true"}

    def write_status(self, cluster: Cluster, by_key: dict[str, dict], st: dict, now: float) -> None:
        """What the kubelets saw, as each pod's status (only what changed is written)."""
        from ..controllers.runner import apply_actions
        from ..controllers.base import event, update_status
        from ..dataplane.plan import config_error
        from . import observed
        stopped = partitioned(cluster)
        recs = st.get("pods") or {}
        host_ips = {n.name: str(n.ip) for n in cluster.nodes}
        actions = []
        seen = observed.views(cluster, st)
        for pod in cluster.pods:
            obj = by_key[pod.key]
            if pod.node in stopped or not self.mine(pod.node):
                continue
            rec = recs.get(pod.key) or {}
            ready = bool(rec.get("ready"))   # a terminating pod's Ready goes on following its readiness
            started = float(rec.get("created") or now)
            old = obj.get("status") or {}
            if old.get("phase") in podexit.TERMINAL:
                continue   # a pod that ended stays as it ended (live/podexit.py)
            restarts = int(rec.get("restarts", 0))
            # each container as the kubelet sees it: running, terminated (reason, exit code), waiting
            # (ContainerCreating, CrashLoopBackOff) (live/observed.py) ...
            statuses = observed.container_statuses(cluster, pod, rec, seen[pod.key], old, ready, started, now)
            if rec.get("uid") == pod.uid and pod.commands:
                # ... a container with a command as its restartPolicy makes it end (live/podexit.py) ...
                old_cs = {c["name"]: c for c in old.get("containerStatuses") or []}
                begun = {c.name: parse_time(((old_cs.get(c.name, {}).get("state") or {}).get("running") or {})
                                            .get("startedAt")) or started for c in pod.containers}
                names = [name for name, _ in pod.commands]
                ended = {s["name"]: s for s in podexit.statuses(names, podexit.observe(self.lab, pod, rec),
                                                               pod.restart_policy, restarts, ready, begun, now)}
                statuses = [ended.get(s["name"], s) for s in statuses]
            for i, c in enumerate(pod.containers):
                # ... and one the kubelet could not start: its securityContext, env or a volume is wrong
                why = config_error(pod, c.name)
                launch = pod.launch.get(c.name)
                if why:
                    statuses[i] = container_status(c.name, "waiting", restart_count=restarts,
                                                   waiting_reason="CreateContainerConfigError", waiting_message=why)
                elif launch is not None and launch.error:
                    statuses[i] = container_status(c.name, "waiting", restart_count=restarts,
                                                   waiting_reason=launch.reason, waiting_message=launch.error)
            phase = observed.phase(statuses, pod.restart_policy)
            conditions = pod_conditions(statuses, now, old.get("conditions"))
            if phase in podexit.TERMINAL:
                conditions = podexit.terminal_conditions(conditions, now)
            ip, host_ip = str(pod.ip), host_ips[pod.node]
            status = dict(old, phase=phase, podIP=ip, podIPs=[{"ip": ip}], hostIP=host_ip, hostIPs=[{"ip": host_ip}],
                          startTime=old.get("startTime") or fmt_time(started), qosClass="BestEffort",
                          containerStatuses=statuses, conditions=conditions)
            actions += [event(obj, etype, reason, message, "kubelet")
                        for etype, reason, message in observed.events(pod, old, statuses)]
            sched = get_condition(obj, "PodScheduled")
            if sched is None:
                status["conditions"].insert(0, {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                                "lastTransitionTime": fmt_time(started)})
            if status != old:
                actions.append(update_status(dict(obj, status=status)))
        if actions:
            try:
                apply_actions(self.store, actions, now)
            except Exception as e:  # noqa: BLE001 - a concurrent writer: the next pass writes again
                self.errors.append(f"status: {e}")

    def watch_probes(self, cluster: Cluster, by_key: dict[str, dict], st: dict, now: float) -> None:
        """Give the probe workers the pods as they run now (new container instances, pods gone)."""
        from ..dataplane.fabric import uts_path
        stopped = partitioned(cluster)
        nodes = {n.name: n for n in cluster.nodes}
        targets, seen = [], set()
        for pod in cluster.pods:
            obj = by_key[pod.key]
            if pod.node in stopped or not self.mine(pod.node):
                continue
            restarts = int(((st.get("pods") or {}).get(pod.key) or {}).get("restarts", 0))
            recs = dict(((st.get("pods") or {}).get(pod.key) or {}).get("procs") or {})
            inst = (pod.uid, restarts)
            seen.add(inst)
            started = self.instances.setdefault(inst, now)
            targets.append(Target(pod.uid, pod.key, str(pod.ip), pod.netns, nodes[pod.node].netns,
                                  uts_path(self.lab, pod), restarts, started,
                                  (obj.get("spec") or {}).get("containers") or [], is_deleting(obj), recs))
        self.instances = {k: v for k, v in self.instances.items() if k in seen}
        self.probes.update(targets)

    def probe_tick(self, now: float) -> bool:
        """Run the probes that are due, act on the results; True when the dataplane must follow."""
        from ..controllers.runner import apply_actions
        from ..controllers.base import event
        from ..dataplane import procs, state
        if self.kubelet and self.terminator.active():
            self.kubelet_tick(now)
        out = self.probes.tick(now)
        if out.events:
            actions = []
            for key, etype, reason, message in out.events:
                ns, name = key.split("/", 1)
                obj = self.store.try_get("Pod", ns, name)
                if obj is not None:
                    actions.append(event(obj, etype, reason, message, "kubelet"))
            try:
                apply_actions(self.store, actions, now)
            except Exception as e:  # noqa: BLE001 - events are best effort
                self.errors.append(f"events: {e}")
        if out.kill:
            st = state.load(self.lab) or {}
            for key, container, _why in out.kill:
                prec = (st.get("pods") or {}).get(key) or {}
                rec = (prec.get("procs") or {}).get(container)
                if rec is not None:
                    procs.terminate([rec], [], grace=2.0, owner=None)
                elif prec.get("uid"):   # a built-in container: its node's server ends it (see desired)
                    self.builtin_kills[key] = (prec["uid"], int(prec.get("restarts", 0)))
            self.dirty = True
        if out.readiness_changed:
            self.dirty = True
        return self.dirty

    def let_go(self, cluster: Cluster, by_key: dict[str, dict], st: dict, now: float) -> bool:
        """The kubelet's graceful termination of the pods being deleted (netlab/live/terminate.py): this
        pass reprogrammed every node with their endpoints terminating, so their termination starts (or
        goes on); pods whose containers are all done are removed from the store (their namespace goes on
        the next pass). Returns whether any went."""
        from ..dataplane.fabric import uts_path
        from .terminate import pod_info
        stopped = partitioned(cluster)
        nodes = {n.name: n for n in cluster.nodes}
        recs, servers = st.get("pods") or {}, st.get("servers") or {}
        infos, told = [], set()
        for pod in cluster.pods:
            obj = by_key[pod.key]
            if not is_deleting(obj) or pod.node in stopped or not self.mine(pod.node):
                continue
            rec = recs.get(pod.key) or {}
            infos.append(pod_info(obj, pod, nodes[pod.node], rec, servers.get(pod.node), uts_path(self.lab, pod)))
            if pod.stopping:
                told.add(pod.uid)
        self.terminator.update(infos, now)
        self.terminator.told(told)
        ended = self.let_go_ended(stopped)
        return self.kubelet_tick(now) or ended

    def let_go_ended(self, stopped: set[str]) -> bool:
        """Pods that ended (Succeeded, Failed) and are being deleted, on this kubelet's nodes: no container is
        left to stop, so the kubelet removes them from the store at once, as Kubernetes' does (the model leaves
        them out: live/objects.pod_specs, so let_go never sees them; they stayed in the store for ever, a Job's
        pods after its ttlSecondsAfterFinished). Returns whether any went."""
        objs, _ = self.store.snapshot(("Pod",))
        gone = False
        for o in objs["Pod"]:
            node = (o.get("spec") or {}).get("nodeName")
            if not node or node in stopped or not self.mine(node) or not is_deleting(o) or static_uid(o) \
                    or (o.get("status") or {}).get("phase") not in podexit.TERMINAL:
                continue
            md = o["metadata"]
            try:
                self.store.delete("Pod", md.get("namespace", "default"), md["name"], grace_seconds=0,
                                  uid=md.get("uid"))
                gone = True
            except Exception as e:  # noqa: BLE001 - gone meanwhile, or made again under another UID
                self.errors.append(f"remove ended pod {md['name']}: {e}")
        return gone

    def kubelet_tick(self, now: float) -> bool:
        """Termination work due now (hooks finished, SIGTERM, SIGKILL) and its events; True if a pod was
        removed from the store."""
        from ..controllers.runner import apply_actions
        from ..controllers.base import event
        gone = self.terminator.tick(now, self.store)
        if self.terminator.events:
            actions = [event(obj, etype, reason, message, "kubelet")
                       for obj, etype, reason, message in self.terminator.events]
            self.terminator.events.clear()
            try:
                apply_actions(self.store, actions, now)
            except Exception as e:  # noqa: BLE001 - events are best effort
                self.errors.append(f"events: {e}")
        return gone

    def sync_state(self):
        """The proxy's SyncState of this process's passes (made on first use)."""
        if self.proxy_state is None:
            from ..dataplane.proxy import SyncState
            self.proxy_state = SyncState(full_sync_period=FULL_RESYNC)
        return self.proxy_state

    def scope(self, cluster: Cluster, st: dict, deep: bool):
        """What a control loop's pass looks at (`dataplane.lab.LivePass`), as the kubelet and kube-proxy
        look at a node:
        - pods' networks (namespace, veth, addresses, routes): only new pods are built and only pods
          whose namespace is gone are rebuilt; every pod's network is read back and repaired on the
          loop's first pass and every FULL_RESYNC seconds (`deep`), and by any `up`. Nothing in
          Kubernetes repairs a pod's network in between either (a CNI plugin acts when a pod starts);
        - readiness: a pod with a readinessProbe is as its probes say (the kubelet's rule); one
          without is ready once its ports listen (netlab's rule, see docs/controllers.md), looked at
          only until it is, per container instance (a restarted container is looked at again);
        - proxy rules: synced incrementally with the loop's SyncState (only the Services that changed;
          a full sync when the node's tables moved under it, and every FULL_RESYNC seconds, as
          kube-proxy's partial syncs between full ones)."""
        from ..dataplane.lab import LivePass
        self.sync_state()
        if deep:
            return LivePass(proxy_state=self.proxy_state, nodes=self.own)
        recs = st.get("pods") or {}
        # (a terminating pod is looked at on every pass: whether it still serves decides whether
        # kube-proxy's fallback may choose it)
        listen = {p.key for p in cluster.pods
                  if p.decided_ready is None and (p.terminating or not ((recs.get(p.key) or {}).get("ready") and
                                                                        (recs.get(p.key) or {}).get("uid") == p.uid))}
        return LivePass(check=set(), listen=listen, proxy_state=self.proxy_state, nodes=self.own)

    # Python's cyclic collector paused for the pass: a pass over 10,000 pods allocates millions of dicts
    # and lists that form no cycles, and the collector's full passes over everything alive (the store's
    # cache, the model) found next to nothing each time: 19 of them, 3.7 s of a 10,000-pod `up`
    @gc_paused
    def sync(self, progress=None, proxy_mode: str | None = None, scenario_text: str | None = None,
             source: str | None = None, scoped: bool = False, probe_first: bool = False,
             before_status: Callable[[], object] | None = None):
        """One pass (see the module's docstring); returns the dataplane's UpResult. `scoped`: a control
        loop's pass, looking only at what may have changed (`scope`); else a whole reconcile. `probe_first`:
        `up` of a lab no control loop runs for yet: the pass runs the kubelet's first readiness probes itself,
        once its containers run (`first_probes`), and its endpoints follow them. `before_status`: called once
        the kernel work is done, before the pods' status is written (`up` starts the lab's loop there)."""
        from ..dataplane import lab as labmod
        from ..dataplane.lab import LivePass
        st = self.load_state()
        text = scenario_text if scenario_text is not None else (st.get("scenario") or "")
        self.let_go_pods = False
        runner = self.runner(text)
        now = time.time()
        self.heartbeats(self._periods[0], now)
        if scenario_text is not None:  # up: the scenario's mode unless --proxy-mode says otherwise
            work = dict(st, scenario=text, source=source or st.get("source"))
            work.pop("proxyMode", None)
        else:
            work = st
        # up of a new lab: its nodes are built by a child process while the controllers run (prebuild.py)
        nodes = self.prebuild(work, proxy_mode) if scenario_text is not None and not scoped else None
        from ..dataplane import volumes as volmod
        try:
            self.run_controllers(runner)
            self.seen = self.store.kind_revisions(DATAPLANE_KINDS)   # taken before the pass reads the store
            if self.host is not None and scenario_text is None:
                # an agent: the other hosts' pods (address, readiness) read again, now that `seen` is taken: read
                # before the controllers ran, a pod made Ready meanwhile by its agent would be in `seen` and not
                # in this pass, and no later pass would look (a Service's endpoints on this host left stale)
                st = work = self.load_state()
            cluster, by_key = self.desired(work, proxy_mode)
            if self.writes_files():
                self.files().before_pass(cluster)   # before the pass starts the add-ons' pods (up's first pass)
            from .podsetup import prepare
            from ..dataplane.lab import host_views
            # env valueFrom, volumes (an agent: of its own pods)
            prepare(host_views(cluster, self.own)[1], by_key, self.store, volmod.base_dir(self.lab))
            prebuilt = nodes.wait() if nodes is not None else None
        except BaseException:
            if nodes is not None:
                nodes.undo()   # refused before the pass: the kernel as it was
            raise
        self.last_cluster, self.last_by_key = cluster, by_key
        deep = not scoped or time.monotonic() - self.last_deep >= FULL_RESYNC
        # a whole reconcile (`up`'s) compares every rule too, and leaves the proxy's SyncState knowing the
        # rules, so that the passes after it in this process (up's first readiness) sync incrementally
        live = self.scope(cluster, st, deep) if scoped else LivePass(proxy_state=self.sync_state(), prebuilt=prebuilt)
        if probe_first:
            live.first_probes = self.first_probes
        with self.beating():
            result = labmod.apply(cluster, text, st, progress, replace=True, live=live)
        if deep:
            self.last_deep = time.monotonic()
        st = self.load_state()
        now = time.time()
        # the kubelets report after the kernel work too: a pass longer than the grace period (a big lab,
        # a slow machine) must not look like nodes that stopped reporting
        self.heartbeats(self._periods[0], now)
        if before_status is not None:
            before_status()
        with self.beating():
            self.write_status(cluster, by_key, st, now)
        keep = {p.uid for p in cluster.pods}
        if self.own is not None:   # an agent: another host's pods too (those its model leaves out meanwhile)
            from .hostscope import pod_uid
            keep |= {pod_uid(o) for o in self.store.list("Pod")}
        volmod.prune(self.lab, keep)   # the volumes of pods that are gone
        # a pod without a readiness probe is ready once it listens: while a young one does not yet, look
        # again soon (its server may be starting), not only at the next resync
        recs = st.get("pods") or {}
        self.young_unready = any(
            not (recs.get(p.key) or {}).get("ready") and not is_deleting(by_key[p.key])
            and (by_key[p.key].get("status") or {}).get("phase") not in podexit.TERMINAL   # ended: no wait
            and now - float((recs.get(p.key) or {}).get("created") or 0) < 30 and p.decided_ready is None
            for p in cluster.pods)
        if self.kubelet:
            self.watch_probes(cluster, by_key, st, now)
            if self.let_go(cluster, by_key, st, now):
                self.let_go_pods = True
                self.run_controllers(runner)
        self.run_controllers(runner)
        if self.writes_files():
            self.files().after_pass(cluster)    # what this pass wrote: addresses, readiness, EndpointSlices
        self.last_full = time.monotonic()
        self.last_pass = time.time()
        self.dirty = False
        return result

    @contextlib.contextmanager
    def first_kubelet(self):
        """This process as the kubelet for a while (`up` of a lab no control loop runs for yet): probe workers
        of its own, ended when it leaves (an API user's process keeps no thread of it)."""
        from .prober import NodeProbers
        was, probers = self.kubelet, self.probes.probers
        self.kubelet = True
        self.probes.probers = NodeProbers(per_node=1)
        try:
            yield
        finally:
            self.kubelet = was
            self.probes.probers.close()
            self.probes.probers = probers

    def _probe_until(self, cluster: Cluster, by_key: dict[str, dict], st: dict, limit: float) -> None:
        """The readiness probes due within `limit` seconds (no initialDelaySeconds beyond it) run until each
        has passed, or the time is up (a probe that failed is tried again at its period meanwhile)."""
        self.watch_probes(cluster, by_key, st, time.time())
        end = time.monotonic() + limit
        horizon = time.time() + limit
        while time.monotonic() < end:
            self.probe_tick(time.time())
            waiting = [w for k, w in self.probes.workers.items() if k[2] == "readiness" and w.result is not True
                       and not w.on_hold and w.next_at <= horizon]
            if not waiting and not self.probes.busy():
                break
            time.sleep(0.01)

    def first_probes(self, cluster: Cluster, pods: dict[str, dict], limit: float = 3.0) -> dict[str, bool]:
        """`up`'s pass, once its containers run (`LivePass.first_probes`): the kubelet's first readiness
        probes of the pods that have one, with `pods` the pass's records of them (restarts, processes).
        Returns their verdicts by pod key, which the pass takes as the kubelet's: the Services' endpoints it
        writes, and the Ready conditions written after it, follow them. Before, `up` wrote every node's rules
        without them, then probed, then made a whole second pass for the cluster DNS's two endpoints (about 5 s
        of a 10,000-pod bring-up)."""
        by_key = self.last_by_key
        probed = [p for p in cluster.pods if p.key in by_key and has_readiness_probe(by_key[p.key])]
        if not probed:
            return {}
        with self.first_kubelet():
            self._probe_until(cluster, by_key, {"pods": pods}, limit)
        verdicts = {p.key: self.probes.ready(p.uid) for p in probed}
        return {k: v for k, v in verdicts.items() if v is not None}

    def prebuild(self, st: dict, proxy_mode: str | None):
        """`up` of a lab with no namespace yet, on one underlay, outside an agent: its nodes built by a child
        process (dataplane/prebuild.py) from the lab's model before the controllers run (the Cluster
        document's nodes, the pods the store holds so far). None when it does not apply."""
        from ..dataplane import lab as labmod
        from ..dataplane import state
        if self.own is not None or labmod.lab_namespaces(self.lab):
            return None
        cluster, _ = self.desired(st, proxy_mode)
        if cluster.networking.hosts is not None:
            return None
        labmod.preflight(cluster)   # what the pass would refuse, refused before any kernel change
        state.ensure_dirs(self.lab)
        from ..dataplane.prebuild import NodeBuild
        return NodeBuild(cluster)

    def first_readiness(self, limit: float = 3.0):
        """`up` of a lab no control loop runs for yet, after its first pass (which ran the probes due then,
        `first_probes`): the readiness probes that have not passed yet, within `limit` seconds, then, if any
        verdict changed, one pass that follows them (the Ready conditions, the Services' endpoints and so
        their rules). The loop started next keeps these verdicts until its own probes run (`desired`). Returns
        that pass's UpResult, or None when nothing changed."""
        from ..dataplane import state
        cluster, by_key = self.last_cluster, self.last_by_key
        if cluster is None:
            return None
        probed = [p for p in cluster.pods if p.key in by_key and has_readiness_probe(by_key[p.key])]
        if all(p.decided_ready for p in probed):   # (none, or every one passed in the pass: first_probes)
            return None
        with self.first_kubelet():
            self.dirty = False
            self._probe_until(cluster, by_key, state.load(self.lab) or {}, limit)
            if not self.dirty:
                return None
            return self.sync(scoped=True)

    def register(self, scenario_text: str, source: str | None, proxy_mode: str | None = None):
        """`up` of a lab run by agents (one control loop per host: netlab/live/agent.py): the controllers run
        and the lab's decisions recorded in its state.json (the scenario, addresses of nodes, pods and
        Services as the model keeps them: what the agents build from), and nothing else: the agents build
        their hosts' nodes and pods. Returns an UpResult without changes (they are the agents')."""
        from ..dataplane import iptables, layout, state
        from ..dataplane.lab import UpResult, source_identity
        st = self.load_state()
        runner = self.runner(scenario_text)
        # no heartbeat from here: a node's kubelet is its host's agent. A Lease renewed by `up` would give an
        # agent started later (by hand on another machine, or slowly on a busy one) only the grace period
        # and the toleration (20 s in a lab) before its pods were evicted; a node whose kubelet never
        # reported has the startup grace instead, as in Kubernetes (nodelifecycle.K8S_STARTUP_GRACE)
        self.reports = False
        self.run_controllers(runner)
        work = dict(st, scenario=scenario_text, source=source or st.get("source"))
        work.pop("proxyMode", None)
        cluster, _ = self.desired(work, proxy_mode)
        flavour = iptables.flavour_commands(cluster.networking.iptables_flavour)[0]
        recs = st.get("pods") or {}
        from ..dataplane.lab import POD_RECORD_KEYS as keep
        extra = {p.key: {k: v for k, v in (recs.get(p.key) or {}).items() if k in keep}
                 for p in cluster.pods if (recs.get(p.key) or {}).get("uid") == p.uid}
        doc = layout.state_doc(cluster, scenario_text, source_identity(cluster.source), st, "ready", extra,
                               dict(st.get("servers") or {}), flavour)
        state.save(self.lab, doc)
        # and in the store, for the agents of hosts that do not share this directory
        from .hostscope import config_object
        from .teardown import clear
        clear(self.store)   # (what an interrupted `down` left would make the agents remove the lab again)
        cm = config_object(doc)
        if self.store.try_get("ConfigMap", cm["metadata"]["namespace"], cm["metadata"]["name"]) is None:
            self.store.create(cm)
        else:
            self.store.update(cm)   # unconditional (no resourceVersion): `up` holds the lab's lock
        return UpResult(cluster, [], flavour, 0.0, created=not st.get("pods"))

    def writes_files(self) -> bool:
        """Whether this process writes the add-ons' files: where the controllers run, whose disk the lab's
        machine shares (one machine), and every agent of a real host (each machine's pods read its own disk)."""
        return self.leader or self.separate

    def files(self):
        """The add-ons' published files (netlab/live/addonfiles.py): DNS zone, MetalLB, ingress-nginx; the
        store's part of them (events, statuses) only where the controllers run."""
        if self.addon_files is None:
            from .addonfiles import AddonFiles
            self.addon_files = AddonFiles(self.lab, self.store, self.errors)
        self.addon_files.tell = self.leader
        if self.separate:   # an agent of a real host: its own nodes' BGP speakers
            self.addon_files.own, self.addon_files.host = self.own, self.host
        return self.addon_files

    def pending(self) -> bool:
        """Whether a pass has work to do that no store write announces: a drain in progress,
        namespaces of pods the last pass let go (its own deletes do not wake the loop), a restart
        back-off that ended since the last pass, a built-in container killed by its liveness probe
        whose restart is not counted yet."""
        now = time.time()
        ended = any(self.last_pass < when + delay <= now for _, when, delay in self.backoff.values())
        soon = (self.young_unready or self.builtin_kills) and now - self.last_pass >= 0.5
        return self.terminator.needs_pass() or self.let_go_pods or ended or bool(soon)


class _Undo(Exception):
    pass


def preview(lab: str, scenario: Scenario, text: str, prev: dict) -> Cluster:
    """What the next `up` of `scenario` would program into lab `lab` first (`render FILE --lab L`): the
    file applied to the lab's store and the controllers run, inside a transaction that is rolled back
    (nothing is written)."""
    from . import store_for
    store = store_for(lab)
    live = LiveLab(lab, store)
    out: list[Cluster] = []
    try:
        with store.transaction():
            base = build(scenario, prev, pods=[])
            objects.sync_nodes(store, objects.node_objects(base))
            from ..dataplane import layout
            from ..model import svcalloc
            objects.apply_objects(store, objects.scenario_objects(
                scenario, layout.dns_dir(lab), [str(n.ip) for n in base.nodes if n.role == "control-plane"]),
                prune=True, allocate=svcalloc.for_up(scenario, base, prev), admit=pod_admission(text))
            runner = live.runner(text)
            live.heartbeats(live._periods[0], time.time())
            runner.run_until_quiescent(between=live.keep_alive)
            work = dict(prev, scenario=text, source=scenario.source)
            work.pop("proxyMode", None)
            out.append(live.desired(work, scenario.networking.proxy_mode)[0])
            raise _Undo()
    except _Undo:
        pass
    return out[0]
