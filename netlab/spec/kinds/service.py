"""Service (v1): ClusterIP, NodePort, LoadBalancer, ExternalName and headless Services."""
from __future__ import annotations

import ipaddress
import re

from ...errors import SpecError
from ..fields import DNS1123_SUBDOMAIN, IANA_SVC_NAME, LABEL_KEY, Fields, check_name, shown, type_name
from ..types import PROTOCOLS, Networking, ServicePortSpec, ServiceSpec
from . import Context, ObjectDoc, Reported, attempt, object_meta, register


# The legacy annotation for loadBalancerSourceRanges (v1.AnnotationLoadBalancerSourceRangesKey).
ANN_SOURCE_RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"


@register("Service", "v1", order=4)
def parse_service(doc: ObjectDoc, ctx: Context) -> None:
    top, meta, name, namespace = object_meta(doc, ctx)
    labels = meta.strmap("labels")
    raw_ann = meta.data.get("annotations")
    annotations = {k: v for k, v in raw_ann.items() if k == ANN_SOURCE_RANGES and isinstance(v, str)} \
        if isinstance(raw_ann, dict) else {}
    meta.done()
    got = attempt(ctx.problems, _parse_service, top.map("spec"), namespace, name, labels, ctx.networking,
                  annotations, meta)
    top.done()
    if got is None:
        raise Reported()
    ctx.services.append(got)


def _parse_service(spec: Fields, namespace: str, name: str, labels: dict[str, str], net: Networking,
                   annotations: dict[str, str] | None = None, meta: Fields | None = None) -> ServiceSpec:
    check_name(name, spec.where, "metadata.name")  # a Service name is a DNS-1123 label (at most 63)
    stype = spec.choice("type", ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"), "ClusterIP")
    selector = spec.strmap("selector") if spec.has("selector") else None
    spec.skip("selector")  # `selector: null` is a service without a selector, not an ignored field
    cluster_ip = spec.str("clusterIP")
    if cluster_ip is not None and cluster_ip not in ("None", ""):
        try:
            ip = ipaddress.ip_address(cluster_ip)
        except ValueError:
            raise spec.error("clusterIP", f"{shown(cluster_ip)} is not an IPv4 address", "give an address or None") from None
        if ip not in net.service_subnet:
            raise spec.error("clusterIP", f"{cluster_ip} is outside the service subnet {net.service_subnet}",
                             "pick an address inside it or leave clusterIP out")
        if ip in (net.service_subnet.network_address, net.service_subnet.broadcast_address):
            raise spec.error("clusterIP", f"{cluster_ip} is the subnet's network or broadcast address",
                             "pick another address")
    if cluster_ip == "":
        cluster_ip = None
    # the API server's checks of the type against the address: an ExternalName Service has none, and a node
    # port or a load balancer forwards to the Service's ClusterIP, so neither can be headless
    if cluster_ip is not None and stype == "ExternalName":
        raise spec.error("clusterIP", "may not be set for ExternalName services", "drop clusterIP")
    if cluster_ip == "None" and stype in ("NodePort", "LoadBalancer"):
        raise spec.error("clusterIP", f"may not be set to 'None' for {stype} services",
                         "drop clusterIP: None, or use type: ClusterIP for a headless Service")
    publish_not_ready = spec.bool("publishNotReadyAddresses")
    spec.skip("clusterIPs", "ipFamilies", "ipFamilyPolicy")
    ports: list[ServicePortSpec] = []
    pdocs = list(spec.maps("ports"))
    if stype != "ExternalName" and not pdocs and cluster_ip != "None":
        raise spec.missing("ports", "must list at least one port", "add '- port: 80'")
    lo, hi = net.nodeport_range
    failed = False
    for p in pdocs:  # each port is checked, even after one is refused
        got = attempt(spec.problems, _parse_port, p, ports, len(pdocs), stype, lo, hi)
        failed |= got is None
        if got is not None:
            ports.append(got)
    ext_ips = []
    for i, e in enumerate(spec.strlist("externalIPs")):
        try:
            ipaddress.IPv4Address(e)
        except ValueError:
            raise spec.error(f"externalIPs[{i}]", f"{shown(e)} is not an IPv4 address", "fix the address") from None
        ext_ips.append(e)
    lb_ip = spec.str("loadBalancerIP")
    if lb_ip is not None:
        try:
            ipaddress.IPv4Address(lb_ip)
        except ValueError:
            raise spec.error("loadBalancerIP", f"{shown(lb_ip)} is not an IPv4 address", "fix the address") from None
    affinity = spec.choice("sessionAffinity", ("None", "ClientIP"), "None")
    timeout = spec.map("sessionAffinityConfig").map("clientIP").int("timeoutSeconds", 10800, lo=1, hi=86400)
    spec.seen.add("sessionAffinityConfig")
    if affinity == "None" and spec.has("sessionAffinityConfig"):
        raise spec.error("sessionAffinityConfig", "must not be set when sessionAffinity is None",
                         "set sessionAffinity: ClientIP, or drop sessionAffinityConfig")
    etp = spec.choice("externalTrafficPolicy", ("Cluster", "Local"), "Cluster")
    # the API server's check (validateServiceExternalTrafficPolicy): only a Service reached from outside the
    # cluster (a node port, a load balancer, an external IP) has external traffic to apply a policy to
    if spec.has("externalTrafficPolicy") and stype not in ("NodePort", "LoadBalancer") \
            and not (stype == "ClusterIP" and ext_ips):
        raise spec.error("externalTrafficPolicy", f"may only be set for externally-accessible services, not type "
                         f"{stype} without externalIPs", "use type: NodePort or LoadBalancer, or drop "
                         "externalTrafficPolicy (internalTrafficPolicy is the ClusterIP's)")
    itp = spec.choice("internalTrafficPolicy", ("Cluster", "Local"), "Cluster")
    lb = _lb_fields(spec, stype, etp, net, annotations or {}, meta)
    ext_name = spec.str("externalName")
    if stype == "ExternalName" and not ext_name:
        raise spec.missing("externalName", "is required for type ExternalName", "give a DNS name")
    if stype == "ExternalName":   # the API server's check: a DNS-1123 subdomain (a trailing dot allowed)
        clean = ext_name[:-1] if ext_name.endswith(".") else ext_name
        if len(clean) > 253 or not DNS1123_SUBDOMAIN.match(clean):
            raise spec.error("externalName", f"{shown(ext_name)} is not a valid DNS name",
                             "use a DNS name: lower-case letters, digits, '-' and '.', e.g. db.example.com")
    spec.done()
    if failed:
        raise Reported()
    if lb["health_check_node_port"] is not None and any(p.node_port == lb["health_check_node_port"] for p in ports):
        raise spec.error("healthCheckNodePort", f"{lb['health_check_node_port']} is also a nodePort of this Service",
                         "pick another port or leave healthCheckNodePort out")
    return ServiceSpec(namespace, name, stype, selector, ports, cluster_ip, ext_ips, lb_ip, affinity, timeout,
                       etp, itp, ext_name, labels, publish_not_ready, **lb)


def _source_range(text: str) -> str:
    """One loadBalancerSourceRanges entry as kube-proxy uses it: spaces trimmed (the API server lets them
    pass), an IPv4 CIDR with its host bits cleared (Go's ParseCIDR). ValueError if it is no CIDR."""
    t = text.strip()
    if "/" not in t:
        raise ValueError(t)
    return str(ipaddress.IPv4Network(t, strict=False))


def _lb_fields(spec: Fields, stype: str, etp: str, net: Networking, annotations: dict[str, str],
               meta: Fields | None) -> dict:
    """The LoadBalancer fields, with the API server's checks (ValidateService): loadBalancerSourceRanges
    (or the legacy annotation), healthCheckNodePort, allocateLoadBalancerNodePorts, loadBalancerClass."""
    lb = stype == "LoadBalancer"
    ranges: list[str] = []
    raw_ranges = spec.strlist("loadBalancerSourceRanges")
    if raw_ranges and not lb:
        raise spec.error("loadBalancerSourceRanges", f"may only be used when type is 'LoadBalancer', not {stype}",
                         "use type: LoadBalancer or drop loadBalancerSourceRanges")
    for i, r in enumerate(raw_ranges):
        try:
            ranges.append(_source_range(r))
        except ValueError:
            raise spec.error(f"loadBalancerSourceRanges[{i}]", f"{shown(r)} is not an IPv4 CIDR",
                             "write an address range like 203.0.113.0/24 (netlab is IPv4 only)") from None
    if not raw_ranges and ANN_SOURCE_RANGES in annotations:
        # The API server checks the annotation (when the field is empty); kube-proxy never reads it (only
        # cloud load balancers do): parsed, then reported as ignored - it does not filter anything here.
        where = meta.at("annotations") if meta is not None else "metadata.annotations"
        key = f"{where}[{ANN_SOURCE_RANGES}]"
        if not lb:
            raise SpecError(spec.where, f"{key} may only be used when type is 'LoadBalancer', not {stype}",
                            "drop the annotation")
        val = annotations[ANN_SOURCE_RANGES].strip()
        for part in (val.split(",") if val else []):
            try:
                _source_range(part)
            except ValueError:
                raise SpecError(spec.where, f"{key} {shown(part.strip())} is not an IPv4 CIDR: it must be a "
                                "list of IP ranges", "write e.g. 10.240.0.0/24,10.250.0.0/24") from None
        spec.ignored.append(f"{spec.where}: {key} (kube-proxy reads only spec.loadBalancerSourceRanges; "
                            "move the ranges there)")
    hcnp = spec.int("healthCheckNodePort", lo=0, hi=65535)
    if hcnp == 0:
        hcnp = None
    if hcnp is not None:
        if not (lb and etp == "Local"):
            raise spec.error("healthCheckNodePort", "may only be set when type is 'LoadBalancer' and "
                             "externalTrafficPolicy is 'Local'", "drop healthCheckNodePort")
        lo, hi = net.nodeport_range
        if not lo <= hcnp <= hi:
            raise spec.error("healthCheckNodePort", f"{hcnp} is outside the node port range {lo}-{hi}",
                             "pick a port in the range or leave healthCheckNodePort out")
    allocate = spec.raw("allocateLoadBalancerNodePorts")
    if allocate is not None and not lb:
        raise spec.error("allocateLoadBalancerNodePorts", f"may only be used when type is 'LoadBalancer', not {stype}",
                         "drop allocateLoadBalancerNodePorts")
    allocate_np = spec.bool("allocateLoadBalancerNodePorts", True)
    lb_class = spec.str("loadBalancerClass")
    if lb_class is not None:
        if not lb:
            raise spec.error("loadBalancerClass", f"may only be used when type is 'LoadBalancer', not {stype}",
                             "drop loadBalancerClass")
        if not LABEL_KEY.match(lb_class) or len(lb_class.rsplit("/", 1)[-1]) > 63 or len(lb_class) > 316:
            raise spec.error("loadBalancerClass", f"{shown(lb_class)} is not a qualified name",
                             "use a name like example.com/internal-vip")
    return {"source_ranges": ranges, "health_check_node_port": hcnp, "allocate_lb_node_ports": allocate_np,
            "lb_class": lb_class}


def _parse_port(p: Fields, ports: list[ServicePortSpec], count: int, stype: str, lo: int, hi: int) -> ServicePortSpec:
    pname = p.str("name")
    if pname is not None:
        check_name(pname, p.where, p.at("name"))
    port = p.int("port", required=True, lo=1, hi=65535)
    proto = p.str("protocol", "TCP")
    if proto not in PROTOCOLS:
        raise p.error("protocol", f"{shown(proto)} is not supported", "use TCP, UDP or SCTP")
    raw_target = p.raw("targetPort")
    if raw_target is None:
        target: int | str = port
    elif isinstance(raw_target, int) and not isinstance(raw_target, bool):
        target = p.int("targetPort", lo=1, hi=65535)
    elif isinstance(raw_target, str) and re.fullmatch(r"[0-9]+", raw_target):
        target = p.int("targetPort", lo=1, hi=65535)
    elif isinstance(raw_target, str):
        if len(raw_target) > 15 or not IANA_SVC_NAME.match(raw_target):
            raise p.error("targetPort", f"{shown(raw_target)} is not a port number or port name",
                          "use a number or the name of a containerPort")
        target = raw_target
    else:
        raise p.error("targetPort", f"must be a number or a name, not {type_name(raw_target)}",
                      "use a number or the name of a containerPort")
    node_port = p.int("nodePort", lo=1, hi=65535)
    if node_port is not None:
        if stype not in ("NodePort", "LoadBalancer"):
            raise p.error("nodePort", f"is set but the service type is {stype}", "use type: NodePort or drop nodePort")
        if not lo <= node_port <= hi:
            raise p.error("nodePort", f"{node_port} is outside the node port range {lo}-{hi}",
                          "pick a port in the range or leave nodePort out")
    p.skip("appProtocol")
    p.done()
    if count > 1 and pname is None:
        raise p.missing("name", "is required when a Service has more than one port", "name every port")
    if pname is not None and any(x.name == pname for x in ports):
        raise p.error("name", f"'{pname}' is used by two ports", "give each port its own name")
    if any(x.port == port and x.protocol == proto for x in ports):
        raise p.error("port", f"{port}/{proto} is listed twice", "list each port once")
    return ServicePortSpec(pname, port, proto, target, node_port)
