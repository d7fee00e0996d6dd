"""The cluster DNS server as a process in a network namespace of its own, asked by real `dig` over
UDP and TCP: cluster answers, NXDOMAIN vs NODATA, PTR, reload within a second, SERVFAIL at once when
the upstream has no route, /health and /ready."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time

import pytest

from netlab.dns.zone import DnsSettings, render_zone, write_zone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "unit"))
from dns_objects import objects  # noqa: E402

DNS_IP = "10.96.0.10"
SETTINGS = DnsSettings(upstreams=("192.0.2.53",), reverse_cidrs=("10.96.0.0/12", "10.244.0.0/16"))


@pytest.fixture
def dns_ns(tmp_path):
    """A network namespace with only lo (+ the DNS ClusterIP on it) and the server running inside."""
    ns = f"dnscore-{secrets.token_hex(4)}"
    zone = str(tmp_path / "zone.json")
    write_zone(zone, render_zone(objects(), SETTINGS))
    proc = None
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{DNS_IP}/32", "dev", "lo"], check=True)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "netlab.dns.server",
                                 "--zone", zone, "--listen", DNS_IP], stderr=subprocess.PIPE)
        t0 = time.monotonic()
        while curl(ns, "/ready") != "200":
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() - t0 < 10, "the server did not become ready"
            time.sleep(0.1)
        yield ns, zone
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def curl(ns, path, port=None):
    port = port or (8181 if path == "/ready" else 8080)
    r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "--max-time", "2", f"http://{DNS_IP}:{port}{path}"], capture_output=True, text=True)
    return r.stdout.strip()


def dig(ns, *args):
    r = subprocess.run(["ip", "netns", "exec", ns, "dig", f"@{DNS_IP}", "+time=2", "+tries=1", *args],
                       capture_output=True, text=True, timeout=15)
    return r.stdout


def status(out):
    return out.split("status: ", 1)[1].split(",", 1)[0] if "status: " in out else "NO-ANSWER"


def short(ns, *args):
    return sorted(dig(ns, "+short", *args).split())


def test_dig_udp_tcp_answers_and_reload(dns_ns):
    ns, zone = dns_ns
    for transport in ([], ["+tcp"]):
        assert short(ns, *transport, "web.default.svc.cluster.local") == ["10.96.0.20"]
        assert short(ns, *transport, "db.default.svc.cluster.local") == ["10.244.1.7", "10.244.2.8"]
        assert short(ns, *transport, "SRV", "_pg._tcp.db.default.svc.cluster.local") == sorted(
            "0 50 5432 db-0.db.default.svc.cluster.local. 0 50 5432 db-1.db.default.svc.cluster.local.".split())
        assert short(ns, *transport, "-x", "10.96.0.20") == ["web.default.svc.cluster.local."]
        assert status(dig(ns, *transport, "nope.default.svc.cluster.local")) == "NXDOMAIN"
        nodata = dig(ns, *transport, "default.svc.cluster.local")
        assert status(nodata) == "NOERROR" and "ANSWER: 0" in nodata and "AUTHORITY: 1" in nodata
        assert status(dig(ns, *transport, "-x", "10.244.99.1")) == "NXDOMAIN"
    assert short(ns, "10-1-2-3.shop.pod.cluster.local") == ["10.1.2.3"]
    assert "WeB.DeFault.svc.cluster.local." in dig(ns, "+noall", "+answer", "WeB.DeFault.svc.cluster.local")

    o = objects()
    o["Service"][2]["spec"]["clusterIP"] = "10.96.0.77"
    write_zone(zone, render_zone(o, SETTINGS))
    t0 = time.monotonic()
    while short(ns, "web.default.svc.cluster.local") != ["10.96.0.77"]:
        assert time.monotonic() - t0 < 1.5, "the rewritten zone was not answered within a second"
        time.sleep(0.05)
    assert short(ns, "+tcp", "web.default.svc.cluster.local") == ["10.96.0.77"]


def test_no_route_to_upstream_is_servfail_at_once(dns_ns):
    ns, _ = dns_ns
    for name in ("example.com", "-x 192.0.2.1"):
        t0 = time.monotonic()
        out = dig(ns, *name.split())
        assert status(out) == "SERVFAIL" and time.monotonic() - t0 < 1.0, out
    assert curl(ns, "/health") == "200" and curl(ns, "/ready") == "200"
