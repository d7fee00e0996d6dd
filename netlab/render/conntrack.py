"""Which UDP conntrack entries a node must lose after a sync, as kube-proxy decides it. Pure.

UDP has no connection end: once a flow's first datagram was translated, the kernel keeps the entry (and
its translation) for as long as datagrams keep coming, so a client that keeps its source port talks to
the endpoint it got first for ever, even after that endpoint is gone. kube-proxy (pkg/proxy/conntrack,
Kubernetes 1.31+) therefore reconciles the conntrack table after every sync, in every proxy mode:

- for each UDP service port that has serving endpoints, every UDP entry whose original destination is
  one of its frontends (ClusterIP, externalIPs, LoadBalancer IP) with the service port, and whose reply
  source is not a serving endpoint's IP, is deleted (conntrack -D --orig-dst VIP --orig-port-dst PORT
  --reply-src IP);
- likewise every UDP entry whose original destination port is the port's NodePort (any address) and
  whose reply source is not a serving endpoint's IP (--orig-port-dst NODEPORT --reply-src IP);
- a service port without serving endpoints is left alone (there is nothing better to send its flows to).

This one rule covers both cases where an entry goes stale: an endpoint that was removed (the entry's
reply source is the old pod) and an entry made while the Service had no endpoint (not translated: its
reply source is the VIP or the node itself), which would otherwise keep that flow off the new
endpoints. Because it compares the table with the *current* model rather than the old model with the
new, it also repairs what an interrupted `up` left, and needs no record of the previous endpoints.
Endpoint ports are not compared, as kube-proxy does not compare them (only IPs).

kube-proxy lists the table on every sync; netlab lists it only when the UDP frontends or their serving
endpoints differ from those of its last cleanup (`needs_cleanup(old, new)`, the record is kept by the
dataplane): an entry can only go stale when an endpoint leaves a frontend (removed, or no longer
ready) or a frontend gets its first endpoints, and both change that map. This keeps `up` with nothing
to do from starting one `conntrack` process per node.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..model.objects import Cluster
from .services import is_proxied, lb_ingress_ips


@dataclass(frozen=True)
class Entry:
    """The parts of a UDP conntrack entry the decision looks at."""
    orig_dst: str
    orig_dport: int
    reply_src: str


@dataclass(frozen=True, order=True)
class Deletion:
    """A `conntrack -D` filter: UDP entries to `orig_dport` (at `orig_dst`, or at any address for a
    NodePort: orig_dst None) whose reply source is `reply_src`."""
    orig_dport: int
    reply_src: str
    orig_dst: str | None = None

    def args(self) -> list[str]:
        """The filter as conntrack(8) arguments (after `-D`)."""
        dst = ["--orig-dst", self.orig_dst] if self.orig_dst else []
        return ["-p", "udp", *dst, "--orig-port-dst", str(self.orig_dport), "--reply-src", self.reply_src]


@dataclass
class UdpFrontends:
    """For every UDP service port with serving endpoints: its frontends and those endpoints' IPs."""
    by_vip: dict[tuple[str, int], frozenset[str]]       # (VIP, service port) -> serving endpoint IPs
    by_node_port: dict[int, frozenset[str]]             # NodePort -> serving endpoint IPs

    def __bool__(self) -> bool:
        return bool(self.by_vip or self.by_node_port)


def udp_frontends(cluster: Cluster) -> UdpFrontends:
    by_vip: dict[tuple[str, int], frozenset[str]] = {}
    by_node_port: dict[int, frozenset[str]] = {}
    for svc in cluster.services:
        if not is_proxied(svc):
            continue
        spec = svc.spec
        for port in svc.ports:
            if port.protocol.upper() != "UDP":
                continue
            eps = svc.endpoints.get(port.name or "", [])
            # the endpoints a proxy may send new flows to: the ready ones, else the serving terminating
            # ones (kube-proxy's fallback): flows to those are not stale
            serving = frozenset(str(e.ip) for e in eps if e.ready) or frozenset(
                str(e.ip) for e in eps if e.serving and e.terminating)
            if not serving:
                continue
            vips = [str(svc.cluster_ip), *spec.external_ips]
            vips.extend(lb_ingress_ips(spec))
            for vip in vips:
                by_vip[(vip, port.port)] = serving
            if port.node_port and spec.type in ("NodePort", "LoadBalancer"):
                by_node_port[port.node_port] = serving
    return UdpFrontends(by_vip, by_node_port)


def frontends_record(frontends: UdpFrontends) -> str:
    """The map as canonical text, to keep as the state of the last cleanup."""
    vips = sorted(f"{ip}:{port}={','.join(sorted(eps))}" for (ip, port), eps in frontends.by_vip.items())
    nps = sorted(f"*:{port}={','.join(sorted(eps))}" for port, eps in frontends.by_node_port.items())
    return "\n".join(vips + nps) + "\n"


def needs_cleanup(last: str | None, frontends: UdpFrontends) -> bool:
    """Whether the nodes' tables must be looked at: some UDP frontend has serving endpoints, and the map
    differs from `last` (the record of the last cleanup; None: unknown, e.g. a lab made before this)."""
    return bool(frontends) and frontends_record(frontends) != last


def stale(frontends: UdpFrontends, entries: list[Entry]) -> list[Deletion]:
    """The deletions that remove every stale entry among `entries` (UDP entries of one node), sorted,
    each once."""
    out: set[Deletion] = set()
    for e in entries:
        serving = frontends.by_vip.get((e.orig_dst, e.orig_dport))
        if serving is not None and e.reply_src not in serving:
            out.add(Deletion(e.orig_dport, e.reply_src, e.orig_dst))
        serving = frontends.by_node_port.get(e.orig_dport)
        if serving is not None and e.reply_src not in serving:
            out.add(Deletion(e.orig_dport, e.reply_src))
    return sorted(out, key=lambda d: (d.orig_dport, d.reply_src, d.orig_dst or ""))


def parse_list(text: str) -> list[Entry]:
    """`conntrack -L -p udp` output -> entries. Each line holds the original tuple's src=, dst=, sport=,
    dport= first, then the reply tuple's; lines that are not UDP entries are skipped."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] != "udp":
            continue
        seen: dict[str, list[str]] = {}
        for w in words:
            key, eq, value = w.partition("=")
            if eq:
                seen.setdefault(key, []).append(value)
        try:
            out.append(Entry(seen["dst"][0], int(seen["dport"][0]), seen["src"][1]))
        except (KeyError, IndexError, ValueError):
            continue
    return out
