"""The cluster fabric on real namespaces: nodes, pods, cni0, VXLAN and host-gw.

Every check sends real traffic (ICMP, TCP, UDP to the built-in server) and looks at the answer:
which pod answered and which source address it saw.
"""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from netlab.dataplane import nsfs, procs

from ..builders import cluster, container, deployment, pod, text, workers
from .conftest import netlab_cli

SCENARIO = text(  # BACKEND: the fixture's flannel backend
    cluster("fab", workers("n1", "n2"), backend="BACKEND"),
    *(pod(name, {"app": app}, [container("srv", [8080, {"containerPort": 8081, "protocol": "UDP"}])], nodeName=node)
      for name, app, node in (("a1", "a", "n1"), ("a2", "a", "n1"), ("b1", "b", "n2"))))


def ip_of(text: str) -> str:
    return text.rsplit(":", 1)[0]


@pytest.fixture(params=["vxlan", "host-gw"])
def fab(request, lab):
    lab.up(SCENARIO.replace("BACKEND", request.param))
    lab.backend = request.param
    return lab


def test_node_to_pod(fab):
    a1 = fab.pod("a1")
    assert fab.http(("node", "n1"), a1.ip, 8080, "/hostname") == "a1"
    # the node reaches its pods from the cni0 gateway address
    assert ip_of(fab.http(("node", "n1"), a1.ip, 8080, "/clientip")) == str(fab.node("n1").gateway)
    assert fab.ping(("node", "n1"), a1.ip)
    # and pods on the other node, through the overlay
    assert fab.http(("node", "n2"), a1.ip, 8080, "/hostname") == "a1"
    assert fab.ping(("node", "n2"), a1.ip)


def test_pod_to_node(fab):
    assert fab.ping(("pod", "a1"), fab.node("n1").ip)
    assert fab.ping(("pod", "a1"), fab.node("n2").ip)
    assert fab.ping(("pod", "b1"), fab.node("n1").gateway)


def test_pod_to_pod_same_node(fab):
    a1, a2 = fab.pod("a1"), fab.pod("a2")
    assert fab.http(("pod", "a1"), a2.ip, 8080, "/hostname") == "a2"
    assert ip_of(fab.http(("pod", "a1"), a2.ip, 8080, "/clientip")) == str(a1.ip)
    r = fab.udp(("pod", "a1"), a2.ip, 8081, "hostname")
    assert r.stdout.strip() == "a2", r
    r = fab.udp(("pod", "a1"), a2.ip, 8081, "clientip")
    assert ip_of(r.stdout.strip()) == str(a1.ip)
    assert fab.ping(("pod", "a1"), a2.ip)


def test_pod_to_pod_across_nodes_keeps_source_ip(fab):
    a1, b1 = fab.pod("a1"), fab.pod("b1")
    assert fab.http(("pod", "a1"), b1.ip, 8080, "/hostname") == "b1"
    assert ip_of(fab.http(("pod", "a1"), b1.ip, 8080, "/clientip")) == str(a1.ip)
    assert ip_of(fab.http(("pod", "b1"), a1.ip, 8080, "/clientip")) == str(b1.ip)
    r = fab.udp(("pod", "b1"), a1.ip, 8081, "echo across")
    assert r.stdout.strip() == "across"
    r = fab.udp(("pod", "b1"), a1.ip, 8081, "clientip")
    assert ip_of(r.stdout.strip()) == str(b1.ip)
    assert fab.ping(("pod", "b1"), a1.ip)


def test_traffic_leaving_the_cluster_is_masqueraded(fab):
    """A pod talking to the external host (outside the pod network) shows up as its node's IP."""
    import subprocess
    import sys
    listener = subprocess.Popen(
        ["nsenter", f"--net={nsfs.netns_path(fab.cluster.external_netns)}", "--", sys.executable, "-c",
         "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',9999));"
         "s.settimeout(8);d,a=s.recvfrom(100);print(a[0]);s.sendto(b'ok',a)"],
        stdout=subprocess.PIPE, text=True)
    try:
        import time
        time.sleep(0.3)
        r = fab.udp(("pod", "b1"), fab.cluster.external_ip, 9999, "hi")
        assert r.stdout.strip() == "ok"
        out, _ = listener.communicate(timeout=10)
        assert out.strip() == str(fab.node("n2").ip)
    finally:
        listener.kill()
        listener.wait()


def test_pod_namespace_details(fab):
    a1 = fab.pod("a1")
    assert fab.pod_exec("a1", ["hostname"]).stdout.strip() == "a1"
    route = fab.pod_exec("a1", ["ip", "route"]).stdout
    assert f"default via {fab.node('n1').gateway} dev eth0" in route
    link = fab.pod_exec("a1", ["ip", "-o", "link", "show", "eth0"]).stdout
    mtu = 1450 if fab.backend == "vxlan" else 1500
    assert f"mtu {mtu}" in link
    assert "state UP" in link
    assert "lo" in fab.pod_exec("a1", ["ip", "-o", "link", "show", "up"]).stdout
    addr = fab.pod_exec("a1", ["ip", "-o", "-4", "addr", "show", "eth0"]).stdout
    assert f"inet {a1.ip}/{fab.node('n1').pod_cidr.prefixlen} scope global eth0" in addr, addr
    assert fab.pod_exec("a1", ["sysctl", "-n", "net.ipv4.icmp_ratelimit"]).stdout.strip() == "0"
    # arp_notify on, as the CNI bridge plugin leaves a pod's interface; IPv6 off on every interface netlab
    # made (an IPv4 cluster), lo keeping ::1 so a server listening on [::] still answers
    assert fab.pod_exec("a1", ["sysctl", "-n", "net.ipv6.conf.eth0.disable_ipv6",
                               "net.ipv4.conf.eth0.arp_notify"]).stdout.split() == ["1", "1"]
    assert fab.pod_exec("a1", ["ip", "-6", "addr", "show", "eth0"]).stdout.strip() == ""
    assert "inet6 ::1/128" in fab.pod_exec("a1", ["ip", "-6", "addr", "show", "lo"]).stdout
    for dev in ("eth0", "cni0", a1.host_veth):
        assert fab.node_exec("n1", ["ip", "-6", "addr", "show", dev]).stdout.strip() == "", dev
    veth = fab.node_exec("n1", ["ip", "-d", "link", "show", a1.host_veth]).stdout
    assert "master cni0" in veth and "hairpin on" in veth
    assert len(a1.host_veth) <= 15 and a1.host_veth.startswith("veth")
    sysctl = fab.node_exec("n1", ["sysctl", "-n", "net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"])
    assert sysctl.stdout.split() == ["1", "1"]


def test_overlay_objects(fab):
    n1, n2 = fab.node("n1"), fab.node("n2")
    routes = fab.node_exec("n1", ["ip", "route"]).stdout
    if fab.backend == "vxlan":
        d = fab.node_exec("n1", ["ip", "-d", "link", "show", "flannel.1"]).stdout
        assert "vxlan id 1 " in d and "dstport 8472" in d and "nolearning" in d and "mtu 1450" in d
        assert f"local {n1.ip}" in d
        assert f"inet {n1.pod_cidr.network_address}/32" in fab.node_exec("n1", ["ip", "addr", "show", "flannel.1"]).stdout
        assert f"{n2.pod_cidr} via {n2.pod_cidr.network_address} dev flannel.1 proto static onlink" in routes
        neigh = fab.node_exec("n1", ["ip", "neigh", "show", "dev", "flannel.1"]).stdout
        assert f"{n2.pod_cidr.network_address} lladdr {n2.vtep_mac} PERMANENT" in neigh
        fdb = fab.node_exec("n1", ["bridge", "fdb", "show", "dev", "flannel.1"]).stdout
        assert f"{n2.vtep_mac} dst {n2.ip} self permanent" in fdb
    else:
        assert f"{n2.pod_cidr} via {n2.ip} dev eth0" in routes
        assert "flannel.1" not in fab.node_exec("n1", ["ip", "link"]).stdout


def test_no_nat_between_pods_in_rules(fab):
    """flannel's masquerade chain returns early for pod-to-pod traffic and masquerades the rest."""
    from netlab.dataplane.iptables import flavour_commands
    _, _, save = flavour_commands("auto")
    text = fab.node_exec("n1", [save, "-t", "nat"]).stdout
    assert "-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG" in text
    assert f"-A FLANNEL-POSTRTG -s {fab.node('n1').pod_cidr} -d 10.244.0.0/16" in text


def test_reconcile_is_idempotent(lab):
    text = SCENARIO.replace("BACKEND", "vxlan")
    lab.up(text)
    n1 = lab.node("n1")
    # operstate is the kernel's to change on its own (a bridge goes UNKNOWN -> UP when its ports come
    # up), so it is left out; everything netlab sets (links, indexes, MTU, master, flags, MACs) is compared
    links = lambda: re.sub(r" state [A-Z]+ ", " ", lab.node_exec("n1", ["ip", "-o", "link"]).stdout)  # noqa: E731
    before_links = links()
    before_ns = nsfs.ns_inode(nsfs.netns_path(lab.pod("a1").netns))
    r = lab.up(text)
    assert r.changes == [], r.changes
    assert links() == before_links
    assert nsfs.ns_inode(nsfs.netns_path(lab.pod("a1").netns)) == before_ns
    assert lab.http(("node", n1.name), lab.pod("b1").ip, 8080, "/hostname") == "b1"


def test_reconcile_applies_only_the_difference(lab):
    def scenario(replicas: int, nodes: tuple[str, ...], solo: bool) -> str:
        return text(cluster(None, workers(*nodes)),
                    deployment("web", replicas, containers=[container("web", [8080])]),
                    *([pod("solo", containers=[container("c", [8080])], nodeName="w1")] if solo else []))
    lab.up(scenario(2, ("w1", "w2"), solo=True))
    web = {p.name: (p.ip, nsfs.ns_inode(nsfs.netns_path(p.netns))) for p in lab.pods("web-")}
    solo_ns = nsfs.ns_inode(nsfs.netns_path(lab.pod("solo").netns))
    st = json.load(open(f"/run/netlab/{lab.name}/state.json"))
    servers = {k: v["pid"] for k, v in st["servers"].items()}

    # scale up, remove the bare pod, add a node
    edited = scenario(4, ("w1", "w2", "w3"), solo=False)
    r = lab.up(edited)
    now = {p.name: (p.ip, nsfs.ns_inode(nsfs.netns_path(p.netns))) for p in lab.pods("web-")}
    assert len(now) == 4
    for name, (ip, ino) in web.items():  # unaffected pods: same address, same namespace (not restarted)
        assert now[name] == (ip, ino)
    assert not os.path.exists(nsfs.netns_path(f"nl.{lab.name}.pod.default.solo"))
    assert solo_ns is not None
    assert lab.node("w3").netns in os.listdir("/run/netns")
    st = json.load(open(f"/run/netlab/{lab.name}/state.json"))
    for node, pid in servers.items():  # the per-node servers were reloaded, not restarted
        assert st["servers"][node]["pid"] == pid
    assert any("removed namespace" in c and "solo" in c for c in r.changes)
    # every pod answers, including the new ones, from every node
    for p in lab.pods("web-"):
        assert lab.http(("node", "w3"), p.ip, 8080, "/hostname") == p.name


def test_containers_run_real_commands(lab):
    lab.control_loop = False  # the still picture: nothing changes between two `up`s
    lab.up(text(cluster(None, workers("w1")),
                pod("sleeper", containers=[container("main", command=["sh", "-c"],
                                                     args=["echo started $(hostname); exec sleep 600"])])))
    st = json.load(open(f"/run/netlab/{lab.name}/state.json"))
    rec = st["pods"]["default/sleeper"]["procs"]["main"]
    pid = rec["pid"]
    # the process lives in the pod's network namespace
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(nsfs.netns_path(lab.pod("sleeper").netns)).st_ino
    log = f"/run/netlab/{lab.name}/logs/default_sleeper_main.log"
    import time
    for _ in range(100):
        if os.path.exists(log) and "started" in open(log).read():
            break
        time.sleep(0.05)
    assert "started sleeper" in open(log).read()
    assert oct(os.stat(log).st_mode & 0o777) == "0o600"
    # kill it: get pods reports it, up restarts it
    os.kill(pid, 9)
    for _ in range(200):  # wait until the kernel has it dead (zombie or reaped)
        if procs.start_time(pid) is None:
            break
        time.sleep(0.05)
    out = netlab_cli("get", "pods", "--lab", lab.name, check=True).stdout
    assert "sleeper" in out and "Error" in out and "0/1" in out
    r = lab.up(lab_text(lab))
    assert any("container main started" in c for c in r.changes)
    out = netlab_cli("get", "pods", "--lab", lab.name, check=True).stdout
    assert "Running" in out and " 1 " in out  # one restart


def test_up_returns_only_when_containers_are_inside_their_pods(lab, tmp_path, monkeypatch):
    """Popen returns as soon as nsenter runs, before nsenter has joined the pod's namespaces. With a
    slow nsenter (a shim that waits before exec'ing the real one), `up` must still return only once
    every container is inside its pod: otherwise a check right after `up` finds it outside, `get pods`
    says Error and a second `up` starts it again."""
    real = shutil.which("nsenter")
    shim = tmp_path / "nsenter"
    shim.write_text(f'#!/bin/sh\nsleep 0.4\nexec {real} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    lab.up(text(cluster(None, workers("w1")),
                *(pod(f"s{i}", containers=[container("main", command=["sleep", "600"])]) for i in range(3))))
    st = json.load(open(f"/run/netlab/{lab.name}/state.json"))
    for i in range(3):
        pid = st["pods"][f"default/s{i}"]["procs"]["main"]["pid"]
        assert nsfs.ns_inode(f"/proc/{pid}/ns/net") == nsfs.ns_inode(nsfs.netns_path(lab.pod(f"s{i}").netns))
    out = netlab_cli("get", "pods", "--lab", lab.name, check=True).stdout
    assert out.count("Running") == 3, out
    r = lab.up(lab_text(lab))
    assert r.changes == [], r.changes


def test_recreated_pod_gets_its_veth_name_back_while_the_old_namespace_lingers(lab):
    """A pod whose spec changed is recreated. The kernel destroys a deleted
    namespace, and the veth in it, only once nothing holds it: while something still does (here: an open
    file descriptor), the old veth is still on the node and `up` must remove it, not fail on it."""
    lab.control_loop = False  # the still picture: nothing changes between two `up`s
    def scenario(seconds: str) -> str:
        return text(cluster(None, workers("w1")), pod("p", containers=[container("main", command=["sleep", seconds])]))
    lab.up(scenario("600"))
    old = lab.pod("p")
    fd = os.open(nsfs.netns_path(old.netns), os.O_RDONLY)
    try:
        r = lab.up(scenario("700"))
        # a recreated pod is a new pod (a new UID, so a new veth name, as Kubernetes' CNI gives it), made
        # while the old namespace and its veth linger
        assert any("pod default/p: namespace, veth" in c for c in r.changes), r.changes
        assert lab.pod("p").host_veth != old.host_veth
        assert nsfs.ns_inode(f"/proc/self/fd/{fd}") != nsfs.ns_inode(nsfs.netns_path(old.netns))
    finally:
        os.close(fd)
    out = lab.pod_exec("p", ["ip", "-o", "-4", "addr", "show", "eth0"]).stdout
    assert str(old.ip) in out
    assert lab.ping(("node", "w1"), old.ip)


def lab_text(lab) -> str:
    return json.load(open(f"/run/netlab/{lab.name}/state.json"))["scenario"]


def test_get_json_is_kubectl_shaped(fab):
    out = json.loads(netlab_cli("get", "pods", "-o", "json", "--lab", fab.name, check=True).stdout)
    assert out["kind"] == "List"
    items = {i["metadata"]["name"]: i for i in out["items"]}
    a1 = items["a1"]
    assert a1["metadata"]["namespace"] == "default" and a1["metadata"]["labels"] == {"app": "a"}
    assert a1["spec"]["nodeName"] == "n1"
    assert a1["status"]["podIP"] == str(fab.pod("a1").ip)
    assert a1["status"]["hostIP"] == str(fab.node("n1").ip)
    assert a1["status"]["phase"] == "Running"
    nodes = json.loads(netlab_cli("get", "nodes", "-o", "json", "--lab", fab.name, check=True).stdout)
    addrs = {n["metadata"]["name"]: n["status"]["addresses"] for n in nodes["items"]}
    assert {"type": "InternalIP", "address": str(fab.node("n2").ip)} in addrs["n2"]
    wide = netlab_cli("get", "pods", "-o", "wide", "--lab", fab.name, check=True).stdout
    assert wide.split("\n")[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]


def test_exec_passes_exit_status(fab):
    r = netlab_cli("exec", "--lab", fab.name, "a1", "--", "sh", "-c", "exit 7")
    assert r.returncode == 7
    r = netlab_cli("exec", "--lab", fab.name, "--node", "n2", "--", "ip", "-o", "addr", "show", "eth0")
    assert r.returncode == 0 and str(fab.node("n2").ip) in r.stdout
    r = netlab_cli("exec", "--lab", fab.name, "nosuchpod", "--", "true")
    assert r.returncode == 2 and "not found" in r.stderr
    # kubectl's order: flags after the pod, before --; the command's own flags are left alone
    r = netlab_cli("exec", "a1", "--lab", fab.name, "-n", "default", "--", "sh", "-c", "hostname; echo $0", "--lab")
    assert r.returncode == 0 and r.stdout.split() == ["a1", "--lab"], r.stdout
    r = netlab_cli("exec", "--node", "n2", "--lab", fab.name, "--", "ip", "-o", "-4", "addr", "show", "eth0")
    assert r.returncode == 0 and str(fab.node("n2").ip) in r.stdout
    r = netlab_cli("exec", "a1", "a2", "--lab", fab.name, "--", "true")
    assert r.returncode == 2 and "before --" in r.stderr
    r = netlab_cli("exec", "a1", "--no-such-flag", "--lab", fab.name, "--", "true")
    assert r.returncode == 2 and "--no-such-flag" in r.stderr


def test_down_works_without_state_file(lab):
    lab.up(SCENARIO.replace("BACKEND", "vxlan"))
    os.unlink(f"/run/netlab/{lab.name}/state.json")
    r = netlab_cli("down", lab.name, check=True)
    assert "removed" in r.stdout
    assert not [n for n in os.listdir("/run/netns") if n.startswith(f"nl.{lab.name}")]
    assert not os.path.exists(f"/run/netlab/{lab.name}")


def test_two_labs_side_by_side(lab_factory):
    a, b = lab_factory(), lab_factory()
    text = SCENARIO.replace("BACKEND", "vxlan")
    a.up(text)
    b.up(text)
    assert a.pod("a1").ip == b.pod("a1").ip  # same subnets, separate namespaces
    assert a.http(("pod", "a1"), a.pod("b1").ip, 8080, "/hostname") == "b1"
    a.down()
    assert b.http(("pod", "a1"), b.pod("b1").ip, 8080, "/hostname") == "b1"
    assert b.http(("pod", "b1"), b.pod("a2").ip, 8080, "/hostname") == "a2"
