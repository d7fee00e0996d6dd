"""The cluster DNS zone: the records CoreDNS's `kubernetes` plugin would answer, as a pure function of
the lab's objects (no root, no sockets; golden-tested).

`render_zone(objects, settings)` returns a JSON-able dict; `write_zone(path, zone)` publishes it
atomically. The server (netlab.dns.server) answers from it, and a peer DNS server's configuration
(the benchmark's dnsmasq) is rendered from the very same dict.

Zone format (version 1)::

    {
      "version": 1,
      "domain": "cluster.local",          # the cluster domain, lowercase, no trailing dot
      "ttl": 30,                          # TTL of every record except dns-version (and of SOA minimum)
      "pods": "insecure",                 # insecure | verified | disabled (see the pod rule below)
      "dns_ip": "10.96.0.10",
      "upstreams": ["192.0.2.53"],        # where names outside the domain go (none: SERVFAIL)
      "reverse": ["10.96.0.0/12", ...],   # a PTR inside these not found is NXDOMAIN; outside: forwarded
      "namespaces": ["default", ...],     # the existing namespaces (sorted)
      "records": [[owner, ttl, type, rdata], ...]
    }

`records` is the explicit record set, sorted by (owner, type, rdata): `owner` is a lowercase FQDN with
the trailing dot, `type` one of SOA NS A AAAA CNAME SRV PTR TXT, `rdata` the presentation text
(names absolute with the trailing dot; TXT quoted). It holds:

- the apex SOA (`ns.dns.<domain>. hostmaster.<domain>. SERIAL 7200 1800 86400 TTL`, SERIAL a CRC of
  the other records) and NS (`kube-dns.kube-system.svc.<domain>.` when that Service has a ClusterIP,
  as CoreDNS running as that Service's endpoint answers, else `ns.dns.<domain>.`), and
  `ns.dns.<domain>. A dns_ip`; `dns-version.<domain>. 28800 TXT "1.1.0"`;
- per Service (in an existing namespace) `<svc>.<ns>.svc.<domain>.`:
  ClusterIP: A (AAAA) ClusterIP(s) when it has ports, and SRV `0 W PORT <svc>.<ns>.svc.<domain>.` for
  every port; `_<port>._<proto>.<svc>...` (named ports) A + SRV for that port;
  headless: A for every ready endpoint address (none ready: no record, NXDOMAIN), SRV
  `0 W PORT <endpoint>.<svc>.<ns>.svc.<domain>.` per ready address and port, same for named ports;
  both: `<endpoint>.<svc>.<ns>.svc.<domain>.` A + SRV per ready address, where <endpoint> is the
  EndpointSlice endpoint's hostname, else the IP with dashes (CoreDNS serves these for ClusterIP
  Services too); ExternalName: CNAME to the external name (not for an IP-valued externalName);
- PTR `<ip reversed>.in-addr.arpa.` -> `<svc>.<ns>.svc.<domain>.` for ClusterIPs (one Service per IP)
  and, for other IPs, `<endpoint>.<svc>.<ns>.svc.<domain>.` for every ready endpoint address;
- pods `verified`: `<a-b-c-d>.<ns>.pod.<domain>. A a.b.c.d` for every pod with an IP that is not
  terminating.

Rules that are not a finite record list, applied by the server:

- pods `insecure`: `<x>.<ns>.pod.<domain>` for an `<ns>` in `namespaces` answers A a.b.c.d when `<x>`
  is an IPv4 address with dashes (AAAA for an IPv6 one, `-` for `:`), NODATA for other types, and
  NXDOMAIN when it is not an address; `disabled`: nothing under `<ns>.pod.<domain>` exists (CoreDNS:
  NXDOMAIN), `pod.<domain>` itself is still NODATA.
- Names that exist without records (NOERROR, empty answer, SOA in authority): every ancestor of an
  owner inside the domain (e.g. `svc.<domain>`), `<ns>.svc.<domain>` and (pods not disabled)
  `<ns>.pod.<domain>` for every namespace, and `pod.<domain>`.
- SRV answers carry, in the additional section, the target's A/AAAA records from this zone.
- ExternalName: the server chases the CNAME target, inside the domain from this zone, outside through
  the upstreams.

SRV weight is CoreDNS's: all priority 0, weight floor(100 / n) (at least 1) where n is the number of
(address, port) results the query matched, counting a slice without ports as one.
"""
from __future__ import annotations

import ipaddress
import json
import math
import os
import zlib
from dataclasses import dataclass

from . import DNS_NAMESPACE, DNS_SERVICE

VERSION = 1
DNS_VERSION = "1.1.0"          # CoreDNS's DNSSchemaVersion (the dns-version TXT)
DNS_VERSION_TTL = 28800
POD_MODES = ("insecure", "verified", "disabled")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class DnsSettings:
    domain: str = "cluster.local"
    pods: str = "insecure"               # insecure | verified | disabled  (CoreDNS kubernetes plugin `pods`)
    ttl: int = 30                        # kubeadm's Corefile sets ttl 30
    upstreams: tuple[str, ...] = ()      # IPv4 resolvers for names outside the domain (and PTR outside reverse_cidrs)
    dns_ip: str = "10.96.0.10"           # kube-dns ClusterIP (the NS record's address)
    reverse_cidrs: tuple[str, ...] = ()  # service + pod subnets: a PTR inside them that is not found is NXDOMAIN


def fqdn(name: str) -> str:
    """Lowercase, absolute (trailing dot)."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer + "."


def dashed(ip: str) -> str:
    """CoreDNS's endpoint name for an address without a hostname."""
    if "." in ip:
        return ip.replace(".", "-")
    out = ip.replace(":", "-")
    return out + "0" if out.endswith("-") else out


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _addr_type(ip: str) -> str:
    return "AAAA" if ":" in ip else "A"


def _ns(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


class _Ep:
    """One ready endpoint address with the ports of its slice: (name, protocol, port|-1)."""
    __slots__ = ("ip", "host", "ports")

    def __init__(self, ip: str, host: str, ports: list[tuple[str, str, int]]):
        self.ip, self.host, self.ports = ip, host, ports


def _endpoints(slices: list[dict]) -> dict[tuple[str, str], list[_Ep]]:
    """Ready addresses per (namespace, service), as CoreDNS reads EndpointSlices (ready unset = ready)."""
    out: dict[tuple[str, str], list[_Ep]] = {}
    for sl in sorted(slices, key=lambda s: (_ns(s), _name(s))):
        svc = ((sl.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc:
            continue
        ports = [((p.get("name") or ""), (p.get("protocol") or ""),
                  int(p["port"]) if p.get("port") is not None else -1) for p in sl.get("ports") or []]
        if not ports:
            ports = [("", "", -1)]   # CoreDNS's sentinel: A records yes, SRV no (but counted in weights)
        for ep in sl.get("endpoints") or []:
            ready = (ep.get("conditions") or {}).get("ready")
            if ready is not None and not ready:
                continue
            for ip in ep.get("addresses") or []:
                out.setdefault((_ns(sl), svc), []).append(_Ep(ip, ep.get("hostname") or dashed(ip), ports))
    return out


class _Records:
    def __init__(self, ttl: int):
        self.ttl = ttl
        self.rows: set[tuple[str, str, str, int]] = set()

    def add(self, owner: str, rtype: str, rdata: str, ttl: int | None = None) -> None:
        self.rows.add((owner, rtype, rdata, self.ttl if ttl is None else ttl))

    def results(self, owner: str, results: list[tuple[str, int, str]]) -> None:
        """A/AAAA and SRV at `owner` for CoreDNS's lookup results (address, port, SRV target)."""
        if not results:
            return
        weight = max(1, math.floor(100.0 / (100 * len(results)) * 100))
        for ip, port, target in results:
            self.add(owner, _addr_type(ip), ip)
            if port != -1:
                self.add(owner, "SRV", f"0 {weight} {port} {target}")


def _cluster_ips(spec: dict) -> list[str]:
    ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip and ip != "None"]
    return [ip for ip in ips if _is_ip(ip)]


def _headless(spec: dict) -> bool:
    return spec.get("clusterIP") == "None" or (spec.get("clusterIPs") or [None])[0] == "None"


def render_zone(objects: dict[str, list[dict]], settings: DnsSettings) -> dict:
    """The zone (format in the module docstring) for the store's objects; deterministic."""
    if settings.pods not in POD_MODES:
        raise ValueError(f"pods must be one of {', '.join(POD_MODES)}, not {settings.pods!r}")
    dom = fqdn(settings.domain)
    recs = _Records(settings.ttl)
    namespaces = sorted({_name(n) for n in objects.get("Namespace") or [] if _name(n)})
    nsset = set(namespaces)
    eps = _endpoints(objects.get("EndpointSlice") or [])

    svc_ptr: dict[str, str] = {}
    ns_target = f"ns.dns.{dom}"
    services = sorted(objects.get("Service") or [], key=lambda s: (_ns(s), _name(s)))
    for svc in services:
        ns, name = _ns(svc), _name(svc)
        if ns not in nsset or not name:
            continue
        spec = svc.get("spec") or {}
        base = f"{name}.{ns}.svc.{dom}".lower()
        if spec.get("type") == "ExternalName":
            target = (spec.get("externalName") or "").strip()
            if target and not _is_ip(target.rstrip(".")) and fqdn(target) != base:
                recs.add(base, "CNAME", fqdn(target))
            continue
        mine = eps.get((ns, name), [])
        # endpoint names, for ClusterIP and headless Services alike
        by_host: dict[str, list[tuple[str, int, str]]] = {}
        for ep in mine:
            owner = f"{ep.host}.{base}".lower()
            by_host.setdefault(owner, []).extend((ep.ip, p[2], owner) for p in ep.ports)
        for owner, res in by_host.items():
            recs.results(owner, res)
        if _headless(spec):
            everything = [(ep.ip, p, f"{ep.host}.{base}".lower()) for ep in mine for p in ep.ports]
            recs.results(base, [(ip, p[2], t) for ip, p, t in everything])
            named = sorted({(p[0].lower(), p[1].lower()) for _, p, _ in everything if p[0] and p[1]})
            for pname, proto in named:
                recs.results(f"_{pname}._{proto}.{base}",
                             [(ip, p[2], t) for ip, p, t in everything
                              if p[0].lower() == pname and p[1].lower() == proto])
            continue
        cips = _cluster_ips(spec)
        ports = [((p.get("name") or "").lower(), (p.get("protocol") or "TCP").lower(), int(p.get("port") or 0))
                 for p in spec.get("ports") or []]
        recs.results(base, [(ip, p[2], base) for p in ports for ip in cips])
        for pname, proto in sorted({(p[0], p[1]) for p in ports if p[0]}):
            recs.results(f"_{pname}._{proto}.{base}",
                         [(ip, p[2], base) for p in ports if p[0] == pname and p[1] == proto for ip in cips])
        for ip in cips:
            svc_ptr.setdefault(ip, base)
        if ns == DNS_NAMESPACE and name == DNS_SERVICE and cips:
            ns_target = base

    for ip, target in svc_ptr.items():
        recs.add(reverse_name(ip), "PTR", target)
    for (ns, name), mine in eps.items():
        for ep in mine:
            if ep.ip not in svc_ptr:
                recs.add(reverse_name(ep.ip), "PTR", f"{ep.host}.{name}.{ns}.svc.{dom}".lower())

    if settings.pods == "verified":
        for pod in objects.get("Pod") or []:
            md, st = pod.get("metadata") or {}, pod.get("status") or {}
            ip = st.get("podIP")
            if not ip or md.get("deletionTimestamp") or _ns(pod) not in nsset or not _is_ip(ip):
                continue
            recs.add(f"{dashed(ip)}.{_ns(pod)}.pod.{dom}", _addr_type(ip), ip)

    recs.add(f"ns.dns.{dom}", "A", settings.dns_ip)
    recs.add(dom, "NS", ns_target)
    recs.add(f"dns-version.{dom}", "TXT", f'"{DNS_VERSION}"', DNS_VERSION_TTL)
    rows = sorted(recs.rows)
    serial = zlib.crc32(json.dumps(rows).encode()) or 1
    rows.append((dom, "SOA", f"ns.dns.{dom} hostmaster.{dom} {serial} 7200 1800 86400 {settings.ttl}",
                 min(settings.ttl, 300)))
    rows.sort()
    return {
        "version": VERSION,
        "domain": dom.rstrip("."),
        "ttl": settings.ttl,
        "pods": settings.pods,
        "dns_ip": settings.dns_ip,
        "upstreams": list(settings.upstreams),
        "reverse": [str(ipaddress.ip_network(c, strict=False)) for c in settings.reverse_cidrs],
        "namespaces": namespaces,
        "records": [[o, ttl, t, r] for o, t, r, ttl in rows],
    }


def dumps(zone: dict) -> str:
    return json.dumps(zone, indent=1, sort_keys=True) + "\n"


def write_zone(path: str, zone: dict) -> bool:
    """Publish `zone` at `path` atomically (temporary file + rename); True if the content changed."""
    from ..dataplane.state import publish_private   # the lab's one atomic 0600 replace, if changed
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return publish_private(path, dumps(zone))   # root's (the server reads it as root, through its pods' mount)
