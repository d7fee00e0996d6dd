"""The API server's allocation of a Service's ClusterIP and node ports, done when the Service is written to the
lab's store (created, or updated so that it needs one) and written into its stored spec, as the API server
writes them. Every reader of the store then programs the same addresses: on a lab over several machines each
host's agent builds its own model, and before this an agent computed a Service's ClusterIP itself, so two agents
that saw two colliding Services in a different order could disagree.

Pure: given the Services the store has and a hint (the lab's earlier allocation: state.json's `services`, or
what `up`'s model decided), it chooses as the model does (model.build): the address the Service had, the hint,
kubernetes' and kube-dns' reserved addresses for those two, then the first free address from a hash of the
Service's name; node ports the same way. What the user wrote is never changed; an allocated field the Service's
new type no longer takes (a NodePort Service made ClusterIP keeps no node ports) is removed, as the API server
removes it.
"""
from __future__ import annotations

import copy
import functools
import ipaddress

from ..errors import SpecError
from .build import free_cluster_ip, free_port

# "ns/name" -> {"clusterIP": str|None, "nodePorts": {"name/protocol": port}, "healthCheckNodePort": int|None}
Table = dict[str, dict]


def key_of(obj: dict) -> str:
    md = obj.get("metadata") or {}
    return f"{md.get('namespace') or 'default'}/{md.get('name')}"


def service_table(services) -> Table:
    """The model's Services (model.objects.Service) as a hint table (state.json's `services`)."""
    return {s.key: {"clusterIP": str(s.cluster_ip) if s.cluster_ip else None,
                    "nodePorts": {f"{p.name or ''}/{p.protocol}": p.node_port for p in s.ports if p.node_port},
                    "healthCheckNodePort": s.health_check_node_port}
            for s in services}


def allocator(networking, hints=None):
    """`allocate` with the lab's `networking` and `hints` (state.json's `services`; anything else is no hint)
    bound: what live.objects.apply_objects writes a Service with."""
    return functools.partial(allocate, networking=networking, hints=hints if isinstance(hints, dict) else {})


def for_up(scenario, base, prev: dict | None):
    """What `up` writes a Service with: the addresses its model gave the scenario's Services (`base`, the model
    built from the scenario and the lab's previous state `prev`), the lab's earlier ones for the others."""
    earlier = (prev or {}).get("services")
    return allocator(scenario.networking, dict(earlier if isinstance(earlier, dict) else {},
                                               **service_table(base.services)))


def _int(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _ip(v) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(v) if isinstance(v, str) and v not in ("", "None") else None
    except ValueError:
        return None


def allocates_node_ports(spec: dict) -> bool:
    t = spec.get("type") or "ClusterIP"
    return t == "NodePort" or (t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False)


def needs_health_check(spec: dict) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _port_key(p: dict) -> str:
    return f"{p.get('name') or ''}/{p.get('protocol') or 'TCP'}"


def allocate(obj: dict, given: dict, live: dict | None, others: list[dict], networking,
             hints: Table | None = None) -> dict:
    """`obj` (a Service about to be written: the manifest with the store's defaults, merged with `live`, the stored
    version, if any) with its ClusterIP and node ports filled in. `given`: the manifest as the user wrote it
    (what it sets is kept as it is). `others`: the store's other Services, whose addresses are taken (and, for
    those stored before netlab wrote addresses into the spec, their `hints`). `networking`: the lab's (its
    service subnet and node port range). A Service whose subnet or range is full is left without: the model
    then names the problem, as it does for a scenario."""
    hints = hints or {}
    key = key_of(obj)
    spec = copy.deepcopy(obj.get("spec") or {})
    gspec = given.get("spec") if isinstance(given.get("spec"), dict) else {}
    lspec = (live or {}).get("spec") or {}
    mine = hints.get(key) or {}
    subnet = networking.service_subnet
    lo, hi = networking.nodeport_range
    taken: set[ipaddress.IPv4Address] = set()
    used: set[tuple[int, str]] = set()
    for o in others:
        if key_of(o) == key:
            continue
        ospec = o.get("spec") or {}
        h = hints.get(key_of(o)) or {}
        ip = _ip(ospec.get("clusterIP")) if "clusterIP" in ospec else _ip(h.get("clusterIP"))
        if ip is not None:
            taken.add(ip)
        ports = [p for p in ospec.get("ports") or [] if isinstance(p, dict)]
        for p in ports:
            np = _int(p.get("nodePort")) or _int((h.get("nodePorts") or {}).get(_port_key(p)))
            if np:
                used.add((np, p.get("protocol") or "TCP"))
        hc = _int(ospec.get("healthCheckNodePort")) or _int(h.get("healthCheckNodePort"))
        if hc:
            used.add((hc, "TCP"))

    stype = spec.get("type") or "ClusterIP"
    if stype == "ExternalName":
        if "clusterIP" not in gspec:
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
    elif spec.get("clusterIP") in (None, ""):
        from ..dns.addon import reserved_owner
        owners = {ip: owner for ip, (owner, _) in reserved_owner(subnet).items()}

        def free(ip) -> bool:
            return ip is not None and ip in subnet and ip not in taken and owners.get(ip, key) == key \
                and ip not in (subnet.network_address, subnet.broadcast_address)
        ip = next((c for c in (_ip(lspec.get("clusterIP")), _ip(mine.get("clusterIP"))) if free(c)), None)
        if ip is None:
            ip = next((c for c, owner in owners.items() if owner == key and free(c)), None)
        if ip is None:
            try:
                ip = free_cluster_ip(key, subnet, lambda c: not free(c))
            except SpecError:   # a full subnet: the model names it
                ip = None
        if ip is not None:
            spec["clusterIP"], spec["clusterIPs"] = str(ip), [str(ip)]

    ports = spec.get("ports")
    if isinstance(ports, list):
        given_ports = {(p.get("port"), p.get("protocol") or "TCP"): p for p in gspec.get("ports") or []
                       if isinstance(p, dict)}
        live_ports = {(p.get("port"), p.get("protocol") or "TCP"): p for p in lspec.get("ports") or []
                      if isinstance(p, dict)}
        ports = spec["ports"] = [dict(p) if isinstance(p, dict) else p for p in ports]
        for p in ports:
            if isinstance(p, dict) and _int(p.get("nodePort")):
                used.add((p["nodePort"], p.get("protocol") or "TCP"))
        for p in ports:
            if not isinstance(p, dict):
                continue
            proto, at = p.get("protocol") or "TCP", (p.get("port"), p.get("protocol") or "TCP")
            if not allocates_node_ports(spec):
                if "nodePort" in p and "nodePort" not in given_ports.get(at, {}):
                    p.pop("nodePort")
                continue
            if _int(p.get("nodePort")):
                continue
            cands = [_int(live_ports.get(at, {}).get("nodePort")),
                     _int((mine.get("nodePorts") or {}).get(_port_key(p)))]
            np = next((c for c in cands if c and lo <= c <= hi and (c, proto) not in used), None)
            if np is None:
                try:
                    np = free_port(key, _port_key(p), proto, used, lo, hi)
                except SpecError:   # a full range: the model names it
                    continue
            p["nodePort"] = np
            used.add((np, proto))

    if needs_health_check(spec):
        if not _int(spec.get("healthCheckNodePort")):
            cands = [_int(lspec.get("healthCheckNodePort")), _int(mine.get("healthCheckNodePort"))]
            hc = next((c for c in cands if c and lo <= c <= hi and (c, "TCP") not in used), None)
            if hc is None:
                try:
                    hc = free_port(key, "healthcheck", "TCP", used, lo, hi)
                except SpecError:
                    hc = None
            if hc is not None:
                spec["healthCheckNodePort"] = hc
    elif "healthCheckNodePort" in spec and "healthCheckNodePort" not in gspec:
        spec.pop("healthCheckNodePort")
    return dict(obj, spec=spec)
