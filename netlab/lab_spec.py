"""A lab's desired cluster, from its scenario: the pure side of `up` and of every command that reads a
lab (get, exec, probe, logs). Scenario text is parsed and the model built here, never in dataplane/,
which receives a `Cluster` and the previous state and only applies them.

    scenario text ─ spec.parse ─> Scenario ─ model.build (+ previous state) ─> Cluster ─ dataplane.lab.apply
"""
from __future__ import annotations

import sys
from typing import Any

from .errors import NetlabError
from .gcpause import gc_paused
from .model import svcalloc
from .model.build import build
from .model.objects import Cluster
from .names import repair_command
from .spec.parse import load_text
from .spec.types import PROXY_MODES, Scenario


def desired(scenario: Scenario, prev: dict[str, Any], proxy_mode: str | None = None) -> Cluster:
    """The cluster `up` should make of `scenario`, keeping what `prev` (the lab's state) allocated;
    `proxy_mode` (`up --proxy-mode`) overrides the scenario's."""
    if proxy_mode:
        scenario.networking.proxy_mode = proxy_mode
    return build(scenario, prev)


def hosts_claims(exclude: str | None = None) -> dict:
    """lab -> its hosts (spec.types.HostsConfig) for every other lab of this machine spread over hosts, read
    from the scenario each was built from (what `model.placement.segment_conflict` compares a new lab's
    VXLAN claim with)."""
    from .dataplane import state
    out = {}
    for lab in state.labs_on_disk():
        st = state.load(lab) if lab != exclude else None
        if not st or "hosts:" not in (st.get("scenario") or ""):
            continue
        try:
            hc = load_text(st["scenario"], f"lab {lab}").networking.hosts
        except NetlabError:   # a scenario that no longer parses claims nothing
            continue
        if hc is not None:
            out[lab] = hc
    return out


def hosts_problem(cluster: Cluster) -> str | None:
    """The one line refusing a lab spread over hosts on this machine (None: nothing to refuse): a kernel
    without VXLAN, or another lab's claim of the same VXLAN port and VNI on the hosts' segment."""
    if cluster.networking.hosts is None:
        return None
    from .dataplane.kernelcheck import hosts_refusal
    from .model.placement import segment_conflict
    where = f"{cluster.source or '<scenario>'}: Cluster {cluster.name}"
    hc = cluster.networking.hosts
    claims = hosts_claims(exclude=cluster.name) if hc.mode == "real" else {}   # emulated: a segment of its own
    return hosts_refusal(where) or segment_conflict(cluster.name, hc, claims, where)


@gc_paused   # (as a live pass is: LiveLab.sync; the same holds for building the model, waiting for rollouts)
def up(scenario: Scenario, scenario_text: str, progress=None, proxy_mode: str | None = None, replace: bool = True,
       wait: float | None = None, control_loop: bool = True, etcd: tuple[list[str], str | None] | None = None):
    """Build or reconcile lab `scenario.name`: its nodes from the Cluster document, its objects written to
    the lab's store (`kubectl apply --prune`), then passes of the control loop until every rollout is
    done and no pod is terminating (at most `wait` seconds, default the largest progressDeadlineSeconds
    and at least 30 s); the lab's control loop process is started to carry on. Returns the UpResult of
    the last pass. `replace=False`: refuse, before any change, what would remove or recreate nodes or
    pods of a lab that was built from another source. `control_loop=False` (tests that count what one
    `up` changes): no control loop process is started; `up` runs the passes itself until settled.
    The result's `elapsed` is the whole `up`'s wall time. `etcd` ((endpoints, netns), `up --etcd`): the lab's
    store goes in that etcd (netlab.live.use_etcd; endpoints that do not answer are refused, nothing built)."""
    import time as _time
    started = _time.monotonic()
    from .dataplane import state
    from .live import locked, loop, objects, store_for
    from .live.rollouts import progress as rollout_progress
    from .live.rollouts import settled
    from .live.hostscope import hosts_of
    from .live.sync import LiveLab, pod_admission
    lab = scenario.name
    if proxy_mode:
        scenario.networking.proxy_mode = proxy_mode
    # what this machine holds (memory, namespaces, mounts, processes): refused before anything is read or built
    from .dataplane import machine
    from .spec.parse import check_scenario_machine
    check_scenario_machine(scenario, machine.limits())
    prev = state.load(lab) or {}
    # everything that can be refused is refused before anything is written: the scenario built as a
    # still picture (its Deployments' replicas scheduled as netlab's own expansion does) must stand
    from .dataplane import lab as labmod
    from .dataplane import layout
    still = build(scenario, prev)
    problem = hosts_problem(still)
    if problem:
        from .errors import UsageError
        raise UsageError(problem)
    labmod.preflight(still)
    _check_placement(still, store_for(lab).list("Node") if prev else [])
    from .dataplane import bgp
    # MetalLB's BGP mode runs BIRD on the nodes whatever the backend: refused before anything is built without it
    bgp.preflight(still, metallb_bgp=any(isinstance(d, dict) and d.get("kind") == "BGPPeer"
                                         for d in scenario.documents))
    from .spec.podparts import check_references, stored_sources
    real = still.networking.hosts is not None and still.networking.hosts.mode == "real"
    if real and etcd is None:
        from .live import store_config
        if store_config(lab) is None:
            from .errors import UsageError
            raise UsageError(f"{still.source or '<scenario>'}: Cluster {lab}: hostNetwork.mode real needs the lab's "
                             f"store in etcd, where every host's agent reads it: add --etcd http://HOST:2379[,...]")
    from .dataplane import hoststore
    if hoststore.wants_etcd(still):   # emulated hosts with their own etcd members (before the store is opened)
        if etcd is not None:
            from .errors import UsageError
            raise UsageError(f"lab {lab}: hostNetwork.store: etcd runs the lab's own etcd members; "
                             "leave out --etcd, or leave out hostNetwork.store to use those endpoints")
        from .live import hostmembers
        hostmembers.ensure(still)
    elif etcd is not None:
        from .live import use_etcd
        use_etcd(lab, list(etcd[0]), etcd[1])
    from .live import agent as agentmod
    agentmod.set_real(lab, real)   # real hosts: every machine runs its own agent; no command here starts one
    # the lab's store only if the lab exists (opening it would make the lab's directory); up prunes
    # what an earlier apply wrote, so only the manifests and what was never applied count
    check_references(scenario.documents, stored_sources(store_for(lab), applied=False) if prev else set())
    base = build(scenario, prev, pods=[])
    with locked(lab):
        store = store_for(lab)
        wanted = objects.scenario_objects(scenario, layout.dns_dir(lab),
                                          [str(n.ip) for n in base.nodes if n.role == "control-plane"])
        allocate = svcalloc.for_up(scenario, base, prev)
        admit = pod_admission(scenario_text)
        if not replace and prev:
            _refuse_replacing(store, scenario, wanted, prev, allocate, admit)
        objects.sync_nodes(store, objects.node_objects(base))
        objects.apply_objects(store, wanted, prune=True, allocate=allocate, admit=admit)
        live = LiveLab(lab, store, kubelet=not control_loop)
        # a lab whose nodes are placed on hosts (their Node objects' label, kept as `netlab label` leaves it)
        # is built by its agents (one control loop per host), not here
        agents = control_loop and bool(hosts_of(store.list("Node")))
        # no kubelet runs yet: `up` probes the pods' readiness itself and follows it (live/sync.py), in its
        # pass once the containers run, so that the cluster DNS answers when it returns, without waiting
        # for the loop's first passes
        kubelet_first = control_loop and not agents and not loop.running(lab)
        first = None
        if agents:
            result = live.register(scenario_text, scenario.source, proxy_mode)
        else:
            # the lab's loop is started once the kernel work is done (`loop.start`): its Python start-up
            # runs beside the pods' status write and the readiness below, and it waits for this lock,
            # held until then, before its first pass; an `up` that fails from there on stops it again
            early = (lambda: loop.start(lab)) if kubelet_first else None
            try:
                result = live.sync(progress, proxy_mode, scenario_text=scenario_text, source=scenario.source,
                                   probe_first=kubelet_first, before_status=early)
                if kubelet_first:
                    # and what did not pass within it: one more look, and a pass if a verdict changed
                    first = live.first_readiness()
            except BaseException:
                if kubelet_first:
                    loop.abandon(lab)
                raise
    changes, records, created = list(result.changes), list(result.records), result.created
    if first is not None:
        changes += first.changes
        records += first.records
        result = first
    from .live import store_config
    store_conf = store_config(lab)
    if store_conf:   # a store in etcd: the nodes' flannel leases go there too (netlab/flannel/)
        from .flannel.leases import publish_lab
        publish_lab(store_conf, result.cluster)
    # the lab's control loop carries on (rollouts, probes, graceful deletion); `up` returns once it has
    # settled: every rollout done and no pod terminating, or nothing has moved for a while (a pod that
    # never turns ready must not hold `up`: `netlab rollout status` follows it)
    loop.set_frozen(lab, not control_loop)
    if control_loop:
        loop.ensure(lab)
    else:
        loop.stop(lab)
    from .dataplane.supervise import READY_WAIT
    limit = wait if wait is not None else max([30.0] + [float((d.get("spec") or {}).get("progressDeadlineSeconds", 0))
                                                         for d in store.list("Deployment")])
    end = _time.monotonic() + limit
    moved, view, waited = _time.monotonic(), None, False
    while _time.monotonic() < end:
        done, what = settled(store, available=control_loop, built=agents)  # a still picture: rollouts only
        if done:
            break
        now_view = rollout_progress(store)
        if now_view != view:
            view, moved = now_view, _time.monotonic()
        elif _time.monotonic() - moved > max(READY_WAIT, 1.0):
            break
        waited = True
        if progress is not None:
            progress(f"waiting: {what}", 0, 0)
        if control_loop:
            store.wait(store.revision(), 0.2)
            continue
        _time.sleep(0.2 if live.pending() else 0.05)
        live.hold_restarts = True  # a still picture: its `up` restarts containers once, in its first pass
        with locked(lab):
            live.probe_tick(_time.time())
            # scoped, as the control loop's passes: the first pass above read back every pod's network;
            # doing it again on every wait (7 ms a pod) made a 10,000-pod `up` take minutes
            last = live.sync(progress, scoped=True)
        changes += last.changes
        records += last.records
    if agents:   # the lab as its agents built it
        result.cluster = live.desired(state.load(lab) or {})[0]
    elif waited:  # what the loop did meanwhile, as the result shows it (scoped: see above); and the proxy rules
        # synced to the endpoints the loop's last pass made ready (the loop syncs them in its next pass only)
        with locked(lab):
            last = live.sync(progress, scoped=True)
        changes += last.changes
        records += last.records
        result = last
    result.changes, result.records, result.created = changes, records, created
    result.elapsed = _time.monotonic() - started   # the whole `up`, not its last pass
    return result


def _check_placement(cluster: Cluster, live_nodes: list[dict] = ()) -> None:
    """A lab whose nodes are placed on hosts (label netlab.dev/host: one agent per host) must place all of
    them: a node on no host would have no agent to build it. `live_nodes`: the lab's Node objects as
    stored (a label set there, by `netlab label`, stays: the scenario's labels are merged in)."""
    from .errors import UsageError
    from .live.hostscope import HOST_LABEL, node_host
    stored = {n["metadata"]["name"]: node_host(n) for n in live_nodes}
    host = {n.name: n.labels.get(HOST_LABEL) or stored.get(n.name) for n in cluster.nodes}
    placed = [n.name for n in cluster.nodes if host[n.name]]
    if placed and len(placed) != len(cluster.nodes):
        missing = ", ".join(n.name for n in cluster.nodes if not host[n.name])
        raise UsageError(f"nodes {missing} are placed on no host while {', '.join(placed)} are: give every node "
                         f"the label {HOST_LABEL}=<host> in the Cluster document's nodes[].labels, or none")


def _refuse_replacing(store, scenario: Scenario, wanted: list[dict], prev: dict[str, Any], allocate=None,
                      admit=None) -> None:
    """A lab built from one source, brought up from another that would remove what the first built:
    say so, and what to run to do it anyway (nothing is written: the trial is rolled back)."""
    from .dataplane.lab import source_identity
    from .errors import UsageError
    from .live import objects
    old = prev.get("sourcePath") or source_identity(prev.get("source"))
    if old == source_identity(scenario.source):
        return
    lost = [f"node {n}" for n in sorted(prev.get("nodes", {})) if n not in {x.name for x in scenario.nodes}]

    class _Undo(Exception):
        pass
    try:
        with store.transaction():
            gone = [a for a in objects.apply_objects(store, wanted, prune=True, allocate=allocate, admit=admit)
                    if a.action in ("pruned", "recreated")]
            for a in gone:
                if a.kind == "Deployment":
                    lost += [f"pod {a.namespace}/{p['metadata']['name']}" for p in objects.pods_of(store, a.namespace, a.name)]
                elif a.kind == "Pod":
                    lost.append(f"pod {a.namespace}/{a.name}" + (" (recreated)" if a.action == "recreated" else ""))
                else:
                    lost.append(f"{a.kind.lower()} {a.namespace}/{a.name}" if a.namespace else f"{a.kind.lower()} {a.name}")
            raise _Undo()
    except _Undo:
        pass
    if not lost:
        return
    shown = ", ".join(lost[:6]) + (f" and {len(lost) - 6} more" if len(lost) > 6 else "")
    raise UsageError(f"lab {scenario.name} was built from {prev.get('source') or 'another scenario'}; "
                     f"{scenario.source} would remove {shown}. To reconcile the lab from its own scenario run: "
                     f"{repair_command(scenario.name)}; to replace it, add --replace")


def from_state(lab: str, st: dict[str, Any] | None, state_path: str) -> Cluster:
    """The cluster as the last `up` of `lab` decided it, rebuilt from its state `st` (read from
    `state_path`)."""
    if st is None or not st.get("scenario"):
        raise NetlabError(f"lab '{lab}' has no readable state ({state_path}); "
                          f"remove it with: sudo netlab down {lab}")
    scenario = load_text(st["scenario"], st.get("source") or "<state>")
    scenario.name = lab
    if st.get("proxyMode") in PROXY_MODES:  # `up --proxy-mode` overrides the scenario
        scenario.networking.proxy_mode = st["proxyMode"]
    from .live import has_store
    if has_store(lab):  # a live lab: its pods are the store's
        from .live.sync import LiveLab
        from .model.build import refresh_endpoints
        cluster, by_key = LiveLab(lab).desired(st)
        # a lab on real hosts: a pod on another machine's host is ready as its kubelet (that host's agent) wrote
        # it in the store, as the agents' own models take it (this machine has no record of it)
        from .live.agent import away_nodes
        from .store.meta import get_condition
        away = away_nodes(lab, cluster)
        for pod in cluster.pods:
            if pod.node in away:
                cond = get_condition(by_key[pod.key], "Ready") or {}
                pod.ready = cond.get("status") == "True"
        refresh_endpoints(cluster)   # with the pods' readiness as decided there (as a pass does before its rules)
        return cluster
    cluster = build(scenario, st)
    if {p.key for p in cluster.pods} != set(st.get("pods", {})):
        raise NetlabError(f"lab '{lab}' was built by another version of netlab (its pods would be named "
                          f"differently now); reconcile it with: {repair_command(lab)}")
    return cluster


def load_cluster(lab: str) -> tuple[Cluster, dict[str, Any]]:
    """The cluster of a lab that exists, and its state."""
    from .dataplane import layout
    import os

    from .live import has_store, load_state, loop
    if os.geteuid() == 0 and has_store(lab):
        loop.ensure(lab)  # a control loop that died (killed, a reboot of the host) comes back
    st, running = load_state(lab)
    cluster = from_state(lab, st, layout.state_file(lab))
    if st.get("phase") != "ready" and not running:  # (a pass of the control loop is not an unfinished up)
        sys.stderr.write(f"warning: the last 'netlab up' of lab '{lab}' did not finish; what is shown may be "
                         f"incomplete (finish it with: {repair_command(lab)})\n")
    return cluster, st
