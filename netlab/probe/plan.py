"""What to probe and what to expect: pure functions of the cluster model (no root, no kernel).

A `Check` is one question ("can pod/client reach svc/web:80?") answered by one or more probes, with
the outcome the model predicts (kube-proxy's semantics: no endpoints -> refused; a Local traffic
policy with no endpoint on that node -> dropped, so timeout; NetworkPolicy, see policy.py: denied, or
reachable-or-denied when only some of a Service's endpoints are allowed) and, for Services, the pods
that may answer.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ..errors import NotFound, SpecError
from ..model.objects import Cluster, Node, Pod, Service, ServicePort
from ..render.services import is_proxied, lb_ingress_ips
from . import policy as netpol
from .engine import ProbeSpec

DEFAULT_TIMEOUT = 1.0


@dataclass(frozen=True)
class Source:
    kind: str          # pod | node | external
    name: str          # "ns/pod", node name, or "external"
    netns: str
    node: str | None = None
    ip: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "pod":
            ns, _, pod = self.name.partition("/")
            return f"pod/{pod}" if ns == "default" else f"pod/{self.name}"
        return self.name if self.kind == "external" else f"node/{self.name}"


@dataclass
class Check:
    group: str
    source: Source
    target: str
    probes: list[ProbeSpec]
    expect: str                       # reachable | refused | denied | timeout | unreachable |
                                      # unreachable-or-timeout | reachable-or-denied
    backends: set[str] | None = None  # pods allowed to answer (None: no app-level answer expected)
    need_all_backends: bool = False   # every backend must answer at least once
    expect_source_ip: str | None = None
    min_backends: int = 0             # at least this many distinct pods must answer
    denied_by: list = field(default_factory=list)   # policy.Denial: what the policies deny on its paths


# ------------------------------------------------------------------ resolving names

def _pod_label(p: Pod) -> str:
    return f"pod/{p.name}" if p.namespace == "default" else f"pod/{p.namespace}/{p.name}"


def pod_source(p: Pod) -> Source:
    return Source("pod", p.key, p.netns, p.node, str(p.ip))


def node_source(n: Node) -> Source:
    return Source("node", n.name, n.netns, n.name, str(n.ip))


def find_pods(cluster: Cluster, ref: str) -> list[Pod]:
    """`NAME`, `NS/NAME`, or a Deployment's name (`web` -> every pod of Deployment web)."""
    ns, _, name = ref.rpartition("/")
    ns = ns or "default"
    exact = cluster.pod(ns, name)
    if exact is not None:
        return [exact]
    owned = [p for p in cluster.pods if p.namespace == ns and p.owner == f"Deployment/{name}"]
    if owned:
        return owned
    raise NotFound(f"no pod or Deployment '{ref}' in namespace {ns} "
                   f"(pods: {', '.join(p.name for p in cluster.pods if p.namespace == ns) or 'none'})")


def find_service(cluster: Cluster, ref: str) -> tuple[Service, list[ServicePort]]:
    name, _, port = ref.partition(":")
    ns, _, name = name.rpartition("/")
    ns = ns or "default"
    svc = next((s for s in cluster.services if s.namespace == ns and s.name == name), None)
    if svc is None:
        raise NotFound(f"no Service '{name}' in namespace {ns} "
                       f"(services: {', '.join(s.name for s in cluster.services if s.namespace == ns) or 'none'})")
    ports = svc.ports
    if port:
        ports = [p for p in svc.ports if str(p.port) == port or p.name == port]
        if not ports:
            raise NotFound(f"Service {svc.key} has no port '{port}' "
                           f"(ports: {', '.join(p.name or str(p.port) for p in svc.ports)})")
    return svc, ports


def resolve_sources(cluster: Cluster, text: str) -> list[Source]:
    kind, _, rest = text.partition("/")
    if text == "external":
        return [Source("external", "external", cluster.external_netns, None, str(cluster.external_ip))]
    if kind == "node" and rest:
        try:
            return [node_source(cluster.node(rest))]
        except KeyError:
            raise NotFound(f"no node '{rest}' (nodes: {', '.join(n.name for n in cluster.nodes)})") from None
    if kind == "pod" and rest:
        return [pod_source(p) for p in find_pods(cluster, rest)]
    raise SpecError("source", f"'{text}' is not a probe source", "use pod/NAME, pod/NS/NAME, node/NAME or external")


# ------------------------------------------------------------------ per-target probes

def _builtin_serves(pods: list[Pod], port: int, proto: str) -> bool:
    return bool(pods) and all((port, proto) in p.netexec_ports for p in pods)


def _app_probe(src: Source, dst: str, port: int, proto: str, app: bool, label: str,
               timeout: float = DEFAULT_TIMEOUT) -> ProbeSpec:
    if proto == "UDP":
        return ProbeSpec(src.netns, "udp-app" if app else "udp", dst, port, timeout, label=label)
    return ProbeSpec(src.netns, "http" if app else "tcp", dst, port, timeout, label=label)


def _direct(check: Check, denials: list | None) -> Check:
    """A probe straight to an address, expected denied when the policies deny it."""
    if denials:
        check.expect, check.backends, check.expect_source_ip, check.denied_by = "denied", None, None, denials
    return check


def pod_checks(cluster: Cluster, src: Source, pod: Pod, group: str) -> list[Check]:
    """ICMP to the pod, and every port its built-in server serves (the answer names the pod)."""
    checks = [_direct(Check(group, src, _pod_label(pod), [ProbeSpec(src.netns, "icmp", str(pod.ip), None,
                                                                    DEFAULT_TIMEOUT, label="icmp")], "reachable"),
                      netpol.direct(cluster, src, pod.ip, None, "ICMP"))]
    for port, proto in pod.netexec_ports:
        # across pods the source address is kept (no NAT between pods); from a node it is the node's
        # address on the path, which the model does not pin down
        keep = src.ip if src.kind == "pod" else None
        checks.append(_direct(Check(group, src, f"{_pod_label(pod)}:{port}/{proto.lower()}",
                                    [_app_probe(src, str(pod.ip), port, proto, True, f"{proto.lower()}/{port}")],
                                    "reachable", {pod.name}, False, keep),
                              netpol.direct(cluster, src, pod.ip, port, proto)))
    return checks


def node_checks(src: Source, node: Node, group: str, cluster: Cluster | None = None) -> list[Check]:
    check = Check(group, src, f"node/{node.name}", [ProbeSpec(src.netns, "icmp", str(node.ip), None,
                                                              DEFAULT_TIMEOUT, label="icmp")], "reachable")
    return [_direct(check, netpol.direct(cluster, src, node.ip, None, "ICMP") if cluster is not None else None)]


def _service_expectation(svc: Service, port: ServicePort, node: str | None, external: bool,
                         policies: bool = True) -> tuple[str, set[str]]:
    """(outcome, pods that may answer) for traffic to a Service port entering at `node`. `policies`: the
    proxy mode honours the traffic policies (kube-proxy's userspace mode never did)."""
    every = svc.endpoints.get(port.name or "", [])
    # the ready endpoints, else the serving terminating ones (kube-proxy's fallback)
    eps = [e for e in every if e.ready] or [e for e in every if e.serving and e.terminating]
    if not eps:
        return "refused", set()
    local_only = (svc.spec.external_traffic_policy == "Local" and svc.type in ("NodePort", "LoadBalancer")) \
        if external else svc.spec.internal_traffic_policy == "Local"
    if local_only and policies:
        eps = [e for e in every if e.ready and e.node == node] or [
            e for e in every if e.serving and e.terminating and e.node == node]
        if not eps:
            return "timeout", set()
    return "reachable", {e.pod for e in eps}


def _endpoints_answer(cluster: Cluster, svc: Service, port: ServicePort, memo: dict | None) -> bool:
    """Whether every pod behind the Service port's endpoints (of those its selector picks) serves the target
    port as the built-in server does, so that an answer names its pod. The same for every source: `memo`
    keeps it for a plan's other sources (the default matrix asks once per pod and Service)."""
    key = (svc.key, port.name, port.protocol)
    if memo is not None and key in memo:
        return memo[key]
    eps = svc.endpoints.get(port.name or "", [])
    answer = False
    if eps:
        names = {e.pod for e in eps}
        selector = svc.spec.selector
        behind = [p for p in cluster.pods if p.namespace == svc.namespace and p.name in names and selector
                  and all(p.labels.get(k) == v for k, v in selector.items())]
        answer = _builtin_serves(behind, eps[0].port, port.protocol)
    if memo is not None:
        memo[key] = answer
    return answer


def service_checks(cluster: Cluster, src: Source, svc: Service, ports: list[ServicePort], group: str,
                   count: int = 1, via: str = "cluster-ip", nodes: list[Node] | None = None,
                   need_all: bool = False, memo: dict | None = None) -> list[Check]:
    """Checks for a Service: via its ClusterIP, its NodePort on `nodes`, or its external/LB IPs. `memo`: what
    does not depend on the source, kept across the calls of one plan (`_endpoints_answer`)."""
    if not is_proxied(svc):
        return []
    checks = []
    for port in ports:
        if port.protocol == "SCTP":
            continue
        eps = svc.endpoints.get(port.name or "", [])
        target_port = eps[0].port if eps else None
        app = _endpoints_answer(cluster, svc, port, memo)
        pname = port.name or str(port.port)
        entries: list[tuple[str, int, str | None, bool, str]] = []
        # the policy model's view of each entry (policy.py): which nodes may make the DNAT, and whether
        # kube-proxy masquerades (a ClusterIP: what does not come from a pod; the others: eTP Cluster)
        etp_masq = svc.spec.external_traffic_policy != "Local"
        policies = cluster.networking.proxy_mode != "userspace"   # userspace mode: every endpoint, always
        masq = src.kind != "pod" if via == "cluster-ip" else etp_masq
        if via == "cluster-ip":
            entries.append((str(svc.cluster_ip), port.port, src.node, src.kind == "external",
                            f"svc/{_svc_ref(svc)}:{pname}"))
        elif via == "nodeport" and port.node_port:
            for n in nodes or cluster.nodes:
                entries.append((str(n.ip), port.node_port, n.name, True, f"nodeport/{_svc_ref(svc)}:{pname}@{n.name}"))
        elif via == "lb":   # the LoadBalancer IPs (status.loadBalancer.ingress), reached through the underlay
            for ip in lb_ingress_ips(svc.spec):
                entries.append((ip, port.port, None, True, f"lb/{_svc_ref(svc)}:{pname}@{ip}"))
        elif via == "external-ip":
            ips = list(svc.spec.external_ips)
            ips[:0] = lb_ingress_ips(svc.spec)
            for ip in ips:
                # traffic to an external IP is handled on the node it enters; from outside we send it to
                # the first node (the underlay has no route for it otherwise)
                entries.append((ip, port.port, src.node or cluster.nodes[0].name, True,
                                f"extip/{_svc_ref(svc)}:{pname}@{ip}"))
        for dst, dport, node, external, label in entries:
            expect, backends = _service_expectation(svc, port, node, external, policies) if via != "lb" else \
                _lb_expectation(svc, port)
            denials = []
            if expect == "reachable":
                # a LoadBalancer IP from outside: any node may announce it; from a pod, its own node takes it
                entry_nodes = [node] if via != "lb" else [src.node] if src.kind != "external" else \
                    [n.name for n in cluster.nodes]
                expect, backends, denials = netpol.service_expectation(cluster, src, svc, port, backends,
                                                                       entry_nodes, dst, masq)
            working = expect in ("reachable", netpol.MIXED)
            n = count if working else 1
            # a refused/dropped/denied connection is shown by a SYN probe; a working one by the app exchange
            probes = [_app_probe(src, dst, dport, port.protocol, app and working, label)
                      for _ in range(n)]
            checks.append(Check(group, src, label, probes, expect, backends if app else None,
                                need_all and app and working, denied_by=denials))
    return checks


def _lb_expectation(svc: Service, port: ServicePort) -> tuple[str, set[str]]:
    """From outside to a LoadBalancer IP: the node that announces it takes the traffic (MetalLB announces
    a Service with externalTrafficPolicy Local only from nodes with a ready local endpoint), so any ready
    endpoint (else a serving terminating one) may answer."""
    every = svc.endpoints.get(port.name or "", [])
    eps = [e for e in every if e.ready] or [e for e in every if e.serving and e.terminating]
    return ("reachable", {e.pod for e in eps}) if eps else ("refused", set())


def _svc_ref(svc: Service) -> str:
    return svc.name if svc.namespace == "default" else f"{svc.namespace}/{svc.name}"


# ------------------------------------------------------------------ parsing a target

def target_checks(cluster: Cluster, src: Source, target: str, count: int = 1, expect: str | None = None,
                  need_all: bool = False, group: str = "probe") -> list[Check]:
    kind, _, rest = target.partition("/")
    if kind == "pod" and rest:
        pods = find_pods(cluster, rest)
        checks = [c for p in pods if pod_source(p) != src for c in pod_checks(cluster, src, p, group)]
    elif kind == "node" and rest:
        try:
            checks = node_checks(src, cluster.node(rest), group, cluster)
        except KeyError:
            raise NotFound(f"no node '{rest}' (nodes: {', '.join(n.name for n in cluster.nodes)})") from None
    elif kind == "svc" and rest:
        svc, ports = find_service(cluster, rest)
        if svc.cluster_ip is None or not is_proxied(svc):
            raise NotFound(f"Service {svc.key} has no ClusterIP that kube-proxy serves (headless, ExternalName "
                           "or handled by another proxy)")
        checks = service_checks(cluster, src, svc, ports, group, count, "cluster-ip", need_all=need_all)
    elif kind == "nodeport" and rest:
        ref, _, node = rest.partition("@")
        svc, ports = find_service(cluster, ref)
        ports = [p for p in ports if p.node_port]
        if not ports:
            raise NotFound(f"Service {svc.key} has no NodePort")
        nodes = cluster.nodes
        if node:
            try:
                nodes = [cluster.node(node)]
            except KeyError:
                raise NotFound(f"no node '{node}'") from None
        checks = service_checks(cluster, src, svc, ports, group, count, "nodeport", nodes, need_all=need_all)
    elif kind == "lb" and rest:
        svc, ports = find_service(cluster, rest)
        if svc.type != "LoadBalancer":
            raise NotFound(f"Service {svc.key} is of type {svc.type}, not LoadBalancer")
        if not lb_ingress_ips(svc.spec):
            raise NotFound(f"Service {svc.key} has no LoadBalancer IP yet (EXTERNAL-IP <pending>; `netlab describe "
                           f"svc {svc.name} -n {svc.namespace}` says why)")
        checks = service_checks(cluster, src, svc, ports, group, count, "lb", need_all=need_all)
    elif kind == "ingress" and rest:
        from .ingress import ingress_checks
        checks = [Check(group, src, label, probes, "reachable", backends)
                  for label, probes, backends in ingress_checks(cluster, src, rest, count)]
    elif kind == "extip" and rest:
        svc, ports = find_service(cluster, rest)
        checks = service_checks(cluster, src, svc, ports, group, count, "external-ip", need_all=need_all)
        if not checks:
            raise NotFound(f"Service {svc.key} has no externalIPs or LoadBalancer IP")
    else:
        checks = _raw_target(cluster, src, target, group, count)
    if expect is not None:
        for c in checks:
            c.expect = expect
            if expect not in ("reachable", netpol.MIXED):
                c.backends = None
                c.need_all_backends = False
    return checks


_RAW = re.compile(r"^(?P<ip>\d+\.\d+\.\d+\.\d+)(:(?P<port>\d+))?(/(?P<proto>tcp|udp|icmp))?$")


def _raw_target(cluster: Cluster, src: Source, target: str, group: str, count: int) -> list[Check]:
    m = _RAW.match(target)
    if not m:
        raise SpecError("target", f"'{target}' is not a probe target",
                        "use pod/NAME, node/NAME, svc/NAME[:PORT], nodeport/NAME[:PORT][@NODE], extip/NAME, "
                        "lb/NAME[:PORT], ingress/NAME/HOST/PATH, "
                        "IP, IP:PORT or IP:PORT/udp")
    try:
        ipaddress.IPv4Address(m.group("ip"))
    except ValueError:
        raise SpecError("target", f"'{m.group('ip')}' is not an IPv4 address", "fix the address") from None
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 1 <= port <= 65535:
        raise SpecError("target", f"port {port} is out of range 1-65535", "fix the port")
    proto = m.group("proto") or ("tcp" if port else "icmp")
    if proto != "icmp" and port is None:
        raise SpecError("target", f"'{target}' needs a port for {proto}", "write it as IP:PORT/" + proto)
    kind = {"icmp": "icmp", "tcp": "tcp", "udp": "udp"}[proto]
    check = Check(group, src, target, [ProbeSpec(src.netns, kind, m.group("ip"), port, DEFAULT_TIMEOUT,
                                                 label=proto) for _ in range(max(1, count))], "reachable")
    # the policies judge an address they see as it is: not a Service's (DNATed on the way, the model
    # does not follow it: svc/ nodeport/ lb/ extip/ targets do)
    ip = ipaddress.IPv4Address(m.group("ip"))
    node_ports = {p.node_port for s in cluster.services for p in s.ports if p.node_port}
    if ip in cluster.networking.service_subnet or any(ip in _service_ips(s) for s in cluster.services) or \
            (port in node_ports and any(ip == n.ip for n in cluster.nodes)):
        return [check]
    return [_direct(check, netpol.direct(cluster, src, ip, port, proto))]


def _service_ips(svc: Service) -> set[ipaddress.IPv4Address]:
    ips = {ipaddress.IPv4Address(x) for x in list(svc.spec.external_ips) + list(lb_ingress_ips(svc.spec))}
    return ips


def plan_checks(cluster: Cluster, targets: list[str], source: str | None = None, count: int = 1) -> list[Check]:
    """The checks of `netlab probe [--from SOURCE] TARGET...` (and of netlab.Lab.probe): with no target
    the default matrix and the scenario's expectations; else each target from SOURCE, or, with no
    SOURCE, from every pod (from the first pod only for targets other than pods and Services, or when
    counting), and lb/ and ingress/ targets from the external host as their clients."""
    if not targets:
        return default_matrix(cluster) + expectation_checks(cluster)
    if source:
        sources = resolve_sources(cluster, source)
    elif all(t.startswith(("lb/", "ingress/")) for t in targets):   # from outside, as their clients
        sources = resolve_sources(cluster, "external")
    else:
        sources = [pod_source(p) for p in cluster.pods]
        if not sources:
            raise NotFound("the lab has no pods to probe from; use --from node/NAME or --from external")
        if any(not t.startswith(("pod/", "svc/")) for t in targets) or count > 1:
            sources = sources[:1]
    return [c for src in sources for t in targets
            for c in target_checks(cluster, src, t, count=count, need_all=False)]


# ------------------------------------------------------------------ the default matrix

def default_matrix(cluster: Cluster) -> list[Check]:
    """node<->pod, pod<->pod on one node and across nodes for every node pair; every pod to every
    Service port (but the add-ons'); the external host to every NodePort on every node."""
    checks: list[Check] = []
    by_node = {n.name: cluster.pods_on(n.name) for n in cluster.nodes}
    for a in cluster.nodes:
        for b in cluster.nodes:
            pods_b = by_node[b.name]
            if pods_b:
                checks += pod_checks(cluster, node_source(a), pods_b[0], "node -> pod")
            pods_a = by_node[a.name]
            if pods_a:
                checks += node_checks(pod_source(pods_a[0]), b, "pod -> node", cluster)
                if a.name == b.name:
                    if len(pods_a) > 1:
                        checks += pod_checks(cluster, pod_source(pods_a[0]), pods_a[1], "pod -> pod (same node)")
                elif pods_b:
                    checks += pod_checks(cluster, pod_source(pods_a[0]), pods_b[0], "pod -> pod (across nodes)")
    # (the add-ons' Services are left out: nothing serves kubernetes' 443 nor kube-dns' metrics, and a
    # DNS server does not answer the probes' payloads; `netlab probe dns/NAME` checks the cluster DNS)
    from ..dns.addon import SERVICES as ADDON_SERVICES
    services = [s for s in cluster.services if is_proxied(s) and s.cluster_ip is not None
                and s.key not in ADDON_SERVICES]
    memo: dict = {}
    for p in cluster.pods:
        for svc in services:
            checks += service_checks(cluster, pod_source(p), svc, svc.ports, "pod -> service", memo=memo)
    ext = resolve_sources(cluster, "external")[0]
    for svc in services:
        if any(port.node_port for port in svc.ports):
            checks += service_checks(cluster, ext, svc, [p for p in svc.ports if p.node_port], "external -> nodeport",
                                     via="nodeport", memo=memo)
    return checks


def expectation_checks(cluster: Cluster) -> list[Check]:
    """The scenario's own `expectations` (Cluster document), each turned into checks."""
    checks: list[Check] = []
    for ex in cluster.expectations:
        group = f"expect: {ex.source} -> {ex.target}"
        for src in resolve_sources(cluster, ex.source):
            need_all = ex.backends == "all"
            count = 1
            if ex.target.startswith(("svc/", "nodeport/", "extip/", "lb/")) and ex.expect == "reachable":
                # enough new connections that a random choice misses a backend with odds below 1e-4
                n_eps = max((len(v) for s in cluster.services for v in s.endpoints.values()), default=1)
                count = max(10, 10 * n_eps) if (need_all or isinstance(ex.backends, int)) else 1
            cs = target_checks(cluster, src, ex.target, count=count, expect=ex.expect, need_all=need_all,
                               group=group)
            if isinstance(ex.backends, int) and not isinstance(ex.backends, bool):
                for c in cs:
                    c.min_backends = ex.backends
            checks += cs
    return checks
