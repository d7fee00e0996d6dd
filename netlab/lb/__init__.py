"""LoadBalancer Services, MetalLB's way (issue 14): address pools, the IPAM controller's decisions, the
layer-2 announcement of the addresses on the underlay. Shared names live here."""
from __future__ import annotations

import ipaddress

METALLB_NAMESPACE = "metallb-system"
METALLB_API = "metallb.io/v1beta1"
# MetalLB's Service annotations
ANN_LB_IPS = "metallb.universe.tf/loadBalancerIPs"
ANN_SHARED = "metallb.universe.tf/allow-shared-ip"
ANN_POOL = "metallb.universe.tf/address-pool"
ANN_ALLOCATED_FROM = "metallb.universe.tf/ip-allocated-from-pool"


def parse_range(text: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """One entry of an IPAddressPool's spec.addresses as MetalLB reads it: a CIDR ("192.0.2.0/28")
    or a range ("192.0.2.10-192.0.2.20", spaces allowed around '-'). Returns (first, last), both
    included. Raises ValueError with a reason for anything else (or an IPv6 entry)."""
    s = text.strip()
    if "-" in s:
        a, _, b = s.partition("-")
        first, last = ipaddress.IPv4Address(a.strip()), ipaddress.IPv4Address(b.strip())
        if last < first:
            raise ValueError(f"range {s!r} ends before it starts")
        return first, last
    net = ipaddress.IPv4Network(s, strict=False)
    if "/" in s and net.network_address != ipaddress.IPv4Address(s.split("/")[0]):
        raise ValueError(f"{s!r} has host bits set; write {net}")
    return net.network_address, net.broadcast_address


def installed(scenario) -> bool:
    """MetalLB is part of the lab: its documents hold an IPAddressPool (written, or made from the
    Cluster document's `loadBalancer:` shorthand)."""
    return any(d.get("kind") == "IPAddressPool" for d in scenario.documents)
