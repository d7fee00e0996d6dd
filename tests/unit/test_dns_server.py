"""The cluster DNS server: its answers (netlab.dns.resolver, in-process with dnspython messages) and
the running server over real sockets on 127.0.0.1 (fuzzing, TCP, reload, forwarding, health)."""
from __future__ import annotations

import dataclasses
import json
import random
import socket
import struct
import time
import urllib.error
import urllib.request

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from netlab.dns import forward
from netlab.dns.resolver import Chase, Engine, Forward, Index
from netlab.dns.server import DnsServer
from netlab.dns.zone import DnsSettings, render_zone, write_zone

from .dns_objects import SETTINGS, ep, eps, objects, svc
from .test_netexec import free_port  # never the same port twice

D = "cluster.local."


def engine(settings=SETTINGS, objs=None):
    return Engine(Index(render_zone(objs or objects(), settings)))


def ask(eng, name, rdtype="A", tcp=False, **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    out, _ = eng.respond(q.to_wire(), tcp)
    if isinstance(out, (bytes, type(None))):
        return out if out is None else dns.message.from_wire(out)
    return out


def rcode(m):
    return dns.rcode.to_text(m.rcode())


def values(m, section="answer", rdtype=None):
    return sorted(rd.to_text() for rr in getattr(m, section) for rd in rr
                  if rdtype is None or rr.rdtype == dns.rdatatype.from_text(rdtype))


# -- answers ------------------------------------------------------------------------------------
def test_clusterip_headless_endpoints():
    e = engine()
    assert values(ask(e, "web.default.svc." + D)) == ["10.96.0.20"]
    assert values(ask(e, "kubernetes.default.svc." + D)) == ["10.96.0.1"]
    assert values(ask(e, "db.default.svc." + D)) == ["10.244.1.7", "10.244.2.8"]   # ready only
    assert values(ask(e, "db-0.db.default.svc." + D)) == ["10.244.1.7"]
    assert rcode(ask(e, "db-2.db.default.svc." + D)) == "NXDOMAIN"                  # not ready
    assert values(ask(e, "10-244-1-5.web.default.svc." + D)) == ["10.244.1.5"]      # ClusterIP too
    assert rcode(ask(e, "10-244-2-6.web.default.svc." + D)) == "NXDOMAIN"
    assert values(ask(e, "peers.shop.svc." + D)) == ["10.244.1.11", "10.244.2.12"]
    m = ask(e, "empty.default.svc." + D)                                             # headless, none ready
    assert rcode(m) == "NXDOMAIN" and values(m, "authority", "SOA")
    assert ask(e, "web.default.svc." + D).flags & dns.flags.AA


def test_srv_and_additional():
    e = engine()
    m = ask(e, "_http._tcp.web.default.svc." + D, "SRV")
    assert values(m) == ["0 100 80 web.default.svc.cluster.local."]
    assert values(m, "additional", "A") == ["10.96.0.20"]
    m = ask(e, "_pg._tcp.db.default.svc." + D, "SRV")
    assert values(m) == ["0 50 5432 db-0.db.default.svc.cluster.local.", "0 50 5432 db-1.db.default.svc.cluster.local."]
    assert values(m, "additional", "A") == ["10.244.1.7", "10.244.2.8"]
    assert rcode(ask(e, "_nope._tcp.web.default.svc." + D, "SRV")) == "NXDOMAIN"
    assert rcode(ask(e, "_pg._udp.db.default.svc." + D, "SRV")) == "NXDOMAIN"


def test_externalname():
    e = engine()
    m = ask(e, "alias.default.svc." + D)           # target inside the domain: chased from the zone
    assert values(m, rdtype="CNAME") == ["web.default.svc.cluster.local."] and values(m, rdtype="A") == ["10.96.0.20"]
    assert values(ask(e, "alias.default.svc." + D, "CNAME")) == ["web.default.svc.cluster.local."]
    job = ask(e, "ext.default.svc." + D)           # outside: the server asks an upstream
    assert isinstance(job, Chase) and job.target.to_text() == "www.example.org."
    assert not isinstance(ask(e, "ext.default.svc." + D, "CNAME"), Chase)
    import dns.rrset
    a = dns.rrset.from_text("www.example.org.", 60, "IN", "A", "192.0.2.7")
    m = dns.message.from_wire(job.finish([a]))
    assert values(m, rdtype="CNAME") == ["www.example.org."] and values(m, rdtype="A") == ["192.0.2.7"]
    m = dns.message.from_wire(ask(e, "ext.default.svc." + D).finish(None))
    assert rcode(m) == "NOERROR" and not m.answer     # CoreDNS: nothing when the target does not resolve


def test_pods_insecure_verified_disabled():
    e = engine()
    assert values(ask(e, "10-1-2-3.shop.pod." + D)) == ["10.1.2.3"]        # insecure: any address
    assert rcode(ask(e, "10-1-2-3.shop.pod." + D, "AAAA")) == "NOERROR"
    assert not ask(e, "10-1-2-3.shop.pod." + D, "AAAA").answer
    assert rcode(ask(e, "10-1-2-3.nowhere.pod." + D)) == "NXDOMAIN"        # namespace must exist
    assert rcode(ask(e, "300-1-2-3.shop.pod." + D)) == "NXDOMAIN"
    assert rcode(ask(e, "web.shop.pod." + D)) == "NXDOMAIN"
    v = engine(DnsSettings(pods="verified"))
    assert values(ask(v, "10-244-2-20.shop.pod." + D)) == ["10.244.2.20"]
    assert rcode(ask(v, "10-244-2-20.default.pod." + D)) == "NXDOMAIN"     # wrong namespace
    assert rcode(ask(v, "10-1-2-3.shop.pod." + D)) == "NXDOMAIN"
    assert rcode(ask(v, "shop.pod." + D)) == "NOERROR"
    d = engine(DnsSettings(pods="disabled"))
    assert rcode(ask(d, "10-1-2-3.shop.pod." + D)) == "NXDOMAIN"
    assert rcode(ask(d, "shop.pod." + D)) == "NXDOMAIN"                     # CoreDNS: disabled
    assert rcode(ask(d, "pod." + D)) == "NOERROR"


def test_ptr_reverse_and_forward():
    e = engine()
    assert values(ask(e, "20.0.96.10.in-addr.arpa.", "PTR")) == ["web.default.svc.cluster.local."]
    assert values(ask(e, "7.1.244.10.in-addr.arpa.", "PTR")) == ["db-0.db.default.svc.cluster.local."]
    assert values(ask(e, "11.1.244.10.in-addr.arpa.", "PTR")) == ["10-244-1-11.peers.shop.svc.cluster.local."]
    m = ask(e, "99.9.244.10.in-addr.arpa.", "PTR")                          # inside reverse: NXDOMAIN
    assert rcode(m) == "NXDOMAIN" and values(m, "authority", "SOA")
    assert isinstance(ask(e, "8.8.8.8.in-addr.arpa.", "PTR"), Forward)      # outside: forwarded
    assert isinstance(ask(e, "example.com."), Forward)
    none = engine(dataclasses.replace(SETTINGS, upstreams=()))
    assert rcode(ask(none, "example.com.")) == "SERVFAIL"                    # no upstream: at once
    assert rcode(ask(none, "8.8.8.8.in-addr.arpa.", "PTR")) == "SERVFAIL"


def test_nxdomain_vs_nodata():
    e = engine()
    for name, t in [("default.svc.", "A"), ("svc.", "A"), ("pod.", "A"), ("", "A"), ("shop.pod.", "A"),
                    ("web.default.svc.", "AAAA"), ("web.default.svc.", "TXT"), ("_tcp.web.default.svc.", "SRV"),
                    ("kube-system.svc.", "SRV"), ("db-0.db.default.svc.", "MX")]:
        m = ask(e, name + D, t)
        assert rcode(m) == "NOERROR" and not m.answer, (name, t)
        assert [rr.name.to_text() for rr in m.authority] == [D], (name, t)
    for name in ["nope.default.svc.", "nowhere.svc.", "web.nowhere.svc.", "foo.", "a.b.c.web.default.svc.",
                 "web.default.pod.", "x.nowhere.pod."]:
        m = ask(e, name + D)
        assert rcode(m) == "NXDOMAIN" and not m.answer, name


def test_apex_soa_ns_version_ttl():
    e = engine()
    soa = ask(e, D, "SOA")
    assert values(soa)[0].startswith("ns.dns.cluster.local. hostmaster.cluster.local.")
    ns = ask(e, D, "NS")
    assert values(ns) == ["kube-dns.kube-system.svc.cluster.local."] and values(ns, "additional") == ["10.96.0.10"]
    assert values(ask(e, "ns.dns." + D)) == ["10.96.0.10"]
    v = ask(e, "dns-version." + D, "TXT")
    assert values(v) == ['"1.1.0"']
    t = ask(engine(dataclasses.replace(SETTINGS, ttl=7)), "web.default.svc." + D)
    assert t.answer[0].ttl == 7
    assert rcode(ask(e, D, "AXFR")) == "REFUSED"


def test_case_echo():
    e = engine()
    m = ask(e, "WeB.DeFault.SVC.Cluster.Local.")
    assert m.answer[0].name.to_text() == "WeB.DeFault.SVC.Cluster.Local." and values(m) == ["10.96.0.20"]
    assert m.question[0].name.to_text() == "WeB.DeFault.SVC.Cluster.Local."
    m = ask(e, "10-1-2-3.SHOP.pod.cluster.LOCAL.")
    assert m.answer[0].name.to_text() == "10-1-2-3.SHOP.pod.cluster.LOCAL."


def big_objects(n=60):
    o = objects()
    o["Service"].append(svc("big", cluster_ip="None", ports=[{"name": "http", "port": 80, "protocol": "TCP"}]))
    o["EndpointSlice"].append(eps("big", "default", [ep(f"10.244.3.{i}") for i in range(1, n + 1)],
                                  ports=[{"name": "http", "port": 80, "protocol": "TCP"}]))
    return o


def test_edns_and_truncation():
    e = engine(objs=big_objects())
    plain = ask(e, "web.default.svc." + D)
    assert plain.edns < 0 and plain.opt is None                                    # no OPT in, none out
    m = ask(e, "web.default.svc." + D, use_edns=0, payload=1400)
    assert m.edns == 0                                                              # OPT echoed
    assert rcode(ask(e, "web.default.svc." + D, use_edns=1)) == "BADVERS"
    small = ask(e, "big.default.svc." + D)                                          # 60 A > 512 bytes
    assert small.flags & dns.flags.TC and len(small.to_wire()) <= 512
    edns_small = ask(e, "big.default.svc." + D, use_edns=0, payload=600)        # honours the EDNS size
    assert edns_small.flags & dns.flags.TC and edns_small.edns == 0 and len(edns_small.to_wire()) <= 600
    big = ask(e, "big.default.svc." + D, use_edns=0, payload=4096)
    assert not big.flags & dns.flags.TC and len(values(big)) == 60
    tcp = ask(e, "big.default.svc." + D, tcp=True)
    assert not tcp.flags & dns.flags.TC and len(values(tcp)) == 60


def test_bad_packets():
    e = engine()
    good = dns.message.make_query("web.default.svc." + D, "A").to_wire()
    assert e.respond(good[:11], False)[0] is None                                   # short header: dropped
    resp = bytearray(good)
    resp[2] |= 0x80
    assert e.respond(bytes(resp), False)[0] is None                                 # a response: dropped
    for junk in (good[:20], good + b"\x00" * 3, b"\x12\x34\x01\x00" + b"\xff" * 38):
        out = dns.message.from_wire(e.respond(junk, False)[0]) if len(junk) >= 12 else None
        assert out is not None and out.rcode() == dns.rcode.FORMERR and out.id == struct.unpack("!H", junk[:2])[0]
    zero = bytearray(good)
    zero[4:6] = b"\x00\x00"
    m = dns.message.from_wire(e.respond(bytes(zero[:12]), False)[0])
    assert m.rcode() == dns.rcode.FORMERR                                           # qdcount 0
    two = dns.message.make_query("web.default.svc." + D, "A")
    two.question.append(two.question[0])
    assert dns.message.from_wire(e.respond(two.to_wire(), False)[0]).rcode() == dns.rcode.FORMERR
    n = dns.message.make_query("web.default.svc." + D, "SOA")
    n.set_opcode(dns.opcode.NOTIFY)
    assert dns.message.from_wire(e.respond(n.to_wire(), False)[0]).rcode() == dns.rcode.NOTIMP


# -- the running server ---------------------------------------------------------------------------

@pytest.fixture
def served(tmp_path):
    servers = []

    def start(zone: dict | None, **kw):
        path = str(tmp_path / f"zone{len(servers)}.json")
        if zone is not None:
            write_zone(path, zone)
        s = DnsServer(path, "127.0.0.1", 0, kw.get("health_port", 0), kw.get("ready_port", 0))
        s.start()
        servers.append(s)
        s.path = path
        return s
    yield start
    for s in servers:
        s.close()


def udp(server, name, rdtype="A", timeout=2.0, **kw):
    return dns.query.udp(dns.message.make_query(name, rdtype, **kw), "127.0.0.1", port=server.port, timeout=timeout)


def mutations(seed=1337, n=3000):
    rnd = random.Random(seed)
    base = [dns.message.make_query(n_, t, use_edns=rnd.choice([None, 0])).to_wire()
            for n_, t in [("web.default.svc." + D, "A"), ("_pg._tcp.db.default.svc." + D, "SRV"),
                          ("20.0.96.10.in-addr.arpa.", "PTR"), ("x.example.", "A")]]
    out = []
    for _ in range(n):
        b = bytearray(rnd.choice(base))
        kind = rnd.randrange(5)
        if kind == 0:
            for _ in range(rnd.randrange(1, 6)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif kind == 1:
            b = b[:rnd.randrange(len(b))]
        elif kind == 2:
            b = bytearray(rnd.randbytes(rnd.randrange(0, 600)))
        elif kind == 3:
            b += rnd.randbytes(rnd.randrange(1, 50))
        else:
            i = rnd.randrange(12, len(b))
            b[i:i] = rnd.randbytes(rnd.randrange(1, 30))
        out.append(bytes(b))
    hdr = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0)
    out += [
        hdr[:5],                                                      # truncated header
        hdr + b"\xc0\x0c" + b"\x00\x01\x00\x01",                      # pointer to itself: a loop
        hdr + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01",                 # pointer back to its start: a loop
        hdr + b"\x01a" * 220 + b"\x00\x00\x01\x00\x01",               # 220 labels (name > 255)
        hdr + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01",          # label of 64
        hdr + b"\x3f" + b"a" * 63 + b"\x00\x00\x01\x00\x01" + b"\xff" * 9,
        struct.pack("!HHHHHH", 8, 0x0100, 0, 0, 0, 0),                # qdcount 0
        struct.pack("!HHHHHH", 9, 0x0100, 65535, 65535, 65535, 65535),  # counts far beyond the data
        struct.pack("!HHHHHH", 10, 0x0100, 3, 0, 0, 0) + (b"\x01a\x00\x00\x01\x00\x01" * 3),
        b"", b"\x00",
    ]
    return out


def test_fuzz_udp_and_tcp_keep_serving(served):
    s = served(render_zone(objects(), SETTINGS))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.setblocking(False)
        for i, pkt in enumerate(mutations()):
            c.sendto(pkt, ("127.0.0.1", s.port))
            if i % 50 == 0:
                time.sleep(0.002)
                try:
                    while c.recv(65535):
                        pass
                except BlockingIOError:
                    pass
    assert values(udp(s, "web.default.svc." + D)) == ["10.96.0.20"]
    for pkt in mutations(seed=7, n=40)[-11:]:      # the crafted ones over TCP, one connection each
        with socket.create_connection(("127.0.0.1", s.port), timeout=2) as c:
            c.sendall(struct.pack("!H", len(pkt)) + pkt)
            c.settimeout(2)
            try:
                c.recv(65535)
            except OSError:
                pass
    m = dns.query.tcp(dns.message.make_query("web.default.svc." + D, "A"), "127.0.0.1", port=s.port, timeout=2)
    assert values(m) == ["10.96.0.20"]


def test_tcp_several_queries_one_connection(served):
    s = served(render_zone(objects(), SETTINGS))
    with socket.create_connection(("127.0.0.1", s.port), timeout=2) as c:
        names = ["web.default.svc." + D, "db.default.svc." + D, "nope.default.svc." + D]
        c.sendall(b"".join(struct.pack("!H", len(w)) + w for w in
                           (dns.message.make_query(n, "A").to_wire() for n in names)))
        got = []
        buf = b""
        while len(got) < 3:
            buf += c.recv(65535)
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                n = struct.unpack("!H", buf[:2])[0]
                got.append(dns.message.from_wire(buf[2:2 + n]))
                buf = buf[2 + n:]
    assert [rcode(m) for m in got] == ["NOERROR", "NOERROR", "NXDOMAIN"]


def test_reload_within_a_second_and_cache_dropped(served):
    s = served(render_zone(objects(), SETTINGS))
    assert values(udp(s, "web.default.svc." + D)) == ["10.96.0.20"]     # now cached
    o = objects()
    o["Service"][2]["spec"]["clusterIP"] = "10.96.0.77"
    write_zone(s.path, render_zone(o, SETTINGS))
    t0 = time.monotonic()
    while values(udp(s, "web.default.svc." + D)) != ["10.96.0.77"]:
        assert time.monotonic() - t0 < 1.5, "the new zone was not answered within a second"
        time.sleep(0.05)
    with open(s.path, "w") as f:                                          # a broken file: old zone kept
        f.write("{not json")
    time.sleep(0.5)
    assert values(udp(s, "web.default.svc." + D)) == ["10.96.0.77"]


def test_health_and_ready(served, tmp_path):
    hp, rp = free_port(), free_port()
    s = served(None, health_port=hp, ready_port=rp)

    def get(port, path):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).status
        except urllib.error.HTTPError as e:
            return e.code
    assert get(hp, "/health") == 200 and get(rp, "/ready") == 503
    assert rcode(udp(s, "web.default.svc." + D)) == "SERVFAIL"           # no zone yet
    write_zone(s.path, render_zone(objects(), SETTINGS))
    t0 = time.monotonic()
    while get(rp, "/ready") != 200:
        assert time.monotonic() - t0 < 2
        time.sleep(0.05)
    assert values(udp(s, "web.default.svc." + D)) == ["10.96.0.20"]


def upstream_zone():
    """A second server playing the Internet: domain example.org."""
    z = render_zone({"Namespace": []}, DnsSettings(domain="example.org"))
    z["records"].append(["www.example.org.", 60, "A", "192.0.2.7"])
    return z


def test_forwarding_and_externalname_chase(served):
    up = served(upstream_zone())
    s = served(render_zone(objects(), dataclasses.replace(SETTINGS, upstreams=(f"127.0.0.1:{up.port}",))))
    m = udp(s, "www.example.org.")
    assert values(m) == ["192.0.2.7"] and rcode(m) == "NOERROR"
    assert rcode(udp(s, "nope.example.org.")) == "NXDOMAIN"
    m = udp(s, "ext.default.svc." + D)
    assert values(m, rdtype="CNAME") == ["www.example.org."] and values(m, rdtype="A") == ["192.0.2.7"]
    m = dns.query.tcp(dns.message.make_query("www.example.org.", "A"), "127.0.0.1", port=s.port, timeout=3)
    assert values(m) == ["192.0.2.7"]


def _wait_down(s, limit):
    t0 = time.monotonic()
    while s.upstreams.healthy():
        assert time.monotonic() - t0 < limit, "the upstream was not marked down"
        time.sleep(0.05)


def test_refused_upstream_servfail_at_once(served):
    s = served(render_zone(objects(), dataclasses.replace(SETTINGS, upstreams=(f"127.0.0.1:{free_port()}",))))
    _wait_down(s, 3)
    t0 = time.monotonic()
    assert rcode(udp(s, "example.com.")) == "SERVFAIL"
    assert time.monotonic() - t0 < 0.1
    assert values(udp(s, "web.default.svc." + D)) == ["10.96.0.20"]     # cluster names unaffected


def test_silent_upstream_servfail_at_once(served):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:      # takes queries, never answers
        hole.bind(("127.0.0.1", 0))
        s = served(render_zone(objects(), dataclasses.replace(SETTINGS, upstreams=("127.0.0.1:%d" % hole.getsockname()[1],))))
        _wait_down(s, forward.DOWN_AFTER * (forward.PROBE_INTERVAL + forward.PROBE_TIMEOUT) + 2)
        t0 = time.monotonic()
        assert rcode(udp(s, "example.com.")) == "SERVFAIL"
        assert time.monotonic() - t0 < 0.1


def test_upstream_recovers(served):
    port = free_port()
    s = served(render_zone(objects(), dataclasses.replace(SETTINGS, upstreams=(f"127.0.0.1:{port}",))))
    _wait_down(s, 3)
    path = s.path + ".up"
    write_zone(path, upstream_zone())
    up = DnsServer(path, "127.0.0.1", port, 0, 0)
    up.start()
    try:
        t0 = time.monotonic()
        while not s.upstreams.healthy():
            assert time.monotonic() - t0 < 3
            time.sleep(0.05)
        assert values(udp(s, "www.example.org.")) == ["192.0.2.7"]
    finally:
        up.close()


def test_zone_json_roundtrip_is_what_the_server_reads(tmp_path):
    z = render_zone(objects(), SETTINGS)
    assert Index(json.loads(json.dumps(z))).namespaces == {"default", "kube-system", "shop"}


def test_udp_cache_keys_on_edns_size_and_reload_warms_it(served):
    s = served(render_zone(big_objects(), SETTINGS))
    name = "big.default.svc." + D
    for _ in range(2):   # the second round comes from the cache: each size keeps its own reply
        assert udp(s, name, use_edns=0, payload=600).flags & dns.flags.TC
        full = udp(s, name, use_edns=0, payload=4096)
        assert not full.flags & dns.flags.TC and len(values(full)) == 60
        assert udp(s, name).flags & dns.flags.TC and udp(s, name).edns < 0
    o = big_objects(61)
    write_zone(s.path, render_zone(o, SETTINGS))
    t0 = time.monotonic()
    while len(values(udp(s, name, use_edns=0, payload=4096))) != 61:
        assert time.monotonic() - t0 < 1.5
        time.sleep(0.05)
    assert len(s.state.udp) >= 3     # the old cache's queries were answered again from the new zone


def test_a_prober_hanging_up_leaves_no_traceback_in_the_log(capsys):
    from netlab.dns.server import QuietHTTPServer
    httpd = QuietHTTPServer(("127.0.0.1", 0), None)
    try:
        for exc in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
            try:
                raise exc
            except OSError:
                httpd.handle_error(None, ("127.0.0.1", 1))
        assert capsys.readouterr().err == ""
        try:
            raise ValueError("a real bug")
        except ValueError:
            httpd.handle_error(None, ("127.0.0.1", 1))
        assert "ValueError: a real bug" in capsys.readouterr().err
    finally:
        httpd.server_close()
