"""EndpointSlice (discovery.k8s.io/v1) and Endpoints (v1) written by hand: the endpoints of a Service
without a selector (the documented way to point a Service at a server outside the cluster).

A slice names its Service with the label kubernetes.io/service-name; an Endpoints object has the
Service's own name. Only IPv4 addresses are emulated (addressType IPv4). The conditions are read as
the API defines them: `ready` absent means ready, `serving` absent means the same as `ready`,
`terminating` absent means false. Endpoints' `addresses` are ready, its `notReadyAddresses` are not.
"""
from __future__ import annotations

import ipaddress

from ..fields import Fields, check_name, shown
from ..types import PROTOCOLS, EndpointSliceSpec, SliceEndpointSpec, SlicePortSpec
from . import Context, ObjectDoc, Reported, attempt, object_meta, register

SERVICE_NAME = "kubernetes.io/service-name"


def _address(f: Fields, key: str, value: object) -> str:
    """An endpoint address: IPv4, and not one the API refuses (loopback, link-local, multicast)."""
    if not isinstance(value, str):
        raise f.error(key, f"{shown(value)} is not an IPv4 address", "write the address as a string, e.g. '10.0.0.5'")
    try:
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        raise f.error(key, f"{shown(value)} is not an IPv4 address",
                      "give an IPv4 address (netlab emulates IPv4 only)") from None
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        raise f.error(key, f"{value} is a loopback, link-local, multicast or unspecified address",
                      "give the address of a host the cluster can reach")
    return value


def _ports(f: Fields, key: str) -> list[SlicePortSpec]:
    out: list[SlicePortSpec] = []
    for p in f.maps(key):
        name = p.str("name")
        if name:
            check_name(name, p.where, p.at("name"))
        port = p.int("port", required=True, lo=1, hi=65535)
        proto = p.str("protocol", "TCP")
        if proto not in PROTOCOLS:
            raise p.error("protocol", f"{shown(proto)} is not supported", "use TCP, UDP or SCTP")
        p.skip("appProtocol")
        p.done()
        if any((x.name or "") == (name or "") and x.protocol == proto for x in out):
            raise p.error("name", f"'{name or ''}'/{proto} is listed twice", "give each port its own name")
        out.append(SlicePortSpec(name or None, port, proto))
    return out


@register("EndpointSlice", "discovery.k8s.io/v1", order=5)
def parse_endpointslice(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, namespace = object_meta(doc, ctx)
    labels = meta.strmap("labels")
    meta.done()
    got = attempt(ctx.problems, _parse_slice, top, namespace, name, labels)
    top.done()
    if got is None:
        raise Reported()
    ctx.slices.append(got)


def _parse_slice(top: Fields, namespace: str, name: str, labels: dict[str, str]) -> EndpointSliceSpec:
    atype = top.str("addressType", required=True)
    if atype != "IPv4":
        raise top.error("addressType", f"{shown(atype)} is not supported",
                        "use addressType: IPv4 with IPv4 addresses (netlab emulates IPv4 only)")
    eps: list[SliceEndpointSpec] = []
    for e in top.maps("endpoints"):
        addrs = e.list("addresses")
        if not addrs:
            raise e.missing("addresses", "must list one address", "add '- addresses: [\"10.0.0.5\"]'")
        cond = e.map("conditions")
        ready = cond.bool("ready", True) if cond.raw("ready") is not None else True
        serving = cond.bool("serving") if cond.raw("serving") is not None else ready
        terminating = cond.bool("terminating")
        cond.done()
        e.skip("hostname", "nodeName", "zone", "targetRef", "hints", "deprecatedTopology")
        e.done()
        for i, a in enumerate(addrs):
            eps.append(SliceEndpointSpec(_address(e, f"addresses[{i}]", a), ready, serving, terminating))
    ports = _ports(top, "ports")
    return EndpointSliceSpec(namespace, name, labels.get(SERVICE_NAME), eps, ports)


@register("Endpoints", "v1", order=6)
def parse_endpoints(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, namespace = object_meta(doc, ctx)
    meta.skip("labels")
    meta.done()
    got = attempt(ctx.problems, _parse_endpoints, top, namespace, name)
    top.done()
    if got is None:
        raise Reported()
    ctx.slices.extend(got)


def _parse_endpoints(top: Fields, namespace: str, name: str) -> list[EndpointSliceSpec]:
    """Each subset is one slice: its addresses (ready) and notReadyAddresses, on its ports."""
    out = []
    for sub in top.maps("subsets"):
        eps = []
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            for a in sub.maps(key):
                ip = _address(a, "ip", a.raw("ip")) if a.has("ip") else None
                if ip is None:
                    raise a.missing("ip", "is required", "give the endpoint's IPv4 address")
                a.skip("ip", "hostname", "nodeName", "targetRef")
                a.done()
                eps.append(SliceEndpointSpec(ip, ready, ready, False))
        ports = _ports(sub, "ports")
        sub.done()
        out.append(EndpointSliceSpec(namespace, name, name, eps, ports, kind="Endpoints"))
    return out
