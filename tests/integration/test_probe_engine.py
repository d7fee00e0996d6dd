"""The probe engine on a tiny topology of its own: two namespaces joined by a veth pair, the built-in
server in one of them. Every probe runs inside namespace `a` and is judged on what came back."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from netlab.dataplane import nsfs
from netlab.probe import engine
from netlab.probe.engine import ProbeSpec, run_probes

if os.geteuid() != 0:
    pytest.skip("the probe engine tests need root (they build real network namespaces)", allow_module_level=True)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
A_IP, B_IP, B_IP2 = "10.99.0.1", "10.99.0.2", "10.99.0.3"
POD = "web-probe-1"
TCP_PORT, UDP_PORT = 8080, 8081


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Topo:
    """nl.ptest-<tag>.a (10.99.0.1/24) <-veth-> nl.ptest-<tag>.b (10.99.0.2/24, 10.99.0.3/24)."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.a, self.b = f"nl.ptest-{tag}.a", f"nl.ptest-{tag}.b"
        self.va, self.vb = f"pt{tag}a", f"pt{tag}b"
        self.server: subprocess.Popen | None = None

    def build(self) -> None:
        sh("ip", "netns", "add", self.a)
        sh("ip", "netns", "add", self.b)
        sh("ip", "link", "add", self.va, "netns", self.a, "type", "veth", "peer", "name", self.vb, "netns", self.b)
        for ns, dev, addrs in ((self.a, self.va, [A_IP]), (self.b, self.vb, [B_IP, B_IP2])):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            for addr in addrs:
                sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            # refused/unreachable results ride on ICMP errors: no per-peer rate limit in the lab
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        # like a pod: a default route (Service ClusterIPs are routed, then DNATed in OUTPUT)
        sh("ip", "-n", self.a, "route", "add", "default", "via", B_IP)
        # ARP for a missing neighbour gives up after 100 ms instead of 3 s
        sh("ip", "netns", "exec", self.a, "sysctl", "-qw", f"net.ipv4.neigh.{self.va}.mcast_solicit=1",
           f"net.ipv4.neigh.{self.va}.retrans_time_ms=100")

    def start_server(self, tmpdir: str) -> None:
        cfg, pidfile = os.path.join(tmpdir, "netexec.json"), os.path.join(tmpdir, "netexec.pid")
        with open(cfg, "w") as f:
            json.dump({"pods": [{"key": f"default/{POD}", "name": POD, "netns": nsfs.netns_path(self.b),
                                 "ports": [{"port": TCP_PORT, "protocol": "TCP"},
                                           {"port": UDP_PORT, "protocol": "UDP"}],
                                 "log": os.path.join(tmpdir, "pod.log")}]}, f)
        err = open(os.path.join(tmpdir, "netexec.stderr"), "w")
        self.server = subprocess.Popen(
            ["nsenter", f"--net={nsfs.netns_path(self.b)}", sys.executable, "-m", "netlab.workload.netexec",
             "--config", cfg, "--pidfile", pidfile], cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
        err.close()
        deadline = time.monotonic() + 15
        while not os.path.exists(pidfile):
            if self.server.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(tmpdir, "netexec.stderr")) as f:
                    raise AssertionError(f"the built-in server did not start: {f.read()}")
            time.sleep(0.02)

    def destroy(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(5)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)
        for ns in (self.a, self.b):
            sh("ip", "netns", "del", ns, check=False)

    def ipt(self, ns: str, *args: str) -> None:
        sh("ip", "netns", "exec", ns, "iptables", *args)


def _make_topo(server_dir: str | None):
    t = Topo()
    try:
        t.build()
        if server_dir:
            t.start_server(server_dir)
        yield t
    finally:
        t.destroy()
        left = set(nsfs.list_netns()) & {t.a, t.b}
        assert not left, f"namespaces left behind: {left}"


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    yield from _make_topo(str(tmp_path_factory.mktemp("probe")))


@pytest.fixture
def fresh_topo():
    """A topology of its own (no server) for tests that break the link."""
    yield from _make_topo(None)


def probe(t: Topo, kind: str, dst: str = B_IP, port: int | None = None, **kw):
    [r] = run_probes([ProbeSpec(t.a, kind, dst, port, **kw)])
    return r


# ----------------------------------------------------------------------------------------------

def test_icmp_reachable(topo):
    r = probe(topo, "icmp")
    assert r.outcome == "reachable", r
    assert r.detail == f"echo-reply from {B_IP}" and r.reply_src == B_IP
    assert r.rtt_ms is not None and 0 <= r.rtt_ms < 1000


def test_tcp_open_port(topo):
    r = probe(topo, "tcp", port=TCP_PORT)
    assert r.outcome == "reachable", r
    assert r.detail == f"SYN-ACK from {B_IP}:{TCP_PORT}"
    assert r.reply_src == B_IP and r.rtt_ms is not None


def test_tcp_closed_port_rst(topo):
    r = probe(topo, "tcp", port=9997)
    assert r.outcome == "refused", r
    assert r.detail == f"RST from {B_IP}:9997"


def test_tcp_reject_rule_icmp(topo):
    rule = ["INPUT", "-p", "tcp", "--dport", "9999", "-j", "REJECT"]
    topo.ipt(topo.b, "-I", *rule)
    try:
        r = probe(topo, "tcp", port=9999)
        assert r.outcome == "refused", r
        assert r.detail == f"ICMP port-unreachable from {B_IP}", r
        # a real connect() sees the same thing, and the error queue tells who sent it
        h = probe(topo, "http", port=9999)
        assert h.outcome == "refused" and "port-unreachable" in h.detail, h
        # and the other reject flavours
        topo.ipt(topo.b, "-R", "INPUT", "1", "-p", "tcp", "--dport", "9999", "-j", "REJECT",
                 "--reject-with", "icmp-admin-prohibited")
        r = probe(topo, "tcp", port=9999)
        assert r.outcome == "denied" and r.detail == f"ICMP admin-prohibited from {B_IP}", r   # NetworkPolicy's
        topo.ipt(topo.b, "-R", "INPUT", "1", "-p", "tcp", "--dport", "9999", "-j", "REJECT",
                 "--reject-with", "tcp-reset")
        r = probe(topo, "tcp", port=9999)
        assert r.outcome == "refused" and r.detail == f"RST from {B_IP}:9999", r
    finally:
        topo.ipt(topo.b, "-F", "INPUT")


def test_tcp_drop_rule_times_out(topo):
    topo.ipt(topo.b, "-I", "INPUT", "-p", "tcp", "--dport", "9998", "-j", "DROP")
    try:
        t0 = time.monotonic()
        r = probe(topo, "tcp", port=9998, timeout=0.5)
        took = time.monotonic() - t0
        assert r.outcome == "timeout" and r.rtt_ms is None, r
        assert 0.45 < took < 2.0
        h = probe(topo, "http", port=9998, timeout=0.5)
        assert h.outcome == "timeout", h
    finally:
        topo.ipt(topo.b, "-F", "INPUT")


def test_firewall_in_the_source_namespace(topo):
    """A REJECT in the prober's own OUTPUT chain: the crafted packet's send fails with EPERM and the
    ICMP error the rule queued for us still decides the outcome. A DROP: nothing was sent."""
    topo.ipt(topo.a, "-A", "OUTPUT", "-p", "tcp", "--dport", "9994", "-j", "REJECT")
    topo.ipt(topo.a, "-A", "OUTPUT", "-p", "tcp", "--dport", "9993", "-j", "DROP")
    try:
        rs = run_probes([ProbeSpec(topo.a, "tcp", B_IP, 9994), ProbeSpec(topo.a, "http", B_IP, 9994),
                         ProbeSpec(topo.a, "tcp", B_IP, 9993, timeout=0.5),
                         ProbeSpec(topo.a, "http", B_IP, 9993, timeout=0.5)])
        assert rs[0].outcome == "refused" and rs[0].detail == f"ICMP port-unreachable from {A_IP}", rs[0]
        assert rs[1].outcome == "refused" and "port-unreachable" in rs[1].detail, rs[1]
        assert rs[2].outcome == "unreachable" and "EPERM" in rs[2].detail, rs[2]
        assert rs[3].outcome == "timeout", rs[3]  # TCP retransmits the SYN quietly
    finally:
        topo.ipt(topo.a, "-F", "OUTPUT")


def test_udp(topo):
    r = probe(topo, "udp", port=UDP_PORT)
    assert r.outcome == "reachable", r
    assert r.answered_by == POD and r.reply_src == B_IP
    r = probe(topo, "udp", port=UDP_PORT, payload="clientip")
    assert r.outcome == "reachable" and r.client_ip == A_IP, r
    r = probe(topo, "udp", port=UDP_PORT, payload="echo hello")
    assert r.outcome == "reachable" and "hello" in r.detail, r


def test_udp_closed_port_refused(topo):
    r = probe(topo, "udp", port=9996)
    assert r.outcome == "refused", r
    assert r.detail == f"ICMP port-unreachable from {B_IP}"
    r = probe(topo, "udp-app", port=9996)
    assert r.outcome == "refused", r
    assert "port-unreachable" in r.detail


def test_missing_host_on_link(topo):
    # ARP for .77 fails (after 100 ms here): the kernel reports host-unreachable
    rs = run_probes([ProbeSpec(topo.a, "icmp", "10.99.0.77", timeout=2),
                     ProbeSpec(topo.a, "tcp", "10.99.0.78", 80, timeout=2),
                     ProbeSpec(topo.a, "http", "10.99.0.79", 80, timeout=2),
                     ProbeSpec(topo.a, "icmp", "10.99.0.80", timeout=0.05)])
    for r in rs[:3]:
        assert r.outcome == "unreachable" and "host-unreachable" in r.detail, r
    assert rs[3].outcome in ("timeout", "unreachable"), rs[3]


def test_link_down(fresh_topo):
    t = fresh_topo
    assert probe(t, "icmp").outcome == "reachable"
    sh("ip", "-n", t.a, "link", "set", t.va, "down")
    for kind, port in (("icmp", None), ("tcp", 80), ("udp", 53), ("http", 80), ("udp-app", 53)):
        r = probe(t, kind, port=port, timeout=0.5)
        assert r.outcome in ("timeout", "unreachable"), r


def test_http_and_udp_app(topo):
    r = probe(topo, "http", port=TCP_PORT)
    assert r.outcome == "reachable", r
    assert r.answered_by == POD and r.client_ip == A_IP
    assert r.detail.startswith(f"HTTP 200 from {B_IP}:{TCP_PORT}")
    u = probe(topo, "udp-app", port=UDP_PORT)
    assert u.outcome == "reachable", u
    assert u.answered_by == POD and u.client_ip == A_IP
    # a path that is not /hostname: the server answered (404), nobody is named
    n = probe(topo, "http", port=TCP_PORT, path="/nope")
    assert n.outcome == "reachable" and n.answered_by is None and "HTTP 404" in n.detail, n
    # HTTP to the UDP-only port: RST
    assert probe(topo, "http", port=UDP_PORT).outcome == "refused"


def test_service_dnat(topo):
    vip = "10.96.0.5"
    tcp_rule = ["OUTPUT", "-d", vip, "-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination",
                f"{B_IP}:{TCP_PORT}"]
    udp_rule = ["OUTPUT", "-d", vip, "-p", "udp", "--dport", "53", "-j", "DNAT", "--to-destination",
                f"{B_IP}:{UDP_PORT}"]
    before = run_probes([ProbeSpec(topo.a, "tcp", vip, 80, timeout=0.3)])[0]
    assert before.outcome != "reachable", before
    topo.ipt(topo.a, "-t", "nat", "-A", *tcp_rule)
    topo.ipt(topo.a, "-t", "nat", "-A", *udp_rule)
    try:
        rs = run_probes([ProbeSpec(topo.a, "tcp", vip, 80), ProbeSpec(topo.a, "http", vip, 80),
                         ProbeSpec(topo.a, "udp", vip, 53), ProbeSpec(topo.a, "udp-app", vip, 53)])
        tcp, http, udp, udp_app = rs
        assert tcp.outcome == "reachable" and tcp.detail == f"SYN-ACK from {vip}:80", tcp
        assert http.outcome == "reachable" and http.answered_by == POD and http.client_ip == A_IP, http
        assert udp.outcome == "reachable" and udp.answered_by == POD and udp.reply_src == vip, udp
        assert udp_app.outcome == "reachable" and udp_app.answered_by == POD, udp_app
        # a Service port that DNATs to a closed backend port: RST, seen from the ClusterIP
        topo.ipt(topo.a, "-t", "nat", "-A", "OUTPUT", "-d", vip, "-p", "tcp", "--dport", "81", "-j", "DNAT",
                 "--to-destination", f"{B_IP}:9995")
        r = probe(topo, "tcp", vip, 81)
        assert r.outcome == "refused" and r.detail == f"RST from {vip}:81", r
    finally:
        topo.ipt(topo.a, "-t", "nat", "-F", "OUTPUT")


def test_200_concurrent_probes(topo):
    """200 probes of five kinds, and 10 to a port whose SYNs are dropped (each waits its 1 s timeout): every
    answer in order, and the waits overlap (one after the other they would take 10 s; the probes' speed is
    benchmarks/probe_engine.py's to measure, not this test's)."""
    kinds = [("tcp", TCP_PORT), ("udp", UDP_PORT), ("icmp", None), ("http", TCP_PORT), ("udp-app", UDP_PORT)]
    specs = [ProbeSpec(topo.a, kinds[i % 5][0], B_IP, kinds[i % 5][1], timeout=2.0, label=str(i))
             for i in range(200)]
    specs += [ProbeSpec(topo.a, "tcp", B_IP, 9989, timeout=1.0, label=f"dropped-{i}") for i in range(10)]
    topo.ipt(topo.b, "-I", "INPUT", "-p", "tcp", "--dport", "9989", "-j", "DROP")
    try:
        t0 = time.monotonic()
        rs = run_probes(specs)
        took = time.monotonic() - t0
    finally:
        topo.ipt(topo.b, "-D", "INPUT", "-p", "tcp", "--dport", "9989", "-j", "DROP")
    bad = [r for r in rs[:200] if r.outcome != "reachable"]
    assert not bad, bad[:5]
    assert [r.outcome for r in rs[200:]] == ["timeout"] * 10, rs[200:]
    assert [r.spec.label for r in rs] == [s.label for s in specs]
    assert took < 6.0, f"10 probes of 1 s each waited one after the other: {took:.2f}s in all"


def test_mixed_namespaces_keep_order_and_release_everything(topo):
    fds0, threads0 = len(os.listdir("/proc/self/fd")), threading.active_count()
    specs = []
    for i in range(60):
        src, dst = (topo.a, B_IP) if i % 2 else (topo.b, A_IP)
        specs.append(ProbeSpec(src, "icmp" if i % 3 else "tcp", dst, None if i % 3 else 22, timeout=0.5,
                               label=str(i)))
    specs.append(ProbeSpec("nl.ptest-does-not-exist", "icmp", B_IP, label="nons"))
    specs.append(ProbeSpec(topo.a, "bogus", B_IP, label="bogus"))
    specs.append(ProbeSpec(topo.a, "tcp", "not-an-ip", 80, label="badip"))
    specs.append(ProbeSpec(topo.a, "tcp", B_IP, None, label="noport"))
    rs = run_probes(specs, max_groups=1)
    assert [r.spec.label for r in rs] == [s.label for s in specs]
    for r in rs[:60]:
        i = int(r.spec.label)
        assert r.outcome == ("reachable" if i % 3 else "refused"), r
    nons, bogus, badip, noport = rs[60:]
    assert nons.outcome == "error" and "no network namespace" in nons.detail, nons
    assert all(r.outcome == "error" for r in (bogus, badip, noport))
    assert run_probes([]) == []
    assert len(os.listdir("/proc/self/fd")) == fds0
    assert threading.active_count() == threads0


def test_caller_namespace_and_socket_pool(topo):
    # "" = the namespace of the thread that calls run_probes
    rs = nsfs.in_netns(topo.a, lambda: run_probes([ProbeSpec("", "tcp", B_IP, TCP_PORT),
                                                   ProbeSpec("", "http", B_IP, TCP_PORT)]))
    assert [r.outcome for r in rs] == ["reachable"] * 2 and rs[1].client_ip == A_IP
    # more HTTP probes than `concurrency`: sockets come in batches made inside the namespace
    groups = []
    rs = run_probes([ProbeSpec(topo.a, "http", B_IP, TCP_PORT) for _ in range(30)], concurrency=4,
                    _groups=groups)
    assert all(r.outcome == "reachable" and r.client_ip == A_IP for r in rs)
    assert groups[0].stats["socket_batches"] > 2


@pytest.mark.parametrize("mode", ["pcap", "handwritten"])
def test_bpf_filter_attaches_and_filters(topo, mode):
    """The kernel drops what the filter rejects: datagrams from a source we did not probe, and to a
    port outside the probe range, never reach the filtered socket; an unfiltered one sees them all."""
    def open_both():
        f, how = engine.open_raw_receiver(socket.IPPROTO_UDP, [B_IP], mode=mode)
        u, _ = engine.open_raw_receiver(socket.IPPROTO_UDP, mode="none")
        return f, u, how
    filtered, unfiltered, how = nsfs.in_netns(topo.a, open_both)
    try:
        assert how == mode
        prog = engine.attached_bpf(filtered)  # the kernel holds our program
        expected = (engine.compile_bpf(engine.bpf_expression(socket.IPPROTO_UDP, [B_IP])) if mode == "pcap"
                    else engine.handwritten_bpf(socket.IPPROTO_UDP, [B_IP]))
        assert prog == expected and len(prog) > 3 * 8
        assert engine.attached_bpf(unfiltered) == b""

        def send():
            for src, port, msg in ((B_IP, 62000, b"want"), (B_IP2, 62000, b"other-src"), (B_IP, 5000, b"low-port")):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.bind((src, 0))
                    s.sendto(msg, (A_IP, port))
                finally:
                    s.close()
        nsfs.in_netns(topo.b, send)
        time.sleep(0.2)

        def payloads(s):
            out = []
            while True:
                try:
                    data = s.recv(65535)
                except BlockingIOError:
                    return out
                out.append(data[28:])
        assert sorted(payloads(unfiltered)) == [b"low-port", b"other-src", b"want"]
        assert payloads(filtered) == [b"want"]
    finally:
        filtered.close()
        unfiltered.close()


@pytest.mark.parametrize("mode", ["auto", "pcap", "handwritten", "none"])
def test_every_filter_mode_gives_the_same_answers(topo, mode):
    groups = []
    specs = [ProbeSpec(topo.a, "icmp", B_IP), ProbeSpec(topo.a, "tcp", B_IP, TCP_PORT),
             ProbeSpec(topo.a, "udp", B_IP, UDP_PORT), ProbeSpec(topo.a, "tcp", B_IP, 9992),
             ProbeSpec(topo.a, "udp", B_IP, 9991), ProbeSpec(topo.a, "http", B_IP, TCP_PORT),
             ProbeSpec(topo.a, "udp-app", B_IP, UDP_PORT)]
    rs = run_probes(specs, filter_mode=mode, _groups=groups)
    assert [r.outcome for r in rs] == ["reachable"] * 3 + ["refused"] * 2 + ["reachable"] * 2, rs
    [g] = groups
    want = "pcap" if mode == "auto" else mode
    assert g.filters == {"icmp": want, "tcp": want, "udp": want}
    assert g.stats["matched"] == 5
    if mode == "none":
        # the raw sockets also get a copy of the HTTP and UDP exchanges' packets
        assert g.stats["packets"] > 5, g.stats
    else:
        # with a filter, only the five replies to crafted probes reached user space
        assert g.stats["packets"] == 5, g.stats


def test_benchmark_1000_probes(topo, capsys):
    """Not a timed assertion: prints how long 1000 probes take (single source namespace)."""
    kinds = [("tcp", TCP_PORT), ("udp", UDP_PORT), ("icmp", None), ("http", TCP_PORT), ("udp-app", UDP_PORT)]
    lines = []
    for label, specs in (
            ("1000 mixed (tcp/udp/icmp/http/udp-app)", [ProbeSpec(topo.a, kinds[i % 5][0], B_IP, kinds[i % 5][1])
                                                         for i in range(1000)]),
            ("1000 tcp", [ProbeSpec(topo.a, "tcp", B_IP, TCP_PORT) for _ in range(1000)]),
            ("1000 http", [ProbeSpec(topo.a, "http", B_IP, TCP_PORT) for _ in range(1000)])):
        t0 = time.perf_counter()
        rs = run_probes(specs)
        took = time.perf_counter() - t0
        ok = sum(r.outcome == "reachable" for r in rs)
        lines.append(f"probe engine: {label} from one namespace: {took:.2f}s ({ok} reachable)")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
