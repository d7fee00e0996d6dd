"""What one host's agent looks at, decided from the store (pure: no kernel, no files).

A lab whose Node objects carry the label `netlab.dev/host=<host>` is run by one agent per host
(netlab/live/agent.py) instead of one control loop. The agent of host H:

- builds, reconciles and heartbeats only H's nodes (`own_nodes`) and the pods bound to them;
- still models the whole lab, because its nodes need the others': routes and flannel.1's FDB and
  neighbours towards every node (their addresses and podCIDRs, from the Node objects), and the proxy
  rules' endpoints on every node (the pods of other hosts, with the address and readiness their own
  agent wrote in their status). `agent_state` joins what H's agent recorded itself with that;
- never models a pod of another host that has no address yet (its agent has not built it), so it never
  allocates an address in another host's podCIDR.
"""
from __future__ import annotations

from typing import Any

from ..store.meta import get_condition

HOST_LABEL = "netlab.dev/host"
SHARED = ("scenario", "source", "sourcePath", "proxyMode", "services", "created")   # what `up` decides for the lab
# where `up` publishes those in the store, for agents whose host does not share the lab's directory (as
# kubeadm keeps its ClusterConfiguration in the ConfigMap kube-system/kubeadm-config)
CONFIG_NAMESPACE, CONFIG_NAME, CONFIG_KEY = "kube-system", "netlab-config", "lab.json"


def config_object(st: dict[str, Any]) -> dict:
    """The ConfigMap that carries the lab's shared decisions (SHARED of its state) to every host."""
    import json
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIG_NAME, "namespace": CONFIG_NAMESPACE},
            "data": {CONFIG_KEY: json.dumps({k: st[k] for k in SHARED if k in st}, sort_keys=True)}}


def config_of(obj: dict | None) -> dict[str, Any] | None:
    """The lab's shared decisions from that ConfigMap (None: none, or not readable)."""
    import json
    try:
        got = json.loads(((obj or {}).get("data") or {})[CONFIG_KEY])
    except (KeyError, TypeError, ValueError):
        return None
    return {k: v for k, v in got.items() if k in SHARED} if isinstance(got, dict) else None


def node_host(node: dict) -> str | None:
    return ((node.get("metadata") or {}).get("labels") or {}).get(HOST_LABEL) or None


def hosts_of(nodes: list[dict]) -> dict[str, list[str]]:
    """host -> its nodes' names (nodes without the label belong to no host)."""
    out: dict[str, list[str]] = {}
    for n in nodes:
        h = node_host(n)
        if h is not None:
            out.setdefault(h, []).append(n["metadata"]["name"])
    return {h: sorted(v) for h, v in sorted(out.items())}


def own_nodes(nodes: list[dict], host: str) -> set[str]:
    """The nodes of `host` (the label `netlab.dev/host` on their Node objects)."""
    return {n["metadata"]["name"] for n in nodes if node_host(n) == host}


def unplaced(nodes: list[dict]) -> list[str]:
    """In a lab whose nodes are placed on hosts, the nodes that are not (no agent would build them)."""
    if not any(node_host(n) for n in nodes):
        return []
    return sorted(n["metadata"]["name"] for n in nodes if not node_host(n))


def pod_uid(obj: dict) -> str:
    from .staticpods import static_uid
    return static_uid(obj) or obj["metadata"]["uid"]


def is_remote(obj: dict, own: set[str]) -> bool:
    """Whether a pod is another host's (bound to a node that is not one of `own`)."""
    return ((obj.get("spec") or {}).get("nodeName") or "") not in own


def modelled(obj: dict, own: set[str]) -> bool:
    """Whether the agent of `own` models this pod: its own, or another host's that has its address."""
    return not is_remote(obj, own) or bool((obj.get("status") or {}).get("podIP"))


def agent_state(own_state: dict[str, Any] | None, lab_state: dict[str, Any] | None, nodes: list[dict],
                pods: list[dict], own: set[str], shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """The previous state the agent of `own` builds its model from:
    - its own records (its nodes' pods, servers, processes): `own_state`, or, before it wrote any, what
      `up` recorded of them in the lab's state (`lab_state`: an agent started on a lab `up` built adopts
      it, nothing is rebuilt);
    - what `up` decided for the whole lab (the scenario, ClusterIPs and NodePorts): `shared` (from the
      store's ConfigMap kube-system/netlab-config), else `lab_state`'s;
    - every node's address and podCIDR: the Node objects' (the store is what all hosts share);
    - the pods of other hosts: node, address, UID and readiness as their agents wrote them in the store."""
    lab_state = lab_state or {}
    base = own_state if own_state is not None else lab_state
    st: dict[str, Any] = {k: v for k, v in base.items() if k not in ("nodes", "pods", "servers")}
    for key in SHARED:
        if key in (shared or lab_state):
            st[key] = (shared or lab_state)[key]
    st["servers"] = {k: v for k, v in (base.get("servers") or {}).items() if k in own}
    st["nodes"] = {}
    for n in nodes:
        name = n["metadata"]["name"]
        cidr = (n.get("spec") or {}).get("podCIDR")
        ip = next((a.get("address") for a in (n.get("status") or {}).get("addresses") or []
                   if a.get("type") == "InternalIP"), None)
        if cidr and ip:
            st["nodes"][name] = dict((base.get("nodes") or {}).get(name) or {}, ip=ip, podCIDR=cidr)
    mine = {k: v for k, v in (base.get("pods") or {}).items() if v.get("node") in own}
    remote = {}
    for obj in pods:
        if not is_remote(obj, own):
            continue
        status = obj.get("status") or {}
        if not status.get("podIP"):
            continue
        key = f"{obj['metadata'].get('namespace', 'default')}/{obj['metadata']['name']}"
        cond = get_condition(obj, "Ready")
        remote[key] = {"node": obj["spec"]["nodeName"], "ip": status["podIP"], "uid": pod_uid(obj),
                       "ready": bool(cond and cond.get("status") == "True")}
    st["pods"] = dict(remote, **mine)
    return st
