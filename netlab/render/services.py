"""Service semantics that every kube-proxy mode shares, and the probe planner's expectations too. Pure.

kube-proxy decides the same things whatever its mode: which Services it handles at all (`is_proxied`),
what each Service port exposes (`PortInfo`: ClusterIP, NodePort, externalIPs, LB IP, affinity, the two
traffic policies), which endpoints a node may use (`categorize_endpoints`, proxy.CategorizeEndpoints),
where internal and external traffic goes on that node (`traffic_routes`), and the packet mark that asks
for masquerading (`MASQ_MARK`, masqueradeBit 14). The iptables, nftables and IPVS renderers build on
these, so that the modes differ only where kube-proxy's modes differ.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from ..model.objects import Endpoint, Node, Service, ServicePort

MASQ_MARK = "0x4000"                      # 1 << masqueradeBit (14), printed like kube-proxy's %#08x

# Labels that make kube-proxy ignore a Service (its informers select them out).
LABEL_SERVICE_PROXY_NAME = "service.kubernetes.io/service-proxy-name"
LABEL_HEADLESS = "service.kubernetes.io/headless"


def is_proxied(svc: Service) -> bool:
    """kube-proxy's view: no headless, no ExternalName, no Service handed to another proxy."""
    labels = svc.spec.labels or {}
    if LABEL_SERVICE_PROXY_NAME in labels or LABEL_HEADLESS in labels:
        return False
    if svc.type == "ExternalName" or svc.headless or svc.cluster_ip is None:
        return False
    return True


def service_port_name(svc: Service, port: ServicePort) -> str:
    """proxy.ServicePortName.String(): 'ns/name:port', or just 'ns/name' for an unnamed port."""
    return f"{svc.namespace}/{svc.name}" + (f":{port.name}" if port.name else "")


@dataclass
class PortInfo:
    """One Service port as kube-proxy sees it (its ServicePortInfo)."""
    svc: Service
    port: ServicePort
    name: str                       # service port name string
    proto: str                      # lowercase
    cluster_ip: str
    node_port: int | None
    external_ips: list[str]
    lb_vips: list[str]
    sticky_seconds: int | None      # sessionAffinity ClientIP timeout, None without affinity
    itp_local: bool
    etp_local: bool
    source_ranges: tuple[str, ...] = ()   # loadBalancerSourceRanges (CIDRs), for the LB IPs only
    health_check_node_port: int | None = None   # allocated; LoadBalancer + externalTrafficPolicy Local

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port) or bool(self.lb_vips) or bool(self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # Even with externalTrafficPolicy Local the cluster chain is needed for short-circuiting.
        return not self.itp_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.itp_local or (self.etp_local and self.externally_accessible)


def port_info(svc: Service, port: ServicePort) -> PortInfo:
    spec = svc.spec
    external = spec.type in ("NodePort", "LoadBalancer")
    lb_vips = lb_ingress_ips(spec)
    return PortInfo(
        svc=svc, port=port, name=service_port_name(svc, port), proto=port.protocol.lower(),
        cluster_ip=str(svc.cluster_ip),
        node_port=port.node_port if external else None,
        external_ips=list(spec.external_ips), lb_vips=lb_vips,
        sticky_seconds=spec.affinity_timeout if spec.session_affinity == "ClientIP" else None,
        itp_local=spec.internal_traffic_policy == "Local",
        # apiservice.ExternalPolicyLocal: only NodePort and LoadBalancer Services have one
        etp_local=external and spec.external_traffic_policy == "Local",
        source_ranges=tuple(spec.source_ranges),
        health_check_node_port=svc.health_check_node_port,
    )


def lb_ingress_ips(spec) -> list[str]:
    """The LoadBalancer ingress IPs of a Service spec, the ones kube-proxy programs: its
    status.loadBalancer.ingress (`spec.lb_ingress`), which the IPAM controller writes
    (netlab/controllers/lbipam.py), the entries with an IP and ipMode VIP (or none): kube-proxy leaves an
    `ipMode: Proxy` entry to the load balancer (proxyutil.IsVIPMode), no rule, no firewall.
    spec.loadBalancerIP is only a request to that controller."""
    return [ip for ip, mode in lb_status(spec) if mode == "VIP"]


def lb_status(spec) -> list[tuple[str, str]]:
    """Every (IP, ipMode) of a LoadBalancer Service's status.loadBalancer.ingress (what `get svc` shows
    as EXTERNAL-IP and what MetalLB announces, whatever the ipMode)."""
    if spec.type != "LoadBalancer":
        return []
    return [(e["ip"], e.get("ipMode") or "VIP") for e in spec.lb_ingress if e.get("ip")]


@lru_cache(maxsize=1 << 17)
def ip_port(ip: ipaddress.IPv4Address, port: int) -> str:
    return f"{ip}:{port}"


def ep_string(ep: Endpoint) -> str:
    """An endpoint as "ip:port", the key kube-proxy sorts and names endpoints by."""
    return ip_port(ep.ip, ep.port)


def categorize_endpoints(info: PortInfo, node: Node) -> tuple[list[Endpoint], list[Endpoint], list[Endpoint], bool]:
    """proxy.CategorizeEndpoints for `node`: (cluster, local, all locally reachable, has any endpoint).

    Usable endpoints are the ready ones; when there is none, the serving terminating ones (kube-proxy's
    fallback since ProxyTerminatingEndpoints), decided apart for the cluster list (none ready anywhere)
    and for the local list (none ready on this node). No topology hints. Lists sorted by "ip:port".
    Shared by every proxy mode's renderer so that all modes pick the same endpoints.
    """
    eps = sorted(info.svc.endpoints.get(info.port.name or "", []), key=ep_string)
    ready = [e for e in eps if e.ready]
    fallback = [e for e in eps if not e.ready and e.serving and e.terminating]
    cluster_eps: list[Endpoint] = []
    local_eps: list[Endpoint] = []
    has_any = False
    if info.uses_cluster_endpoints:
        cluster_eps = ready or fallback
        has_any = bool(cluster_eps)
    if not info.uses_local_endpoints:
        return cluster_eps, local_eps, cluster_eps, has_any
    has_any = has_any or bool(ready) or bool(fallback)
    local_ready = [e for e in ready if e.node == node.name]
    local_eps = local_ready or [e for e in fallback if e.node == node.name]
    if not info.uses_cluster_endpoints:
        return cluster_eps, local_eps, local_eps, has_any
    if local_ready or not local_eps:
        return cluster_eps, local_eps, cluster_eps, has_any   # the cluster list holds every local one
    # local terminating endpoints beside remote ready ones: the union
    merged = {ep_string(e): e for e in cluster_eps}
    merged.update((ep_string(e), e) for e in local_eps)
    return cluster_eps, local_eps, sorted(merged.values(), key=ep_string), has_any


@dataclass
class TrafficRoutes:
    """Where a service port's internal (ClusterIP) and external (NodePort, externalIP, LB) traffic goes
    on one node, as kube-proxy decides it for both its iptables and nftables modes."""
    internal_local: bool        # internal traffic goes to the Local-policy chain (internalTrafficPolicy)
    has_internal: bool          # ... and that chain has somewhere to send it
    external_local: bool        # external traffic goes to the Local-policy chain (externalTrafficPolicy)
    has_external: bool
    uses_external_chain: bool   # the external entry chain exists


def traffic_routes(info: PortInfo, local_eps: list[Endpoint], has_endpoints: bool) -> TrafficRoutes:
    return TrafficRoutes(
        internal_local=info.itp_local, has_internal=bool(local_eps) if info.itp_local else has_endpoints,
        external_local=info.etp_local, has_external=bool(local_eps) if info.etp_local else has_endpoints,
        uses_external_chain=has_endpoints and info.externally_accessible)
