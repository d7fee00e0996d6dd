"""The BGP benchmark's pure pieces (benchmarks/bgp_watch.py, benchmarks/bgp_bench.py): /proc/net/route
parsed, link flags read, the watchers' events turned into intervals, the per-backend route check. No root."""
from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bgp_bench  # noqa: E402
import bgp_watch  # noqa: E402

HEAD = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def row(iface: str, dst: str, gw: str, mask: str) -> str:
    """A /proc/net/route line as the kernel prints it: the 32-bit values in hex, in the host's byte order."""
    h = lambda ip: "%08X" % struct.unpack("=I", socket.inet_aton(ip))[0]  # noqa: E731
    return f"{iface}\t{h(dst)}\t{h(gw)}\t0003\t0\t0\t0\t{h(mask)}\t0\t0\t0\n"


def test_proc_routes_reads_destinations_and_prefix_lengths():
    text = HEAD + row("eth0", "0.0.0.0", "172.18.0.1", "0.0.0.0") + \
        row("eth0", "10.244.2.0", "172.18.0.4", "255.255.255.0") + row("eth0", "172.18.0.0", "0.0.0.0", "255.255.0.0")
    assert bgp_watch.proc_routes(text) == {"0.0.0.0/0", "10.244.2.0/24", "172.18.0.0/16"}
    assert bgp_watch.proc_routes(HEAD) == set()


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's ip is needed")
def test_proc_routes_agrees_with_ip_route():
    # this process's namespace's main table, read the way the watcher reads it and as `ip route` lists it
    with open("/proc/self/net/route") as f:
        got = bgp_watch.proc_routes(f.read())
    listed = subprocess.run(["ip", "-4", "-o", "route", "show", "table", "main"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    want = set()
    for line in listed:
        dst = line.split()[0]
        want.add("0.0.0.0/0" if dst == "default" else dst if "/" in dst else f"{dst}/32")
    assert got == want


@pytest.mark.skipif(sys.byteorder != "little", reason="the kernel's hex is in the host's byte order")
def test_proc_routes_little_endian_text():
    assert bgp_watch.proc_routes(HEAD + "eth0\t0000F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n") == \
        {"10.244.0.0/24"}


def test_link_state_needs_admin_up_and_carrier():
    up, running = bgp_watch.IFF_UP, bgp_watch.IFF_RUNNING
    assert bgp_watch.link_state(up | running | 0x1000) == "up"
    assert bgp_watch.link_state(up) == "down"          # peer down: no carrier (a stopped node's eth0)
    assert bgp_watch.link_state(running) == "down"
    assert bgp_watch.link_state(0) == "down"


def test_first_after_and_intervals():
    ev = [(10.0, "present"), (15.2, "absent"), (20.0, "present"), (22.5, "absent")]
    assert bgp_bench.first_after(ev, 12.0, "absent") == 15.2
    assert bgp_bench.first_after(ev, 15.2, "absent") == 15.2
    assert bgp_bench.first_after(ev, 16.0, "absent") == 22.5
    assert bgp_bench.first_after(ev, 23.0, "absent") is None
    assert bgp_bench.intervals(10.0, {"a": 15.23456, "b": None}) == {"a": 5.2346, "b": None}


def test_summarize_median_and_max():
    s = bgp_bench.summarize([{"x": 5.0, "y": None}, {"x": 4.0, "y": 1.0}, {"x": 6.5, "y": 3.0}], ["x", "y"])
    assert s["x"] == {"median": 5.0, "max": 6.5, "n": 3}
    assert s["y"] == {"median": 2.0, "max": 3.0, "n": 2}


def test_route_ok_tells_the_backends_apart():
    bird = "10.244.1.0/24 via 172.18.0.3 dev eth0 proto bird metric 32"
    static = "10.244.1.0/24 via 172.18.0.3 dev eth0 proto static"
    vxlan = "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink"
    assert bgp_bench.route_ok("bgp", bird, "172.18.0.3")
    assert not bgp_bench.route_ok("bgp", static, "172.18.0.3")
    assert not bgp_bench.route_ok("bgp", bird, "172.18.0.4")
    assert bgp_bench.route_ok("host-gw", static, "172.18.0.3")
    assert not bgp_bench.route_ok("host-gw", bird, "172.18.0.3")
    assert bgp_bench.route_ok("vxlan", vxlan, "172.18.0.3")
    assert not bgp_bench.route_ok("vxlan", static, "172.18.0.3")


def test_scenario_is_a_three_node_bgp_lab_with_the_timers():
    from netlab.spec.parse import load_text
    sc = load_text(bgp_bench.scenario("bcvtest", 9, 3), "<test>")
    assert sc.name == "bcvtest"
    assert [n.name for n in sc.nodes] == ["w1", "w2", "w3"]
    assert sc.networking.backend == "bgp"
    assert (sc.networking.bgp.hold_time, sc.networking.bgp.keepalive_time) == (9, 3)
    assert not sc.pods and not sc.services
