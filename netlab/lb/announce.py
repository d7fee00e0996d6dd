"""Which node announces each LoadBalancer IP on the underlay: MetalLB's layer-2 election, as a pure
function of the lab's store objects (no root, no kernel).

Facts from MetalLB v0.14's speaker (speaker/layer2_controller.go, internal/config, internal/k8s/nodes),
read, not copied:
- a Service is announced only when it has an IP, no foreign `loadBalancerClass` (the speaker without
  --lb-class handles class-less Services only), the IP belongs to a pool (`ip-allocated-from-pool`
  annotation, else the pool whose `spec.addresses` hold it), and at least one endpoint that can serve
  (EndpointSlice conditions ready unset or true, or serving true): without one nobody announces;
- the pool's L2Advertisements (namespace metallb-system): those naming it in `ipAddressPools`, those
  whose `ipAddressPoolSelectors` match its labels, and those with neither (every pool). An
  advertisement selects nodes by `nodeSelectors` (none: every node). No advertisement: no L2
  announcement at all;
- the candidate nodes: those with a usable speaker (MetalLB: a live memberlist member; netlab: the
  node's speaker pod Ready and the Node Ready, its stand-in for memberlist's failure detection), not
  unschedulable, not NetworkUnavailable, not labelled node.kubernetes.io/exclude-from-external-load-
  balancers, and selected by one of the pool's advertisements; with externalTrafficPolicy Local, only
  those of them that hold a serving endpoint of the Service;
- the election: candidates sorted by sha256(node + "#" + ip) (ip: the Service's first IP), bytewise,
  the first wins. Every speaker computes the same order, so exactly one announces; when it goes, the
  next in that order takes over;
- the interfaces: the winner's matching advertisements' `interfaces` (any advertisement without a list:
  every interface the speaker uses).

`decide(objs, lb_ips)` returns the announcements; `document`/`parse_document` are the file the live loop
publishes for the speakers (netlab/live/lbannounce.py, netlab/lb/speaker.py); `assigned_events` the
MetalLB-style `nodeAssigned` events when a Service's announcing node changes.
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from ..store.meta import get_condition, is_deleting, selector_matches
from . import ANN_ALLOCATED_FROM, METALLB_NAMESPACE, parse_range

SPEAKER_LABELS = {"app": "metallb", "component": "speaker"}
EXCLUDE_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
KINDS = ("Service", "IPAddressPool", "L2Advertisement", "Node", "Pod", "EndpointSlice")
FILE_KIND = "L2Announcements"
FILE_API = "netlab.io/v1"


@dataclass(frozen=True)
class Announcement:
    ip: str
    service: str                        # "ns/name"
    node: str
    pool: str
    interfaces: tuple[str, ...] | None  # None: every interface the speaker uses


def election_order(nodes, ip: str) -> list[str]:
    """MetalLB's layer-2 order of `nodes` for `ip`: by sha256(node + "#" + ip), bytewise ascending."""
    return sorted(nodes, key=lambda n: hashlib.sha256(f"{n}#{ip}".encode()).digest())


def _ns(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def _ready(obj: dict, ctype: str = "Ready") -> bool:
    cond = get_condition(obj, ctype)
    return bool(cond and cond.get("status") == "True")


def can_serve(endpoint: dict) -> bool:
    """MetalLB's EndpointCanServe: conditions.ready unset or true, or serving true."""
    cond = endpoint.get("conditions") or {}
    return cond.get("ready") is None or cond.get("ready") is True or cond.get("serving") is True


def pool_of(ip: str, pools: list[dict], annotation: str | None = None) -> str | None:
    """The pool an IP was given from: the IPAM controller's annotation when it names a pool, else the
    first pool (by name) whose spec.addresses hold it; None when none does."""
    names = {_name(p) for p in pools}
    if annotation and annotation in names:
        return annotation
    addr = ipaddress.ip_address(ip)
    for p in sorted(pools, key=_name):
        for entry in (p.get("spec") or {}).get("addresses") or []:
            try:
                first, last = parse_range(str(entry))
            except ValueError:
                continue
            if addr.version == 4 and first <= addr <= last:
                return _name(p)
    return None


def ads_for_pool(pool: dict, ads: list[dict]) -> list[dict]:
    """The L2Advertisements that apply to a pool (see the module's docstring)."""
    out = []
    for ad in ads:
        spec = ad.get("spec") or {}
        names = spec.get("ipAddressPools") or []
        sels = spec.get("ipAddressPoolSelectors") or []
        if not names and not sels:
            out.append(ad)
        elif _name(pool) in names or any(selector_matches(s, (pool.get("metadata") or {}).get("labels")) for s in sels):
            out.append(ad)
    return out


def ad_nodes(ad: dict, nodes: list[dict]) -> set[str]:
    """The nodes an L2Advertisement selects: every node without nodeSelectors, else those any matches."""
    sels = (ad.get("spec") or {}).get("nodeSelectors") or []
    return {_name(n) for n in nodes
            if not sels or any(selector_matches(s, (n.get("metadata") or {}).get("labels")) for s in sels)}


def usable_speakers(nodes: list[dict], pods: list[dict]) -> set[str]:
    """Nodes whose speaker takes part: its speaker pod (metallb-system, app=metallb component=speaker)
    Ready and not being deleted, on a Node that is Ready, schedulable, not NetworkUnavailable and not
    excluded from load balancers."""
    with_speaker = {(p.get("spec") or {}).get("nodeName") for p in pods
                    if _ns(p) == METALLB_NAMESPACE and not is_deleting(p)
                    and all(((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in SPEAKER_LABELS.items())
                    and _ready(p)}
    out = set()
    for n in nodes:
        name = _name(n)
        if name not in with_speaker or not _ready(n) or _ready(n, "NetworkUnavailable"):
            continue
        if (n.get("spec") or {}).get("unschedulable") or EXCLUDE_LB_LABEL in ((n.get("metadata") or {}).get("labels") or {}):
            continue
        out.add(name)
    return out


def service_ips(svc: dict) -> list[str]:
    """A Service's LB IPs as its stored status holds them (status.loadBalancer.ingress[].ip)."""
    return [e["ip"] for e in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if isinstance(e, dict) and e.get("ip")]



@dataclass(frozen=True)
class Eligible:
    """A LoadBalancer Service MetalLB announces (in some mode), before the nodes are chosen."""
    key: str                # "ns/name"
    spec: dict
    ips: list[str]
    endpoints: list[dict]   # the endpoints that can serve
    pool: str
    ads: list[dict]         # the pool's advertisements of the mode's kind


def eligible(objs: dict[str, list[dict]], lb_ips: dict[str, list[str]] | None, ad_kind: str
             ) -> tuple[list[Eligible], dict[str, str]]:
    """The LoadBalancer Services that MetalLB announces with advertisements of `ad_kind`
    (L2Advertisement, BGPAdvertisement), sorted by key, and {key: why not} for the others: an IP,
    no foreign loadBalancerClass, an endpoint that can serve, a pool holding the IP, an advertisement
    for that pool (see the module's docstring)."""
    pools = [p for p in objs.get("IPAddressPool") or [] if _ns(p) == METALLB_NAMESPACE]
    ads = [a for a in objs.get(ad_kind) or [] if _ns(a) == METALLB_NAMESPACE]
    slices: dict[str, list[dict]] = {}
    for s in objs.get("EndpointSlice") or []:
        svc_name = ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc_name:
            slices.setdefault(f"{_ns(s)}/{svc_name}", []).append(s)
    pools_by_name = {_name(p): p for p in pools}
    out: list[Eligible] = []
    why: dict[str, str] = {}
    for svc in sorted(objs.get("Service") or [], key=lambda s: (_ns(s), _name(s))):
        spec = svc.get("spec") or {}
        if spec.get("type") != "LoadBalancer":
            continue
        key = f"{_ns(svc)}/{_name(svc)}"
        ips = (lb_ips or {}).get(key, []) if lb_ips is not None else service_ips(svc)
        if spec.get("loadBalancerClass"):
            why[key] = f"loadBalancerClass {spec['loadBalancerClass']} is not MetalLB's"
            continue
        if not ips:
            why[key] = "no IP"
            continue
        eps = [ep for s in slices.get(key, []) for ep in s.get("endpoints") or [] if can_serve(ep)]
        if not eps:
            why[key] = "no endpoint that can serve"
            continue
        ann = ((svc.get("metadata") or {}).get("annotations") or {}).get(ANN_ALLOCATED_FROM)
        pool_name = pool_of(ips[0], pools, ann)
        if pool_name is None:
            why[key] = f"{ips[0]} is in no IPAddressPool"
            continue
        pool_ads = ads_for_pool(pools_by_name[pool_name], ads)
        if not pool_ads:
            why[key] = f"no {ad_kind} for pool {pool_name}"
            continue
        out.append(Eligible(key, spec, ips, eps, pool_name, pool_ads))
    return out, why


def decide(objs: dict[str, list[dict]], lb_ips: dict[str, list[str]] | None = None
           ) -> tuple[list[Announcement], dict[str, str]]:
    """The layer-2 announcements of a lab (see the module's docstring): (announcements sorted by IP and
    Service, {Service key: why it is not announced} for LoadBalancer Services that are not).

    objs: the store's objects by kind (KINDS). lb_ips: each Service's LB IPs as its status holds them
    ("ns/name" -> IPs, from render.services.lb_status, whatever the ipMode); None: read from the
    Services' status."""
    nodes = list(objs.get("Node") or [])
    speakers = usable_speakers(nodes, objs.get("Pod") or [])
    out: list[Announcement] = []
    found, why = eligible(objs, lb_ips, "L2Advertisement")
    selects = {id(a): ad_nodes(a, nodes) for e in found for a in e.ads}   # each advertisement's nodes, once
    for e in found:
        key, spec, ips, eps, pool_name, pool_ads = e.key, e.spec, e.ips, e.endpoints, e.pool, e.ads
        selected = {n: [a for a in pool_ads if n in selects[id(a)]] for n in sorted(speakers)}
        candidates = [n for n, matching in selected.items() if matching]
        if spec.get("externalTrafficPolicy") == "Local":
            local = {ep.get("nodeName") for ep in eps}
            candidates = [n for n in candidates if n in local]
        if not candidates:
            why[key] = "no available node" + (" with a local endpoint" if spec.get("externalTrafficPolicy") == "Local"
                                              else "")
            continue
        winner = election_order(candidates, ips[0])[0]
        mine = selected[winner]
        ifaces = None if any(not (a.get("spec") or {}).get("interfaces") for a in mine) else \
            tuple(sorted({i for a in mine for i in (a.get("spec") or {}).get("interfaces") or []}))
        out += [Announcement(ip, key, winner, pool_name, ifaces) for ip in ips]
    out.sort(key=lambda a: (ipaddress.ip_address(a.ip), a.service))
    return out, why


# ---------------------------------------------------------------- the published file

def document(announcements: list[Announcement]) -> dict:
    """The file the speakers read: every announcement (each speaker keeps those of its node)."""
    return {"apiVersion": FILE_API, "kind": FILE_KIND,
            "announcements": [{"ip": a.ip, "service": a.service, "node": a.node, "pool": a.pool,
                               "interfaces": list(a.interfaces) if a.interfaces is not None else None}
                              for a in announcements]}


def parse_document(doc) -> list[Announcement]:
    """The announcements of a published file (empty for anything that is not one)."""
    if not isinstance(doc, dict) or doc.get("kind") != FILE_KIND:
        return []
    out = []
    for e in doc.get("announcements") or []:
        try:
            ifaces = e.get("interfaces")
            out.append(Announcement(str(ipaddress.IPv4Address(e["ip"])), str(e["service"]), str(e["node"]),
                                    str(e.get("pool") or ""), tuple(ifaces) if ifaces is not None else None))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def node_ips(announcements: list[Announcement], node: str) -> dict[str, tuple[str, ...] | None]:
    """The IPs `node` announces, with their interfaces (None: all)."""
    out: dict[str, tuple[str, ...] | None] = {}
    for a in announcements:
        if a.node == node:
            if a.ip in out and (out[a.ip] is None or a.interfaces is None):
                out[a.ip] = None
            elif a.ip in out:
                out[a.ip] = tuple(sorted(set(out[a.ip]) | set(a.interfaces)))
            else:
                out[a.ip] = a.interfaces
    return out


def by_service(announcements: list[Announcement]) -> dict[str, str]:
    """Service key -> the node announcing it."""
    return {a.service: a.node for a in announcements}


def assigned_events(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str, str]]:
    """MetalLB's `nodeAssigned` events (Service key, reason, message) for the Services whose announcing
    node is new or changed."""
    return [(svc, "nodeAssigned", f'announcing from node "{node}" with protocol "layer2"')
            for svc, node in sorted(after.items()) if before.get(svc) != node]


UNDERLAY_INTERFACE = "eth0"   # the one interface a netlab node's speaker announces on (its underlay link)


def unannounceable(announcements: list[Announcement]) -> dict[tuple[str, str], str]:
    """(Service, IP) -> node, for the announcements whose L2Advertisement `interfaces` leave out the node's
    underlay interface: the speaker answers nowhere for them (MetalLB: the interfaces do not exist on
    the node)."""
    return {(a.service, a.ip): a.node for a in announcements
            if a.interfaces is not None and UNDERLAY_INTERFACE not in a.interfaces}


def failed_events(before: list[Announcement], after: list[Announcement]) -> list[tuple[str, str, str]]:
    """MetalLB's Warning `announceFailed` events (Service key, reason, message), once per new case."""
    old = unannounceable(before)
    return [(svc, "announceFailed", f'the interfaces specified by LB IP "{ip}" doesn\'t exist in assigned node '
                                    f'"{node}" with protocol "layer2"')
            for (svc, ip), node in sorted(unannounceable(after).items()) if old.get((svc, ip)) != node]
