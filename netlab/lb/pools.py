"""MetalLB's IPAddressPool and L2Advertisement (metallb.io/v1beta1): checked as MetalLB's validating
webhook checks them (MetalLB's internal/config, read for facts), and read into `Pool` for the IPAM
controller (netlab/controllers/lbipam.py).

The checks, on `Fields` (so a refusal is one line naming the document, the field and the fix):
- the object lives in MetalLB's namespace (metallb-system), as the webhook requires;
- IPAddressPool: spec.addresses non-empty, each a CIDR or a "first-last" range (IPv4: netlab's
  clusters are IPv4), no two pools' addresses overlapping (MetalLB: "CIDR ... overlaps with already
  defined CIDR"); autoAssign, avoidBuggyIPs booleans; serviceAllocation priority (integer),
  namespaces (no duplicates), namespaceSelectors and serviceSelectors (label selectors, no duplicates);
- L2Advertisement: ipAddressPools (no duplicates), ipAddressPoolSelectors, nodeSelectors,
  serviceSelectors (label selectors, no duplicates), interfaces, preferredNodeSelectors (weight
  1-100 and a preference selector). A pool named that does not exist is not an error (MetalLB skips it).
Unknown fields are refused (MetalLB's CRDs have structural schemas: strict validation refuses them).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..spec.fields import Fields, shown
from . import METALLB_NAMESPACE, parse_range

SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")
ADDRESS_FIX = "write a CIDR (192.168.10.0/24) or a range (192.168.10.10-192.168.10.20)"


@dataclass(frozen=True)
class Pool:
    name: str
    ranges: tuple[tuple[int, int], ...]          # (first, last) as integers, both included, as written
    auto_assign: bool = True
    avoid_buggy_ips: bool = False
    # serviceAllocation: None when absent; else (priority, namespaces, namespaceSelectors, serviceSelectors)
    priority: int = 0
    allocation: bool = False
    namespaces: tuple[str, ...] = ()
    namespace_selectors: tuple = ()
    service_selectors: tuple = ()
    labels: dict = field(default_factory=dict, compare=False, hash=False)

    def contains(self, ip: int) -> bool:
        if self.avoid_buggy_ips and buggy(ip):
            return False
        return any(a <= ip <= b for a, b in self.ranges)

    def addresses(self):
        """The pool's addresses in MetalLB's order (each range from its first address)."""
        for a, b in self.ranges:
            for ip in range(a, b + 1):
                if not (self.avoid_buggy_ips and buggy(ip)):
                    yield ip

    def size(self) -> int:
        return sum(1 for _ in self.addresses()) if self.avoid_buggy_ips else sum(b - a + 1 for a, b in self.ranges)


def buggy(ip: int) -> bool:
    """An IPv4 address ending in .0 or .255 (avoidBuggyIPs: some CPE firmware drops them)."""
    return ip & 0xFF in (0, 255)


def ip_text(ip: int) -> str:
    return str(ipaddress.IPv4Address(ip))


def range_text(first: int, last: int) -> str:
    return ip_text(first) if first == last else f"{ip_text(first)}-{ip_text(last)}"


# ------------------------------------------------------------------ checks (spec layer)

def check_namespace(meta_ns: str | None, top: Fields, kind: str) -> None:
    if meta_ns != METALLB_NAMESPACE:
        raise top.error("metadata.namespace", f"{shown(meta_ns)} is not MetalLB's namespace: {kind} resources "
                        f"must be created in {METALLB_NAMESPACE}", f"set metadata.namespace: {METALLB_NAMESPACE}")


def label_selectors(f: Fields, key: str) -> tuple:
    """A list of metav1.LabelSelector (matchLabels, matchExpressions), duplicates refused as MetalLB does."""
    out = []
    for i, sel in enumerate(f.maps(key)):
        out.append(label_selector(sel))
        if out[-1] in out[:-1]:
            raise f.error(f"{key}[{i}]", "repeats an earlier selector (MetalLB: duplicate definition of "
                          f"{key})", "remove the duplicate")
    return tuple(out)


def label_selector(sel: Fields) -> dict:
    labels = sel.strmap("matchLabels")
    exprs = []
    for e in sel.maps("matchExpressions"):
        key = e.str("key", required=True)
        op = e.choice("operator", SELECTOR_OPS)
        if op is None:
            raise e.missing("operator", "is required", f"use one of: {', '.join(SELECTOR_OPS)}")
        values = e.strlist("values")
        e.done()
        if op in ("In", "NotIn") and not values:
            raise e.error("values", f"must be non-empty with operator {op}", "list at least one value")
        if op in ("Exists", "DoesNotExist") and values:
            raise e.error("values", f"must be empty with operator {op}", "remove values")
        exprs.append({"key": key, "operator": op, **({"values": values} if values else {})})
    sel.done()
    out: dict = {}
    if labels:
        out["matchLabels"] = labels
    if exprs:
        out["matchExpressions"] = exprs
    return out


def parse_pool(top: Fields, name: str, labels: dict, others: list[Pool], reserved: list[tuple[str, int, int]]) -> Pool:
    """An IPAddressPool's spec (top: the document's Fields, metadata read). `others`: the pools already
    accepted (overlaps refused); `reserved`: (what, first, last) ranges a pool may not touch (the pod
    and service subnets, the gateway, the external host)."""
    spec = top.map("spec")
    if not top.has("spec"):
        raise spec.missing("addresses", "is required (MetalLB: pool has no prefixes defined)",
                           "set spec.addresses, e.g. ['172.18.255.200-172.18.255.250']")
    addresses = spec.strlist("addresses")
    if not addresses:
        raise spec.missing("addresses", "must list at least one range (MetalLB: pool has no prefixes defined)",
                           "set spec.addresses, e.g. ['172.18.255.200-172.18.255.250']")
    ranges: list[tuple[int, int]] = []
    for i, text in enumerate(addresses):
        key = f"addresses[{i}]"
        try:
            first, last = parse_range(text)
        except ValueError as e:
            if ":" in text:
                why = "is IPv6: netlab emulates IPv4 clusters"
            elif "ends before" in str(e):
                why = "ends before it starts (MetalLB: the start IP is after the end IP)"
            elif "host bits" in str(e):
                why = "has host bits set"
                fix = f"write {ipaddress.IPv4Network(text.strip(), strict=False)}"
            else:
                why = "is not a CIDR or an IPv4 address range"
            raise spec.error(key, f"{shown(text)} {why}", fix if "host bits" in why else ADDRESS_FIX) from None
        a, b = int(first), int(last)
        for j, (c, d) in enumerate(ranges):
            if a <= d and c <= b:
                raise spec.error(key, f"{shown(text)} overlaps {shown(addresses[j])} of the same pool",
                                 "give each address once")
        for other in others:
            for c, d in other.ranges:
                if a <= d and c <= b:
                    raise spec.error(key, f"{shown(text)} overlaps {range_text(c, d)} of pool {shown(other.name)} "
                                     "(MetalLB refuses overlapping pools)", "give each pool its own addresses")
        for what, c, d in reserved:
            if a <= d and c <= b:
                raise spec.error(key, f"{shown(text)} overlaps {what}", "take the pool's addresses from the node "
                                 "subnet, away from the nodes, the gateway and the external host (e.g. its upper end)")
        ranges.append((a, b))
    auto = spec.bool("autoAssign", True)
    avoid = spec.bool("avoidBuggyIPs", False)
    kw: dict = {}
    if spec.has("serviceAllocation"):
        sa = spec.map("serviceAllocation")
        kw["allocation"] = True
        kw["priority"] = sa.int("priority", 0, lo=0)
        namespaces = sa.strlist("namespaces")
        for i, ns in enumerate(namespaces):
            if ns in namespaces[:i]:
                raise sa.error(f"namespaces[{i}]", f"{shown(ns)} is listed twice (MetalLB: duplicate definition in "
                               "namespaces field)", "list each namespace once")
        kw["namespaces"] = tuple(namespaces)
        kw["namespace_selectors"] = label_selectors(sa, "namespaceSelectors")
        kw["service_selectors"] = label_selectors(sa, "serviceSelectors")
        sa.done()
    else:
        spec.raw("serviceAllocation")
    spec.done()
    return Pool(name, tuple(ranges), auto, avoid, labels=dict(labels), **kw)


def pool_names(spec: Fields) -> list[str]:
    """An advertisement's spec.ipAddressPools, each listed once (MetalLB's webhook refuses a repeat)."""
    pools = spec.strlist("ipAddressPools")
    for i, p in enumerate(pools):
        if p in pools[:i]:
            raise spec.error(f"ipAddressPools[{i}]", f"{shown(p)} is listed twice (MetalLB: duplicate definition of "
                             "ipAddressPools)", "list each pool once")
    return pools


def parse_l2advertisement(top: Fields) -> None:
    spec = top.map("spec")
    pool_names(spec)
    for key in ("ipAddressPoolSelectors", "nodeSelectors", "serviceSelectors"):
        label_selectors(spec, key)
    spec.strlist("interfaces")
    for pref in spec.maps("preferredNodeSelectors"):
        if not pref.has("weight"):
            raise pref.missing("weight", "is required", "give a weight from 1 to 100")
        pref.int("weight", lo=1, hi=100)
        label_selector(pref.map("preference"))
        pref.done()
    spec.done()


# ------------------------------------------------------------------ the controller's reading

def pool_of(obj: dict) -> Pool | None:
    """The Pool of a stored IPAddressPool (already checked when it was stored); None if it cannot be
    read (a controller skips it, as MetalLB skips a configuration it cannot load)."""
    try:
        md, spec = obj["metadata"], obj.get("spec") or {}
        ranges = tuple((int(a), int(b)) for a, b in (parse_range(t) for t in spec.get("addresses") or []))
        if not ranges:
            return None
        sa = spec.get("serviceAllocation")
        kw: dict = {}
        if isinstance(sa, dict):
            kw = {"allocation": True, "priority": int(sa.get("priority") or 0),
                  "namespaces": tuple(sa.get("namespaces") or ()),
                  "namespace_selectors": tuple(sa.get("namespaceSelectors") or ()),
                  "service_selectors": tuple(sa.get("serviceSelectors") or ())}
        auto = spec.get("autoAssign")
        return Pool(md["name"], ranges, True if auto is None else bool(auto), bool(spec.get("avoidBuggyIPs")),
                    labels=dict(md.get("labels") or {}), **kw)
    except (KeyError, TypeError, ValueError):
        return None


def pools_of(objs: list[dict]) -> list[Pool]:
    """The pools of the IPAddressPools in MetalLB's namespace, by name; a pool overlapping one
    before it (by name) is left out, as MetalLB refuses such a configuration."""
    out: list[Pool] = []
    for o in sorted(objs, key=lambda o: o["metadata"]["name"]):
        if (o["metadata"].get("namespace") or "default") != METALLB_NAMESPACE:
            continue
        p = pool_of(o)
        if p is None or any(a <= d and c <= b for q in out for a, b in p.ranges for c, d in q.ranges):
            continue
        out.append(p)
    return out


def check_node_addresses(documents: list[dict], nodes) -> None:
    """Refuse a pool holding a node's address (known once the model has allocated them: model/build.py);
    the pod and service subnets, the gateway and the external host are checked by the parser."""
    from ..errors import SpecError
    for d in documents:
        if d.get("kind") != "IPAddressPool":
            continue
        p = pool_of(d)
        for n in nodes if p is not None else ():
            if any(a <= int(n.ip) <= b for a, b in p.ranges):
                raise SpecError(f"IPAddressPool {p.name}", f"spec.addresses holds {n.ip}, the address of node "
                                f"{n.name}", "take the pool's addresses from the node subnet away from the nodes' "
                                "addresses (e.g. its upper end)")
