"""Fixtures for privileged tests: each test gets its own lab (unique name) and always loses it again."""
from __future__ import annotations

import json
import os
import time
import pwd
import secrets
import subprocess
import sys

import pytest

from netlab.dataplane import lab as labmod
from netlab import lab_spec
from netlab.live.podsetup import service_objects
from netlab.spec.parse import load_text

if os.geteuid() != 0:
    pytest.skip("integration tests need root (they build real network namespaces): run them with sudo",
                allow_module_level=True)

UDP_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[4]) if len(sys.argv) > 4 else 2.0)
s.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recvfrom(65535)[0].decode())
except socket.timeout:
    print("TIMEOUT"); sys.exit(3)
"""


class Lab:
    def __init__(self, name: str):
        self.name = name
        self.cluster = None
        self.result = None
        # False: no control loop process; each `up` runs the passes itself, so what one `up` changed is
        # exactly what its result lists (tests that count changes)
        self.control_loop = True

    def up(self, text: str, **kw):
        sc = load_text(text, f"<test {self.name}>")
        sc.name = self.name
        kw.setdefault("control_loop", self.control_loop)
        self.result = lab_spec.up(sc, text, **kw)
        self.cluster = self.result.cluster
        return self.result

    def down(self):
        return labmod.down(self.name)

    # ---- lookups
    def pod(self, name: str, namespace: str = "default"):
        p = self.cluster.pod(namespace, name)
        assert p is not None, f"no pod {namespace}/{name}"
        return p

    def pods(self, prefix: str):
        return [p for p in self.cluster.pods if p.name.startswith(prefix)]

    def node(self, name: str):
        return self.cluster.node(name)

    # ---- running things inside
    def pod_exec(self, pod: str, argv: list[str], timeout: float = 15, namespace: str = "default",
                 container: str | None = None):
        """argv in the pod with its container's privileges (`netlab exec`): no NET_ADMIN, the host's files
        read-only. To change the pod's links, use `pod_debug`."""
        p = self.pod(pod, namespace)
        return subprocess.run(labmod.pod_exec_argv(self.name, p, argv, container,
                                                   service_objects(self.cluster)), capture_output=True, text=True,
                              timeout=timeout)

    def pod_debug(self, pod: str, argv: list[str], profile: str = "netadmin", timeout: float = 15,
                  namespace: str = "default"):
        """argv in the pod's network namespace with a `netlab debug` profile's privileges (netadmin: NET_ADMIN
        to break or repair its links; sysadmin: privileged, the host's files writable)."""
        p = self.pod(pod, namespace)
        return subprocess.run(labmod.pod_debug_argv(self.name, p, argv, profile), capture_output=True, text=True,
                              timeout=timeout)

    def ns_exec(self, netns: str, argv: list[str], timeout: float = 15):
        return subprocess.run(labmod.netns_exec_argv(netns, argv), capture_output=True, text=True, timeout=timeout)

    def node_exec(self, node: str, argv: list[str], timeout: float = 15):
        return self.ns_exec(self.node(node).netns, argv, timeout)

    def ext_exec(self, argv: list[str], timeout: float = 15):
        return self.ns_exec(self.cluster.external_netns, argv, timeout)

    def http(self, where: tuple[str, str], ip, port: int, path: str) -> str:
        """GET http://ip:port/path from ('pod'|'node'|'external', name); returns the body (asserts success)."""
        argv = ["curl", "-sS", "--max-time", "5", f"http://{ip}:{port}{path}"]
        r = self._run(where, argv)
        assert r.returncode == 0, f"curl from {where} to {ip}:{port}{path} failed: {r.stderr.strip()}"
        return r.stdout.strip()

    def udp(self, where: tuple[str, str], ip, port: int, msg: str, timeout: float = 2.0):
        return self._run(where, [sys.executable, "-c", UDP_CLIENT, str(ip), str(port), msg, str(timeout)])

    def ping(self, where: tuple[str, str], ip) -> bool:
        r = self._run(where, ["ping", "-c", "1", "-W", "2", str(ip)])
        return r.returncode == 0

    def _run(self, where, argv):
        kind, name = where
        if kind == "pod":   # the test's own client in the pod's network namespace (not `netlab exec`: no sandbox)
            return self.ns_exec(self.pod(name).netns, argv)
        if kind == "node":
            return self.node_exec(name, argv)
        return self.ext_exec(argv)


@pytest.fixture
def lab():
    """A lab with a unique name; removed at the end of the test whatever happened."""
    handle = Lab(f"t-{secrets.token_hex(4)}")
    try:
        yield handle
    finally:
        labmod.down(handle.name)
        assert not labmod.lab_namespaces(handle.name), f"down left namespaces of {handle.name}"


@pytest.fixture
def lab_factory():
    """Several labs in one test."""
    made = []

    def make() -> Lab:
        h = Lab(f"t-{secrets.token_hex(4)}")
        made.append(h)
        return h
    try:
        yield make
    finally:
        for h in made:
            labmod.down(h.name)


def nobody_uid() -> str | None:
    """The uid of the unprivileged `nobody` user (for netlab_cli(user=...)), or None if there is none."""
    try:
        return str(pwd.getpwnam("nobody").pw_uid)
    except KeyError:
        return None


def pods_table(lab: str) -> dict[str, list[str]]:
    """`netlab get pods --lab LAB` as the user sees it: each row's columns, by pod name."""
    out = netlab_cli("get", "pods", "--lab", lab, check=True).stdout
    return {line.split()[0]: line.split() for line in out.splitlines()[1:]}


def pods_json(lab: str) -> dict[str, dict]:
    """`netlab get pods --lab LAB -o json`: the Pod objects, by name."""
    doc = json.loads(netlab_cli("get", "pods", "--lab", lab, "-o", "json", check=True).stdout)
    return {i["metadata"]["name"]: i for i in doc["items"]}


def netlab_cli(*args: str, check: bool = False, user: str | None = None, timeout: float = 120):
    """Run the installed CLI the way a user does."""
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    argv = [exe, *args] if os.path.exists(exe) else [sys.executable, "-m", "netlab", *args]
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"netlab {' '.join(args)} failed ({r.returncode}): {r.stderr}"
    return r


def kubectl(lab, *args: str, check: bool = True, timeout: float = 180):
    """A netlab verb on `lab` (`--lab` added), as a user runs it."""
    return netlab_cli(*args, "--lab", lab.name, check=check, timeout=timeout)


def loop_log(lab) -> str:
    """The lab's control loop's log (what its passes did), for a failure's message."""
    from netlab.live import loop
    try:
        with open(loop.logfile(lab.name)) as f:
            return f.read()
    except OSError as e:
        return str(e)


def until(what: str, check, timeout: float = 60.0, every: float = 0.3, detail=None):
    """`check()`'s first true value, looked at every `every` s; an AssertionError naming `what` after
    `timeout` s, with what `detail()` (if given) says of the state then."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}"
                         + (f"\n{detail()}" if detail is not None else ""))
