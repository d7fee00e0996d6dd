"""The cluster DNS add-on and the `kubernetes` Service, as kubeadm makes them: pure functions of the
lab's networking (no root, no kernel).

- kube-system Deployment `coredns` (label k8s-app=kube-dns; `dns.replicas` pods, 2 by default; none
  when 0): one container `coredns` of the well-known image `netlab.dev/cluster-dns`, which netlab runs as
  `python -m netlab.dns.server` (netlab/workload/images.py), readiness /ready on 8181, liveness /health
  on 8080, dnsPolicy Default (the DNS server itself resolves through the node's resolver, as CoreDNS).
  The zone it serves reaches it as kubeadm's Corefile does (a ConfigMap mounted at /etc/coredns): a
  read-only hostPath volume of the lab's DNS directory (`<lab dir>/dns`, where the control loop writes
  `zone.json`) mounted at /etc/coredns. A mounted directory, not the file: the writer's rename of a
  new zone into place is seen in the container (a bind-mounted file would keep the old inode).
- kube-system Service `kube-dns` at the service subnet's tenth address (dns 53/UDP, dns-tcp 53/TCP,
  metrics 9153/TCP; nothing serves metrics: a connection there is refused).
- default Service `kubernetes` at the first address (https 443 -> 6443/TCP), without a selector, and
  its EndpointSlice: the control-plane nodes' addresses, port 6443, as a cluster's API server publishes
  it. netlab has no API server: nothing listens there (a connection is refused).

`objects(...)` leaves out every object the user wrote with the same kind, namespace and name: theirs
wins (e.g. a kube-dns Service with other ports).
"""
from __future__ import annotations

import ipaddress

from . import DNS_LABEL, DNS_NAMESPACE, DNS_SERVICE, cluster_dns_ip, kubernetes_ip

IMAGE = "netlab.dev/cluster-dns:1.0"
DEPLOYMENT = "coredns"
ZONE_DIR = "/etc/coredns"          # where the zone's directory is mounted in the container
ZONE_FILE = "zone.json"
API_PORT = 6443                    # the API server's secure port (kubeadm's default)
SLICE_NAME = "kubernetes"
SERVICES = ("default/kubernetes", f"{DNS_NAMESPACE}/{DNS_SERVICE}")   # the add-on Services' keys


def dns_deployment(replicas: int, dns_dir: str) -> dict:
    """kube-system/coredns: the cluster DNS server's pods (see the module's docstring)."""
    container = {
        "name": "coredns", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["--zone", f"{ZONE_DIR}/{ZONE_FILE}", "--port", "53", "--health-port", "8080",
                 "--ready-port", "8181"],
        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
        # (no `metrics` 9153 containerPort as kubeadm's: nothing serves metrics, and a declared port
        # that nothing listens on keeps a netlab pod unready)
        # readiness looked at every 2 s (kubeadm's: the default 10 s), so a lab's DNS serves within seconds
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"},
                           "periodSeconds": 2, "timeoutSeconds": 2, "successThreshold": 1, "failureThreshold": 3},
        # kubeadm's liveness probe, as it writes it
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                          "initialDelaySeconds": 60, "periodSeconds": 10, "timeoutSeconds": 5,
                          "successThreshold": 1, "failureThreshold": 5},
        "volumeMounts": [{"name": "config-volume", "mountPath": ZONE_DIR, "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": DNS_NAMESPACE, "labels": dict(DNS_LABEL)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(DNS_LABEL)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": dict(DNS_LABEL)},
                "spec": {
                    "dnsPolicy": "Default",
                    "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                    "containers": [container],
                    "volumes": [{"name": "config-volume",
                                 "hostPath": {"path": dns_dir, "type": "DirectoryOrCreate"}}],
                },
            },
        },
    }


def dns_service(service_subnet: ipaddress.IPv4Network) -> dict:
    """kube-system/kube-dns at the subnet's tenth address."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": DNS_SERVICE, "namespace": DNS_NAMESPACE,
                     "labels": dict(DNS_LABEL, **{"kubernetes.io/name": "CoreDNS"})},
        "spec": {"clusterIP": str(cluster_dns_ip(service_subnet)), "selector": dict(DNS_LABEL),
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]},
    }


def kubernetes_service(service_subnet: ipaddress.IPv4Network) -> dict:
    """default/kubernetes at the subnet's first address; no selector (its endpoints: kubernetes_slice)."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": str(kubernetes_ip(service_subnet)),
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": API_PORT}]},
    }


def kubernetes_slice(control_plane_ips: list[str]) -> dict:
    """The kubernetes Service's EndpointSlice: the control-plane nodes' addresses, port 6443."""
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": SLICE_NAME, "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in control_plane_ips],
        "ports": [{"name": "https", "port": API_PORT, "protocol": "TCP"}],
    }


def _key(obj: dict) -> tuple:
    md = obj.get("metadata") or {}
    return obj.get("kind"), md.get("namespace", "default") if obj.get("kind") != "Namespace" else None, md.get("name")


def objects(service_subnet: ipaddress.IPv4Network, replicas: int, dns_dir: str,
            control_plane_ips: list[str] | None = None, user: list[dict] = ()) -> list[dict]:
    """The add-on objects `up` writes with the scenario's: the kubernetes Service (and its EndpointSlice
    when the control-plane addresses are known), kube-dns, and the coredns Deployment (when `replicas`);
    without those of the same kind/namespace/name in `user` (the user's own win)."""
    out = [kubernetes_service(service_subnet)]
    if control_plane_ips:
        out.append(kubernetes_slice(list(control_plane_ips)))
    out.append(dns_service(service_subnet))
    if replicas > 0:
        out.append(dns_deployment(replicas, dns_dir))
    mine = {_key(o) for o in user}
    return [o for o in out if _key(o) not in mine]


def is_addon_pod(pod) -> bool:
    """A pod of the coredns add-on (model.objects.Pod)."""
    return pod.namespace == DNS_NAMESPACE and pod.owner == f"Deployment/{DEPLOYMENT}"


def own_counts(cluster) -> tuple[int, int, int, int]:
    """(the scenario's pods, its Services, the add-ons' pods, their Services) of a model: what `up` and
    `validate` count (add-on pods: the cluster DNS's and MetalLB's speakers, netlab/lb/addon.py)."""
    from ..lb.addon import is_speaker_pod
    pods = sum(1 for p in cluster.pods if not is_addon_pod(p) and not is_speaker_pod(p))
    svcs = sum(1 for s in cluster.services if s.key not in SERVICES)
    return pods, svcs, len(cluster.pods) - pods, len(cluster.services) - svcs


def reserved_owner(service_subnet: ipaddress.IPv4Network) -> dict[ipaddress.IPv4Address, tuple[str, str]]:
    """The reserved ClusterIPs and the one Service each belongs to: .1 default/kubernetes, .10
    kube-system/kube-dns (the model's allocator gives them to no other Service)."""
    return {kubernetes_ip(service_subnet): ("default/kubernetes", "the kubernetes Service"),
            cluster_dns_ip(service_subnet): (f"{DNS_NAMESPACE}/{DNS_SERVICE}", "cluster DNS (kube-system/kube-dns)")}
