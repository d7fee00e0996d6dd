"""Services through the kube-proxy-shaped iptables rules, verified on the wire.

Each check opens real connections and reads the built-in server's answer: which pod answered
(/hostname) and which source address it saw (/clientip).
"""
from __future__ import annotations

import json
import sys
import time

import pytest

from netlab.dataplane import lab as labmod
from netlab.dataplane.iptables import flavour_commands

from ..builders import cluster, container, deployment, pod, service, text, workers
from .conftest import netlab_cli, until

def scenario(backend: str = "BACKEND", replicas: int | str = "REPLICAS", **networking: str) -> str:
    """The Services lab: flannel `backend`, `replicas` web pods, more `networking` fields (kubeProxyMode...)."""
    web_port = [{"port": 80, "targetPort": 8080}]
    return text(
        cluster("svc", workers("n1", "n2"), backend=backend, **networking),
        deployment("web", replicas, containers=[container("web", [(8080, "http"), (8081, "dns-ish", "UDP")])]),
        service("web", [{"name": "http", "port": 80, "targetPort": "http"},
                        {"name": "udp", "port": 81, "targetPort": "dns-ish", "protocol": "UDP"}]),
        service("webnp", [{"port": 80, "targetPort": 8080, "nodePort": 30080}], {"app": "web"}, type="NodePort"),
        service("sticky", web_port, {"app": "web"}, sessionAffinity="ClientIP",
                sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}}),
        service("empty", [{"port": 80, "targetPort": 8080, "nodePort": 30099}], {"app": "nothing"}, type="NodePort"),
        service("lonely", [{"port": 80, "targetPort": 8080, "nodePort": 30081}], type="NodePort",
                externalTrafficPolicy="Local"),
        service("ignored", web_port, {"app": "web"},
                labels={"service.kubernetes.io/service-proxy-name": "other-proxy"}),
        service("itp", web_port, {"app": "web"}, internalTrafficPolicy="Local"),
        pod("lonely", {"app": "lonely"}, [container("c", [8080])], nodeName="n1"),
        pod("client", containers=[container("c", [8080])], nodeName="n2"))


# the same with BACKEND and REPLICAS left as placeholders for str.replace
SCENARIO = scenario()

MANY = r"""
import socket, sys, json
ip, port, path, n, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
out = []
for _ in range(n):
    try:
        if proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
            s.connect((ip, port)); s.send(path.encode()); out.append(s.recv(1000).decode()); s.close()
        else:
            s = socket.create_connection((ip, port), timeout=3)
            s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode()); data = b""
            while True:
                c = s.recv(4096)
                if not c: break
                data += c
            s.close(); out.append(data.split(b"\r\n\r\n", 1)[1].decode())
    except Exception as e:
        out.append("ERR " + type(e).__name__ + " " + str(e))
print(json.dumps(out))
"""


def many(lab, where, ip, port, path="/hostname", n=30, proto="tcp") -> list[str]:
    r = lab._run(where, [sys.executable, "-c", MANY, str(ip), str(port), path, str(n), proto])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def svc_ip(lab, name):
    return next(s.cluster_ip for s in lab.cluster.services if s.name == name)


MODES = [("vxlan", "iptables"), ("host-gw", "iptables"), ("vxlan", "nftables")]


@pytest.fixture(params=MODES, ids=[f"{b}-{m}" for b, m in MODES])
def svc(request, lab):
    backend, mode = request.param
    lab.mode = mode
    lab.control_loop = False  # these tests check what each `up` changes
    lab.text = lambda replicas=3: scenario(backend, replicas, kubeProxyMode=mode)
    lab.up(lab.text())
    lab.web = sorted(p.name for p in lab.pods("web-"))
    assert len(lab.web) == 3
    return lab


def ruleset(lab, node: str) -> str:
    """What the proxy mode programmed into a node, as its own tool prints it."""
    if lab.mode == "nftables":
        return lab.node_exec(node, ["nft", "list", "table", "ip", "kube-proxy"]).stdout
    _, _, save = flavour_commands("auto")
    return lab.node_exec(node, [save]).stdout


def test_pod_to_clusterip_reaches_every_backend_and_keeps_source(svc):
    client = svc.pod("client")
    answers = many(svc, ("pod", "client"), svc_ip(svc, "web"), 80, n=40)
    assert sorted(set(answers)) == svc.web
    seen = many(svc, ("pod", "client"), svc_ip(svc, "web"), 80, "/clientip", n=20)
    assert {a.rsplit(":", 1)[0] for a in seen} == {str(client.ip)}  # pod -> ClusterIP is not NATed


def test_udp_through_clusterip(svc):
    answers = many(svc, ("pod", "client"), svc_ip(svc, "web"), 81, "hostname", n=30, proto="udp")
    assert sorted(set(answers)) == svc.web
    # and with a real client, netcat: one datagram out, the answer back through the ClusterIP
    # (stdin held open a second: at its end OpenBSD nc stops before a UDP answer arrives)
    r = svc.pod_exec("client", ["sh", "-c", f"(printf hostname; sleep 1) | nc -u -w 1 {svc_ip(svc, 'web')} 81"])
    assert r.stdout.strip() in svc.web, r


def test_external_to_clusterip_is_masqueraded(svc):
    """The external host routes the service range to the first node; kube-proxy masquerades it."""
    answers = many(svc, ("external", ""), svc_ip(svc, "web"), 80, n=40)
    assert sorted(set(answers)) == svc.web
    seen = {a.rsplit(":", 1)[0] for a in many(svc, ("external", ""), svc_ip(svc, "web"), 80, "/clientip", n=10)}
    assert str(svc.cluster.external_ip) not in seen


def test_node_to_clusterip(svc):
    for node in ("n1", "n2"):
        assert sorted(set(many(svc, ("node", node), svc_ip(svc, "web"), 80, n=40))) == svc.web


@pytest.mark.parametrize("src", [("external", ""), ("pod", "client"), ("node", "n1")])
def test_nodeport_on_every_node(svc, src):
    for node in svc.cluster.nodes:
        answers = many(svc, src, node.ip, 30080, n=40)
        assert sorted(set(answers)) == svc.web, (node.name, answers)


def test_nodeport_from_outside_is_masqueraded(svc):
    # masqueraded to the address of the node's interface towards the backend: cni0 for a local pod,
    # flannel.1 (vxlan) or eth0 (host-gw) for a pod on the other node
    node_addrs = {str(a) for n in svc.cluster.nodes for a in (n.ip, n.gateway, n.vtep_ip)}
    for node in svc.cluster.nodes:
        seen = {a.rsplit(":", 1)[0] for a in many(svc, ("external", ""), node.ip, 30080, "/clientip", n=20)}
        assert str(svc.cluster.external_ip) not in seen
        assert seen <= node_addrs, seen


def test_external_traffic_policy_local(svc):
    n1, n2 = svc.node("n1"), svc.node("n2")
    answers = many(svc, ("external", ""), n1.ip, 30081, "/clientip", n=5)
    assert {a.rsplit(":", 1)[0] for a in answers} == {str(svc.cluster.external_ip)}  # source kept
    assert set(many(svc, ("external", ""), n1.ip, 30081, n=5)) == {"lonely"}
    r = svc.ext_exec(["curl", "-sS", "--max-time", "2", f"http://{n2.ip}:30081/hostname"])
    assert r.returncode != 0  # n2 has no local endpoint: dropped


def test_hairpin(svc):
    """A pod reaching itself through its own Service is masqueraded (the SEP chain's -s rule): its own
    requests come back from the node's bridge address, while the other backends see its pod IP."""
    for name in svc.web:
        pod = svc.pod(name)
        node = svc.node(pod.node)
        seen = {a.rsplit(":", 1)[0] for a in many(svc, ("pod", name), svc_ip(svc, "web"), 80, "/clientip", n=50)}
        assert seen == {str(pod.ip), str(node.gateway)}, (name, seen)


def test_internal_traffic_policy_local(svc):
    """Only the endpoints on the client's own node answer."""
    local = sorted(p.name for p in svc.pods("web-") if p.node == svc.pod("client").node)
    assert local  # the scheduler puts one web pod next to the client
    assert sorted(set(many(svc, ("pod", "client"), svc_ip(svc, "itp"), 80, n=20))) == local


def test_session_affinity_sticks(svc):
    answers = many(svc, ("pod", "client"), svc_ip(svc, "sticky"), 80, n=20)
    assert len(set(answers)) == 1 and answers[0] in svc.web


def test_no_endpoints_is_refused_at_once(svc):
    t0 = time.monotonic()
    r = svc.pod_exec("client", ["curl", "-sS", "--max-time", "5", f"http://{svc_ip(svc, 'empty')}/"])
    assert r.returncode == 7, r  # curl: could not connect (refused)
    assert time.monotonic() - t0 < 2
    r = svc.ext_exec(["curl", "-sS", "--max-time", "5", f"http://{svc.node('n1').ip}:30099/"])
    assert r.returncode == 7, r


def test_clusterip_does_not_answer_ping(svc):
    assert not svc.ping(("pod", "client"), svc_ip(svc, "web"))


def test_service_with_proxy_name_label_is_ignored(svc):
    text = ruleset(svc, "n1")
    assert str(svc_ip(svc, "web")) in text
    assert "default/ignored" not in text and str(svc_ip(svc, "ignored")) not in text
    r = svc.pod_exec("client", ["curl", "-sS", "--max-time", "2", f"http://{svc_ip(svc, 'ignored')}/"])
    assert r.returncode != 0


def test_rules_are_kube_proxy_shaped(svc):
    text = ruleset(svc, "n1")
    if svc.mode == "iptables":
        needles = ("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
                   "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
                   "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
                   "-m statistic --mode random --probability 0.33333333349",
                   "--dst-type LOCAL -j KUBE-NODEPORTS",
                   "-m conntrack --ctstate INVALID -j DROP",
                   "has no endpoints\" -m tcp --dport 80 -j REJECT")
    else:
        needles = ("map service-ips {", "map service-nodeports {", "map no-endpoint-services {",
                   "chain mark-for-masquerade {", "meta mark set meta mark | 0x00004000",
                   "numgen random mod 3 vmap {", "chain service-", "-default/web/tcp/http__",
                   "meta l4proto tcp dnat to ")
        # the iptables mode's chains are gone: only flannel's (and the kubelet's hint, and the NetworkPolicy
        # chain, empty without policies) remain in iptables
        _, _, save = flavour_commands("auto")
        kept = (":KUBE-IPTABLES-HINT - [0:0]", ":KUBE-ROUTER-FORWARD - [0:0]",
                '-A FORWARD -m comment --comment "kube-router netpol - network policies" -j KUBE-ROUTER-FORWARD')
        assert "KUBE-" not in "\n".join(line for line in svc.node_exec("n1", [save]).stdout.splitlines()
                                        if line not in kept)
    for needle in needles:
        assert needle in text, needle


def test_endpoints_follow_pods_and_partial_sync(svc):
    old = set(svc.web)
    r = svc.up(svc.text(1))
    now = {p.name for p in svc.pods("web-")}
    assert len(now) == 1 and now <= old
    answers = many(svc, ("pod", "client"), svc_ip(svc, "web"), 80, n=20)
    assert set(answers) == now
    if svc.mode == "iptables":
        # only the chains of services whose endpoints changed were rewritten: lonely's were not
        iptables_changes = [c for c in r.changes if "iptables" in c]
        assert iptables_changes
        from netlab.render.kubeproxy_iptables import svc_chain
        assert not any(svc_chain("default/lonely", "TCP") in c for c in iptables_changes)
        assert any(svc_chain("default/web:http", "TCP") in c for c in iptables_changes)
    else:
        # a small transaction, not a reload of the table
        nft = [c for c in r.changes if "nftables" in c]
        assert nft and all(int(c.split("(")[1].split()[0]) < 60 for c in nft), nft


def test_tampered_rules_are_restored(svc):
    # the lab's control loop would repair the rules on its periodic resync (test below); stopped here
    # so that what `get nodes` reports before any repair can be seen
    from netlab.live import loop
    loop.set_frozen(svc.name, True)
    labmod.stop_control_loop(svc.name)
    if svc.mode == "iptables":
        _, _, save = flavour_commands("auto")
        svc.node_exec("n1", [save.replace("-save", ""), "-t", "nat", "-F"])
    else:
        svc.node_exec("n1", ["nft", "flush", "map", "ip", "kube-proxy", "service-nodeports"])
    r = svc.pod_exec("client", ["curl", "-sS", "--max-time", "2", f"http://{svc.node('n1').ip}:30080/"])
    assert r.returncode != 0  # n1's NodePort rules are gone
    # `get nodes` says which node and what differs, before anything is repaired
    r = netlab_cli("get", "nodes", "--lab", svc.name, check=True)
    status = {l.split()[0]: l.split()[1] for l in r.stdout.splitlines()[1:]}
    assert status == {"n1": "NotReady", "n2": "Ready"}, (status, r.stderr)
    assert ("nat/KUBE-SERVICES" if svc.mode == "iptables" else "nftables table ip kube-proxy differs") in r.stderr
    res = svc.up(svc.text())
    assert any(svc.mode in c for c in res.changes), res.changes
    assert sorted(set(many(svc, ("external", ""), svc.node("n1").ip, 30080, n=30))) == svc.web
    assert svc.up(svc.text()).changes == []
    assert "NotReady" not in netlab_cli("get", "nodes", "--lab", svc.name, check=True).stdout


def test_the_control_loop_repairs_tampered_rules_on_its_own(lab):
    """kube-proxy's periodic full sync: rules someone else flushed come back without any command."""
    from netlab.live.loop import RESYNC_SECONDS
    lab.up(SCENARIO.replace("BACKEND", "vxlan").replace("REPLICAS", "2"))
    _, _, save = flavour_commands("auto")
    # settled first: the cluster DNS's two pods ready and in n1's rules (a sync for them would repair too soon)
    until("kube-dns's endpoints in n1's rules", lambda: sum(
        "kube-system/kube-dns:dns" in line and "-j DNAT" in line
        for line in lab.node_exec("n1", [save, "-t", "nat"]).stdout.splitlines()) >= 2, timeout=30)
    time.sleep(1)
    lab.node_exec("n1", [save.replace("-save", ""), "-t", "nat", "-F"])
    r = lab.pod_exec("client", ["curl", "-sS", "--max-time", "2", f"http://{lab.node('n1').ip}:30080/"])
    assert r.returncode != 0  # n1's NodePort rules are gone
    deadline = time.monotonic() + RESYNC_SECONDS + 10
    while time.monotonic() < deadline:
        if "-A KUBE-SERVICES" in lab.node_exec("n1", [save, "-t", "nat"]).stdout:
            break
        time.sleep(0.5)
    body = lab.http(("external", ""), lab.node("n1").ip, 30080, "/hostname")
    assert body.startswith("web-"), body


def node_identity(lab, node: str) -> tuple[int, int]:
    """(namespace cookie, nf_tables generation) of a node, read over netlink inside it."""
    from netlab.dataplane import nsfs, rtnl
    return nsfs.in_netns(lab.node(node).netns, lambda: (rtnl.netns_cookie(), rtnl.nft_generation()))


def sync_record(path: str) -> tuple[tuple[int, int], object]:
    """A sync record: ((cookie, generation) it was written at, its data)."""
    with open(path) as f:
        rec = json.load(f)
    return (rec["cookie"], rec["generation"]), rec["data"]


def test_nftables_sync_trusts_its_record_only_while_nothing_else_changed(lab):
    """nftables mode keeps the table it applied with the node's nf_tables generation; the next sync
    diffs against that record instead of listing the table, unless the generation moved."""
    import os
    import stat

    from netlab.dataplane.proxy.nftables import NftablesProxy

    # no cluster DNS pods: their readiness would add a commit to whichever pass sees it
    text = lambda n: scenario("vxlan", n, kubeProxyMode="nftables").replace("kind: Cluster\n", "kind: Cluster\ndns: {replicas: 0}\n", 1)  # noqa: E501,E731
    lab.control_loop = False  # what each `up` commits is counted
    lab.up(text(3))
    paths = {n.name: NftablesProxy.record_path(lab.name, n.name) for n in lab.cluster.nodes}
    generation = lambda node: node_identity(lab, node)  # noqa: E731
    record = lambda node: sync_record(paths[node])[0]  # noqa: E731

    for node, path in paths.items():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert record(node) == generation(node)
    # a one-endpoint-ish change: a small transaction, one commit per node, and the record follows
    before = generation("n1")
    r = lab.up(text(2))
    nft = [c for c in r.changes if "nftables" in c]
    assert nft and all(int(c.split("(")[1].split()[0]) < 60 for c in nft), nft
    assert generation("n1") == (before[0], before[1] + 1) == record("n1")
    web = sorted(p.name for p in lab.pods("web-"))
    assert sorted(set(many(lab, ("pod", "client"), svc_ip(lab, "web"), 80, n=20))) == web
    # somebody else commits in n1 (not touching kube-proxy's table): the generation moves, the next
    # sync reads the live table back, finds nothing to do, and records the new generation
    lab.node_exec("n1", ["nft", "add", "table", "ip", "someone-else"])
    assert generation("n1") != record("n1")
    assert lab.up(text(2)).changes == []
    assert record("n1") == generation("n1")
    # ... and a hand change inside the table is repaired (also in test_tampered_rules_are_restored)
    lab.node_exec("n1", ["nft", "flush", "chain", "ip", "kube-proxy", "services"])
    assert any("nftables" in c for c in lab.up(text(2)).changes)
    assert "vmap @service-ips" in lab.node_exec("n1", ["nft", "list", "chain", "ip", "kube-proxy", "services"]).stdout
    # a torn record is not trusted
    with open(paths["n2"], "w") as f:
        f.write('{"version": 1, "cookie"')
    assert lab.up(text(2)).changes == []
    assert record("n2") == generation("n2")
    assert "table ip someone-else" in lab.node_exec("n1", ["nft", "list", "tables"]).stdout  # not netlab's
    lab.node_exec("n1", ["nft", "delete", "table", "ip", "someone-else"])
    # switching to iptables mode removes the table and the records
    lab.up(scenario("vxlan", 2, kubeProxyMode="iptables"))
    assert not any(os.path.exists(p) for p in paths.values())


def test_iptables_nft_sync_trusts_its_record_only_while_nothing_else_changed(lab, monkeypatch):
    """With the nft flavour, iptables mode keeps each node's tables as of its last sync with the node's
    nf_tables generation; while the generation is unchanged the next sync diffs against that record
    (no iptables-save), and the record always matches what iptables-nft-save shows."""
    import os

    from netlab.dataplane import iptables as ipt
    from netlab.dataplane import proxy

    text = lambda n: scenario("vxlan", n, iptablesFlavour="nft")
    lab.up(text(3))
    paths = {n.name: proxy.iptables_record_path(lab.name, n.name) for n in lab.cluster.nodes}
    generation = lambda node: node_identity(lab, node)  # noqa: E731
    record = lambda node: sync_record(paths[node])  # noqa: E731

    def view(tables):
        """What a plan looks at: every chain that has rules, and every netlab chain, rules normalised."""
        return {(t, c): [" ".join(r.split()) for r in rules] for t, chains in tables.items()
                for c, rules in chains.items() if rules or ipt.OWNED_CHAIN.match(c)}

    def check_records(stale_ok=False):
        """Each record is current and matches the kernel. (A commit after the iptables sync - nftables
        mode's own, or removing it on a switch back - leaves the record stale: the next sync reads back.)"""
        for node in paths:
            ident, data = record(node)
            if stale_ok and ident != generation(node):
                continue
            assert ident == generation(node)
            live = ipt.parse_save(lab.node_exec(node, ["iptables-nft-save"]).stdout)
            assert view(data) == view(live), node

    check_records()
    # a change, synced from the records alone: iptables-save is not run at all
    real_save = ipt.save
    monkeypatch.setattr(ipt, "save", lambda *a: pytest.fail("iptables-save ran although the record was good"))
    r = lab.up(text(2))
    assert any("iptables nat/KUBE-SVC-" in c for c in r.changes), r.changes
    assert lab.up(text(2)).changes == []
    monkeypatch.setattr(ipt, "save", real_save)
    check_records()
    web = sorted(p.name for p in lab.pods("web-"))
    assert sorted(set(many(lab, ("pod", "client"), svc_ip(lab, "web"), 80, n=20))) == web
    # a hand-made change moves the generation: the next sync reads the tables back and repairs them
    lab.node_exec("n1", ["iptables-nft", "-t", "nat", "-F", "KUBE-SERVICES"])
    lab.node_exec("n1", ["iptables-nft", "-t", "nat", "-I", "PREROUTING", "-j", "KUBE-MARK-MASQ"])
    r = lab.up(text(2))
    assert any("nat/KUBE-SERVICES" in c for c in r.changes) and any("stray jump" in c for c in r.changes), r.changes
    check_records()
    # scale up again and switch modes: the records follow the kernel through every kind of change
    lab.up(text(4))
    check_records()
    lab.up(scenario("vxlan", 4, iptablesFlavour="nft", kubeProxyMode="nftables"))
    check_records(stale_ok=True)
    lab.up(text(4))  # back to iptables: removing the nftables table after the iptables sync is a commit too
    check_records(stale_ok=True)
    assert lab.up(text(4)).changes == []
    check_records()
    # a torn record, or one of the wrong shape at the right identity, is not trusted
    with open(paths["n2"], "w") as f:
        f.write('{"version": 1, "cookie"')
    cookie, gen = generation("n1")
    with open(paths["n1"], "w") as f:
        json.dump({"version": proxy.IPTABLES_RECORD_VERSION, "cookie": cookie, "generation": gen,
                   "data": {"nat": ["-A KUBE-SERVICES -j RETURN"]}}, f)
    assert lab.up(text(4)).changes == []
    check_records()
    assert all(os.path.exists(p) for p in paths.values())


def test_get_services_and_endpoints(svc):
    out = netlab_cli("get", "svc", "--lab", svc.name, check=True).stdout
    header = out.splitlines()[0].split()
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert "80:30080/TCP" in out
    objs = json.loads(netlab_cli("get", "svc", "webnp", "-o", "json", "--lab", svc.name, check=True).stdout)
    assert objs["spec"]["type"] == "NodePort" and objs["spec"]["ports"][0]["nodePort"] == 30080
    assert objs["spec"]["clusterIP"] == str(svc_ip(svc, "webnp"))
    eps = json.loads(netlab_cli("get", "endpoints", "web", "-o", "json", "--lab", svc.name, check=True).stdout)
    addrs = eps["subsets"][0]["addresses"]
    assert sorted(a["targetRef"]["name"] for a in addrs) == svc.web
    assert {p["name"] for s in eps["subsets"] for p in s["ports"]} == {"http", "udp"}


def test_switching_proxy_mode_in_place(lab):
    """iptables -> nftables -> iptables on a running lab: the old mode's rules go, pods stay."""
    text = SCENARIO.replace("BACKEND", "vxlan").replace("REPLICAS", "3")
    lab.up(text)
    pods = {p.key: nsfs_inode(p) for p in lab.cluster.pods}
    sc_changes = lab.up(text, proxy_mode="nftables").changes
    assert any("nftables table ip kube-proxy" in c for c in sc_changes)
    _, _, save = flavour_commands("auto")
    # only the kubelet's hint and the NetworkPolicy chain (empty without policies) stay in iptables
    kept = (":KUBE-IPTABLES-HINT - [0:0]", ":KUBE-ROUTER-FORWARD - [0:0]",
            '-A FORWARD -m comment --comment "kube-router netpol - network policies" -j KUBE-ROUTER-FORWARD')
    assert "KUBE-" not in "\n".join(line for line in lab.node_exec("n1", [save]).stdout.splitlines()
                                    if line not in kept)
    assert "table ip kube-proxy" in lab.node_exec("n1", ["nft", "list", "tables"]).stdout
    web = sorted(p.name for p in lab.pods("web-"))
    assert sorted(set(many(lab, ("pod", "client"), svc_ip(lab, "web"), 80, n=30))) == web
    out = netlab_cli("get", "pods", "--lab", lab.name, check=True).stdout  # the mode is kept in the state
    assert "Running" in out
    lab.up(text)  # back to the scenario's mode
    assert "table ip kube-proxy" not in lab.node_exec("n1", ["nft", "list", "tables"]).stdout
    assert "KUBE-SVC-" in lab.node_exec("n1", [save]).stdout
    # kube-proxy's FORWARD jumps came back below the NetworkPolicy jump, not above it
    forward = [line for line in lab.node_exec("n1", [save]).stdout.splitlines() if line.startswith("-A FORWARD")]
    assert forward[0].endswith("-j KUBE-ROUTER-FORWARD") and forward[-1].endswith("-j FLANNEL-FWD"), forward
    assert {p.key: nsfs_inode(p) for p in lab.cluster.pods} == pods
    assert sorted(set(many(lab, ("pod", "client"), svc_ip(lab, "web"), 80, n=30))) == web


def nsfs_inode(pod):
    from netlab.dataplane import nsfs
    return nsfs.ns_inode(nsfs.netns_path(pod.netns))
