"""kubectl-shaped output: tables with kubectl's columns, and `List` objects for -o json|yaml."""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import platform
import time
from typing import Any

import yaml

from . import __version__
from .model.objects import Cluster, Service
from .render.services import lb_status

VERSION = f"v1.33.0-netlab.{__version__}"


def age(since: float | None, now: float | None = None) -> str:
    """kubectl's human duration: 45s, 3m20s, 25m, 5h10m, 20h, 3d4h, 12d."""
    if not since:
        return "<unknown>"
    s = max(0, int((now or time.time()) - since))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d"


# kubectl's --show-kind, which `get` of several kinds turns on (cli/getsink.py): the kind shown in the NAME column
# of each table (`deployment.apps/web`); "" for none
SHOW_KIND: contextvars.ContextVar[str] = contextvars.ContextVar("netlab_show_kind", default="")


def kind_named(header: list[str], rows: list[list[Any]]) -> list[list[Any]]:
    """`rows` (under `header`) with the kind SHOW_KIND names before each NAME cell, when it names one."""
    kind = SHOW_KIND.get()
    if not kind or "NAME" not in header:
        return rows
    i = header.index("NAME")
    return [[*r[:i], f"{kind}/{r[i]}", *r[i + 1:]] for r in rows]


def table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return ""
    rows = kind_named(headers, rows)
    cols = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cols]
    return "\n".join(lines) + "\n"


def timestamp(t: float | None) -> str | None:
    if not t:
        return None
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_list(items: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def dump(obj: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(obj, indent=4) + "\n"
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------- labs

def lab_objects(labs: list[tuple[str, dict | None]]) -> list[dict]:
    """Labs as kubectl-shaped objects, from their state (None: unreadable)."""
    out = []
    for name, st in labs:
        st = st or {}
        spec: dict[str, Any] = {}
        if st.get("source"):
            spec["source"] = st["source"]
        if st.get("proxyMode"):
            spec["proxyMode"] = st["proxyMode"]
        out.append({"apiVersion": "netlab.dev/v1alpha1", "kind": "Lab",
                    "metadata": {"name": name, "creationTimestamp": timestamp(st.get("created"))},
                    "spec": spec,
                    "status": {"phase": {"ready": "Ready", "applying": "Applying"}.get(st.get("phase", ""),
                                                                                   "Unknown"),
                               "nodes": len(st.get("nodes", {})), "pods": len(st.get("pods", {})),
                               "services": len(st.get("services", {}))}})
    return out


# ---------------------------------------------------------------- nodes

def _node_conditions(found: list[str] | None, repair: str) -> list[dict]:
    """Ready, and NetworkUnavailable as a cloud route controller or flannel sets it, from what netlab
    found different from what it built (None: not checked)."""
    if found is None:
        return [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]
    if found:
        msg = f"`{repair}` would repair: " + "; ".join(found)
        return [{"type": "NetworkUnavailable", "status": "True", "reason": "NetlabFabricDamaged", "message": msg},
                {"type": "Ready", "status": "False", "reason": "NetworkDamaged", "message": msg}]
    return [{"type": "NetworkUnavailable", "status": "False", "reason": "NetlabFabricUp",
             "message": "the node's fabric and rules are as netlab built them"},
            {"type": "Ready", "status": "True", "reason": "NetlabReady"}]


def node_objects(cluster: Cluster, problems: dict[str, list[str]], created: float | None,
                 repair: str = "sudo netlab up") -> list[dict]:
    out = []
    for n in cluster.nodes:
        out.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n.name, "labels": dict(n.labels), "creationTimestamp": timestamp(created),
                         "annotations": {"netlab.dev/netns": n.netns,
                                         "flannel.alpha.coreos.com/backend-type": cluster.networking.backend,
                                         "flannel.alpha.coreos.com/public-ip": str(n.ip),
                                         **({"flannel.alpha.coreos.com/backend-data":
                                             json.dumps({"VNI": 1, "VtepMAC": n.vtep_mac})}
                                            if cluster.networking.backend == "vxlan" else {}),
                                         # what Calico's node agent writes with IP-in-IP: the node's address
                                         # (CrossSubnet compares its subnet) and tunl0's
                                         **({"projectcalico.org/IPv4Address":
                                             f"{n.ip}/{cluster.node_subnet(n).prefixlen}",
                                             "projectcalico.org/IPv4IPIPTunnelAddr": str(n.vtep_ip)}
                                            if cluster.networking.backend == "ipip" else {})}},
            "spec": {"podCIDR": str(n.pod_cidr), "podCIDRs": [str(n.pod_cidr)],
                     **({"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}
                        if not n.schedulable else {})},
            "status": {"addresses": [{"type": "InternalIP", "address": str(n.ip)},
                                     {"type": "Hostname", "address": n.name}],
                       "conditions": _node_conditions(problems.get(n.name), repair),
                       "nodeInfo": {"kubeletVersion": VERSION, "kernelVersion": platform.release(),
                                    "osImage": "netlab network namespace", "containerRuntimeVersion": "netlab://"
                                    + __version__}},
        })
    return out


def node_table(cluster: Cluster, problems: dict[str, list[str]], created: float | None, wide: bool,
               status_of: dict[str, str] | None = None, labels_of: dict[str, str] | None = None,
               bgp_of: dict[str, str] | None = None) -> str:
    """`status_of`: a live lab's view of a node whose kernel state is right (Ready, NotReady,
    Ready,SchedulingDisabled ...); `labels_of`: the LABELS column of --show-labels; `bgp_of` (-o wide of a
    BGP lab): the BGP column, each node's speaker's Established sessions of those it should have."""
    headers = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    if wide:
        headers += ["INTERNAL-IP", "POD-CIDR", "KERNEL-VERSION", "NETNS"]
        if cluster.networking.hosts is not None:   # a lab spread over hosts: where each node is placed
            headers.append("HOST")
        if bgp_of is not None:
            headers.append("BGP")
    if labels_of is not None:
        headers.append("LABELS")
    rows = []
    for n in cluster.nodes:
        status = "Ready" if problems.get(n.name) == [] else "NotReady"
        if status_of and n.name in status_of:
            live = status_of[n.name]
            status = live if status == "Ready" else "NotReady" + live[len(live.split(",")[0]):]
        row = [n.name, status, "control-plane" if n.role == "control-plane" else "<none>", age(created), VERSION]
        if wide:
            row += [str(n.ip), str(n.pod_cidr), platform.release(), n.netns]
            if cluster.networking.hosts is not None:
                row.append(n.host or "<none>")
            if bgp_of is not None:
                row.append(bgp_of.get(n.name, "down"))
        if labels_of is not None:
            row.append(labels_of.get(n.name) or "<none>")
        rows.append(row)
    return table(headers, rows)


# ---------------------------------------------------------------- pods

def pod_objects(statuses: list, cluster: Cluster) -> list[dict]:
    out = []
    for s in statuses:
        p = s.pod
        node = cluster.node(p.node)
        meta: dict[str, Any] = {"name": p.name, "namespace": p.namespace, "labels": dict(p.labels), "uid": p.uid,
                                "creationTimestamp": timestamp(s.created),
                                "annotations": {"netlab.dev/netns": p.netns}}
        if p.owner:
            kind, name = p.owner.split("/", 1)
            if kind == "Deployment":   # a Deployment's pod belongs to its ReplicaSet
                kind, name = "ReplicaSet", f"{name}-{p.labels.get('pod-template-hash', '')}"
            meta["ownerReferences"] = [{"apiVersion": "v1" if kind == "Node" else "apps/v1", "kind": kind, "name": name}]
        containers = []
        for c in p.containers:
            cd: dict[str, Any] = {"name": c.name, "image": c.image or "netlab/netexec"}
            if c.command:
                cd["command"] = c.command
            if c.args:
                cd["args"] = c.args
            if c.ports:
                cd["ports"] = [dict({"containerPort": x.port, "protocol": x.protocol},
                                    **({"name": x.name} if x.name else {}),
                                    **({"hostPort": x.host_port} if x.host_port else {}),
                                    **({"hostIP": x.host_ip} if x.host_ip else {})) for x in c.ports]
            containers.append(cd)
        started = timestamp(s.created)
        statuses = []
        for c in s.containers:
            cs: dict[str, Any] = {"name": c.name, "ready": c.ready, "restartCount": s.restarts,
                                  "started": c.state == "running", "state": _container_state(c, started),
                                  "lastState": {}}
            if c.state == "waiting" and c.reason == "CrashLoopBackOff":
                cs["lastState"] = {"terminated": _terminated(c.last_exit, c.last_reason, "")}
            statuses.append(cs)
        unready = [c.name for c in s.containers if not c.ready]
        cond_msg = f"containers with unready status: [{' '.join(unready)}]"
        ready_cond = ({"status": "True"} if not unready and s.phase != "Unknown" else
                      {"status": "False", "reason": "ContainersNotReady", "message": cond_msg})
        phase = {"Running": "Running", "NetworkBroken": "Running", "CrashLoopBackOff": "Running",
                 "NotReady": "Running", "Error": "Failed", "Completed": "Succeeded",
                 "CreateContainerConfigError": "Pending", "ContainerCreating": "Pending"}.get(s.phase, "Unknown")
        out.append({
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": p.node, "containers": containers,
                     **({"hostname": p.hostname} if p.hostname else {}),
                     **({"hostNetwork": True} if p.host_network else {})},
            "status": {"phase": phase,
                       **({"reason": s.phase} if s.phase != "Running" else {}),
                       "conditions": [{"type": "Initialized", "status": "True"},
                                      {"type": "Ready", **ready_cond},
                                      {"type": "ContainersReady", **ready_cond},
                                      {"type": "PodScheduled", "status": "True"}],
                       "podIP": str(p.ip), "podIPs": [{"ip": str(p.ip)}],
                       "hostIP": str(node.ip), "hostIPs": [{"ip": str(node.ip)}],
                       "startTime": started,
                       "containerStatuses": statuses,
                       **({"message": s.problem} if s.problem else {})},
        })
    return out


def _terminated(code: int | None, reason: str, message: str) -> dict:
    t: dict[str, Any] = {"reason": reason}
    if code is not None:
        t["exitCode"] = code
    if message:
        t["message"] = message
    return t


def _container_state(c, started: str | None) -> dict:
    """A container's `state`, as the kubelet reports it: running, terminated or waiting."""
    if c.state == "running":
        return {"running": {"startedAt": started}}
    if c.state == "waiting":
        return {"waiting": {"reason": c.reason, "message": c.message}}
    return {"terminated": _terminated(c.exit_code, c.reason, c.message)}


def pod_table(statuses: list, all_namespaces: bool, wide: bool, show_labels: bool = False) -> str:
    headers = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    if wide:
        headers += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    if show_labels:
        headers.append("LABELS")
    rows = []
    for s in statuses:
        p = s.pod
        row = ([p.namespace] if all_namespaces else []) + [p.name, f"{s.ready}/{s.total}", s.phase, s.restarts,
                                                           age(s.created)]
        if wide:
            row += [str(p.ip), p.node, "<none>", "<none>"]
        if show_labels:
            row.append(",".join(f"{k}={v}" for k, v in sorted(p.labels.items())) or "<none>")
        rows.append(row)
    return table(headers, rows)


# ---------------------------------------------------------------- services and endpoints

def _ports_text(svc: Service) -> str:
    parts = []
    for p in svc.ports:
        parts.append(f"{p.port}:{p.node_port}/{p.protocol}" if p.node_port else f"{p.port}/{p.protocol}")
    return ",".join(parts) or "<none>"


def _external(svc: Service) -> str:
    s = svc.spec
    if s.type == "ExternalName":
        return s.external_name or "<none>"
    ips = list(s.external_ips)
    if s.type == "LoadBalancer":
        ips = [ip for ip, _ in lb_status(s)] + ips
        if not ips:
            return "<pending>"
    return ",".join(ips) or "<none>"


def _born(created, svc) -> float | None:
    """A Service's creation time: `created` is the lab's, or by (namespace, name) with the lab's under None (a live
    lab's Services are made when they are applied, not with the lab)."""
    if isinstance(created, dict):
        return created.get((svc.namespace, svc.name), created.get(None))
    return created


def service_table(cluster: Cluster, created, all_namespaces: bool, wide: bool,
                  namespace: str | None) -> str:
    headers = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)",
                                                            "AGE"]
    if wide:
        headers.append("SELECTOR")
    rows = []
    for svc in cluster.services:
        if not all_namespaces and svc.namespace != namespace:
            continue
        cip = "None" if svc.headless else (str(svc.cluster_ip) if svc.cluster_ip else "<none>")
        row = ([svc.namespace] if all_namespaces else []) + [svc.name, svc.type, cip, _external(svc),
                                                             _ports_text(svc), age(_born(created, svc))]
        if wide:
            row.append(",".join(f"{k}={v}" for k, v in (svc.spec.selector or {}).items()) or "<none>")
        rows.append(row)
    return table(headers, rows)


def service_objects(cluster: Cluster, created) -> list[dict]:
    out = []
    for svc in cluster.services:
        s = svc.spec
        spec: dict[str, Any] = {"type": s.type}
        if s.selector is not None:
            spec["selector"] = dict(s.selector)
        if s.type != "ExternalName":
            cip = "None" if svc.headless else str(svc.cluster_ip)
            spec["clusterIP"] = cip
            spec["clusterIPs"] = [cip]
        ports = []
        for p in svc.ports:
            pd: dict[str, Any] = {"port": p.port, "targetPort": p.target_port, "protocol": p.protocol}
            if p.name:
                pd["name"] = p.name
            if p.node_port:
                pd["nodePort"] = p.node_port
            ports.append(pd)
        spec["ports"] = ports
        spec["sessionAffinity"] = s.session_affinity
        if s.session_affinity == "ClientIP":
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": s.affinity_timeout}}
        if s.type in ("NodePort", "LoadBalancer"):
            spec["externalTrafficPolicy"] = s.external_traffic_policy
        spec["internalTrafficPolicy"] = s.internal_traffic_policy
        if s.external_ips:
            spec["externalIPs"] = list(s.external_ips)
        if s.external_name:
            spec["externalName"] = s.external_name
        if s.type == "LoadBalancer":   # as the API server stores them (allocate... defaulted to true)
            spec["allocateLoadBalancerNodePorts"] = s.allocate_lb_node_ports
            if svc.health_check_node_port:
                spec["healthCheckNodePort"] = svc.health_check_node_port
            if s.source_ranges:
                spec["loadBalancerSourceRanges"] = list(s.source_ranges)
            if s.lb_class:
                spec["loadBalancerClass"] = s.lb_class
            if s.load_balancer_ip:
                spec["loadBalancerIP"] = s.load_balancer_ip
        status: dict[str, Any] = {"loadBalancer": {}}
        if s.type == "LoadBalancer" and s.lb_ingress:
            status["loadBalancer"] = {"ingress": list(s.lb_ingress)}
        out.append({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": s.name, "namespace": s.namespace, "labels": dict(s.labels),
                                 "creationTimestamp": timestamp(_born(created, svc))},
                    "spec": spec, "status": status})
    return out


def endpoints_objects(cluster: Cluster, created) -> list[dict]:
    out = []
    for svc in cluster.services:
        if svc.spec.selector is None or svc.type == "ExternalName":
            continue
        # group ports that share the same addresses, as the endpoints controller does
        groups: dict[tuple, dict] = {}
        for port in svc.ports:
            eps = [e for e in svc.endpoints.get(port.name or "", []) if e.ready]  # (not terminating ones)
            if not eps:
                continue
            addr_key = tuple((str(e.ip), e.port) for e in eps)
            key = tuple(sorted({a for a, _ in addr_key}))
            g = groups.setdefault(key, {"addresses": [{"ip": str(e.ip), "nodeName": e.node,
                                                       "targetRef": {"kind": "Pod", "name": e.pod,
                                                                     "namespace": e.namespace}} for e in eps],
                                        "ports": []})
            pd: dict[str, Any] = {"port": eps[0].port, "protocol": port.protocol}
            if port.name:
                pd["name"] = port.name
            g["ports"].append(pd)
        out.append({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": svc.name, "namespace": svc.namespace,
                                 "creationTimestamp": timestamp(_born(created, svc))},
                    "subsets": list(groups.values())})
    return out


def endpoints_table(cluster: Cluster, created, all_namespaces: bool, namespace: str | None) -> str:
    headers = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "ENDPOINTS", "AGE"]
    rows = []
    for svc in cluster.services:
        if svc.spec.selector is None or svc.type == "ExternalName":
            continue
        if not all_namespaces and svc.namespace != namespace:
            continue
        addrs = []
        for port in svc.ports:
            addrs += [f"{e.ip}:{e.port}" for e in svc.endpoints.get(port.name or "", []) if e.ready]
        text = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "") if addrs else "<none>"
        rows.append(([svc.namespace] if all_namespaces else []) + [svc.name, text, age(_born(created, svc))])
    return table(headers, rows)
