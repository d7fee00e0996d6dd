"""One lab over three real hosts (hostNetwork.mode real), with three network namespaces of this test standing
in for the machines: each has its NIC `eth1` on a bridge of the test's own, an address, and one etcd member
(netlab.etcd.members, owned by a lab name of the test's that is not the lab's). `netlab up --etcd` runs in the
first stand-in and builds nothing; the agent of each host runs inside its own stand-in (`nsenter --net`), so
its "root namespace" is the stand-in's: it builds the host's namespace nl.<lab>.host.<h> and the VXLAN to the
other hosts over that stand-in's eth1. The probe matrix passes across the hosts; the stand-ins hold no device,
address or route of netlab's (only the VXLAN's UDP socket while the lab is up); `netlab down` removes it all.
Bad input: a host's interface missing on the machine, etcd endpoints that do not answer, `up` of real hosts
without etcd: one line, exit 2, nothing built.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time

import pytest

from netlab import names
from netlab.dataplane import lab as labmod
from netlab.dataplane import layout, nsfs
from netlab.etcd import members

NETLAB = os.path.join(os.path.dirname(sys.executable), "netlab")
PORT = 4789


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


def in_ns(netns: str, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", *argv], capture_output=True,
                          text=True, timeout=timeout)


def footprint(netns: str) -> dict:
    """What a stand-in machine's own namespace holds: links, addresses, routes (every table)."""
    def js(*argv: str):
        return json.loads(in_ns(netns, ["ip", "-j", *argv]).stdout or "[]")
    links = sorted((link["ifname"], link.get("link_type"), link.get("address"), link.get("mtu"))
                   for link in js("link", "show"))
    addrs = sorted((a["ifname"], i["local"], i["prefixlen"]) for a in js("addr", "show") for i in a["addr_info"])
    # (the kernel's own IPv6 link-local and multicast routes of eth1 come and go with its IPv6 autoconfiguration)
    routes = sorted(json.dumps(r, sort_keys=True) for fam in ("-4", "-6")
                    for r in js(fam, "route", "show", "table", "all")
                    if not (fam == "-6" and r.get("protocol") == "kernel"
                            and str(r.get("dst")).startswith(("fe80", "ff00"))))
    return {"links": links, "addrs": addrs, "routes": routes}


def udp_bound(netns: str, port: int) -> bool:
    out = in_ns(netns, ["ss", "-H", "-u", "-a", "-n", f"sport = :{port}"]).stdout
    return bool(out.strip())


class Machines:
    """Three stand-in machines (network namespaces m1..m3 with eth1 on the test's bridge) and their etcd."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.tag = tag
        self.lab = f"realhosts-{tag}"
        self.etcd_lab = f"rhetcd-{tag}"      # the etcd members' owner: not the lab (down of the lab leaves them)
        net = int(tag[:2], 16) % 200 + 20
        self.subnet = f"10.232.{net}.0/24"
        self.seg = f"rh-{tag}-seg"
        self.ns = {h: f"rh-{tag}-m{i + 1}" for i, h in enumerate("abc")}
        self.ips = {h: f"10.232.{net}.{i + 11}" for i, h in enumerate("abc")}
        self.made: list[str] = []
        try:
            _ip("netns", "add", self.seg)
            self.made.append(self.seg)
            _ip("-n", self.seg, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.seg, "link", "set", "br0", "up")
            for i, (h, ns) in enumerate(self.ns.items()):
                _ip("netns", "add", ns)
                self.made.append(ns)
                _ip("link", "add", "eth1", "netns", ns, "type", "veth", "peer", "name", f"p{i}", "netns", self.seg)
                _ip("-n", self.seg, "link", "set", f"p{i}", "master", "br0", "up")
                _ip("-n", ns, "addr", "add", f"{self.ips[h]}/24", "dev", "eth1")
                _ip("-n", ns, "link", "set", "eth1", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
            # a fourth machine on the segment whose NIC is eth2: no host of the lab can run there
            self.spare = f"rh-{tag}-m4"
            _ip("netns", "add", self.spare)
            self.made.append(self.spare)
            _ip("link", "add", "eth2", "netns", self.spare, "type", "veth", "peer", "name", "p3", "netns", self.seg)
            _ip("-n", self.seg, "link", "set", "p3", "master", "br0", "up")
            _ip("-n", self.spare, "addr", "add", f"10.232.{net}.14/24", "dev", "eth2")
            _ip("-n", self.spare, "link", "set", "eth2", "up")
            for h, ns in self.ns.items():
                members.start_member(self.etcd_lab, h, ns, self.ips[h], dict(self.ips))
            members.wait_healthy(self.endpoints().split(","), netns=self.ns["a"], timeout=60)
        except BaseException:
            self.close()
            raise

    def endpoints(self) -> str:
        return ",".join(members.client_url(ip) for ip in self.ips.values())

    def scenario(self) -> str:
        hosts = "\n".join(f"- {{name: {h}, address: {ip}, interface: eth1}}" for h, ip in self.ips.items())
        return f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: {self.lab}
hosts:
{hosts}
hostNetwork: {{mode: real, segment: {self.subnet}, mtu: 1500, port: {PORT}}}
nodes:
- {{role: control-plane, host: a}}
- {{role: worker, host: b}}
- {{role: worker, host: c}}
networking: {{backend: vxlan}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, labels: {{app: web}}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      tolerations: [{{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}}]
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{{containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: {self.lab}-worker2
  containers: [{{name: client, command: [sleep, infinity]}}]
"""

    def netlab(self, host: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`netlab ARGV` run on the stand-in machine of `host` (in its network namespace)."""
        return in_ns(self.ns[host], [NETLAB, *argv], timeout=timeout)

    def close(self) -> None:
        try:
            if self.lab in labmod.labs():
                # from the first machine, which reaches etcd (its keys go too); then from here, in case
                self.netlab("a", "down", self.lab) if self.ns["a"] in self.made else None
                if self.lab in labmod.labs():
                    labmod.down(self.lab)
        finally:
            try:
                labmod.down(self.etcd_lab)
            finally:
                for ns in reversed(self.made):
                    nsfs.delete_ns_file(nsfs.netns_path(ns))
                self.made.clear()


@pytest.fixture
def machines():
    m = Machines()
    try:
        yield m
    finally:
        m.close()


def lab_processes(lab: str) -> list[int]:
    from netlab.dataplane import procs
    return sorted(procs.tagged([names.lab_owner_prefix(lab)], host=True))


def test_real_hosts_across_three_machines(machines, tmp_path):
    m = machines
    path = tmp_path / "real.yaml"
    path.write_text(m.scenario())
    before = {h: footprint(ns) for h, ns in m.ns.items()}

    # real hosts without etcd: refused, nothing built
    r = m.netlab("a", "up", str(path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "needs the lab's store in etcd" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert m.lab not in labmod.labs()

    r = m.netlab("a", "up", str(path), "--etcd", m.endpoints())
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"netlab agent {m.lab} --host H" in r.stderr, r.stderr
    # up built nothing: every host's part is its agent's
    assert not [n for n in nsfs.list_netns() if n.startswith(f"nl.{m.lab}.")], nsfs.list_netns()
    assert not os.path.exists(layout.agent_pidfile(m.lab, "a"))

    # a host's interface missing on the machine (the fourth machine's NIC is eth2): one line, exit 2
    r = in_ns(m.spare, [NETLAB, "agent", m.lab, "--host", "b", "--etcd", m.endpoints()])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "host b's interface eth1 is not on this machine" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # etcd endpoints that do not answer: one line naming them, exit 2, nothing written
    other = f"realhosts-{m.tag}-x"
    dead = f"http://{m.ips['c'].rsplit('.', 1)[0]}.250:2379"
    r = m.netlab("b", "agent", other, "--host", "b", "--etcd", dead)
    assert r.returncode == 2 and dead in r.stderr, r.stdout + r.stderr
    assert not os.path.exists(layout.lab_dir(other))

    # each machine runs its own host's agent, inside its own namespace
    for h in "abc":
        r = m.netlab(h, "agent", m.lab, "--host", h, "--etcd", m.endpoints(), "--detach")
        assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 300   # (a shared 2-core machine: the three agents build at once)
    while True:
        t0 = time.monotonic()
        r = m.netlab("a", "probe", "--lab", m.lab, timeout=180)
        print(f"probe after {time.monotonic() - t0:.1f}s: exit {r.returncode}")
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(3)
    logs = "".join(open(layout.agent_log(m.lab, h)).read() for h in "abc")
    assert r.returncode == 0, r.stdout + r.stderr + logs

    for i, h in enumerate("abc"):
        hostns = names.host_netns(m.lab, h)
        assert nsfs.is_ns_file(nsfs.netns_path(hostns)), h
        link = json.loads(in_ns(hostns, ["ip", "-j", "-d", "link", "show", "underlay.vx"]).stdout)[0]
        info = link["linkinfo"]["info_data"]
        assert (info["local"], info["port"], link["master"], link["mtu"]) == (m.ips[h], PORT, "underlay0", 1450), link
        # made by the agent of this machine: its UDP socket is in this stand-in's namespace, bound to the port
        assert udp_bound(m.ns[h], PORT), h
        # nothing else of netlab's in the machine's own namespace: no device, address or route
        assert footprint(m.ns[h]) == before[h], h
        fdb = in_ns(hostns, ["bridge", "fdb", "show", "dev", "underlay.vx"]).stdout
        for other_host, ip in m.ips.items():
            assert (f"dst {ip}" in fdb) == (other_host != h), fdb
    # the nodes placed on each host are in that host's namespace's underlay bridge
    for node, h in ((f"{m.lab}-control-plane", "a"), (f"{m.lab}-worker", "b"), (f"{m.lab}-worker2", "c")):
        r = in_ns(names.host_netns(m.lab, h), ["ip", "-o", "link", "show", "master", "underlay0"])
        assert r.stdout.count("@") >= 1 + (h == "a"), r.stdout   # veths (+ the external host's on a)
    # get from a machine (a host whose agent lagged under load may have had its pods moved meanwhile: the
    # Deployment's three are Running somewhere)
    deadline = time.monotonic() + 90
    while True:
        r = m.netlab("a", "get", "pods", "--lab", m.lab, "-o", "wide")
        running = [ln for ln in r.stdout.splitlines() if ln.startswith("web-") and " Running " in ln]
        if r.returncode == 0 and len(running) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert r.returncode == 0 and len(running) >= 3, r.stdout + r.stderr

    r = m.netlab("a", "down", m.lab)
    assert r.returncode == 0, r.stdout + r.stderr
    assert m.lab not in labmod.labs()
    assert not [n for n in nsfs.list_netns() if n.startswith(f"nl.{m.lab}.")]
    assert lab_processes(m.lab) == []
    for h, ns in m.ns.items():
        # the kernel frees a removed namespace (its VXLAN device, so the socket) in the background
        deadline = time.monotonic() + 30
        while udp_bound(ns, PORT) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not udp_bound(ns, PORT), h
        assert footprint(ns) == before[h], h
