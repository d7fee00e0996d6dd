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
import re
import secrets
import shutil
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
  type: NodePort
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


METALLB_BGP = """apiVersion: v1
kind: Namespace
metadata: {name: metallb-system}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: [172.18.200.0/28]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 172.18.255.254, holdTime: 9s, keepaliveTime: 3s}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: adv, namespace: metallb-system}
spec: {ipAddressPools: [pool]}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  loadBalancerIP: 172.18.200.10
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def metallb_bgp_across_machines(m, netlab, logs, tmp_path) -> None:
    """MetalLB's BGP mode applied from machine b: every machine's agent runs its own nodes' BIRD speakers from its
    own copy of the sessions (its disk is its own), so the lab's external router, on a, learns the LoadBalancer
    IP from the nodes of all three machines (one ECMP route over them) and reaches the pods through it. Before,
    only the leader's machine had the sessions, and its agent tried to start every machine's speakers."""
    import yaml

    from netlab.lb.addon import speaker_daemonset
    path = tmp_path / "metallb-bgp.yaml"
    # MetalLB's speaker DaemonSet (as its manifest has it; netlab runs its speaker for the image) and the config
    path.write_text(yaml.safe_dump(speaker_daemonset(os.path.join(layout.lab_dir(m.lab), "lb"))) + "---\n" + METALLB_BGP)
    r = netlab("b", "apply", "-f", str(path), "--lab", m.lab)
    assert r.returncode == 0, r.stdout + r.stderr
    nodes = [ln.split() for ln in netlab("a", "get", "nodes", "-o", "wide", "--lab", m.lab).stdout.splitlines()[1:]]
    node_ips = {row[5] for row in nodes}
    assert len(node_ips) == 3, nodes
    deadline = time.monotonic() + 120
    while True:
        route = netlab("a", "exec", "--external", "--lab", m.lab, "--", "ip", "-4", "route", "show",
                       "172.18.200.10/32").stdout
        hops = set(re.findall(r"via (\S+)", route)) if "proto bird" in route else set()
        if hops == node_ips or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert hops == node_ips, (route, node_ips, logs())
    r = netlab("a", "exec", "--external", "--lab", m.lab, "--", "curl", "-sS", "-m", "5", "http://172.18.200.10/hostname")
    assert r.returncode == 0 and r.stdout.startswith("web-"), r.stdout + r.stderr
    # removed again (the Namespace left: netlab deletes a namespace's objects with it at once)
    path.write_text(path.read_text().replace(METALLB_BGP, METALLB_BGP.split("---\n", 1)[1]))
    r = netlab("b", "delete", "-f", str(path), "--lab", m.lab)
    assert r.returncode == 0, r.stdout + r.stderr
    r = netlab("a", "exec", "--external", "--lab", m.lab, "--", "ip", "-4", "route", "show", "172.18.200.10/32")
    assert r.stdout.strip() == "" or "proto bird" not in r.stdout, r.stdout


class Isolated:
    """A stand-in machine that shares nothing with the test but its network namespace: a mount namespace with
    a /run of its own (its netns files, the lab's directory) and a PID namespace (its own processes), as a
    separate machine would have. Ended by killing its first process (the kernel ends the rest)."""

    # the machine's init: reaps what its agents leave behind when they end
    INIT = "import os, time\nwhile True:\n    try:\n        os.wait()\n    except ChildProcessError:\n        time.sleep(0.2)"

    def __init__(self, netns: str):
        self.p = subprocess.Popen(
            ["nsenter", f"--net={nsfs.netns_path(netns)}", "--", "unshare", "--mount", "--pid", "--fork",
             "--mount-proc", "--propagation", "private", "--", "sh", "-c",
             'mount -t tmpfs -o mode=755 machine /run && echo ready && exec "$0" -c "$1"', sys.executable, self.INIT],
            stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "ready"
        # the machine's first process (unshare's child): the one nsenter joins
        with open(f"/proc/{self.p.pid}/task/{self.p.pid}/children") as f:
            self.init = int(f.read().split()[0])

    def run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", "-t", str(self.init), "--mount", "--pid", "--net", "--", *argv],
                              capture_output=True, text=True, timeout=timeout)

    def netns(self, lab: str) -> list[str]:
        out = self.run(["sh", "-c", "ls /run/netns 2>/dev/null || true"]).stdout.split()
        return sorted(n for n in out if n.startswith(f"nl.{lab}."))

    def tagged(self, lab: str) -> dict:
        code = ("import json; from netlab.dataplane import procs; "
                f"print(json.dumps(procs.tagged([{names.lab_owner_prefix(lab)!r}], host=True)))")
        return json.loads(self.run([sys.executable, "-c", code]).stdout)

    def close(self) -> None:
        try:
            os.kill(self.init, 9)
        except ProcessLookupError:
            pass
        self.p.wait(timeout=30)


def test_down_on_one_machine_removes_every_machines_part(machines, tmp_path):
    """Three machines that share nothing but the segment (each its own /run and processes: `down` on machine a
    cannot see, let alone remove, what the agents of b and c built). `get` on one machine shows every host's
    pods and nodes as their agents wrote them; `probe` on any runs the whole matrix, the checks that start on
    another machine's host run by that host's agent. `netlab down` on machine a asks every host's agent
    through etcd: each removes its machine's part and answers; then the lab's keys go. A host whose agent
    does not run is named (exit 1) with what to run there (by `probe` too: its checks fail, naming it), and
    that command removes its part."""
    from netlab.etcd.client import EtcdClient
    m = machines
    path = tmp_path / "real.yaml"
    path.write_text(m.scenario())
    iso: dict[str, Isolated] = {}
    try:
        for h in "abc":
            iso[h] = Isolated(m.ns[h])

        def netlab(h: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
            return iso[h].run([NETLAB, *argv], timeout=timeout)

        def logs() -> str:
            return "".join(f"--- agent of {h}:\n" + iso[h].run(["cat", layout.agent_log(m.lab, h)]).stdout[-3000:]
                           for h in "abc")

        def agents(only: str = "abc") -> None:
            for h in only:
                r = netlab(h, "agent", m.lab, "--host", h, "--etcd", m.endpoints(), "--detach")
                assert r.returncode == 0, r.stdout + r.stderr

        r = netlab("a", "up", str(path), "--etcd", m.endpoints())
        assert r.returncode == 0, r.stdout + r.stderr
        # the agents started by hand, a's first and b's and c's later, each wait longer than the lab's grace
        # period and toleration (10 s each): `up` is no node's kubelet, so b's and c's nodes have never
        # reported and keep their pods for the startup grace (60 s). Had `up` renewed their Leases, a's agent,
        # the leader, would find them stale at once and evict their pods (the client pod for good)
        time.sleep(12)
        agents(only="a")
        time.sleep(15)
        agents(only="bc")
        # each machine's agent builds its host: the pods on b and c answer curl from the control plane's node
        wanted = {f"{m.lab}-worker", f"{m.lab}-worker2"}
        deadline = time.monotonic() + 240
        while True:
            r = netlab("a", "get", "pods", "--lab", m.lab, "-o", "wide")
            rows = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("web-") and " Running " in ln]
            remote = {row[6]: (row[0], row[5]) for row in rows if len(row) > 6 and row[6] in wanted}  # NODE: NAME, IP
            if set(remote) == wanted or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert set(remote) == wanted, r.stdout + r.stderr + logs()
        cp = nsfs.netns_path(names.node_netns(m.lab, f"{m.lab}-control-plane"))
        for node, (pod, ip) in remote.items():
            got = iso["a"].run(["nsenter", f"--net={cp}", "--", "curl", "-sS", "-m", "5", f"http://{ip}:8080/hostname"])
            assert got.stdout == pod, (node, got.stdout, got.stderr)
        # get from one machine shows every machine's: the other hosts' pods and nodes as their agents wrote them
        # (a's own node is checked against a's kernel: Ready once a's agent has programmed what the store holds)
        deadline = time.monotonic() + 60
        while True:
            r = netlab("a", "get", "nodes", "--lab", m.lab)
            if r.returncode == 0 and "NotReady" not in r.stdout or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert r.returncode == 0 and [ln.split()[1] for ln in r.stdout.splitlines()[1:]] == ["Ready"] * 3, \
            r.stdout + r.stderr + netlab("a", "get", "pods", "--lab", m.lab, "-o", "wide").stdout + \
            netlab("a", "get", "endpointslices", "--lab", m.lab, "-o", "yaml").stdout[-3000:] + logs()
        # the probe matrix from one machine: the checks that start on b's and c's hosts are run by their agents
        # (their namespaces are only on their machines) and judged on a, with a's own: all as expected
        r = netlab("a", "probe", "--lab", m.lab, "-o", "json", timeout=240)
        assert r.returncode == 0, r.stdout + r.stderr + logs()
        got = json.loads(r.stdout)["checks"]
        by_node = {f"{m.lab}-control-plane": "a", f"{m.lab}-worker": "b", f"{m.lab}-worker2": "c"}
        pods = {ln.split()[0]: by_node.get(ln.split()[6]) for ln in netlab("a", "get", "pods", "--lab", m.lab,
                "-o", "wide").stdout.splitlines()[1:]}
        nodes = {f"node/{n}": h for n, h in by_node.items()}
        started = {h: [c for c in got if (pods.get(c["source"][4:]) or nodes.get(c["source"])) == h] for h in "abc"}
        for h in "abc":
            # each host's checks came back answered, every probe's outcome seen there (a pod named itself)
            assert started[h] and all(c["ok"] for c in started[h]), (h, started[h])
            assert any(c["answered_by"] for c in started[h]), (h, started[h])
        assert re.search(r"^\d+ checks start on the hosts of other machines: their agents run them \(b: \d+, c: \d+\)$",
                         r.stderr, re.M), r.stderr
        # the same matrix from machine c: as many checks, all as expected; the external host's (to every node's
        # NodePort) are run by a's agent, the external host being on a, the lab's first host
        r = netlab("c", "probe", "--lab", m.lab, "-o", "json", timeout=240)
        assert r.returncode == 0, r.stdout + r.stderr + logs()
        from_c = json.loads(r.stdout)["checks"]
        assert len(from_c) == len(got) and all(c["ok"] for c in from_c), from_c
        external = [c for c in from_c if c["source"] == "external"]
        assert len(external) == 3 and all(c["answered_by"] for c in external), external
        assert re.search(r"^\d+ checks start on the hosts of other machines: their agents run them \(a: \d+, b: \d+\)$",
                         r.stderr, re.M), r.stderr
        # a lookup through the cluster DNS from a pod on c, asked on a: c's agent runs it in the pod, with the
        # pod's own resolv.conf (search path, ndots:5); the answer is the Service's ClusterIP
        r = netlab("a", "probe", "--lab", m.lab, "--from", "pod/client", "dns/web", "-o", "json", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr + logs()
        row = json.loads(r.stdout)["dns"][0]
        cluster_ip = netlab("a", "get", "svc", "web", "--lab", m.lab).stdout.splitlines()[1].split()[2]
        assert (row["source"], row["name"], row["answers"]) == ("pod/client", "web.default.svc.cluster.local.",
                                                               [cluster_ip]), row
        assert "1 lookups start on the hosts of other machines: their agents run them (c: 1)" in r.stderr, r.stderr
        # every machine's cluster DNS pod serves the lab's names, a Service's made after up too: each machine's
        # agent writes the zone for the DNS pods there (whether it leads or not: a machine's files are its own)
        extra = tmp_path / "web2.yaml"
        extra.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web2}\nspec:\n  selector: {app: web}\n"
                         "  ports: [{port: 81, targetPort: 8080}]\n")
        r = netlab("a", "apply", "-f", str(extra), "--lab", m.lab)
        assert r.returncode == 0, r.stdout + r.stderr
        deadline = time.monotonic() + 60
        while True:
            svc = netlab("a", "get", "svc", "web2", "--lab", m.lab).stdout.splitlines()
            dns = [ln.split() for ln in netlab("a", "get", "pods", "-n", "kube-system", "-o", "wide", "--lab",
                                               m.lab).stdout.splitlines() if ln.startswith("coredns-")]
            web2_ip = svc[1].split()[2] if len(svc) > 1 else None
            served = {row[6]: netlab("c", "exec", "client", "--lab", m.lab, "--", "dig", "+short", "+time=2",
                                     "+tries=1", f"@{row[5]}", "web2.default.svc.cluster.local").stdout.strip()
                      for row in dns}
            if web2_ip and len(served) == 2 and set(served.values()) == {web2_ip} or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert len(served) == 2 and set(served.values()) == {web2_ip}, (web2_ip, served, logs())
        # its ClusterIP was allocated when `apply` wrote it and is in its stored spec, as the API server keeps
        # it: every machine's agent programs that one (before, each computed its own), so a pod on c reaches it
        spec = json.loads(netlab("c", "get", "svc", "web2", "-o", "json", "--lab", m.lab).stdout)["spec"]
        assert (spec["clusterIP"], spec["clusterIPs"]) == (web2_ip, [web2_ip]), spec
        r = netlab("c", "exec", "client", "--lab", m.lab, "--", "curl", "-s", "-m", "5", f"http://{web2_ip}:81/hostname")
        assert r.returncode == 0 and r.stdout.startswith("web-"), (r.stdout + r.stderr + logs() + netlab(
            "c", "get", "pods", "-o", "wide", "--lab", m.lab).stdout + netlab("a", "get", "pods", "-o", "wide", "--lab", m.lab).stdout)
        if shutil.which("bird"):
            metallb_bgp_across_machines(m, netlab, logs, tmp_path)
        # the agents ran them: their logs say so; and the requests and answers are gone from the store
        for h in "bc":
            assert "netlab probe: running" in iso[h].run(["cat", layout.agent_log(m.lab, h)]).stdout, h
        r = netlab("a", "get", "configmaps", "-n", "kube-system", "--lab", m.lab)
        assert "netlab-probe-" not in r.stdout, r.stdout
        for h, machine in iso.items():
            assert names.host_netns(m.lab, h) in machine.netns(m.lab), h
            assert machine.tagged(m.lab), h
            # ... and machine a sees none of the others' namespaces
            assert (names.host_netns(m.lab, h) in iso["a"].netns(m.lab)) == (h == "a"), h

        r = netlab("a", "down", m.lab, "--timeout", "60")
        assert r.returncode == 0, r.stdout + r.stderr
        for h in "abc":
            assert f"host {h} (machine " in r.stdout, r.stdout
        for h, machine in iso.items():
            assert machine.netns(m.lab) == [], h
            assert machine.tagged(m.lab) == {}, h
            assert machine.run(["test", "-e", layout.lab_dir(m.lab)]).returncode == 1, h
        assert lab_processes(m.lab) == []   # (this test's own view: every machine's processes)
        client = EtcdClient(m.endpoints().split(","), netns=m.ns["a"])
        try:
            assert client.range(f"/netlab/{m.lab}/", prefix=True, keys_only=True)[0] == []
        finally:
            client.close()

        # again, with host c's agent not running: down names it, and c's own down removes c's part
        r = netlab("a", "up", str(path), "--etcd", m.endpoints())
        assert r.returncode == 0, r.stdout + r.stderr
        agents()
        deadline = time.monotonic() + 120
        while names.host_netns(m.lab, "c") not in iso["c"].netns(m.lab) and time.monotonic() < deadline:
            time.sleep(1)
        assert names.host_netns(m.lab, "c") in iso["c"].netns(m.lab)
        agent_c = [pid for pid, tag in iso["c"].tagged(m.lab).items() if tag == names.agent_owner(m.lab, "c")]
        assert agent_c
        iso["c"].run(["kill", "-9", *agent_c])
        # probe with c's agent gone: the checks that start on c's host fail, each naming the host and what to run
        # there (those towards c's half-built part may fail too: its agent was killed while building it)
        r = netlab("a", "probe", "--lab", m.lab, "--agents-timeout", "5", "-o", "json", timeout=240)
        assert r.returncode == 1, r.stdout + r.stderr
        why = f"host c's agent did not take its checks within 5 s: run sudo netlab probe --lab {m.lab} on its machine"
        assert why in r.stderr, r.stderr
        checks = json.loads(r.stdout)["checks"]
        rows = [ln.split() for ln in netlab("a", "get", "pods", "-A", "-o", "wide", "--lab", m.lab).stdout.splitlines()[1:]]
        there = {f"node/{m.lab}-worker2"} | {f"pod/{row[1]}" if row[0] == "default" else f"pod/{row[0]}/{row[1]}"
                                              for row in rows if len(row) > 7 and row[7] == f"{m.lab}-worker2"}
        on_c = [c for c in checks if c["source"] in there]
        assert on_c and all(c["outcome"] == "error" and why in c["why"] and not c["ok"] for c in on_c), on_c
        assert all(why not in (c["why"] or "") for c in checks if c not in on_c), checks
        r = netlab("a", "down", m.lab, "--timeout", "10")
        assert r.returncode == 1, r.stdout + r.stderr
        assert (f"lab {m.lab}: host c's agent did not answer within 10 s: its machine keeps its part; "
                f"run sudo netlab down {m.lab} there") in r.stderr, r.stderr
        assert "host b (machine " in r.stdout and iso["b"].netns(m.lab) == [], r.stdout
        assert iso["c"].netns(m.lab), "c keeps its part"
        r = netlab("c", "down", m.lab)
        assert r.returncode == 0, r.stdout + r.stderr
        assert iso["c"].netns(m.lab) == [] and iso["c"].tagged(m.lab) == {}
        assert lab_processes(m.lab) == []
    finally:
        for machine in iso.values():
            machine.close()
