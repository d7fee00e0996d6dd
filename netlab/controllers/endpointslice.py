"""The EndpointSlice controller as a pure decision, following Kubernetes'
pkg/controller/endpointslice and staging endpointslice utilities (read for facts, written anew).

For each Service with a selector: the pods of its namespace that match it, have an IP and are not
Succeeded or Failed become endpoints with conditions
  ready       = pod Ready and not terminating, or the Service publishes not-ready addresses,
  serving     = pod Ready, whether terminating or not,
  terminating = the pod has a deletionTimestamp,
nodeName, a targetRef to the pod, and hostname when the pod's spec.subdomain is the Service's name
(a StatefulSet's pods under their headless Service). Ports come from the Service's ports; a named targetPort is
resolved per pod from its containers' ports (name and protocol), so pods that resolve a name to
different numbers land in different slices, and a pod without the named port is left out of the
slices of that mapping. Slices carry kubernetes.io/service-name, endpointslice.kubernetes.io/managed-by
and a controller ownerReference to the Service; at most 100 endpoints a slice.

Simplifications: slice names are ``<service>-<hash of the port mapping and chunk>`` instead of
generated names; slices are rewritten as a whole rather than packed to minimise churn; no
topology hints; no legacy Endpoints object.
"""

from __future__ import annotations

import hashlib
import json

from netlab.controllers.base import Action, Snapshot, create, delete, is_pod_ready, update
from netlab.store.meta import controller_ref, is_deleting, matcher, owner_reference

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_NAME = "kubernetes.io/service-name"
MAX_ENDPOINTS = 100
KINDS = ("Service", "Pod", "EndpointSlice")


def resolve_port(svc_port: dict, pod: dict) -> int | None:
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    proto = svc_port.get("protocol", "TCP")
    for c in (pod.get("spec") or {}).get("containers") or []:
        for cp in c.get("ports") or []:
            if cp.get("name") == target and cp.get("protocol", "TCP") == proto:
                return int(cp["containerPort"])
    return None


def endpoint_for(pod: dict, publish_not_ready: bool, svc: dict | None = None) -> dict:
    terminating = is_deleting(pod)
    ready = is_pod_ready(pod)
    st, md = pod.get("status") or {}, pod["metadata"]
    ep = {
        "addresses": [st["podIP"]],
        # as the EndpointSlice controller: serving follows the pod's Ready (kept by the kubelet while
        # the pod terminates); ready never while terminating unless publishNotReadyAddresses
        "conditions": {"ready": publish_not_ready or (ready and not terminating),
                       "serving": ready,
                       "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": md.get("namespace", "default"), "name": md["name"],
                      "uid": md.get("uid", "")},
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        ep["nodeName"] = node
    # the pod's name in the Service's DNS (<hostname>.<service>): a pod whose subdomain is this
    # Service, e.g. a StatefulSet's pod under its governing headless Service (as Kubernetes does)
    pspec = pod.get("spec") or {}
    if svc is not None and pspec.get("hostname") and pspec.get("subdomain") == svc["metadata"]["name"] \
            and svc["metadata"].get("namespace", "default") == md.get("namespace", "default"):
        ep["hostname"] = pspec["hostname"]
    return ep


def desired_slices(svc: dict, pods: list[dict]) -> list[dict]:
    spec = svc.get("spec") or {}
    ns, sname = svc["metadata"].get("namespace", "default"), svc["metadata"]["name"]
    publish = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple, list[dict]] = {}
    selects = matcher(spec["selector"])
    for pod in pods:
        st = pod.get("status") or {}
        if not st.get("podIP") or st.get("phase") in ("Succeeded", "Failed"):
            continue
        if not selects(pod["metadata"].get("labels")):
            continue
        ports = []
        for sp in spec.get("ports") or []:
            num = resolve_port(sp, pod)
            if num is not None:
                p = {"port": num, "protocol": sp.get("protocol", "TCP")}
                if sp.get("name"):
                    p["name"] = sp["name"]
                if sp.get("appProtocol"):
                    p["appProtocol"] = sp["appProtocol"]
                ports.append(p)
        family = "IPv6" if ":" in st["podIP"] else "IPv4"
        pkey = tuple(tuple(sorted(p.items())) for p in ports)
        groups.setdefault((family, pkey), ([], ports))[0].append(endpoint_for(pod, publish, svc))
    out = []
    for (family, pkey), (eps, ports) in sorted(groups.items()):
        ports_json = json.dumps(ports, sort_keys=True)
        eps.sort(key=lambda e: e["targetRef"]["name"])
        for i in range(0, len(eps), MAX_ENDPOINTS):
            h = hashlib.sha1(f"{family}/{ports_json}/{i}".encode()).hexdigest()[:5]
            out.append({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": f"{sname}-{h}", "namespace": ns,
                             "labels": {SERVICE_NAME: sname, MANAGED_BY: CONTROLLER_NAME},
                             "ownerReferences": [owner_reference(svc)]},
                "addressType": family,
                "endpoints": eps[i:i + MAX_ENDPOINTS],
                "ports": json.loads(ports_json),
            })
    return out


def _body(s: dict) -> tuple:
    return (s.get("addressType"), s.get("endpoints"), s.get("ports"), s["metadata"].get("labels"))


def decide(snap: Snapshot, now: float) -> list[Action]:
    actions: list[Action] = []
    for svc in snap.list("Service"):
        spec = svc.get("spec") or {}
        ns = svc["metadata"].get("namespace", "default")
        existing = {s["metadata"]["name"]: s for s in snap.list("EndpointSlice", ns)
                    if (s["metadata"].get("labels") or {}).get(MANAGED_BY) == CONTROLLER_NAME
                    and (controller_ref(s) or {}).get("uid") == svc["metadata"].get("uid")}
        want = [] if not spec.get("selector") or is_deleting(svc) else desired_slices(svc, snap.list("Pod", ns))
        for s in want:
            cur = existing.pop(s["metadata"]["name"], None)
            if cur is None:
                actions.append(create(s))
            elif _body(cur) != _body(s):
                new = dict(cur, addressType=s["addressType"], endpoints=s["endpoints"], ports=s["ports"])
                new["metadata"] = dict(cur["metadata"], labels=s["metadata"]["labels"])
                actions.append(update(new))
        actions += [delete(s) for s in existing.values()]
    return actions


def usable_endpoints(slices: list[dict], node: str | None = None) -> list[dict]:
    """The endpoints a kube-proxy sends new connections to, from a Service's slices: the ready ones;
    when none is ready, the ones that are still serving while terminating (kube-proxy's fallback,
    KEP-1669). With `node` (internalTrafficPolicy/externalTrafficPolicy Local) only that node's
    endpoints count, with the same fallback among them."""
    eps = [e for s in slices for e in s.get("endpoints") or []]
    if node is not None:
        eps = [e for e in eps if e.get("nodeName") == node]
    ready = [e for e in eps if e["conditions"].get("ready")]
    if ready:
        return ready
    return [e for e in eps if e["conditions"].get("serving") and e["conditions"].get("terminating")]
