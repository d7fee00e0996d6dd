"""`netlab trace`: send ONE real packet and show its path hop by hop as the kernel handled it.

`trace(lab, src, target)` arms netfilter tracing for that one packet in every node namespace of the lab
(kernel.py), sends a crafted SYN / UDP datagram / ICMP echo from the source (send.py), reads what
`xtables-monitor --trace` (iptables and IPVS modes) or `nft monitor trace` (nftables mode) printed
(monitor.py), adds the route lookups, the VXLAN / host-gw hop and the conntrack entries, and compares each
node's fate of the packet with the model's prediction (path.py over render.trace). The tracing rules are
removed in `finally`, whatever happens.
"""
from __future__ import annotations

import random
import secrets
import signal
import threading
from dataclasses import asdict, dataclass, field

KINDS = ("netfilter", "route", "encap", "conntrack", "deliver", "stop")


@dataclass
class Hop:
    netns: str
    graph_id: str | None
    kind: str              # one of KINDS
    text: str
    observed: bool = True  # False: the model's prediction (the kernel cannot show this step)
    node: str | None = None


@dataclass
class TraceResult:
    lab: str
    source: str
    target: str
    packet: dict                       # proto, src, dst, sport, dport, ip_id
    mode: str                          # the proxy mode: iptables | nftables | ipvs
    hops: list[Hop] = field(default_factory=list)
    outcome: str = ""                  # reachable | refused | denied | timeout | unreachable | no-route
    detail: str = ""
    answered_by: str | None = None     # the pod the kernel delivered it to (the DNAT / destination address)
    differences: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False)   # netns -> the monitor's text (not in to_dict)

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict:
        """The stable `-o json` document (README: "Following a packet: netlab trace")."""
        return {"lab": self.lab, "source": self.source, "target": self.target, "mode": self.mode,
                "packet": dict(self.packet), "outcome": self.outcome, "detail": self.detail,
                "answered_by": self.answered_by,
                "hops": [{k: v for k, v in asdict(h).items()} for h in self.hops],
                "differences": list(self.differences), "warnings": list(self.warnings)}


def trace(lab: str, src: str, target: str, *, timeout: float = 3.0) -> TraceResult:
    """Trace one packet from src (`pod/NAME`, `node/NAME`, `external`) to target (as `netlab probe` takes
    it: `svc/NAME:PORT`, `pod/NAME`, `nodeport/NAME@NODE`, `IP:PORT/udp` ...)."""
    from .. import lab_spec
    from ..dataplane import iptables
    from ..errors import NotFound, UsageError
    from ..probe import plan
    from . import kernel
    cluster, _ = lab_spec.load_cluster(lab)
    sources = plan.resolve_sources(cluster, src)
    if len(sources) != 1:
        raise UsageError(f"source '{src}' names {len(sources)} pods; trace one: pod/NS/NAME")
    source = sources[0]
    checks = plan.target_checks(cluster, source, target)
    if not checks:
        raise NotFound(f"nothing to trace to '{target}' from {src} (no port netlab's proxy serves)")
    check = checks[0]
    spec = check.probes[0]
    proto = {"http": "tcp", "udp-app": "udp"}.get(spec.kind, spec.kind)
    mode = cluster.networking.proxy_mode
    flavour = iptables.flavour_commands(cluster.networking.iptables_flavour)[0]
    if flavour != "nft" and mode != "nftables":
        raise UsageError("netlab trace follows iptables rules through iptables-nft's TRACE (xtables-monitor); "
                         "this lab's iptables flavour is legacy: bring it up with networking.iptablesFlavour: nft")
    packet = kernel.Packet(spec.dst, proto, spec.port or 0, random.randrange(61000, 65536),
                           random.randrange(1, 1 << 16), random.randrange(1, 1 << 32), timeout)
    run_id = secrets.token_hex(4)
    tracing = kernel.Tracing(lab, run_id, "nft" if mode == "nftables" else "iptables", packet)
    nodes = {n.netns: n for n in cluster.nodes}
    result = TraceResult(lab, source.label, target, {"proto": proto, "dst": spec.dst, "dport": spec.port,
                                                     "sport": packet.sport, "ip_id": packet.ipid}, mode)
    previous = _sigterm_interrupts()
    try:
        for netns in nodes:
            tracing.arm(netns)
        for netns in nodes:
            tracing.start_monitor(netns)
        tracing.wait_monitors()
        sent = kernel.send(source.netns, packet)
        kernel.settle(0.3)
        texts = tracing.stop_monitors()
    finally:
        problems = tracing.disarm()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if problems:
        result.warnings.append("could not remove every trace rule: " + "; ".join(problems))
    result.raw = texts
    from . import build
    build.assemble(result, cluster, source, check, packet, sent, texts, tracing.mode)
    return result


def _sigterm_interrupts():
    """While the trace rules are in: SIGTERM raises KeyboardInterrupt like Ctrl-C, so `finally` removes them.
    Returns the previous handler (None off the main thread, where signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt()
    return signal.signal(signal.SIGTERM, interrupt)
