"""kube-proxy's userspace mode on real namespaces: a proxy process per node behind REDIRECT/DNAT rules.

ClusterIP and NodePort reach every backend from a pod, from a node and from the external host; the
backend sees one of the node's addresses as the client (the client IP is lost); ClientIP affinity holds;
a request still succeeds when one backend's server is stopped (the proxy retries the next endpoint),
where iptables mode fails some requests; an endpoint change reaches the running proxy without a restart
and without dropping an established connection; `netlab probe`'s default matrix passes; `down` ends
the proxies.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlab import names
from netlab.dataplane import lab as labmod
from netlab.dataplane import layout, procs, proxy
from netlab.render.iptables import node_rules, to_restore

from .conftest import Lab, netlab_cli

DEFAULT = (Path(__file__).resolve().parents[2] / "scenarios" / "default.yaml").read_text()
SCENARIO = DEFAULT.replace("kubeProxyMode: iptables", "kubeProxyMode: userspace") + """\
---
apiVersion: v1
kind: Service
metadata:
  name: sticky
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  ports:
  - {name: http, port: 80, targetPort: http}
"""

KEEPALIVE = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
f = s.makefile("rb")
def ask():
    s.sendall(b"GET /hostname HTTP/1.1\r\nHost: x\r\n\r\n")
    length = 0
    while True:
        line = f.readline()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line in (b"\r\n", b""):
            break
    print(f.read(length).decode(), flush=True)
ask()
sys.stdin.readline()
ask()
"""


@pytest.fixture
def uslab():
    """A lab with a unique name; removed at the end of the test whatever happened."""
    handle = Lab(f"userspace-{secrets.token_hex(3)}")
    handle.control_loop = False   # the still picture: a stopped server stays an endpoint until the next up
    try:
        yield handle
    finally:
        labmod.down(handle.name)
        assert not labmod.lab_namespaces(handle.name), f"down left namespaces of {handle.name}"


def _web(lab) -> set[str]:
    return {p.name for p in lab.pods("web-")}


def _svc(lab, name: str):
    return next(s for s in lab.cluster.services if s.name == name)


def _node_addresses(lab, node: str) -> set[str]:
    n = lab.node(node)
    return {str(n.ip), str(n.gateway), str(n.vtep_ip)}


def _proxy_pids(lab) -> dict[str, int]:
    out = {}
    for n in lab.cluster.nodes:
        got = procs.read_pidfile(layout.userspace_pidfile(lab.name, n.name))
        assert got and procs.owner_of(got[0]) == names.userspace_proxy_owner(lab.name, n.name), n.name
        out[n.name] = got[0]
    return out


def test_clusterip_and_nodeport_reach_every_backend_and_the_backend_sees_the_node(uslab):
    lab = uslab
    lab.up(SCENARIO)
    web, cip = _web(lab), _svc(lab, "web").cluster_ip
    assert len(web) == 3
    _proxy_pids(lab)     # one proxy per node, carrying the lab's owner tag
    # from a pod, from the node itself, from the external host to the NodePort on each node
    assert {lab.http(("pod", "client"), cip, 80, "/hostname") for _ in range(9)} == web
    assert {lab.http(("node", "demo-worker"), cip, 80, "/hostname") for _ in range(9)} == web
    for node in lab.cluster.nodes:
        assert {lab.http(("external", ""), node.ip, 30080, "/hostname") for _ in range(9)} == web, node.name
    assert {lab.http(("node", "demo-control-plane"), "127.0.0.1", 30080, "/hostname") for _ in range(9)} == web
    # UDP, through the ClusterIP: a session per client, round-robin too
    got = set()
    for _ in range(9):
        r = lab.udp(("pod", "client"), cip, 81, "hostname")
        assert r.returncode == 0, r.stdout + r.stderr
        got.add(r.stdout.strip())
    assert got == web
    # the client IP is lost: the backend sees the address of the node that proxied
    client = str(lab.pod("client").ip)
    for _ in range(3):
        seen = lab.http(("pod", "client"), cip, 80, "/clientip").rsplit(":", 1)[0]
        assert seen in _node_addresses(lab, "demo-worker") and seen != client, seen
        seen = lab.http(("external", ""), lab.node("demo-control-plane").ip, 30080, "/clientip").rsplit(":", 1)[0]
        assert seen in _node_addresses(lab, "demo-control-plane") and seen != str(lab.cluster.external_ip), seen
    # ClientIP affinity: one client keeps its backend
    sticky = _svc(lab, "sticky").cluster_ip
    assert len({lab.http(("pod", "client"), sticky, 80, "/hostname") for _ in range(8)}) == 1
    # the kernel holds the rendered rules as iptables-save prints them, the proxies their rendered config:
    # nothing to repair on a second up, and the proxies stay
    for node in lab.cluster.nodes:
        want = [r for r in to_restore(node_rules(lab.cluster, node)).splitlines() if _userspace_rule(r)]
        have = [r for r in lab.node_exec(node.name, ["iptables-save", "-t", "nat"]).stdout.splitlines()
                if _userspace_rule(r)]
        assert len(want) > 8 and sorted(have) == sorted(want), (have, want)
        assert proxy.backend("userspace").drift(lab.cluster, node) == []
    pids = _proxy_pids(lab)
    r = netlab_cli("up", "--lab", lab.name, "--no-control-loop", "-v", check=True)
    assert " 0 changes" in r.stdout, r.stdout
    assert _proxy_pids(lab) == pids


def _userspace_rule(line: str) -> bool:
    return line.startswith("-A KUBE-PORTALS-") or line.startswith("-A KUBE-NODEPORT-") or \
        " -j KUBE-PORTALS-" in line or " -j KUBE-NODEPORT-" in line


def _stop_one_backend(lab) -> str:
    victim = sorted(lab.pods("web-"), key=lambda p: p.name)[0]
    r = lab.ns_exec(lab.pod("client").netns, ["curl", "-sS", "--max-time", "5",
                                              f"http://{victim.ip}:8080/exit?code=0"])
    assert r.returncode == 52, r.stderr        # the container exits before it answers
    r = lab.ns_exec(lab.pod("client").netns, ["curl", "-sS", "--max-time", "2", f"http://{victim.ip}:8080/"])
    assert r.returncode == 7, r.stderr         # its port now refuses connections
    return victim.name


def _outcomes(lab, ip, n: int = 30) -> tuple[int, set[str]]:
    fails, answered = 0, set()
    for _ in range(n):
        r = lab.ns_exec(lab.pod("client").netns, ["curl", "-sS", "--max-time", "5", f"http://{ip}/hostname"])
        if r.returncode:
            fails += 1
        else:
            answered.add(r.stdout.strip())
    return fails, answered


def test_a_stopped_backend_fails_requests_in_iptables_mode_not_in_userspace_mode(uslab):
    lab = uslab
    lab.up(SCENARIO, proxy_mode="iptables")
    cip = _svc(lab, "web").cluster_ip
    victim = _stop_one_backend(lab)
    fails, answered = _outcomes(lab, cip)
    # iptables mode DNATs a third of the connections to the stopped server: refused
    assert fails > 0 and victim not in answered, (fails, answered)
    # the same lab switched to userspace mode (up restarts the stopped server; stop it again)
    lab.up(SCENARIO, proxy_mode="userspace")
    assert lab.cluster.networking.proxy_mode == "userspace"
    _proxy_pids(lab)
    victim = _stop_one_backend(lab)
    fails, answered = _outcomes(lab, cip)
    assert fails == 0 and answered == _web(lab) - {victim}, (fails, answered)
    log = Path(layout.userspace_log(lab.name, "demo-worker")).read_text()
    assert "trying another endpoint" in log, log
    # and back: the proxies end, their chains go
    lab.up(SCENARIO, proxy_mode="iptables")
    assert not [p for p, tag in procs.tagged([names.lab_owner_prefix(lab.name)]).items()
                if tag.endswith("/userspace-proxy")]
    save = lab.node_exec("demo-worker", ["iptables-save", "-t", "nat"]).stdout
    assert "KUBE-PORTALS" not in save and "KUBE-NODEPORT-HOST" not in save


def test_endpoint_changes_reach_the_running_proxy_and_keep_connections(uslab):
    lab = uslab
    lab.up(SCENARIO)
    pids = _proxy_pids(lab)
    cip = _svc(lab, "web").cluster_ip
    p = subprocess.Popen(labmod.netns_exec_argv(lab.pod("client").netns,
                                                [sys.executable, "-c", KEEPALIVE, str(cip), "80"]),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline().strip()
        assert first in _web(lab), first
        before = _web(lab)
        lab.up(SCENARIO.replace("replicas: 3", "replicas: 4"))
        added = _web(lab) - before
        assert len(added) == 1
        assert _proxy_pids(lab) == pids                      # reloaded (SIGHUP), not restarted
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == first          # the established connection goes on
        assert p.wait(timeout=10) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
    # the new endpoint takes its share of new connections
    assert {lab.http(("pod", "client"), cip, 80, "/hostname") for _ in range(12)} == _web(lab)


def test_a_proxy_a_killed_pass_left_on_the_config_before_is_reloaded(uslab):
    """A pass killed between writing a node's proxy config and the proxy's SIGHUP leaves the file new and
    the proxy on the config before; the file is marked until the reload is seen through, so the next
    pass reloads it although the file already holds what it wants, and the new endpoint is used."""
    import signal
    from netlab.dataplane import state
    lab = uslab
    lab.up(SCENARIO)
    node = lab.pod("client").node
    cfg, pidfile = layout.userspace_config(lab.name, node), layout.userspace_pidfile(lab.name, node)
    before = open(cfg).read()
    four = SCENARIO.replace("replicas: 3", "replicas: 4")
    lab.up(four)
    after = open(cfg).read()
    assert after != before and not state.reload_pending(cfg)
    pid, gen = procs.read_pidfile(pidfile)
    with open(cfg, "w") as f:   # the proxy back on the config of three endpoints ...
        f.write(before)
    os.kill(pid, signal.SIGHUP)
    procs.wait_pidfiles([(pidfile, pid, gen)], timeout=10)
    state.begin_reload(cfg, after)   # ... and the file as a pass killed before its SIGHUP leaves it
    cip = _svc(lab, "web").cluster_ip
    assert {lab.http(("pod", "client"), cip, 80, "/hostname") for _ in range(12)} != _web(lab)
    lab.up(four)
    assert procs.read_pidfile(pidfile) == (pid, gen + 2) and not state.reload_pending(cfg)
    assert {lab.http(("pod", "client"), cip, 80, "/hostname") for _ in range(12)} == _web(lab)


def test_probe_default_matrix_passes_and_down_ends_the_proxies(uslab):
    lab = uslab
    lab.up(SCENARIO)
    r = netlab_cli("probe", "--lab", lab.name, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 not" in r.stdout, r.stdout[-500:]
    pids = list(_proxy_pids(lab).values())
    labmod.down(lab.name)
    deadline = time.monotonic() + 5
    while any(procs.start_time(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if procs.start_time(pid)]


def test_the_control_loop_restarts_a_proxy_that_died(uslab):
    lab = uslab
    lab.control_loop = True
    lab.up(SCENARIO)
    cip = _svc(lab, "web").cluster_ip
    pid = _proxy_pids(lab)["demo-worker"]
    procs.terminate([], [pid], grace=0)          # SIGTERM: the proxy removes its pidfile and ends

    def back() -> bool:
        got = procs.read_pidfile(layout.userspace_pidfile(lab.name, "demo-worker"))
        return bool(got and got[0] != pid and procs.start_time(got[0]))
    deadline = time.monotonic() + 30
    while not back() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert back(), "the control loop did not start the node's proxy again"
    assert lab.http(("pod", "client"), cip, 80, "/hostname") in _web(lab)


POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
"""


def test_a_policy_the_mode_cannot_enforce_is_refused_not_run_weakened(tmp_path):
    """The proxy connects to the pods from the node, which policies always allow: in userspace mode a
    NetworkPolicy would not hold for Service traffic. `apply` of one to a userspace lab, and `up
    --proxy-mode userspace` of a scenario that has one, are refused in one line (exit 2) and change nothing."""
    name = f"userspace-{secrets.token_hex(3)}"
    scenario, policy = tmp_path / "lab.yaml", tmp_path / "policy.yaml"
    scenario.write_text(DEFAULT)
    policy.write_text(POLICY)
    try:
        netlab_cli("up", str(scenario), "--lab", name, "--proxy-mode", "userspace", check=True, timeout=300)
        r = netlab_cli("apply", "-f", str(policy), "--lab", name)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.strip().splitlines() == [
            "error: NetworkPolicy default/deny-web: kubeProxyMode userspace cannot enforce it (its proxy connects "
            "to the pods from the node, which policies always allow); use kubeProxyMode iptables, nftables or "
            "ipvs, or remove the policy"], r.stderr
        assert "deny-web" not in netlab_cli("get", "netpol", "--lab", name, check=True).stdout
        # the other way round: a lab whose scenario has the policy is not switched to userspace
        with_policy = tmp_path / "with-policy.yaml"
        with_policy.write_text(DEFAULT + "---\n" + POLICY)
        netlab_cli("up", str(with_policy), "--lab", name, "--proxy-mode", "iptables", check=True, timeout=300)
        r = netlab_cli("up", str(with_policy), "--lab", name, "--proxy-mode", "userspace", timeout=300)
        assert r.returncode == 2 and "kubeProxyMode userspace cannot enforce it" in r.stderr, r.stdout + r.stderr
        assert "deny-web" in netlab_cli("get", "netpol", "--lab", name, check=True).stdout
        assert not procs.read_pidfile(layout.userspace_pidfile(name, "demo-worker")), "a userspace proxy started"
    finally:
        labmod.down(name)
        assert not labmod.lab_namespaces(name)
