"""netlab.live.prober on a real lab: probes go from the node's network namespace to a pod, against
netlab's built-in server and against small servers started inside the pod's namespaces."""
from __future__ import annotations

import ipaddress
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import pytest

from netlab.dataplane import lab as labmod
from netlab.live import prober
from netlab.live.prober import FAILURE, SUCCESS, NodeProbers, run_probe, submit_probe

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: n1}]
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: n1
  containers:
  - name: app
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    args: [netexec, --http-port=8080]   # with no args the image runs its CMD, pause: nothing listens
    ports: [{name: http, containerPort: 8080}]
"""
PORTS = [{"name": "http", "containerPort": 8080}, {"name": "silent", "containerPort": 9000}]
SILENT = 9000   # accepts connections and never answers (started by the `silent` fixture)
CLOSED = 9999   # nothing listens
LISTENER = r"""
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
print("listening", flush=True)
held = []
while True:
    held.append(s.accept()[0])
"""


@pytest.fixture
def pool():
    p = NodeProbers()
    yield p
    p.close()


@pytest.fixture
def web(lab):
    """The lab up, and (pod, node) of its one pod."""
    lab.up(SCENARIO)
    return lab.pod("web"), lab.node("n1")


@pytest.fixture
def silent(lab, web):
    pod, _ = web
    proc = subprocess.Popen(labmod.pod_exec_argv(lab.name, pod, [sys.executable, "-c", LISTENER, str(SILENT)]),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "listening"
        yield SILENT
    finally:
        proc.kill()
        proc.wait()


def probe_of(web, probe, pool, lab=None):
    pod, node = web
    uts = labmod.uts_path(lab.name, pod) if lab else None
    return run_probe(probe, str(pod.ip), pod.netns, PORTS, node.netns, uts, probers=pool)


def http(path, port="http", **kw):
    return {"httpGet": {"path": path, "port": port}, "timeoutSeconds": 1, **kw}


def test_http_probes_against_the_pods_server(web, pool):
    pod, node = web
    url = f"http://{pod.ip}:8080"
    assert probe_of(web, http("/hostName"), pool) == (SUCCESS, "web")
    assert probe_of(web, http("/hostName", port=8080), pool) == (SUCCESS, "web")
    assert probe_of(web, http("/echo?msg=x&code=503"), pool) == (FAILURE, "HTTP probe failed with statuscode: 503")
    assert probe_of(web, http("/no/such/path"), pool) == (FAILURE, "HTTP probe failed with statuscode: 404")
    assert probe_of(web, http("/header?key=User-Agent"), pool) == (SUCCESS, "kube-probe/1.33")
    # (locations percent-encoded: the built-in server takes a target with "://" anywhere for absolute-form)
    assert probe_of(web, http("/redirect?location=/hostName"), pool) == (SUCCESS, "web")
    assert probe_of(web, http(f"/redirect?location={quote(url, safe='')}%2FhostName&code=307"), pool) == (
        SUCCESS, "web")
    assert probe_of(web, http("/redirect?location=/echo%3Fcode%3D503"), pool) == (
        FAILURE, "HTTP probe failed with statuscode: 503")
    assert probe_of(web, http("/redirect?location=http%3A%2F%2F10.1.2.3%2Fx"), pool) == (
        SUCCESS, 'Probe terminated redirects, Response body: <a href="http://10.1.2.3/x">Found</a>.\n\n')
    assert probe_of(web, http("/healthz", port=CLOSED), pool) == (
        FAILURE, f'Get "http://{pod.ip}:{CLOSED}/healthz": dial tcp {pod.ip}:{CLOSED}: connect: connection refused')


def test_the_probe_comes_from_the_nodes_namespace(web, pool):
    """The server sees the node's cni0 address (the podCIDR's .1) as the probe's source."""
    pod, node = web
    result, output = probe_of(web, http("/clientip"), pool)
    assert result == SUCCESS, output
    source = ipaddress.ip_address(output.rsplit(":", 1)[0])
    assert source == node.gateway == node.pod_cidr.network_address + 1
    assert source != pod.ip


def test_http_timeout_against_a_server_that_never_answers(web, silent, pool):
    pod, _ = web
    t0 = time.monotonic()
    assert probe_of(web, http("/healthz", port="silent"), pool) == (
        FAILURE, f'Get "http://{pod.ip}:{SILENT}/healthz": context deadline exceeded '
                 "(Client.Timeout exceeded while awaiting headers)")
    assert 0.9 < time.monotonic() - t0 < 4.0   # 1 s, not a default or none


def test_tcp_socket_probes(web, silent, pool):
    pod, node = web
    assert probe_of(web, {"tcpSocket": {"port": "http"}}, pool) == (SUCCESS, "")
    assert probe_of(web, {"tcpSocket": {"port": SILENT}}, pool) == (SUCCESS, "")
    assert probe_of(web, {"tcpSocket": {"port": CLOSED}}, pool) == (
        FAILURE, f"dial tcp {pod.ip}:{CLOSED}: connect: connection refused")
    gone = str(node.pod_cidr.network_address + 200)     # no pod there: ARP goes unanswered
    t0 = time.monotonic()
    assert probe_of(web, {"tcpSocket": {"port": 80, "host": gone}, "timeoutSeconds": 1}, pool) == (
        FAILURE, f"dial tcp {gone}:80: i/o timeout")
    assert 0.9 < time.monotonic() - t0 < 4.0   # 1 s, not a default or none


def test_exec_probes_run_in_the_pods_namespaces(lab, web, pool):
    pod, node = web
    run = lambda argv, t=1: probe_of(web, {"exec": {"command": argv}, "timeoutSeconds": t}, pool, lab)  # noqa: E731
    assert run(["true"]) == (SUCCESS, "")
    assert run(["false"]) == (FAILURE, "")
    assert run(["sh", "-c", "echo out; echo err >&2; exit 3"]) == (FAILURE, "out\nerr\n")
    assert run(["hostname"]) == (SUCCESS, "web\n")                    # the pod's UTS namespace
    assert run(["cat", "/sys/class/net/eth0/address"])[0] == SUCCESS  # the pod's network namespace
    assert run(["ip", "-4", "-o", "addr", "show", "eth0"])[1].split()[3] == f"{pod.ip}/{node.pod_cidr.prefixlen}"
    t0 = time.monotonic()
    assert run(["sleep", "5"]) == (FAILURE, 'command "sleep 5" timed out')
    assert time.monotonic() - t0 < 4.0        # the 1 s timeout, not the command's 5 s
    # a timeout ends what the command started too (its own process group)
    t0 = time.monotonic()
    assert run(["sh", "-c", "sleep 31.5 & sleep 31.5"]) == (FAILURE, 'command "sh -c sleep 31.5 & sleep 31.5" timed out')
    assert time.monotonic() - t0 < 4.0 and subprocess.run(["pgrep", "-f", "sleep 31.5"]).returncode == 1
    assert run(["sh", "-c", "head -c 20000 /dev/zero | tr '\\0' x"]) == (SUCCESS, "x" * 10240)


def test_probes_share_a_few_threads_in_the_node_and_a_slow_one_delays_no_other(web, silent, pool, monkeypatch):
    pod, node = web

    def no_process(*a, **kw):
        raise AssertionError("an httpGet/tcpSocket probe started a process")
    monkeypatch.setattr(subprocess, "Popen", no_process)
    slow = [submit_probe(http("/", port=SILENT, timeoutSeconds=6), str(pod.ip), pod.netns, PORTS, node.netns,
                         probers=pool) for _ in range(3)]
    t0 = time.monotonic()
    quick = [probe_of(web, http("/hostName"), pool) for _ in range(50)]
    # done before the slow ones' 6 s: none of them waited behind a slow one
    assert time.monotonic() - t0 < 5.0 and quick == [(SUCCESS, "web")] * 50
    assert [f.result(10)[1].endswith("(Client.Timeout exceeded while awaiting headers)") for f in slow] == [True] * 3
    assert 1 <= pool.workers(node.netns) <= 4
    pool.release(node.netns)
    assert not [t for t in threading.enumerate() if t.name == f"netlab-probe {node.netns}"]
    assert probe_of(web, http("/hostName"), pool) == (SUCCESS, "web") and pool.workers(node.netns) == 1


def test_a_node_namespace_that_went_away(lab, web, pool):
    pod, node = web
    assert probe_of(web, http("/hostName"), pool) == (SUCCESS, "web")
    assert pool.workers(node.netns) >= 1
    lab.down()
    for _ in range(3):
        assert probe_of(web, http("/hostName"), pool) == (FAILURE, f"netns {node.netns} does not exist")
    deadline = time.monotonic() + 3
    while pool.workers(node.netns) and time.monotonic() < deadline:   # no worker keeps the namespace alive
        time.sleep(0.1)
    assert pool.workers(node.netns) == 0
