"""Between the scenario, the store and the model: pure functions, no root, no kernel.

- `scenario_objects`: what `up` and `apply` write to the lab's store for a parsed scenario: the
  manifests as written (the Cluster document excepted), with the API server's defaults.
- `node_objects`: the Node objects of the lab's nodes (labels, the control-plane taint, podCIDR).
- `apply_objects`: kubectl apply: create what is new, update what changed (a three-way merge of
  the object in the store, the configuration last applied and the new one, so a field that a verb
  such as `scale` changed and the file never set is kept), leave the rest; with `prune`, delete
  objects an earlier apply made that the input no longer has (`kubectl apply --prune`).
- `pod_specs`: the pods the dataplane should run, read back from the store (bound to a node).

The last applied configuration is kept in the annotation kubectl uses
(kubectl.kubernetes.io/last-applied-configuration), so objects applied here look as they would
on a cluster.
"""
from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass

import orjson

from ..controllers.validation import default_deployment, default_pod_spec
from ..spec.kinds import Context, ObjectDoc
from ..spec.kinds import REGISTRY as KIND_PARSERS
from ..spec.kinds.inert import inert_kinds
from ..spec.limits import BUILTIN_NAMESPACES, CONTROL_PLANE_TAINT
from ..spec.types import PodSpec, Scenario
from ..store.meta import controller_ref, is_deleting, key_of, selector_matches

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
STOPPED = "netlab.io/stopped"   # on a Node that `netlab node stop` partitioned (its kubelet is silent)
# what `up` prunes: kinds whose objects a file owns (pods a controller made are not the file's)
# (a ReplicaSet a Deployment made has a controller reference: never pruned; ConfigMaps, Secrets and
# add-ons' objects are stored only: spec/kinds/inert.py; EndpointSlices: hand-written ones only, the
# controller's have an owner and no last-applied annotation)
PRUNABLE = ("Namespace", "Service", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Pod", "EndpointSlice",
            "Endpoints", "Job", "CronJob", "IPAddressPool", "L2Advertisement", "BGPPeer", "BGPAdvertisement", "Ingress",
            "IngressClass", "NetworkPolicy") + inert_kinds()
API_VERSIONS = {"Pod": "v1", "Service": "v1", "Namespace": "v1", "Node": "v1", "Deployment": "apps/v1",
                "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
                "ControllerRevision": "apps/v1", "ConfigMap": "v1", "Secret": "v1", "ServiceAccount": "v1",
                "Job": "batch/v1", "CronJob": "batch/v1", "Ingress": "networking.k8s.io/v1",
                "IngressClass": "networking.k8s.io/v1", "NetworkPolicy": "networking.k8s.io/v1"}
READ_ONLY_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "managedFields", "selfLink", "ownerReferences", "finalizers")


def manifest(doc: dict) -> dict:
    """A document as kubectl sends it: no status, no fields the API server sets."""
    out = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("status",)}
    md = {k: v for k, v in (out.get("metadata") or {}).items() if k not in READ_ONLY_META}
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED}
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    from ..store.meta import CLUSTER_SCOPED
    if out.get("kind") not in CLUSTER_SCOPED:
        md.setdefault("namespace", "default")
    out["metadata"] = md
    return out


def with_defaults(obj: dict) -> dict:
    """The object as the API server stores it: apps/v1 and core/v1 defaults the controllers read."""
    kind = obj.get("kind")
    if kind == "Deployment":
        return default_deployment(obj)
    if kind == "Pod":   # (a new pod's status is the API server's: Pending until a kubelet says otherwise)
        return dict(obj, spec=default_pod_spec(obj.get("spec") or {}),
                    status=dict(obj.get("status") or {}, phase=(obj.get("status") or {}).get("phase") or "Pending"))
    if kind == "ReplicaSet":
        spec = dict(obj.get("spec") or {})
        spec.setdefault("replicas", 1)
        template = dict(spec.get("template") or {})
        template["spec"] = default_pod_spec(template.get("spec") or {})
        return dict(obj, spec=dict(spec, template=template))
    if kind == "StatefulSet":  # apps/v1 defaults (Kubernetes' SetDefaults_StatefulSet)
        spec = dict(obj.get("spec") or {})
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("minReadySeconds", 0)
        strategy = dict(spec.get("updateStrategy") or {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            strategy["rollingUpdate"] = dict({"partition": 0}, **(strategy.get("rollingUpdate") or {}))
        spec["updateStrategy"] = strategy
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        template = dict(spec.get("template") or {})
        template["spec"] = default_pod_spec(template.get("spec") or {})
        return dict(obj, spec=dict(spec, template=template))
    if kind == "Job":
        return dict(obj, spec=default_job_spec(obj.get("spec") or {}))
    if kind == "CronJob":
        spec = dict(obj.get("spec") or {})
        for k, v in (("concurrencyPolicy", "Allow"), ("suspend", False), ("successfulJobsHistoryLimit", 3),
                     ("failedJobsHistoryLimit", 1)):
            spec.setdefault(k, v)
        jt = dict(spec.get("jobTemplate") or {})
        jt["spec"] = default_job_spec(jt.get("spec") or {})
        return dict(obj, spec=dict(spec, jobTemplate=jt))
    if kind == "IPAddressPool":   # the CRD's defaults
        from ..lb.printing import with_defaults as pool_defaults
        return pool_defaults(obj)
    if kind == "DaemonSet":
        from ..controllers.daemonset import default_daemonset
        return default_daemonset(obj)
    if kind == "Secret":  # the API server keeps stringData in data (base64) and defaults the type
        out = {k: v for k, v in obj.items() if k != "stringData"}
        data = dict(obj.get("data") or {})
        data.update({k: base64.b64encode(v.encode()).decode() for k, v in (obj.get("stringData") or {}).items()})
        if data:
            out["data"] = data
        out.setdefault("type", "Opaque")
        return out
    return obj


def default_job_spec(spec: dict) -> dict:
    """batch/v1 Job defaults: parallelism 1, completions 1 when neither is given, backoffLimit 6,
    completionMode NonIndexed, suspend false; the pod template's as a pod's."""
    out = dict(spec)
    if "completions" not in out and "parallelism" not in out:
        out["completions"] = 1
    for k, v in (("parallelism", 1), ("backoffLimit", 6), ("completionMode", "NonIndexed"), ("suspend", False)):
        out.setdefault(k, v)
    template = dict(out.get("template") or {})
    template["spec"] = default_pod_spec(template.get("spec") or {})
    out["template"] = template
    return out


def scenario_objects(scenario: Scenario, dns_dir: str | None = None,
                     control_plane_ips: list[str] | None = None, ingress_dir: str | None = None) -> list[dict]:
    """The store objects of a parsed scenario: its Namespaces (also those only named by objects) and
    its manifests, in the order written. With `dns_dir` (what `up` writes): then the cluster's add-ons
    as kubeadm makes them (netlab/dns/addon.py: the kubernetes Service and its EndpointSlice of
    `control_plane_ips`, kube-dns, the coredns Deployment serving the zone in `dns_dir`; with an
    IPAddressPool, MetalLB's speaker DaemonSet: netlab/lb/addon.py, reading `dns_dir`'s sibling `lb`),
    except those the scenario writes itself; and, with an `ingress:` map in the Cluster document, the
    ingress-nginx add-on (netlab/ingress/addon.py) serving the configuration published in `ingress_dir`
    (default: the `ingress` directory beside `dns_dir`, both in the lab's directory)."""
    out = []
    docs = [manifest(d) for d in scenario.documents]
    declared = {d["metadata"]["name"] for d in docs if d.get("kind") == "Namespace"}
    for ns in scenario.namespaces:
        if ns not in declared and ns not in BUILTIN_NAMESPACES:
            out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    if dns_dir is not None:
        from ..dns import addon
        net = scenario.networking
        docs += addon.objects(net.service_subnet, net.dns.replicas, dns_dir, control_plane_ips, docs)
        import os
        from .. import lb
        if lb.installed(scenario):   # MetalLB's speaker (netlab/lb/addon.py), its LB directory beside the DNS's
            from ..lb import addon as lb_addon
            docs += lb_addon.objects(os.path.join(os.path.dirname(dns_dir.rstrip("/")), "lb"), out + docs)
        from ..ingress import addon as ingress_addon
        extra = ingress_addon.objects(net.ingress, ingress_dir or os.path.join(os.path.dirname(dns_dir.rstrip("/")),
                                                                               "ingress"),
                                      docs + out)
        out += [o for o in extra if o["kind"] == "Namespace"]
        docs += [o for o in extra if o["kind"] != "Namespace"]
    return out + docs


def node_objects(cluster) -> list[dict]:
    """Node objects of a built cluster (model.objects.Cluster): what the kubelet registers."""
    out = []
    for n in cluster.nodes:
        labels = {"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", **n.labels}
        spec: dict = {"podCIDR": str(n.pod_cidr), "podCIDRs": [str(n.pod_cidr)]}
        if n.role == "control-plane":
            labels.setdefault("node-role.kubernetes.io/control-plane", "")
        if not n.schedulable:
            spec["taints"] = [{"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"}]
        meta: dict = {"name": n.name, "labels": labels}
        if cluster.networking.backend in ("vxlan", "bgp"):   # ports netlab itself binds in the node's namespace
            # (VXLAN's UDP port, BIRD's BGP port): the scheduler's NodePorts filter keeps hostPorts and
            # hostNetwork pods off them
            from ..controllers.scheduler import RESERVED_PORTS
            from ..render.fabric import BGP_PORT, VXLAN_PORT
            meta["annotations"] = {RESERVED_PORTS: f"{VXLAN_PORT}/UDP" if cluster.networking.backend == "vxlan"
                                   else f"{BGP_PORT}/TCP"}
        out.append({"apiVersion": "v1", "kind": "Node", "metadata": meta,
                    "spec": spec,
                    "status": {"addresses": [{"type": "InternalIP", "address": str(n.ip)},
                                             {"type": "Hostname", "address": n.name}]}})
    return out


# ------------------------------------------------------------------ apply

def merge(live, last, new):
    """kubectl's three-way merge, for maps: keys of `new` are set (maps merged recursively), keys
    that `last` had and `new` has not are removed, other keys of `live` are kept. Lists and scalars
    are replaced whole."""
    if not isinstance(live, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    last = last if isinstance(last, dict) else {}
    out = {k: copy.deepcopy(v) for k, v in live.items() if not (k in last and k not in new)}
    for k, v in new.items():
        out[k] = merge(live.get(k), last.get(k), v)
    return out


@dataclass
class Applied:
    kind: str
    namespace: str
    name: str
    action: str   # created | configured | unchanged | pruned | recreated

    def __str__(self) -> str:
        group = {"Deployment": "deployment.apps", "ReplicaSet": "replicaset.apps", "StatefulSet": "statefulset.apps",
                 "DaemonSet": "daemonset.apps", "Job": "job.batch", "CronJob": "cronjob.batch",
                 "IPAddressPool": "ipaddresspool.metallb.io",
                 "L2Advertisement": "l2advertisement.metallb.io",
                 "BGPPeer": "bgppeer.metallb.io", "BGPAdvertisement": "bgpadvertisement.metallb.io",
                 "NetworkPolicy": "networkpolicy.networking.k8s.io"}.get(self.kind,
                                                                                        self.kind.lower())
        return f"{group}/{self.name} {self.action}"


def _comparable(obj: dict) -> dict:
    md = obj.get("metadata") or {}
    # spec, and the top-level fields of kinds without one (a ConfigMap's data, a Secret's type...)
    return {"metadata": {k: md.get(k) for k in ("labels", "annotations")},
            **{k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}}


def apply_objects(store, objects: list[dict], prune: bool = False, prune_kinds=PRUNABLE, selector: str | None = None,
                  graceful_pods: bool = False, allocate=None, whole: bool = False,
                  record: bool = False, admit=None) -> list[Applied]:
    """Write `objects` (manifests) to `store` in one transaction; see the module's docstring. A bare
    Pod whose spec changed is deleted and created again (the API server refuses most pod updates;
    `up` has always made such a pod anew). `prune`: delete what an earlier apply made (and no controller
    owns) that `objects` no longer has, only what matches the label `selector` when given; pods pruned
    with their terminationGracePeriodSeconds when `graceful_pods` (`apply --prune`), at once otherwise.
    `allocate` (model.svcalloc.allocate with the lab's networking and hints bound): a Service is written with
    its ClusterIP and node ports, as the API server allocates them (None: as given, for a store without a
    lab's networking: tests'). `admit` (live.sync.pod_admission of the lab's Cluster document): a Pod is
    written as the API server's admission plugins leave it (DefaultTolerationSeconds: the lab's
    not-ready/unreachable tolerations), on create and on update as Kubernetes runs it. `whole`
    (`patch`): each object that exists is replaced by the one given (its
    labels, annotations and every other field), not merged with it, and its last applied configuration stays
    as it was (kubectl patch leaves it to the next apply), or, with `record` (`replace`), becomes the object
    given if it had one (kubectl replace updates an annotation that is there and adds none)."""
    out: list[Applied] = []
    services: dict | None = None   # the store's Services as this transaction leaves them, once one is written

    def allocated(obj: dict, given: dict, live: dict | None) -> dict:
        nonlocal services
        if admit is not None and obj.get("kind") == "Pod":
            return admit(obj)
        if allocate is None or obj.get("kind") != "Service":
            return obj
        if services is None:
            services = {key_of(o): o for o in store.list("Service")}
        obj = allocate(obj, given, live, [o for k, o in services.items() if k != key_of(obj)])
        services[key_of(obj)] = obj
        return obj
    with store.transaction():
        seen = set()
        for obj in objects:
            kind, ns, name = key_of(obj)
            seen.add((kind, ns, name))
            given = manifest(obj)
            text = json.dumps(given, sort_keys=True, separators=(",", ":"))
            live = store.try_get(kind, ns, name)
            if live is not None and is_deleting(live):
                store.delete(kind, ns, name, grace_seconds=0)
                live = None
            if live is None:
                new = allocated(with_defaults(given), given, None)
                if not whole:
                    new["metadata"].setdefault("annotations", {})[LAST_APPLIED] = text
                store.create(new)
                out.append(Applied(kind, ns, name, "created"))
                continue
            last_text = (live["metadata"].get("annotations") or {}).get(LAST_APPLIED)
            if whole:
                merged = copy.deepcopy(given)
                annotations = dict(given["metadata"].get("annotations") or {})
                if last_text:
                    annotations[LAST_APPLIED] = text if record else last_text
                merged["metadata"] = {k: v for k, v in live["metadata"].items() if k not in ("labels", "annotations")}
                for k, v in (("labels", given["metadata"].get("labels")), ("annotations", annotations)):
                    if v:
                        merged["metadata"][k] = v
            else:
                last = json.loads(last_text) if last_text else {}
                merged = merge({k: live.get(k) for k in ("apiVersion", "kind", "metadata", "spec") if k in live},
                               last, given)
            merged = allocated(with_defaults(merged), given, live)
            if not whole:
                merged["metadata"].setdefault("annotations", {})[LAST_APPLIED] = text
            merged.pop("status", None)
            if _comparable(merged) == _comparable(live):
                out.append(Applied(kind, ns, name, "unchanged"))
                continue
            if kind == "Pod" and merged.get("spec") != live.get("spec"):
                store.delete(kind, ns, name, grace_seconds=0)
                merged["metadata"] = {k: v for k, v in merged["metadata"].items() if k not in READ_ONLY_META}
                store.create(merged)
                out.append(Applied(kind, ns, name, "recreated"))
                continue
            merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            store.update(merged)
            out.append(Applied(kind, ns, name, "configured"))
        if prune:
            for kind in prune_kinds:
                for live in store.list(kind):
                    k = key_of(live)
                    if k in seen or LAST_APPLIED not in (live["metadata"].get("annotations") or {}):
                        continue
                    if controller_ref(live) is not None or is_deleting(live):
                        continue
                    if selector and not selector_matches(selector, live["metadata"].get("labels")):
                        continue
                    grace = (live.get("spec") or {}).get("terminationGracePeriodSeconds", 30) \
                        if kind == "Pod" and graceful_pods else 0
                    store.delete(*k, grace_seconds=grace)
                    out.append(Applied(*k, "pruned"))
    return out


def sync_nodes(store, nodes: list[dict]) -> None:
    """Register the lab's nodes (labels, taints of the model; conditions are the kubelet's) and
    remove Nodes the lab no longer has."""
    with store.transaction():
        wanted = {n["metadata"]["name"] for n in nodes}
        for n in nodes:
            live = store.try_get("Node", None, n["metadata"]["name"])
            if live is None:
                store.create(n)
                continue
            spec = dict(live.get("spec") or {})
            other = [t for t in spec.get("taints") or [] if t.get("key") != CONTROL_PLANE_TAINT]
            spec.update({k: v for k, v in n["spec"].items() if k != "taints"})
            spec["taints"] = (n["spec"].get("taints") or []) + other
            if not spec["taints"]:
                spec.pop("taints")
            labels = dict(live["metadata"].get("labels") or {}, **n["metadata"]["labels"])
            meta = dict(live["metadata"], labels=labels)
            from ..controllers.scheduler import RESERVED_PORTS
            annotations = {k: v for k, v in (live["metadata"].get("annotations") or {}).items() if k != RESERVED_PORTS}
            annotations.update(n["metadata"].get("annotations") or {})
            if annotations or "annotations" in meta:
                meta["annotations"] = annotations
            new = dict(live, spec=spec, metadata=meta)
            if new != live:
                store.update(new)
        for live in store.list("Node"):
            if live["metadata"]["name"] not in wanted:
                store.delete("Node", None, live["metadata"]["name"], grace_seconds=0)


# ------------------------------------------------------------------ store -> model

def pod_specs(pods: list[dict], replicasets: list[dict] = (), cache: dict | None = None) -> list[tuple[PodSpec, dict]]:
    """(PodSpec for the model, the store object) of every pod bound to a node, in name order. The
    pod's spec is read by the same parser as a scenario's (the store only holds what it accepted).
    `cache`: a dict the caller keeps across calls (a control loop): a pod whose uid, generation and labels
    are unchanged is not parsed again (about 0.4 ms a pod). The generation moves with every change of the
    spec and only then (the store's rule, as the API server's), so a status write (the kubelet's, 10,000 of
    them after a big lab's first pass) does not make the pod parsed again; the owner is looked up anew."""
    out = []
    fresh: dict = {}
    templates: dict = {}   # (namespace, labels, spec) -> the PodTemplate parsed from them
    parser = KIND_PARSERS["Pod"]
    # a pod of a Deployment's ReplicaSet is the Deployment's, as `netlab probe` and `get` name them
    top = {(r["metadata"].get("namespace", "default"), r["metadata"]["name"]): controller_ref(r) for r in replicasets}
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        spec = pod.get("spec") or {}
        if not spec.get("nodeName"):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and is_deleting(pod):
            continue
        md = pod["metadata"]
        gen = md.get("generation")
        key = (md.get("uid"), gen if gen is not None else ("rv", md.get("resourceVersion")),
               tuple(sorted((md.get("labels") or {}).items())))
        ref = controller_ref(pod)
        owner = None
        if ref is not None:
            up = top.get((md.get("namespace", "default"), ref["name"])) if ref["kind"] == "ReplicaSet" else None
            owner = f"{(up or ref)['kind']}/{(up or ref)['name']}"
        if cache is not None and key in cache:
            ps = fresh[key] = cache[key]
            out.append((PodSpec(ps.namespace, ps.name, ps.template, owner if owner is not None else ps.owner), pod))
            continue
        # the pods of one ReplicaSet on one node have the same spec and labels: the parser's template (which
        # depends on nothing else; the name is only checked, and the store checked it) is shared among them,
        # as the scenario's own expansion shares a Deployment's (0.8 s of 10,000 pods' first pass otherwise)
        same = (md.get("namespace", "default"), key[2], orjson.dumps(spec, option=orjson.OPT_SORT_KEYS))
        template = templates.get(same) if len(md["name"]) <= 63 else None
        if template is not None:
            ps = PodSpec(same[0], md["name"], template)
        else:
            doc = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": md["name"], "namespace": md.get("namespace", "default"),
                                "labels": md.get("labels") or {}},
                   "spec": spec}
            ctx = Context(ignored=[])
            parser.parse(ObjectDoc(doc, f"Pod {md.get('namespace')}/{md['name']}", 0), ctx)
            if ctx.problems:
                raise ctx.problems[0]
            ps = ctx.pods[-1]
            templates[same] = ps.template
        if cache is not None:
            fresh[key] = PodSpec(ps.namespace, ps.name, ps.template, ps.owner)   # the parser's owner
        if owner is not None:
            ps.owner = owner
        out.append((ps, pod))
    if cache is not None:
        cache.clear()
        cache.update(fresh)
    return out


def pods_of(store, namespace: str, deployment: str) -> list[dict]:
    """The pods of a Deployment (through its ReplicaSets' controller references)."""
    rss = {r["metadata"]["name"] for r in store.list("ReplicaSet", namespace)
           if (controller_ref(r) or {}).get("kind") == "Deployment" and controller_ref(r)["name"] == deployment}
    return [p for p in store.list("Pod", namespace)
            if (controller_ref(p) or {}).get("kind") == "ReplicaSet" and controller_ref(p)["name"] in rss]
