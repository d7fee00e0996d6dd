"""`netlab get`: nodes, pods, services, endpoints and labs, as kubectl get shows them."""
from __future__ import annotations

import click

from ..errors import NotFound

RESOURCES = {
    "nodes": "nodes", "node": "nodes", "no": "nodes",
    "pods": "pods", "pod": "pods", "po": "pods",
    "services": "services", "service": "services", "svc": "services",
    "endpoints": "endpoints", "ep": "endpoints",
    "labs": "labs", "lab": "labs",
    # a live lab's store only (getlive.py)
    "deployments": "deployments", "deployment": "deployments", "deploy": "deployments",
    "deployments.apps": "deployments", "deployment.apps": "deployments",
    "replicasets": "replicasets", "replicaset": "replicasets", "rs": "replicasets",
    "statefulsets": "statefulsets", "statefulset": "statefulsets", "sts": "statefulsets",
    "statefulsets.apps": "statefulsets",
    "daemonsets": "daemonsets", "daemonset": "daemonsets", "ds": "daemonsets",
    "daemonsets.apps": "daemonsets", "daemonset.apps": "daemonsets",
    "events": "events", "event": "events", "ev": "events",
    "endpointslices": "endpointslices", "endpointslice": "endpointslices",
    "endpointslices.discovery.k8s.io": "endpointslices",
    "configmaps": "configmaps", "configmap": "configmaps", "cm": "configmaps",
    "secrets": "secrets", "secret": "secrets",
    "serviceaccounts": "serviceaccounts", "serviceaccount": "serviceaccounts", "sa": "serviceaccounts",
    "leases": "leases", "lease": "leases", "leases.coordination.k8s.io": "leases",
    "jobs": "jobs", "job": "jobs", "jobs.batch": "jobs", "job.batch": "jobs",
    "cronjobs": "cronjobs", "cronjob": "cronjobs", "cj": "cronjobs", "cronjobs.batch": "cronjobs",
    "cronjob.batch": "cronjobs",
    "ipaddresspools": "ipaddresspools", "ipaddresspool": "ipaddresspools", "ipaddresspools.metallb.io": "ipaddresspools",
    "l2advertisements": "l2advertisements", "l2advertisement": "l2advertisements",
    "l2advertisements.metallb.io": "l2advertisements",
    "bgppeers": "bgppeers", "bgppeer": "bgppeers", "bgppeers.metallb.io": "bgppeers",
    "bgpadvertisements": "bgpadvertisements", "bgpadvertisement": "bgpadvertisements",
    "bgpadvertisements.metallb.io": "bgpadvertisements",
    "ingresses": "ingresses", "ingress": "ingresses", "ing": "ingresses",
    "ingresses.networking.k8s.io": "ingresses", "ingress.networking.k8s.io": "ingresses",
    "ingressclasses": "ingressclasses", "ingressclass": "ingressclasses",
    "ingressclasses.networking.k8s.io": "ingressclasses",
    "networkpolicies": "networkpolicies", "networkpolicy": "networkpolicies", "netpol": "networkpolicies",
    "networkpolicies.networking.k8s.io": "networkpolicies", "networkpolicy.networking.k8s.io": "networkpolicies",
    "namespaces": "namespaces", "namespace": "namespaces", "ns": "namespaces",
}
# kubectl's `all` category, in the order kubectl shows it (no ReplicationControllers or HorizontalPodAutoscalers here)
ALL = ("pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets", "cronjobs", "jobs")
# kubectl's name of each kind, shown before its objects' names by `get` of several kinds (and by -o name)
KIND_NAMES = {"nodes": "node", "pods": "pod", "services": "service", "endpoints": "endpoints", "labs": "lab"}


@click.command()
@click.argument("resource", metavar="RESOURCE")
@click.argument("names", nargs=-1)
@click.option("-n", "--namespace", default="default", show_default=True, help="Kubernetes namespace.")
@click.option("-A", "--all-namespaces", is_flag=True, help="List objects of every namespace.")
@click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml", "name"]), help="Output format.")
@click.option("-l", "--selector", help="Only objects with these labels (app=web,tier!=db,env in (a,b)).")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@click.option("-w", "--watch", is_flag=True, help="After the table, print a row for every change (until Ctrl-C).")
@click.option("--lab", metavar="NAME", help="Lab to look at (default: the only lab up, else the one last brought up).")
def get(resource: str, names: tuple[str, ...], namespace: str, all_namespaces: bool, output: str | None,
        selector: str | None, show_labels: bool, watch: bool, lab: str | None) -> None:
    """Show nodes, pods, services, endpoints, endpointslices, deployments (deploy), replicasets (rs),
    statefulsets (sts), daemonsets (ds), jobs, cronjobs (cj), events (ev), configmaps (cm), secrets,
    serviceaccounts (sa), leases, ipaddresspools, l2advertisements, bgppeers, bgpadvertisements (MetalLB's, in
    metallb-system), ingresses
    (ing), ingressclasses, networkpolicies (netpol), namespaces (ns) or labs, like kubectl get. RESOURCE may be
    TYPE/NAME as kubectl takes it (sts/web sts/db), a comma list, or `all` (pods, services, daemonsets,
    deployments, replicasets, statefulsets, cronjobs, jobs): several kinds are shown as kubectl shows them, each
    name with its kind (deployment.apps/web), one List for -o json|yaml.

    \b
    STATUS is checked against the kernel, not just the state file:
      pods   READY counts containers running and (for those that declare containerPorts)
             listening on them; STATUS is Running, Completed (exit 0), Error (exit code not 0, or
             not running), CrashLoopBackOff (ended again after a restart), NetworkBroken (its veth
             is missing, down or off cni0), Unknown (no namespace); -o json has containerStatuses
             and conditions. Only ready pods are endpoints; `up` resyncs the rules when that changes
           (a live lab: Terminating while deleted, Pending until a node runs it)
      nodes  NotReady when the node differs from what netlab built (sysctls, links, routes,
             VXLAN neighbours/FDB, iptables/nftables/IPVS state); what `up` would repair is
             printed on stderr (and is the NetworkUnavailable condition in -o json);
             SchedulingDisabled after `cordon`, NotReady when the lab's node lifecycle says so;
             -o wide of a lab over several hosts: HOST (where the node is placed)
      deploy READY, UP-TO-DATE, AVAILABLE; rs DESIRED, CURRENT, READY; sts READY; ds DESIRED, CURRENT,
             READY, UP-TO-DATE, AVAILABLE, NODE SELECTOR; events in time order;
      jobs   STATUS (Running, Complete, Failed...), COMPLETIONS, DURATION; cronjobs SCHEDULE,
             TIMEZONE, SUSPEND, ACTIVE, LAST SCHEDULE
      endpointslices ADDRESSTYPE, PORTS, ENDPOINTS (-o yaml: ready/serving/terminating)
      configmaps DATA; secrets TYPE, DATA (a count: values are never shown in the table);
             serviceaccounts SECRETS (stored by `up`/`apply`, not used by netlab yet)
      leases HOLDER: the nodes' kubelets' (kube-node-lease) and, in a lab run by agents, the
             controllers' (kube-system/netlab-controllers: the agent that runs them)
      services EXTERNAL-IP of a LoadBalancer: its status.loadBalancer.ingress, as MetalLB's
             controller assigned it from the IPAddressPools, <pending> until it has one
      ipaddresspools AUTO ASSIGN, AVOID BUGGY IPS, ADDRESSES; l2advertisements IPADDRESSPOOLS,
             IPADDRESSPOOL SELECTORS, INTERFACES (-o wide: NODE SELECTORS); bgppeers ADDRESS, ASN,
             BFD PROFILE, MULTI HOPS; bgpadvertisements IPADDRESSPOOLS, IPADDRESSPOOL SELECTORS, PEERS
             (-o wide: NODE SELECTORS): MetalLB's columns
      ingresses CLASS, HOSTS, ADDRESS (what the ingress-nginx add-on published), PORTS;
             ingressclasses CONTROLLER, PARAMETERS
      networkpolicies POD-SELECTOR (<none>: every pod of the namespace); namespaces STATUS
             (--show-labels: the labels a NetworkPolicy's namespaceSelector matches)
    -w (watch) prints what the lab's store says (the control loop's view) as it changes.
    """
    if "/" in resource:   # kubectl's TYPE/NAME form: `get deploy/web`, `get sts/web sts/db`
        typed = [resource, *names]
        if not all(t.count("/") == 1 and t.split("/")[0] and t.split("/")[1] for t in typed) or \
                len({RESOURCES.get(t.split("/")[0].lower(), t.split("/")[0]) for t in typed}) != 1:
            raise click.BadParameter("use TYPE/NAME for every argument, all of one type (e.g. sts/web sts/db), "
                                     "or TYPE NAME...", param_hint="RESOURCE")
        resource, names = resource.split("/")[0], tuple(t.split("/")[1] for t in typed)
    kinds = []
    for part in resource.split(","):
        if part.strip().lower() == "all":
            kinds += [k for k in ALL if k not in kinds]
            continue
        kind = RESOURCES.get(part.strip().lower())
        if kind is None:
            raise click.BadParameter(f"unknown resource {part!r}; use nodes, pods, services, endpoints, "
                                     "endpointslices, deployments, replicasets, statefulsets, daemonsets, jobs, "
                                     "cronjobs, events, configmaps, secrets, serviceaccounts, leases, ipaddresspools, "
                                     "l2advertisements, bgppeers, bgpadvertisements, ingresses, ingressclasses, "
                                     "networkpolicies, namespaces, "
                                     "all or labs",
                                     param_hint="RESOURCE")
        kinds.append(kind)
    from . import getlive
    from .kubeutil import KubeError, NamesNotFound
    try:
        if watch:
            if any(k not in getlive.STORE_KINDS for k in kinds):
                raise click.BadParameter("-w watches pods, nodes, deployments, replicasets and events",
                                         param_hint="RESOURCE")
            getlive.watch([getlive.STORE_KINDS[k] for k in kinds], names, namespace, all_namespaces, output,
                          selector, show_labels, lab)
            return
        from .getsink import Sink
        from .kubeutil import SINGULAR
        missing: list[str] = []   # names not found beside some that were: said after what was found
        sink = Sink(output, len(kinds) > 1 or resource.strip().lower() == "all", namespace, all_namespaces)
        for kind in kinds:
            store_kind = getlive.STORE_KINDS.get(kind) if kind not in KIND_NAMES else None
            try:
                with sink.kind(SINGULAR[store_kind] if store_kind else KIND_NAMES.get(kind, kind)):
                    if store_kind:
                        getlive.show(store_kind, names, namespace, all_namespaces, output, selector, show_labels, lab,
                                     missing, sink)
                    else:
                        _get_one(kind, names, namespace, all_namespaces, output, lab, selector, show_labels, missing,
                                 sink)
            except NamesNotFound as e:   # none of the names is of this kind: the other kinds are still shown
                missing.extend(str(e).splitlines())
        sink.finish()
        if missing:
            raise KubeError("\n".join(missing))
    except KubeError as e:
        click.echo(str(e), err=True)
        click.get_current_context().exit(e.exit_code)


def _get_one(kind: str, names: tuple[str, ...], namespace: str, all_namespaces: bool, output: str | None,
             lab: str | None, selector: str | None = None, show_labels: bool = False,
             missing: list[str] | None = None, sink=None) -> None:
    """`get` of a kind netlab's model shows (nodes, pods, services, endpoints) or of labs; `missing` as
    _missing takes it; `sink`: where it goes (cli/getsink.py: one kind of several), else printed as the only kind."""
    from .. import output as out
    from ..dataplane import lab as labmod
    from .. import lab_spec
    from .getsink import Sink
    labmod.require_root("read a lab's state")
    fmt = output
    sink = sink or Sink(output, False, namespace, all_namespaces)
    if kind == "labs":
        shown = [n for n in labmod.labs() if not names or n in names]
        _missing(names, shown, "lab")
        if fmt in ("json", "yaml"):
            from ..dataplane import state
            sink.objects(out.lab_objects([(n, state.load(n)) for n in shown]), len(names) == 1)
        elif fmt == "name":
            click.echo("".join(f"lab/{n}\n" for n in shown), nl=False)
        elif shown:
            sink.table(out.table(["NAME"], [[n] for n in shown]))
        elif sink.several:
            sink.empty()
        else:
            click.echo("No labs are up.")
        return
    name = labmod.resolve_lab(lab)
    cluster, st = lab_spec.load_cluster(name)
    created = st.get("created")
    # kubectl lists by namespace, then name
    cluster.nodes = sorted(cluster.nodes, key=lambda n: n.name)
    cluster.services = sorted(cluster.services, key=lambda s: (s.namespace, s.name))
    if kind == "nodes":
        live = _live_nodes(name)
        labels = {n.name: (live[n.name]["metadata"].get("labels") or {}) if n.name in live else dict(n.labels)
                  for n in cluster.nodes}
        shown = [n for n in cluster.nodes if (not names or n.name in names)
                 and (not selector or selector_matches(selector, labels[n.name]))]
        _missing(names, [n.name for n in shown], "node", missing)
        if fmt == "name":
            click.echo("".join(f"node/{n.name}\n" for n in shown), nl=False)
            return
        # checked against the whole cluster (its peers); a node of another machine's host (real hosts) is not
        # this kernel's to check: its STATUS is the store's (its kubelet's, as kubectl shows it)
        from ..live import agent as agentmod
        away = agentmod.away_nodes(name, cluster)
        problems = labmod.node_problems(cluster, st, [n for n in shown if n.name not in away])
        problems.update({n.name: [] for n in shown if n.name in away})
        cluster = _subset_nodes(cluster, names)
        if fmt in ("json", "yaml"):
            sink.objects(out.node_objects(cluster, problems, created, labmod.repair_command(name)), len(names) == 1)
        else:
            from ..controllers.printers import node_row
            picked = {n.name for n in shown}
            cluster.nodes = [n for n in cluster.nodes if n.name in picked or not selector]
            sink.table(out.node_table(cluster, problems, created, fmt == "wide",
                                      {n: node_row(o, 0)[1] for n, o in live.items()},
                                      {n: ",".join(f"{k}={v}" for k, v in sorted(lb.items())) for n, lb in labels.items()}
                                      if show_labels else None, _bgp_column(cluster, fmt)))
            for node, found in problems.items():
                if found:
                    click.echo(f"node {node}: NotReady, `{labmod.repair_command(name)}` would repair: "
                               f"{'; '.join(found)}", err=True)
        return
    if kind == "pods":
        statuses = [s for s in labmod.pod_statuses(cluster, st)
                    if (all_namespaces or s.pod.namespace == namespace) and (not names or s.pod.name in names)
                    and (not selector or selector_matches(selector, s.pod.labels))]
        statuses, away = _elsewhere(name, cluster, statuses)
        objs = _stored_pods(name, out.pod_objects(statuses, cluster), namespace, all_namespaces, names, selector) \
            if fmt in ("json", "yaml") else None
        if objs is not None:   # a live lab: the stored Pods, as the API server returns them
            _missing(names, [o["metadata"]["name"] for o in objs], "pod", missing)
            sink.objects(objs, len(names) == 1)
            return
        if fmt not in ("json", "yaml"):
            statuses = _with_store_view(name, statuses, namespace, all_namespaces, names, selector)
        statuses.sort(key=lambda s: (s.pod.namespace, s.pod.name))
        _missing(names, [s.pod.name for s in statuses], "pod", missing)
        if fmt in ("json", "yaml"):
            sink.objects(out.pod_objects(statuses, cluster), len(names) == 1)
        elif fmt == "name":
            click.echo("".join(f"pod/{s.pod.name}\n" for s in statuses), nl=False)
        elif not statuses:
            sink.empty(f"No resources found in {namespace} namespace." if not all_namespaces else "No resources found")
        else:
            sink.table(out.pod_table(statuses, all_namespaces, fmt == "wide", show_labels))
            for s in statuses:
                if s.phase not in ("Terminating", "Pending") and s.pod.node not in away and s.is_ready != s.pod.ready \
                        and any(_selects(svc, s.pod) for svc in cluster.services):
                    click.echo(f"pod {s.pod.name}: {'ready' if s.is_ready else 'not ready'} since the last up; "
                               f"`{labmod.repair_command(name)}` would update its Services' endpoints", err=True)
        return
    cluster.services = [s for s in cluster.services if (all_namespaces or s.namespace == namespace)
                        and (not names or s.name in names)]
    created = _service_times(name, created)
    _missing(names, [s.name for s in cluster.services], kind[:-1], missing)
    if kind == "services":
        if fmt in ("json", "yaml"):
            sink.objects(_as_stored(name, "Service", out.service_objects(cluster, created)), len(names) == 1)
        elif fmt == "name":
            click.echo("".join(f"service/{s.name}\n" for s in cluster.services), nl=False)
        elif not cluster.services:
            sink.empty(f"No resources found in {namespace} namespace.")
        else:
            sink.table(out.service_table(cluster, created, all_namespaces, fmt == "wide", namespace))
    else:
        if fmt in ("json", "yaml"):
            sink.objects(out.endpoints_objects(cluster, created), len(names) == 1)
        elif fmt == "name":
            click.echo("".join(f"endpoints/{s.name}\n" for s in cluster.services), nl=False)
        elif not cluster.services:
            sink.empty(f"No resources found in {namespace} namespace.")
        else:
            sink.table(out.endpoints_table(cluster, created, all_namespaces, namespace))


def selector_matches(selector: str, labels: dict) -> bool:
    from ..store.meta import selector_matches as matches
    return matches(selector, labels)


def _elsewhere(lab: str, cluster, statuses: list) -> tuple[list, set[str]]:
    """A lab on real hosts (hostNetwork.mode real): a pod bound to a node of a host that is another machine's
    (its host namespace is not on this one) is not this kernel's to check; it is shown as that host's kubelet
    (its agent) last wrote it in the store, as kubectl shows every pod. Returns the statuses and those nodes."""
    from ..controllers.printers import pod_status
    from ..dataplane.status import PodStatus
    from ..live import agent as agentmod
    from ..live import store_for
    from ..store.meta import parse_time
    away = agentmod.away_nodes(lab, cluster)
    if not away:
        return statuses, away
    objs = {(o["metadata"].get("namespace", "default"), o["metadata"]["name"]): o for o in store_for(lab).list("Pod")}
    out = []
    for s in statuses:
        o = objs.get((s.pod.namespace, s.pod.name))
        if s.pod.node in away and o is not None:
            phase, ready, restarts, _ = pod_status(o)
            s = PodStatus(s.pod, phase, ready, s.total, restarts, parse_time((o.get("status") or {}).get("startTime")))
        out.append(s)
    return out, away


def _service_times(lab: str, created: float | None) -> dict:
    """When each of a live lab's Services was made (its stored creationTimestamp), the lab's time under None."""
    from ..store.meta import parse_time
    times: dict = {None: created}
    for key, obj in _stored(lab, "Service").items():
        times[key] = parse_time(obj["metadata"].get("creationTimestamp")) or created
    return times


def _stored(lab: str, kind: str) -> dict:
    """A live lab's stored objects of `kind` by (namespace, name) (none when the lab has no store)."""
    from ..live import has_store, store_for
    if not has_store(lab):
        return {}
    return {(o["metadata"].get("namespace", "default"), o["metadata"]["name"]): o for o in store_for(lab).list(kind)}


def _stored_pods(lab: str, seen: list[dict], namespace: str, all_namespaces: bool, names,
                 selector: str | None) -> list[dict] | None:
    """-o json|yaml of a live lab's pods: each stored Pod as the API server returns it (its metadata with uid and
    resourceVersion, the whole spec as applied), in namespace and name order, those not scheduled or not started
    yet too, with its status checked against the kernel as `get` documents it: `seen` (the model's objects,
    output.pod_objects) says the phase, the containers' states and the conditions (where it agrees with the
    stored status, the stored one's times and other fields stay), and netlab adds the annotation
    netlab.dev/netns (the pod's network namespace, for `ip netns exec`). None for a lab without a store."""
    from ..live import has_store, store_for
    if not has_store(lab):
        return None
    views = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in seen}
    out = []
    for o in store_for(lab).list("Pod"):   # (the store's order: namespace, then name)
        md = o["metadata"]
        ns = md.get("namespace", "default")
        if not (all_namespaces or ns == namespace) or (names and md["name"] not in names) or \
                (selector and not selector_matches(selector, md.get("labels") or {})):
            continue
        obj = dict(o, metadata=dict(md))
        view = views.get((ns, md["name"]))
        if view is not None:
            obj["metadata"]["annotations"] = {**(md.get("annotations") or {}), **view["metadata"]["annotations"]}
            obj["status"] = _checked_status(o.get("status") or {}, view["status"])
        out.append(obj)
    return out


def _checked_status(stored: dict, seen: dict) -> dict:
    """A pod's stored status with what netlab's look at the kernel saw (`seen`) over it: its phase, reason and
    message, each container's state, and each condition's status; a condition whose status the kernel confirms
    keeps its stored times, a container its stored fields."""
    status = dict(stored, **{k: v for k, v in seen.items() if k not in ("conditions", "containerStatuses")})
    for k in ("reason", "message"):   # (the kernel's view says them when the pod is not as it should be)
        if k not in seen:
            status.pop(k, None)
    conds = {c.get("type"): c for c in stored.get("conditions") or []}
    status["conditions"] = [dict(conds[c["type"]], **c) if (conds.get(c["type"]) or {}).get("status") == c["status"]
                            else dict(c) for c in seen.get("conditions") or []]
    cs = {c.get("name"): c for c in stored.get("containerStatuses") or []}
    status["containerStatuses"] = [dict(cs.get(c["name"]) or {}, **c) for c in seen.get("containerStatuses") or []]
    return status


def _as_stored(lab: str, kind: str, objs: list[dict]) -> list[dict]:
    """What -o json/yaml shows of a live lab's Services: the stored metadata (uid, resourceVersion, the exact
    creationTimestamp, annotations) and the stored spec over the model's (every field the user set, those the
    model does not render too), as kubectl shows the object, so that the output can be edited and given back to
    `replace` without losing a field; the status is the model's. (A pod is the stored one: _stored_pods.)"""
    stored = _stored(lab, kind)
    for o in objs:
        live = stored.get((o["metadata"].get("namespace", "default"), o["metadata"]["name"]))
        if live is not None:
            o["metadata"] = live["metadata"]
            o["spec"] = {**(o.get("spec") or {}), **(live.get("spec") or {})}
    return objs


def _with_store_view(lab: str, statuses: list, namespace: str, all_namespaces: bool, names, selector) -> list:
    """A live lab's pods as kubectl shows them: those being deleted are Terminating, and the store's
    pods that run nowhere yet (not scheduled, or not started) are listed as Pending."""
    import types

    from ..dataplane.status import PodStatus
    from ..live import has_store, store_for
    from ..store.meta import is_deleting, parse_time
    if not has_store(lab):
        return statuses
    objs = {(o["metadata"].get("namespace", "default"), o["metadata"]["name"]): o for o in store_for(lab).list("Pod")}
    shown = {(s.pod.namespace, s.pod.name) for s in statuses}
    for s in statuses:
        o = objs.get((s.pod.namespace, s.pod.name))
        if o is not None and is_deleting(o):
            s.phase = "Terminating"
    for (ns, pname), o in objs.items():
        labels = o["metadata"].get("labels") or {}
        if (ns, pname) in shown or is_deleting(o) or not (all_namespaces or ns == namespace) \
                or (names and pname not in names) or (selector and not selector_matches(selector, labels)):
            continue
        pod = types.SimpleNamespace(name=pname, namespace=ns, labels=labels, ip="<none>",
                                    node=(o.get("spec") or {}).get("nodeName") or "<none>", ready=False)
        total = len((o.get("spec") or {}).get("containers") or [])
        statuses.append(PodStatus(pod, "Pending", 0, total, 0, parse_time(o["metadata"].get("creationTimestamp"))))
    return statuses


def _live_nodes(lab: str) -> dict[str, dict]:
    """A live lab's Node objects by name (cordon, node lifecycle); none for a lab without a store."""
    from ..live import has_store, store_for
    if not has_store(lab):
        return {}
    return {n["metadata"]["name"]: n for n in store_for(lab).list("Node")}


def _selects(svc, pod) -> bool:
    sel = svc.spec.selector
    return bool(sel) and svc.namespace == pod.namespace and all(pod.labels.get(k) == v for k, v in sel.items())


# the kinds _missing is told of, as kubectl names them in its NotFound line
_KUBE_KINDS = {"node": "Node", "pod": "Pod", "service": "Service", "endpoint": "Endpoints"}


def _missing(wanted: tuple[str, ...], found: list[str], kind: str, missing: list[str] | None = None) -> None:
    """Names asked for and not found: kubectl's NotFound lines (`Error from server (NotFound): services "x" not
    found`, exit 1) for a Kubernetes kind, as getlive.show says them (kubeutil.not_found_names: raised when
    none was found, else added to `missing`); netlab's own NotFound for a lab."""
    from . import kubeutil
    if kind in _KUBE_KINDS:
        kubeutil.not_found_names(_KUBE_KINDS[kind], wanted, set(found), missing)
        return
    for n in wanted:
        if n not in found:
            raise NotFound(f'{kind} "{n}" not found')


def _subset_nodes(cluster, names):
    if names:
        cluster.nodes = [n for n in cluster.nodes if n.name in names]
    return cluster


def _bgp_column(cluster, fmt: str | None) -> dict[str, str] | None:
    """-o wide of a BGP lab: each node's Established BGP sessions of those it should have, read from its
    speaker (`birdc show protocols`), e.g. 3/3; `down` when the speaker does not answer."""
    if fmt != "wide":
        return None
    from ..dataplane import bgp
    if cluster.networking.backend != "bgp" and bgp.lb_plan(cluster.name) is None:   # nor MetalLB's BGP mode
        return None
    return bgp.summary(cluster)
