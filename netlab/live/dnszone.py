"""The cluster DNS's zone, published by the control loop: `<lab dir>/dns/zone.json`, what the coredns
pods serve (netlab/dns/server.py reloads it within a second of a change).

Every pass of a lab (`up`'s and the control loop's, netlab/live/sync.py) calls `ZonePublisher.publish`:
when Namespaces, Services, EndpointSlices or Pods changed in the store since the zone was last
rendered, the zone is rendered again (netlab/dns/zone.py `render_zone`, pure) and written only if
its content changed (`write_zone`: tmp + rename). `up` writes it in its first pass, before the DNS
pods start.

The upstream resolvers (names outside the cluster domain) are the Cluster document's
`dns.upstreamNameservers`, or else the host's: the nameservers of /etc/resolv.conf, read when the
publisher is made (when `up` builds the lab, when a control loop starts), a loopback one (systemd-
resolved's 127.0.0.53 stub, a local dnsmasq) replaced by those /run/systemd/resolve/resolv.conf
lists (the stub's own upstreams), or dropped: a pod cannot reach the host's loopback.
"""
from __future__ import annotations

import ipaddress
import os

from ..dataplane.state import private_dir
from ..dns import cluster_dns_ip
from ..dns.zone import DnsSettings, render_zone, write_zone

ZONE_KINDS = ("Namespace", "Service", "EndpointSlice", "Pod")
HOST_RESOLV = "/etc/resolv.conf"
SYSTEMD_RESOLV = "/run/systemd/resolve/resolv.conf"
MAX_UPSTREAMS = 3


def nameservers(text: str) -> list[str]:
    """The IPv4 `nameserver` lines of a resolv.conf text, in order."""
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                ip = ipaddress.IPv4Address(parts[1])
            except ValueError:
                continue   # IPv6 (the lab is IPv4) or garbage
            out.append(str(ip))
    return out


def host_upstreams(resolv_text: str, systemd_text: str | None = None) -> tuple[str, ...]:
    """The host's resolvers as pods can use them (pure): loopback ones replaced by systemd-resolved's
    upstream list (`systemd_text`, when there is one) or dropped; at most 3, no repeats."""
    out: list[str] = []
    for ip in nameservers(resolv_text):
        found = [x for x in nameservers(systemd_text or "") if not ipaddress.IPv4Address(x).is_loopback] \
            if ipaddress.IPv4Address(ip).is_loopback else [ip]
        out += [x for x in found if x not in out]
    return tuple(out[:MAX_UPSTREAMS])


def read_host_upstreams() -> tuple[str, ...]:
    def read(path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read(65536)
        except OSError:
            return None
    return host_upstreams(read(HOST_RESOLV) or "", read(SYSTEMD_RESOLV))


def settings(networking, upstreams: tuple[str, ...]) -> DnsSettings:
    """The zone's settings of a lab's networking (spec.types.Networking) (pure)."""
    dns = networking.dns
    return DnsSettings(domain=networking.dns_domain, pods=dns.pods, ttl=dns.ttl,
                       upstreams=tuple(dns.upstreams) if dns.upstreams is not None else tuple(upstreams),
                       dns_ip=str(cluster_dns_ip(networking.service_subnet)),
                       reverse_cidrs=(str(networking.service_subnet), str(networking.pod_subnet)))


def zone_objects(objs: dict[str, list[dict]], cluster_ips: dict[str, str]) -> dict[str, list[dict]]:
    """The store's objects as the zone reads them (pure): with the namespaces every cluster has (a lab's
    store holds no Namespace object for default, kube-system...: they exist all the same), and each
    Service's ClusterIP as the model allocated it (`cluster_ips`, "ns/name" -> IP: the store's Service
    holds only what was written; `get svc` shows the model's address too)."""
    from .objects import BUILTIN_NAMESPACES
    have = {n["metadata"]["name"] for n in objs.get("Namespace") or []}
    builtin = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}, "status": {"phase": "Active"}}
               for n in BUILTIN_NAMESPACES if n not in have]
    out = {k: list(objs.get(k) or []) for k in ZONE_KINDS}
    out["Namespace"] = builtin + out["Namespace"]
    services = []
    for svc in out["Service"]:
        md, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip = cluster_ips.get(f"{md.get('namespace', 'default')}/{md.get('name')}")
        if ip and spec.get("clusterIP") in (None, ""):
            svc = dict(svc, spec=dict(spec, clusterIP=ip, clusterIPs=[ip]))
        services.append(svc)
    out["Service"] = services
    return out


def zone_path(lab: str) -> str:
    from ..dataplane import layout
    return os.path.join(layout.dns_dir(lab), "zone.json")


class ZonePublisher:
    """Renders and writes one lab's zone when what it is made of changed (see the module's docstring)."""

    def __init__(self, lab: str, host_upstreams_: tuple[str, ...] | None = None):
        self.lab = lab
        self.upstreams = read_host_upstreams() if host_upstreams_ is None else host_upstreams_
        self.seen: tuple | None = None
        self.path = zone_path(lab)

    def publish(self, store, cluster) -> bool:
        """Render and write the zone if the store's objects (or the settings, or the model's ClusterIPs)
        moved; True if written. `cluster`: the pass's model (model.objects.Cluster)."""
        want = settings(cluster.networking, self.upstreams)
        ips = {s.key: str(s.cluster_ip) for s in cluster.services if s.cluster_ip is not None}
        revs = (store.kind_revisions(ZONE_KINDS), want, tuple(sorted(ips.items())))
        if revs == self.seen and os.path.exists(self.path):
            return False
        objs, _ = store.snapshot(ZONE_KINDS)   # shared, read only
        zone = render_zone(zone_objects(objs, ips), want)
        private_dir(os.path.dirname(self.path))   # the lab's state: root's only
        changed = write_zone(self.path, zone)
        self.seen = revs
        return changed
