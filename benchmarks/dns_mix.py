"""The DNS benchmark's cluster, its query mix and the answers expected, all pure (no root, no network).

    cluster_objects(namespaces, services_per_namespace) -> {"Namespace": [...], "Service": [...], ...}
    query_mix(objects, domain) -> [Query(name, qtype, kind)]     what dnsperf asks, each distinct query once
    Expected(zone).answer(name, qtype) -> (rcode, (rdata, ...)) the answer a correct server gives

The cluster (per namespace, `services_per_namespace` Services; the default 50 x 20 = 1,000 Services):
  - 16 in every 20 ClusterIP Services with 3 ready endpoints (pods), named port `http` (TCP 80), every
    other one also `grpc` (TCP 9090), every fifth also `dns` (UDP 53);
  - 3 in every 20 headless (clusterIP None) with 3 ready pods and one not ready (not published), named
    port `peer` (TCP 7000); two of the three govern StatefulSet-like pods (hostname + subdomain), whose
    names (`hl-016-0.hl-016.ns.svc.<domain>`) are records too;
  - 1 in every 20 ExternalName (-> a name outside the cluster);
  - `kubernetes` in default (.1) and `kube-dns` in kube-system (.10), as in every cluster.
The EndpointSlices come from netlab's own EndpointSlice controller (`desired_slices`), as in a live lab.

The query mix (see `query_mix`; each distinct query once, dnsperf cycles through them): A and AAAA
(NODATA: glibc asks both) of every ClusterIP Service, A of every headless Service and StatefulSet pod
name, SRV of every named port, PTR of every ClusterIP and of the headless Services' ready endpoints,
CNAME of the ExternalName Services, the `dns-version` TXT, and NXDOMAIN names (search-path misses as
ndots:5 makes them: `svc.ns.svc.<domain>.ns.svc.<domain>`, Services that do not exist, the PTR of an
unused ClusterIP). Left out, because the peer (dnsmasq, benchmarks/dns_peer.py) cannot serve them as
netlab does: `pods insecure` names (any a-b-c-d.ns.pod; dnsmasq has no such wildcard), A/AAAA of an
ExternalName (netlab chases the CNAME through its upstreams), names outside the cluster domain
(forwarding), the apex SOA/NS; and empty non-terminals (`ns.svc.<domain>`), which netlab answers NODATA
from rules rather than records (see netlab/dns/zone.py).

The expected answer is computed from the zone dict only (`Expected`): the rcode and the sorted
answer rdata in a canonical text form (`canonical`), compared with what each server answers.
"""
from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from netlab.controllers.endpointslice import desired_slices

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
NOERROR, NXDOMAIN = "NOERROR", "NXDOMAIN"


@dataclass(frozen=True)
class Query:
    name: str       # FQDN without the trailing dot, lower case
    qtype: str      # A, SRV, PTR, CNAME, TXT
    kind: str       # what it stands for in the mix (the summary counts them): clusterip-a, headless-a, ...
    rcode: str      # what the builder means it to be (the zone decides: `Expected`); checked by the unit test


# ---------------------------------------------------------------- the cluster

def _meta(name: str, ns: str | None = None, labels: dict | None = None) -> dict:
    md: dict = {"name": name, "uid": f"uid-{ns or ''}-{name}"}
    if ns is not None:
        md["namespace"] = ns
    if labels:
        md["labels"] = labels
    return md


def _pod(ns: str, name: str, app: str, ip: str, ports: list[dict], ready: bool = True,
         hostname: str | None = None, subdomain: str | None = None) -> dict:
    spec: dict = {"nodeName": "w1", "containers": [{"name": "c", "image": "nginx", "ports": ports}]}
    if hostname:
        spec["hostname"], spec["subdomain"] = hostname, subdomain
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, ns, {"app": app}), "spec": spec,
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _service(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, ns), "spec": spec}


def cluster_objects(namespaces: int = 50, services_per_namespace: int = 20) -> dict[str, list[dict]]:
    """The benchmark's cluster as the store holds it (see the module docstring); deterministic."""
    svc_ips = (SERVICE_CIDR.network_address + 11 + i for i in range(SERVICE_CIDR.num_addresses))  # .1, .10 reserved
    pod_ips = (POD_CIDR.network_address + 2 + i for i in range(POD_CIDR.num_addresses))
    out: dict[str, list[dict]] = {"Namespace": [], "Service": [], "EndpointSlice": [], "Pod": []}
    out["Service"].append(_service("default", "kubernetes", {
        "type": "ClusterIP", "clusterIP": str(SERVICE_CIDR.network_address + 1),
        "clusterIPs": [str(SERVICE_CIDR.network_address + 1)],
        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}))
    out["Service"].append(_service("kube-system", "kube-dns", {
        "type": "ClusterIP", "clusterIP": str(SERVICE_CIDR.network_address + 10),
        "clusterIPs": [str(SERVICE_CIDR.network_address + 10)], "selector": {"k8s-app": "kube-dns"},
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                  {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}))
    names = (["default", "kube-system"] + [f"team-{i:03d}" for i in range(namespaces)])[:max(namespaces, 2)]
    for ns in names:
        out["Namespace"].append({"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns)})
        for j in range(services_per_namespace):
            slot = j % 20                         # 16 ClusterIP, 3 headless, 1 ExternalName in every 20
            name, app = f"svc-{j:03d}", f"app-{ns}-{j}"
            if slot == 19:
                out["Service"].append(_service(ns, f"ext-{j:03d}", {
                    "type": "ExternalName", "externalName": f"db-{j}.{ns}.example.com"}))
                continue
            pods = []
            if slot >= 16:
                sts = slot % 2 == 0               # StatefulSet-like: hostname + subdomain = the Service
                name = f"hl-{j:03d}"
                ports = [{"name": "peer", "containerPort": 7000, "protocol": "TCP"}]
                for k in range(4):
                    pods.append(_pod(ns, f"{name}-{k}", app, str(next(pod_ips)), ports, ready=k < 3,
                                     hostname=f"{name}-{k}" if sts else None, subdomain=name if sts else None))
                spec = {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": app},
                        "ports": [{"name": "peer", "port": 7000, "protocol": "TCP", "targetPort": "peer"}]}
            else:
                ports = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
                sports = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]
                if j % 2 == 0:
                    ports.append({"name": "grpc", "containerPort": 9090, "protocol": "TCP"})
                    sports.append({"name": "grpc", "port": 9090, "protocol": "TCP", "targetPort": 9090})
                if j % 5 == 0:
                    ports.append({"name": "dns", "containerPort": 5353, "protocol": "UDP"})
                    sports.append({"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353})
                for k in range(3):
                    pods.append(_pod(ns, f"{name}-{k}", app, str(next(pod_ips)), ports))
                ip = str(next(svc_ips))
                spec = {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "selector": {"app": app},
                        "ports": sports}
            svc = _service(ns, name, spec)
            out["Service"].append(svc)
            out["Pod"] += pods
            out["EndpointSlice"] += desired_slices(svc, pods)
    return out


# ---------------------------------------------------------------- the query mix

def arpa(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def query_mix(objects: dict[str, list[dict]], domain: str = "cluster.local", seed: int = 13) -> list[Query]:
    """Every distinct query of the benchmark once, in a fixed shuffled order (dnsperf cycles through it).
    Built from the objects, not from the zone: the zone must agree (`Expected`, and the unit test)."""
    qs: list[Query] = []
    used_ips = set()
    slices: dict[tuple[str, str], list[dict]] = {}
    for s in objects["EndpointSlice"]:
        key = (s["metadata"]["namespace"], s["metadata"]["labels"]["kubernetes.io/service-name"])
        slices.setdefault(key, []).append(s)
    for svc in objects["Service"]:
        ns, name, spec = svc["metadata"]["namespace"], svc["metadata"]["name"], svc["spec"]
        fqdn = f"{name}.{ns}.svc.{domain}"
        if spec.get("type") == "ExternalName":
            qs.append(Query(fqdn, "CNAME", "externalname-cname", NOERROR))
            continue
        headless = spec.get("clusterIP") == "None"
        ready = [ep for s in slices.get((ns, name), []) for ep in s["endpoints"] if ep["conditions"]["ready"]]
        if headless:
            qs.append(Query(fqdn, "A", "headless-a", NOERROR if ready else NXDOMAIN))
            for ep in ready:
                if ep.get("hostname"):
                    qs.append(Query(f"{ep['hostname']}.{fqdn}", "A", "hostname-a", NOERROR))
                qs.append(Query(arpa(ep["addresses"][0]), "PTR", "endpoint-ptr", NOERROR))
        else:
            used_ips.add(spec["clusterIP"])
            qs.append(Query(fqdn, "A", "clusterip-a", NOERROR))
            qs.append(Query(fqdn, "AAAA", "clusterip-aaaa-nodata", NOERROR))   # glibc asks A and AAAA
            qs.append(Query(arpa(spec["clusterIP"]), "PTR", "clusterip-ptr", NOERROR))
            # what a pod in the Service's namespace asks first for an FQDN-less `name.ns.svc.<domain>` with
            # ndots:5 (the search path): it does not exist
            qs.append(Query(f"{fqdn}.{ns}.svc.{domain}", "A", "nxdomain-searchpath", NXDOMAIN))
        for p in spec.get("ports") or []:
            if p.get("name") and (ready or not headless):
                qs.append(Query(f"_{p['name']}._{p.get('protocol', 'TCP').lower()}.{fqdn}", "SRV", "srv", NOERROR))
    namespaces = [n["metadata"]["name"] for n in objects["Namespace"]]
    for i, ns in enumerate(namespaces):
        qs.append(Query(f"no-such-svc-{i}.{ns}.svc.{domain}", "A", "nxdomain-service", NXDOMAIN))
    free = next(SERVICE_CIDR.network_address + 2 + i for i in range(1000)
                if str(SERVICE_CIDR.network_address + 2 + i) not in used_ips and i != 8)
    qs.append(Query(arpa(str(free)), "PTR", "nxdomain-ptr", NXDOMAIN))
    qs.append(Query(f"dns-version.{domain}", "TXT", "txt", NOERROR))
    qs = sorted(set(qs), key=lambda q: (q.name, q.qtype))
    random.Random(seed).shuffle(qs)
    return qs


def cold_mix(queries: list[Query], n: int, seed: int = 13) -> list[Query]:
    """`n` queries drawn from the mix with every letter of the name in a random case (as resolvers that
    use DNS 0x20 send them): the same answers, but (nearly) every query's bytes differ, so a server's
    cache of finished replies keyed by the query's bytes misses. Names are case-insensitive; answers echo
    the case asked, and `canonical` / the rcode checks compare in lower case."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        q = queries[rnd.randrange(len(queries))]
        bits = rnd.getrandbits(len(q.name))
        name = "".join(c.upper() if bits >> i & 1 else c for i, c in enumerate(q.name))
        out.append(Query(name, q.qtype, q.kind, q.rcode))
    return out


def query_file(queries: list[Query]) -> str:
    """dnsperf's data file: `name type` a line."""
    return "".join(f"{q.name} {q.qtype}\n" for q in queries)


# ---------------------------------------------------------------- expected answers, from the zone

def canonical(qtype: str, rdata: str) -> str:
    """One rdata as the comparison text: lower case, names without the trailing dot, TXT unquoted."""
    text = " ".join(str(rdata).split())
    if qtype == "TXT":
        return text.strip('"')
    return text.lower().rstrip(".") if qtype in ("PTR", "CNAME") else \
        " ".join(w.lower().rstrip(".") for w in text.split())


class Expected:
    """The answers a correct server gives, from netlab's zone dict alone (netlab/dns/zone.py's format):
    `records` maps (name, qtype) to the canonical rdata; `names` holds every owner and its ancestors
    inside the domain (the empty non-terminals), whose other types are NODATA."""

    def __init__(self, zone: dict):
        self.domain = zone["domain"]
        self.records: dict[tuple[str, str], list[str]] = {}
        for owner, _ttl, rtype, rdata in zone["records"]:
            self.records.setdefault((owner.rstrip("."), rtype), []).append(canonical(rtype, rdata))
        self.names: set[str] = set()
        for name, _ in self.records:
            while name.endswith(self.domain) and name not in self.names:
                self.names.add(name)
                name = name.partition(".")[2]

    def answer(self, name: str, qtype: str) -> tuple[str, tuple[str, ...]]:
        """The rcode and the sorted answer rdata for `name qtype` (no CNAME chasing: the mix asks CNAME
        only as CNAME; no pod-name rules: the mix has no pod names). A name with no record of the type
        that exists (other records, or records below it) is NODATA (NOERROR, no answer); else NXDOMAIN."""
        name = name.lower().rstrip(".")
        if (name, qtype) in self.records:
            return NOERROR, tuple(sorted(self.records[(name, qtype)]))
        return (NOERROR if name in self.names else NXDOMAIN), ()
