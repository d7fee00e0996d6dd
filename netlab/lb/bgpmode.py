"""MetalLB's BGP mode: BGPPeer (metallb.io/v1beta2) and BGPAdvertisement (metallb.io/v1beta1), checked as
written (parse_*, on `Fields`: strict, one line per problem) and turned into what the nodes' BGP speakers
announce (`decide`, pure: a function of the store's objects), published for netlab/dataplane/bgp.py,
which renders BIRD's configurations from it (netlab/bgp/bird.py) and reloads the speakers.

Facts from MetalLB v0.14 (its API types, internal/config and speaker/bgp_controller.go, read, not copied):
- a BGPPeer gives each node it selects (spec.nodeSelectors; none: every node) a BGP session from the
  node (AS myASN) to peerAddress (AS peerASN, port peerPort, default 179), with holdTime and
  keepaliveTime (Go durations; MetalLB's defaults 90s/30s, netlab's the lab's own, 6s/2s, so that a
  stopped node is withdrawn quickly: written values are used as written);
- a Service is announced in BGP mode under the same conditions as in layer 2 (an IP, no foreign
  loadBalancerClass, an endpoint that can serve, a pool holding the IP: netlab/lb/announce.py
  `eligible`) when a BGPAdvertisement applies to its pool (ipAddressPools, ipAddressPoolSelectors,
  none of both: every pool);
- unlike layer 2 there is no election: every node with a usable speaker that one of the pool's
  advertisements selects (nodeSelectors) announces, and with externalTrafficPolicy Local only those
  holding a serving endpoint of the Service; the router's ECMP spreads the traffic over them;
- the prefix is the IP's /aggregationLength network (default 32), with the advertisement's localPref
  and communities, sent to the sessions of the BGPPeers the advertisement names in `peers` (none: all).

netlab has one BGP router outside the cluster: the lab's external router (netlab/bgp/), at the external
host's address (or networking.bgp.externalRouter.address) in AS 64513 (or its asNumber). A BGPPeer must
point at it (peerAddress, peerASN): a peer the lab does not have is refused. With the BGP backend the
nodes already have a session to it: MetalLB's routes travel on that session, so myASN must be the
nodes' AS (networking.bgp.asNumber). With another backend the nodes get BIRD speakers for these
sessions only. A node selected by two BGPPeers has one session (one address pair): the first peer by
name gives its parameters.

Fields netlab does not emulate (routerID, password, passwordSecret, bfdProfile, enableGracefulRestart,
ebgpMultiHop, connectTime, sourceAddress, vrf, disableMP; aggregationLengthV6) are reported once as
ignored; dynamicASN and interface (unnumbered peers) are refused: the router's AS and address are known.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..spec.fields import Fields, shown
from . import METALLB_NAMESPACE, parse_range
from .announce import ad_nodes, eligible, usable_speakers
from .pools import label_selectors, pool_names

KINDS = ("Service", "IPAddressPool", "BGPAdvertisement", "BGPPeer", "Node", "Pod", "EndpointSlice")
FILE_KIND = "BGPAnnouncements"
FILE_API = "netlab.io/v1"
PEER_API = "metallb.io/v1beta2"
BGP_PORT = 179
MAX_AS = 4294967295
# fields kubectl would take and netlab does not emulate: reported as ignored (Fields.done)
PEER_IGNORED = ("routerID", "password", "passwordSecret", "bfdProfile", "enableGracefulRestart", "ebgpMultiHop",
                "connectTime", "sourceAddress", "vrf", "disableMP")
DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns))+$")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


# ------------------------------------------------------------------ checks (spec layer)

def duration_seconds(text) -> float | None:
    """A Go duration ("90s", "1m30s", "500ms") in seconds; None if it is not one."""
    if not isinstance(text, str) or not text or not DURATION.match(text):
        return None
    return sum(float(n) * _UNIT[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)", text))


def router_of(networking) -> tuple[str, int, int]:
    """The lab's external router as a BGPPeer must name it: (address, AS, the nodes' AS with the BGP backend
    or 0)."""
    from ..spec.types import DEFAULT_EXTERNAL_AS
    cfg = networking.bgp
    address = (cfg.external_address if cfg is not None else None) or str(networking.node_subnet.broadcast_address - 1)
    external_as = cfg.external_as if cfg is not None else DEFAULT_EXTERNAL_AS
    nodes_as = (cfg.as_number if cfg is not None else 0) if networking.backend == "bgp" else 0
    return address, external_as, nodes_as


def _asn(f: Fields, key: str) -> int:
    if not f.has(key):
        extra = " (netlab's router is known: dynamicASN is not needed)" if key == "peerASN" else ""
        raise f.missing(key, "is required" + extra, f"set {f.at(key)} (an AS number, 1-{MAX_AS})")
    return f.int(key, lo=1, hi=MAX_AS)


def _seconds(f: Fields, key: str) -> int | None:
    value = f.raw(key)
    if value is None:
        return None
    secs = duration_seconds(value)
    if secs is None:
        raise f.error(key, f"{shown(value)} is not a duration", 'write it like "90s" or "1m30s"')
    if secs != int(secs):
        raise f.error(key, f"{shown(value)} is not a whole number of seconds (BGP's timers are)",
                      'write it like "9s"')
    return int(secs)


def parse_bgppeer(top: Fields, networking) -> dict:
    """A BGPPeer's spec, checked (top: the document's Fields, metadata read). Returns what `decide` reads."""
    spec = top.map("spec")
    for key, fix in (("dynamicASN", "write peerASN: the lab's router's AS"),
                     ("interface", "write peerAddress: the lab's router's address")):
        if spec.has(key):
            raise spec.error(key, f"is not supported: netlab's BGP router is known ({fix})", f"remove {key}")
    my_asn = _asn(spec, "myASN")
    peer_asn = _asn(spec, "peerASN")
    address = spec.str("peerAddress")
    if address is None:
        raise spec.missing("peerAddress", "is required", "set spec.peerAddress to the lab's external router's address")
    port = spec.int("peerPort", BGP_PORT, lo=1, hi=65535)
    hold = _seconds(spec, "holdTime")
    keepalive = _seconds(spec, "keepaliveTime")
    if hold is not None and not 3 <= hold <= 65535:
        raise spec.error("holdTime", f"{hold}s is outside 3s-65535s (BIRD's hold time; 0, no keepalives, is not "
                         "emulated)", 'use e.g. "9s"')
    if keepalive is not None and not 1 <= keepalive <= 21845:
        raise spec.error("keepaliveTime", f"{keepalive}s is outside 1s-21845s", 'use e.g. "3s"')
    if hold is not None and keepalive is not None and keepalive > hold:
        raise spec.error("keepaliveTime", f"{keepalive}s is more than holdTime {hold}s (MetalLB refuses it)",
                         f"use at most {hold // 3}s")
    selectors = label_selectors(spec, "nodeSelectors")
    spec.ignore_unless("vrf", "")
    spec.ignore_unless("ebgpMultiHop", False)
    spec.ignore_unless("enableGracefulRestart", False)
    spec.ignore_unless("disableMP", False)
    if networking is not None:
        router, router_as, nodes_as = router_of(networking)
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            raise spec.error("peerAddress", f"{shown(address)} is not an IPv4 address",
                             f"write the lab's external router's address, {router}") from None
        if str(ip) != router:
            raise spec.error("peerAddress", f"{ip} is not a BGP router of this lab (its one router, the external "
                             f"router, is {router})", f"set spec.peerAddress: {router}")
        if peer_asn != router_as:
            raise spec.error("peerASN", f"{peer_asn} is not the AS of the lab's external router ({router_as})",
                             f"set spec.peerASN: {router_as}")
        if nodes_as and my_asn != nodes_as:
            raise spec.error("myASN", f"{my_asn} is not the nodes' AS {nodes_as}: with networking.backend bgp "
                             "MetalLB's routes go over the nodes' existing session to the router",
                             f"set spec.myASN: {nodes_as}")
        if port != BGP_PORT:
            raise spec.error("peerPort", f"{port}: the lab's external router listens on {BGP_PORT} only",
                             f"remove peerPort or set it to {BGP_PORT}")
    spec.done()
    return {"myASN": my_asn, "peerASN": peer_asn, "peerAddress": address, "nodeSelectors": list(selectors)}


COMMUNITY = re.compile(r"^(\d{1,5}):(\d{1,5})$")
LARGE = re.compile(r"^large:(\d{1,10}):(\d{1,10}):(\d{1,10})$")


def community(text: str) -> tuple[int, ...] | None:
    """A BGP community as MetalLB writes it: "65535:65282" (two 16-bit halves) or "large:1:2:3" (three 32-bit
    parts); None for anything else."""
    m = COMMUNITY.match(text)
    if m and all(int(x) <= 0xFFFF for x in m.groups()):
        return tuple(int(x) for x in m.groups())
    m = LARGE.match(text)
    if m and all(int(x) <= 0xFFFFFFFF for x in m.groups()):
        return tuple(int(x) for x in m.groups())
    return None


def pool_cidrs(ranges) -> list[ipaddress.IPv4Network]:
    """The CIDRs that cover a pool's (first, last) ranges exactly."""
    out = []
    for a, b in ranges:
        out += list(ipaddress.summarize_address_range(ipaddress.IPv4Address(a), ipaddress.IPv4Address(b)))
    return out


def parse_bgpadvertisement(top: Fields, labels_of_pools: list) -> None:
    """A BGPAdvertisement's spec, checked. `labels_of_pools`: the scenario's pools (lb.pools.Pool) read so far,
    for MetalLB's check of aggregationLength against the pools' CIDRs."""
    spec = top.map("spec")
    pools = pool_names(spec)
    pool_sels = label_selectors(spec, "ipAddressPoolSelectors")
    label_selectors(spec, "nodeSelectors")
    agg = spec.int("aggregationLength", 32, lo=0, hi=32)
    spec.ignore_unless("aggregationLengthV6", 128)
    spec.int("localPref", lo=0, hi=MAX_AS)
    for i, c in enumerate(spec.strlist("communities")):
        if community(c) is None:
            raise spec.error(f"communities[{i}]", f"{shown(c)} is not a community netlab can send (netlab resolves "
                             "no Community aliases)", 'write "65535:65282" or "large:1:2:3"')
    peers = spec.strlist("peers")
    for i, p in enumerate(peers):
        if p in peers[:i]:
            raise spec.error(f"peers[{i}]", f"{shown(p)} is listed twice", "list each peer once")
    from ..store.meta import selector_matches
    for pool in labels_of_pools:
        if (pools or pool_sels) and pool.name not in pools and \
                not any(selector_matches(s, pool.labels) for s in pool_sels):
            continue
        for net in pool_cidrs(pool.ranges):
            if net.prefixlen > agg:
                raise spec.error("aggregationLength", f"{agg} is shorter than {net} of pool {shown(pool.name)} "
                                 "(MetalLB: a prefix of the pool is more specific than the aggregation length)",
                                 f"use at least {net.prefixlen}, or give the pool a CIDR of that size")
    spec.done()


# ------------------------------------------------------------------ the decision (pure)

@dataclass(frozen=True)
class Session:
    """One node's BGP session to the lab's router, as a BGPPeer makes it."""
    node: str
    peer: str            # the BGPPeer's name
    my_asn: int
    peer_asn: int
    address: str
    hold_time: int | None       # None: the lab's (networking.bgp's, 6s)
    keepalive_time: int | None


@dataclass(frozen=True)
class Route:
    """A prefix one node announces on its session."""
    prefix: str
    node: str
    services: tuple[str, ...]
    local_pref: int | None = None
    communities: tuple[tuple[int, ...], ...] = ()


def _ns(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def sessions_of(objs: dict[str, list[dict]]) -> dict[str, Session]:
    """node -> its session: the first BGPPeer (by name) that selects the node."""
    nodes = list(objs.get("Node") or [])
    out: dict[str, Session] = {}
    for p in sorted((p for p in objs.get("BGPPeer") or [] if _ns(p) == METALLB_NAMESPACE), key=_name):
        spec = p.get("spec") or {}
        try:
            my_asn, peer_asn, address = int(spec["myASN"]), int(spec["peerASN"]), str(spec["peerAddress"])
        except (KeyError, TypeError, ValueError):
            continue
        hold, keep = duration_seconds(spec.get("holdTime")), duration_seconds(spec.get("keepaliveTime"))
        for node in sorted(ad_nodes(p, nodes)):
            out.setdefault(node, Session(node, _name(p), my_asn, peer_asn, address,
                                         int(hold) if hold else None, int(keep) if keep else None))
    return out


def decide(objs: dict[str, list[dict]], lb_ips: dict[str, list[str]] | None = None
           ) -> tuple[list[Session], list[Route], dict[str, str]]:
    """MetalLB's BGP announcements of a lab (see the module's docstring): (sessions by node, routes sorted by
    prefix and node, {Service key: why it is not announced})."""
    nodes = list(objs.get("Node") or [])
    sessions = sessions_of(objs)
    speakers = usable_speakers(nodes, objs.get("Pod") or [])
    found, why = eligible(objs, lb_ips, "BGPAdvertisement")
    selects = {id(a): ad_nodes(a, nodes) for e in found for a in e.ads}
    merged: dict[tuple[str, str], dict] = {}
    for e in found:
        local = {ep.get("nodeName") for ep in e.endpoints} if e.spec.get("externalTrafficPolicy") == "Local" else None
        announced = False
        for node in sorted(speakers):
            if local is not None and node not in local:
                continue
            session = sessions.get(node)
            if session is None:
                continue
            for ad in sorted(e.ads, key=_name):
                spec = ad.get("spec") or {}
                if node not in selects[id(ad)] or (spec.get("peers") and session.peer not in spec["peers"]):
                    continue
                agg = spec.get("aggregationLength")
                agg = 32 if agg is None else int(agg)
                for ip in e.ips:
                    prefix = str(ipaddress.IPv4Network(f"{ip}/{agg}", strict=False))
                    r = merged.setdefault((prefix, node), {"services": set(), "pref": None, "comm": set()})
                    r["services"].add(e.key)
                    if spec.get("localPref") is not None:
                        r["pref"] = max(int(spec["localPref"]), r["pref"] or 0)
                    r["comm"] |= {c for c in (community(str(x)) for x in spec.get("communities") or []) if c}
                    announced = True
        if not announced:
            why[e.key] = ("no node with a BGP session" + (" and a local endpoint" if local is not None else "")
                          + " that a BGPAdvertisement selects")
    routes = [Route(prefix, node, tuple(sorted(r["services"])), r["pref"], tuple(sorted(r["comm"])))
              for (prefix, node), r in merged.items()]
    routes.sort(key=lambda r: (ipaddress.IPv4Network(r.prefix), r.node))
    return [sessions[n] for n in sorted(sessions)], routes, why


def accepted(objs: dict[str, list[dict]]) -> list[str]:
    """The prefixes the router takes from MetalLB's sessions: the pools' CIDRs (any length down to /32)."""
    out = []
    for p in objs.get("IPAddressPool") or []:
        if _ns(p) != METALLB_NAMESPACE:
            continue
        for entry in (p.get("spec") or {}).get("addresses") or []:
            try:
                first, last = parse_range(str(entry))
            except ValueError:
                continue
            out += [str(n) for n in pool_cidrs([(int(first), int(last))])]
    return sorted(set(out), key=ipaddress.IPv4Network)


# ---------------------------------------------------------------- the published file

@dataclass(frozen=True)
class Plan:
    """What the BGP speakers are given (netlab/bgp/bird.py renders it): the published file, read back."""
    sessions: tuple[Session, ...] = ()
    routes: tuple[Route, ...] = ()
    accept: tuple[str, ...] = ()

    def session(self, node: str) -> Session | None:
        return next((s for s in self.sessions if s.node == node), None)

    def routes_of(self, node: str) -> list[Route]:
        return [r for r in self.routes if r.node == node]


def document(sessions: list[Session], routes: list[Route], accept: list[str]) -> dict:
    return {"apiVersion": FILE_API, "kind": FILE_KIND,
            "sessions": [{"node": s.node, "peer": s.peer, "myASN": s.my_asn, "peerASN": s.peer_asn,
                          "peerAddress": s.address, "holdTime": s.hold_time, "keepaliveTime": s.keepalive_time}
                         for s in sessions],
            "routes": [{"prefix": r.prefix, "node": r.node, "services": list(r.services), "localPref": r.local_pref,
                        "communities": [list(c) for c in r.communities]} for r in routes],
            "accept": list(accept)}


def parse_document(doc) -> Plan:
    """The Plan of a published file (empty for anything that is not one)."""
    if not isinstance(doc, dict) or doc.get("kind") != FILE_KIND:
        return Plan()
    sessions, routes = [], []
    for e in doc.get("sessions") or []:
        try:
            sessions.append(Session(str(e["node"]), str(e["peer"]), int(e["myASN"]), int(e["peerASN"]),
                                    str(ipaddress.IPv4Address(e["peerAddress"])),
                                    int(e["holdTime"]) if e.get("holdTime") else None,
                                    int(e["keepaliveTime"]) if e.get("keepaliveTime") else None))
        except (KeyError, TypeError, ValueError):
            continue
    for e in doc.get("routes") or []:
        try:
            routes.append(Route(str(ipaddress.IPv4Network(e["prefix"])), str(e["node"]),
                                tuple(str(s) for s in e.get("services") or []),
                                int(e["localPref"]) if e.get("localPref") is not None else None,
                                tuple(tuple(int(x) for x in c) for c in e.get("communities") or [])))
        except (KeyError, TypeError, ValueError):
            continue
    accept = []
    for a in doc.get("accept") or []:
        try:
            accept.append(str(ipaddress.IPv4Network(a)))
        except (TypeError, ValueError):
            continue
    return Plan(tuple(sessions), tuple(routes), tuple(accept))
