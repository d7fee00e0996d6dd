"""A realistic object set for the cluster DNS tests (the store's Kubernetes JSON shape)."""
from __future__ import annotations

from netlab.dns.zone import DnsSettings


def ns(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def svc(name, namespace="default", cluster_ip="10.96.0.20", ports=(), **spec):
    s = {"clusterIP": cluster_ip, "ports": [dict(p) for p in ports]}
    s.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": s}


def ep(ip, ready=True, hostname=None, pod=None):
    e = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    if pod:
        e["targetRef"] = {"kind": "Pod", "name": pod}
    return e


def eps(service, namespace, endpoints, ports=(), suffix="abcde"):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-{suffix}", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": [dict(p) for p in ports]}


def pod(name, namespace, ip, deleting=False):
    md = {"name": name, "namespace": namespace}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": {}, "status": {"podIP": ip}}


HTTP = {"name": "http", "port": 80, "protocol": "TCP"}
METRICS = {"name": "metrics", "port": 9090, "protocol": "TCP"}


def objects() -> dict[str, list[dict]]:
    return {
        "Namespace": [ns("default"), ns("kube-system"), ns("shop")],
        "Service": [
            svc("kubernetes", cluster_ip="10.96.0.1", ports=[{"name": "https", "port": 443, "protocol": "TCP"}]),
            svc("kube-dns", "kube-system", "10.96.0.10",
                ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
            # ClusterIP, a named and an unnamed port, one ready + one not-ready endpoint
            svc("web", cluster_ip="10.96.0.20", ports=[HTTP, {"port": 8443, "protocol": "TCP"}]),
            # headless with hostnames (a StatefulSet's governing Service)
            svc("db", cluster_ip="None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]),
            # headless without hostnames, publishNotReadyAddresses (the slice marks them ready)
            svc("peers", "shop", "None", ports=[METRICS], publishNotReadyAddresses=True),
            # headless, no ready endpoint: NXDOMAIN
            svc("empty", cluster_ip="None", ports=[HTTP]),
            svc("ext", type="ExternalName", externalName="www.example.org", cluster_ip=None),
            svc("alias", type="ExternalName", externalName="web.default.svc.cluster.local", cluster_ip=None),
            # a Service in a namespace that does not exist: not served
            svc("ghost", "nowhere", "10.96.0.99", ports=[HTTP]),
        ],
        "EndpointSlice": [
            eps("web", "default", [ep("10.244.1.5", pod="web-1"), ep("10.244.2.6", ready=False, pod="web-2")],
                ports=[HTTP, {"name": "", "port": 8443, "protocol": "TCP"}]),
            eps("db", "default", [ep("10.244.1.7", hostname="db-0", pod="db-0"),
                                  ep("10.244.2.8", hostname="db-1", pod="db-1"),
                                  ep("10.244.2.9", ready=False, hostname="db-2", pod="db-2")],
                ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]),
            eps("peers", "shop", [ep("10.244.1.11"), ep("10.244.2.12")], ports=[METRICS]),
            eps("empty", "default", [ep("10.244.1.13", ready=False)], ports=[HTTP]),
            eps("kube-dns", "kube-system", [ep("10.244.1.2"), ep("10.244.2.2")],
                ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
        ],
        "Pod": [pod("web-1", "default", "10.244.1.5"), pod("client", "shop", "10.244.2.20"),
                pod("gone", "default", "10.244.2.30", deleting=True)],
    }


SETTINGS = DnsSettings(domain="cluster.local", pods="insecure", ttl=30, upstreams=("192.0.2.53",),
                       dns_ip="10.96.0.10", reverse_cidrs=("10.96.0.0/12", "10.244.0.0/16"))
