"""Smoke tests of the kernel features the IPVS proxy mode needs, run inside the VM of scripts/vm-run
(a stock Debian kernel; this machine's own kernel has no IPVS):

    sudo scripts/vm-run -- .venv/bin/python -m pytest tests/vm -q

tests/integration/test_vm.py does exactly that from the host. Python in the emulated VM is ~15x
slower than here, so everything is in one process: namespaces are made with `ip`, sockets are opened
inside them from short-lived threads (setns is per thread), and pyroute2 is imported once.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import socket
import subprocess
import threading

import pytest

if os.environ.get("NETLAB_IN_VM") != "1":
    pytest.skip("runs inside the IPVS test VM only: sudo scripts/vm-run -- .venv/bin/python -m pytest tests/vm "
                "(tests/integration/test_vm.py does it; scripts/vm-setup installs what it needs)",
                allow_module_level=True)

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*argv: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    if ns is not None:
        argv = ("ip", "netns", "exec", ns, *argv)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}"
    return r


def in_netns(name: str, fn):
    """fn() run on a throwaway thread inside namespace `name`; its result or exception."""
    box: dict = {}

    def target():
        try:
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {name}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["error"] = e
    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def netns():
    """Makes namespaces on demand (names nl.vm-<hex>-<role>); all deleted at the end."""
    made: list[str] = []
    tag = secrets.token_hex(3)

    def make(role: str) -> str:
        name = f"nl.vm-{tag}-{role}"
        sh("ip", "netns", "add", name)
        made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name
    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_stock_kernel_has_the_modules():
    r = sh("modprobe", "-a", "ip_vs", "ip_vs_rr", "dummy", "sch_netem", "ipip")
    assert os.path.exists("/proc/net/ip_vs"), r.stderr
    from netlab.dataplane import kernelcheck
    k = kernelcheck.Kernel()
    assert kernelcheck.missing_for_ipvs(k) == []
    assert kernelcheck.has_ipvs(k) and kernelcheck.has_dummy(k) and kernelcheck.has_netem(k)


def test_ipvsadm_lists():
    sh("modprobe", "ip_vs")
    out = sh("ipvsadm", "-Ln").stdout
    assert "IP Virtual Server version" in out


def test_dummy_netem_ipip_in_a_netns(netns):
    ns = netns("dev")
    sh("ip", "-n", ns, "link", "add", "kube-ipvs0", "type", "dummy")
    sh("ip", "-n", ns, "addr", "add", "10.96.0.10/32", "dev", "kube-ipvs0")
    assert "10.96.0.10/32" in sh("ip", "-n", ns, "-o", "addr", "show", "dev", "kube-ipvs0").stdout
    sh("tc", "-n", ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")
    assert "netem" in sh("tc", "-n", ns, "qdisc", "show", "dev", "lo").stdout
    sh("ip", "-n", ns, "link", "add", "tunl-test", "type", "ipip", "remote", "192.0.2.1", "local", "10.96.0.10")


VIP, VPORT = "10.96.0.10", 80
POD_IP, POD_PORT = "10.244.0.2", 8080


def _program_ipvs(node: str) -> dict:
    """In `node`: a TCP virtual service VIP:VPORT (rr) with one real server POD_IP:POD_PORT in masquerade
    mode, added with pyroute2 and read back from the kernel."""
    from pyroute2 import IPVS, IPVSDest, IPVSService

    def work():
        with IPVS() as ipvs:
            svc = IPVSService(addr=VIP, port=VPORT, protocol=socket.IPPROTO_TCP, sched_name="rr")
            ipvs.service("add", service=svc)
            # fwd_method 0 = IP_VS_CONN_F_MASQ (pyroute2's default, 3, is direct routing)
            ipvs.dest("add", service=svc, dest=IPVSDest(addr=POD_IP, port=POD_PORT, fwd_method=0, weight=1))
            [smsg] = ipvs.service("dump")
            s = IPVSService.from_message(smsg)
            [dmsg] = ipvs.dest("dump", service=s)
            d = IPVSDest.from_message(dmsg)
            # IPVSDest.from_message keeps the default fwd_method (3): read the attribute itself
            fwd = dmsg.get_attr("IPVS_CMD_ATTR_DEST").get_attr("IPVS_DEST_ATTR_FWD_METHOD")
            return {"svc": (s["addr"], s["port"], s["protocol"], s["sched_name"]),
                    "dest": (d["addr"], d["port"], d["weight"], fwd)}
    return in_netns(node, work)


def test_pyroute2_ipvs_add_and_read_back(netns):
    sh("modprobe", "ip_vs")
    node = netns("node")
    # IPVS refuses a real server whose address type it can't resolve (EINVAL) in a namespace without
    # any route: give it one, as a node has.
    sh("ip", "-n", node, "link", "add", "kube-ipvs0", "type", "dummy")
    sh("ip", "-n", node, "addr", "add", f"{VIP}/32", "dev", "kube-ipvs0")
    got = _program_ipvs(node)
    assert got == {"svc": (VIP, VPORT, socket.IPPROTO_TCP, "rr"), "dest": (POD_IP, POD_PORT, 1, 0)}
    listing = sh("ipvsadm", "-Ln", ns=node).stdout
    assert f"TCP  {VIP}:{VPORT} rr" in listing
    assert f"-> {POD_IP}:{POD_PORT}" in listing and "Masq" in listing
    assert f"{VIP}:{VPORT}" not in sh("ipvsadm", "-Ln").stdout  # per namespace: the root one is empty


def test_tcp_through_ipvs_masquerade(netns):
    """client ns -> VIP (on kube-ipvs0 in the node ns) -> IPVS masquerade -> real server in the pod ns."""
    sh("modprobe", "ip_vs")
    client, node, pod = netns("client"), netns("node"), netns("pod")
    script = f"""
ip link add eth0 netns {client} type veth peer name to-client netns {node}
ip link add eth0 netns {pod} type veth peer name to-pod netns {node}
ip -n {node} link set to-client up
ip -n {node} link set to-pod up
ip -n {node} addr add 10.0.0.1/24 dev to-client
ip -n {node} addr add 10.244.0.1/24 dev to-pod
ip -n {node} link add kube-ipvs0 type dummy
ip -n {node} addr add {VIP}/32 dev kube-ipvs0
ip netns exec {node} sysctl -qw net.ipv4.ip_forward=1
ip -n {client} addr add 10.0.0.2/24 dev eth0
ip -n {client} link set eth0 up
ip -n {client} route add default via 10.0.0.1
ip -n {pod} addr add {POD_IP}/24 dev eth0
ip -n {pod} link set eth0 up
ip -n {pod} route add default via 10.244.0.1
"""
    sh("sh", "-ec", script)
    _program_ipvs(node)

    def listen():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((POD_IP, POD_PORT))
        s.listen(1)
        return s
    srv = in_netns(pod, listen)
    seen: dict = {}

    def serve():
        with contextlib.suppress(OSError):
            conn, peer = srv.accept()
            with conn:
                seen["peer"] = peer[0]
                data = conn.recv(100)
                conn.sendall(b"pod says " + data)
    srv.settimeout(30)
    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def connect():
        c = socket.create_connection((VIP, VPORT), timeout=20)
        with c:
            c.sendall(b"hello")
            return c.recv(100)
    try:
        reply = in_netns(client, connect)
    finally:
        t.join(30)
        srv.close()
    assert reply == b"pod says hello"
    assert seen["peer"] == "10.0.0.2"     # masquerade mode rewrites the destination only
    conns = sh("ipvsadm", "-Lnc", ns=node).stdout
    assert "10.0.0.2:" in conns and f"{VIP}:{VPORT}" in conns and f"{POD_IP}:{POD_PORT}" in conns
