"""A lab over several hosts: the Cluster document's hosts and hostNetwork, placement, the hosts' fabric and
its MTU per encapsulation layer, names, and the one-line refusals (no root: all pure, or a fake kernel)."""
from __future__ import annotations

import ipaddress

import pytest

from netlab import names
from netlab.cli import main
from netlab.dataplane import fabric as dfabric
from netlab.dataplane import kernelcheck as kc
from netlab.errors import SpecError, UsageError
from netlab.model.build import build
from netlab.model.placement import HOST_LABEL, nodes_of_host, place, segment_conflict
from netlab.render import fabric
from netlab.spec.parse import load_text

from .test_kernelcheck import fake

HEAD = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nname: mh\n"


def parse(body: str):
    return load_text(HEAD + body, "mh.yaml")


def error(body: str) -> str:
    with pytest.raises(SpecError) as e:
        parse(body)
    return str(e.value)


THREE = "hosts: [{name: a}, {name: b}, {name: c}]\n"
SIX = "nodes: [{role: control-plane}, {role: worker}, {role: worker}, {role: worker}, {role: worker}, {role: worker}]\n"


def test_round_robin_when_no_node_names_a_host():
    sc = parse(THREE + SIX)
    assert [n.host for n in sc.nodes] == ["a", "b", "c", "a", "b", "c"]
    assert all(n.labels[HOST_LABEL] == n.host for n in sc.nodes)
    hc = sc.networking.hosts
    assert hc.mode == "emulated" and str(hc.segment) == "192.168.240.0/24" and (hc.vni, hc.port) == (4242, 4789)
    assert [str(h.address) for h in hc.hosts] == ["192.168.240.2", "192.168.240.3", "192.168.240.4"]
    assert sc.networking.mtu == 1450   # the hosts' NIC 1500 less the underlay VXLAN's 50


def test_named_hosts_win_and_the_rest_go_to_the_least_loaded():
    sc = parse(THREE + "nodes: [{role: control-plane, host: c}, {role: worker, host: c}, {role: worker}, "
               "{role: worker}, {role: worker}]\n")
    assert [n.host for n in sc.nodes] == ["c", "c", "a", "b", "a"]


def test_spread_by_count():
    sc = parse("hosts: [{name: a, nodes: 1}, {name: b, nodes: 3}, {name: c, nodes: 2}]\n" + SIX)
    assert [n.host for n in sc.nodes] == ["a", "b", "b", "b", "c", "c"]
    assert place([("x", "b"), ("y", None)], [("a", 1), ("b", 1)]) == {"x": "b", "y": "a"}


def test_nodes_of_host_reads_the_label():
    labels = {"n1": {HOST_LABEL: "a"}, "n2": {HOST_LABEL: "b"}, "n3": {HOST_LABEL: "a"}, "n4": {}}
    assert nodes_of_host(labels, "a") == ["n1", "n3"] and nodes_of_host(labels, "z") == []


def test_a_node_on_a_host_that_is_not_in_the_lab():
    assert error(THREE + "nodes: [{role: control-plane}, {role: worker, host: d}]\n") == (
        "Cluster (document 1): nodes[1].host 'd' is not a host of the lab (hosts: a, b, c); "
        "place the node on one of them, or add the host to hosts")


def test_a_node_names_a_host_but_there_are_no_hosts():
    assert error("nodes: [{role: control-plane, host: a}]\n") == (
        "Cluster (document 1): nodes[0].host 'a' names a host but the Cluster lists no hosts; "
        "list the lab's hosts under hosts:, or remove the node's host")


@pytest.mark.parametrize("body,line", [
    (THREE + "networking: {mtu: 1500}\n",
     "Cluster (document 1): networking.mtu 1500 does not fit in the hosts' NIC MTU 1500 less the 50 bytes of the "
     "underlay's VXLAN between the hosts; use at most 1450 (or leave it out), or raise hostNetwork.mtu"),
    (THREE + "hostNetwork: {port: 8472}\n",
     "Cluster (document 1): hostNetwork.port 8472 is flannel.1's port (the nodes' VXLAN inside the underlay); "
     "use another port for the underlay between the hosts, e.g. 4789"),
    ("hosts: [{name: a, address: 192.168.56.11}]\nhostNetwork: {mode: real, segment: 192.168.56.0/24}\n",
     "Cluster (document 1): hosts[0].interface is required with hostNetwork.mode real; "
     "name the host's NIC on 192.168.56.0/24, e.g. interface: eth1"),
    ("hosts: [{name: a, interface: eth1}]\nhostNetwork: {mode: real, segment: 192.168.56.0/24}\n",
     "Cluster (document 1): hosts[0].address is required; set hosts[0].address"),
    ("hosts: [{name: a, address: 10.0.0.1, interface: eth1}]\nhostNetwork: {mode: real}\n",
     "Cluster (document 1): hostNetwork.segment is required with mode real; "
     "set it to the network of the hosts' NICs, e.g. 192.168.56.0/24"),
    (THREE.replace("{name: b}", "{name: b, address: 192.168.241.2}"),
     "Cluster (document 1): hosts[1].address 192.168.241.2 is not a host address of hostNetwork.segment "
     "192.168.240.0/24; give the host an address of the segment"),
    ("hosts: [{name: a, interface: eth1}]\n",
     "Cluster (document 1): hosts[0].interface is set but hostNetwork.mode is emulated (an emulated host's NIC is "
     "eth0); remove it, or set hostNetwork.mode: real"),
    ("hosts: [{name: a}, {name: a}]\n",
     "Cluster (document 1): hosts[1].name 'a' is used by two hosts; give each host its own name"),
    ("hosts: [{name: a, nodes: 1}, {name: b, nodes: 2}]\n" + SIX,
     "Cluster (document 1): hosts[].nodes add up to 3 but the cluster has 6 nodes; "
     "make the hosts' node counts add up to the number of nodes"),
    ("hostNetwork: {mode: emulated}\n",
     "Cluster (document 1): hostNetwork is set but the Cluster lists no hosts; "
     "list the lab's hosts under hosts:, or remove hostNetwork"),
    (THREE + "hostNetwork: {segment: 172.18.0.0/24}\n",
     "Cluster (document 1): hostNetwork.segment 172.18.0.0/24 overlaps the cluster's network 172.18.0.0/16; "
     "give the hosts' segment a range of its own"),
])
def test_bad_hosts_are_one_line(body, line):
    assert error(body) == line


def real(segment: str, vni: int = 4242, port: int = 4789):
    return parse(f"hosts: [{{name: a, address: {ipaddress.ip_network(segment)[5]}, interface: eth1}}]\n"
                 f"hostNetwork: {{mode: real, segment: {segment}, vni: {vni}, port: {port}}}\n").networking.hosts


def test_two_labs_claiming_one_vxlan_port_and_vni_on_a_segment():
    mine = real("192.168.56.0/24")
    assert segment_conflict("mh", mine, {"other": real("192.168.56.0/25")}, "mh.yaml: Cluster mh") == (
        "mh.yaml: Cluster mh: hostNetwork port 4789 and vni 4242 on segment 192.168.56.0/24 are claimed by lab other "
        "(segment 192.168.56.0/25); give this lab another hostNetwork.vni or port")
    assert segment_conflict("mh", mine, {"other": real("192.168.56.0/24", vni=7)}, "w") is None
    assert segment_conflict("mh", mine, {"other": real("192.168.57.0/24")}, "w") is None
    assert segment_conflict("mh", mine, {"mh": real("192.168.56.0/24")}, "w") is None   # itself
    emulated = parse(THREE).networking.hosts   # each emulated lab has a segment namespace of its own
    assert segment_conflict("mh", emulated, {"other": parse(THREE).networking.hosts}, "w") is None


NO_VXLAN = "CONFIG_MODULES=y\n# CONFIG_VXLAN is not set\n"


def test_a_kernel_without_vxlan_refuses_hosts(tmp_path, monkeypatch, capsys):
    k = fake(tmp_path, config=NO_VXLAN, proc_files=["modules"])
    assert k.state(kc.VXLAN) == kc.ABSENT
    line = kc.hosts_refusal("mh.yaml: Cluster mh", k)
    assert line == ("mh.yaml: Cluster mh: hosts cannot be joined on this kernel: the kernel has no VXLAN (vxlan "
                    "module, which carries the node underlay between the hosts); " + kc.KERNEL_HINT + ", " + kc.VM_HINT
                    + "; or remove hosts")
    ok = fake(tmp_path / "ok", config="CONFIG_VXLAN=y\n")
    assert kc.hosts_refusal("w", ok) is None
    # `up` refuses it before any change (preflight), `validate` with the same line and exit 2
    monkeypatch.setattr(kc, "_default", k)
    c = build(parse(THREE + SIX))
    with pytest.raises(UsageError) as e:
        dfabric.preflight(c)
    assert str(e.value) == line and e.value.exit_code == 2
    f = tmp_path / "mh.yaml"
    f.write_text(HEAD + THREE + SIX)
    monkeypatch.setattr("sys.argv", ["netlab", "validate", str(f)])
    with pytest.raises(SystemExit) as ex:
        main()
    assert ex.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {line.replace('mh.yaml', str(f))}"]


def test_real_hosts_up_passes_and_an_agent_needs_the_hosts_interface(monkeypatch, tmp_path):
    """`up` of real hosts builds nothing (each machine's agent builds its host): its preflight passes; the
    agent of a host refuses, with one line, a machine that lacks the host's interface."""
    from netlab.dataplane import layout
    monkeypatch.setattr(kc, "_default", fake(tmp_path, config="CONFIG_VXLAN=y\n"))
    c = build(parse("hosts: [{name: a, address: 192.168.56.11, interface: nl-no-such0}, "
                    "{name: b, address: 192.168.56.12, interface: lo}]\n"
                    "hostNetwork: {mode: real, segment: 192.168.56.0/24}\n"))
    dfabric.hosts_preflight(c)
    monkeypatch.setattr(layout, "_HOST", ["b"])
    dfabric.hosts_preflight(c)   # lo: on every machine
    monkeypatch.setattr(layout, "_HOST", ["a"])
    with pytest.raises(UsageError) as e:
        dfabric.hosts_preflight(c)
    assert str(e.value) == ("mh.yaml: Cluster mh: host a's interface nl-no-such0 is not on this machine; run this "
                            "host's agent on the machine whose NIC nl-no-such0 has 192.168.56.11, or fix "
                            "hosts[a].interface")


def test_names_of_the_hosts_namespaces():
    assert names.segment_netns("mh") == "nl.mh.segment"
    assert names.host_netns("mh", "a") == "nl.mh.host.a"
    assert names.parse_netns("nl.mh.segment") == names.NetnsName("mh", "segment")
    assert names.parse_netns("nl.mh.host.a", "mh") == names.NetnsName("mh", "host", host="a")
    assert names.parse_netns("nl.mh.segment.x") is None and names.parse_netns("nl.mh.host") is None
    assert names.parse_netns("nl.mh.host.a.b") is None
    assert names.is_lab_netns("nl.mh.host.a", "mh") and not names.is_lab_netns("nl.mh.host.a", "m")


def test_the_hosts_fabric_and_the_mtu_of_each_layer():
    c = build(parse(THREE + SIX + "networking: {backend: vxlan}\n"))
    assert c.underlay_netns == "nl.mh.host.a"   # the gateway and the external host: on the first host
    assert [c.node_underlay_netns(n) for n in c.nodes] == [f"nl.mh.host.{h}" for h in "abcabc"]
    assert [n.name for n in c.nodes_on_host("b")] == ["mh-worker", "mh-worker4"]
    hf = fabric.host_fabric(c, "b")
    assert (hf.netns, hf.nic, hf.nic_address, hf.nic_mtu, hf.underlay_mtu) == \
        ("nl.mh.host.b", "eth0", "192.168.240.3/24", 1500, 1450)
    assert (hf.vxlan.vni, hf.vxlan.port, hf.vxlan.local, hf.vxlan.dev) == (4242, 4789, "192.168.240.3", "eth0")
    assert [(f.lladdr, f.dst) for f in hf.fdb] == [(fabric.ZERO_MAC, "192.168.240.2"),
                                                   (fabric.ZERO_MAC, "192.168.240.4")]
    assert hf.nodes == ["mh-worker", "mh-worker4"] and not hf.home and fabric.host_fabric(c, "a").home
    assert fabric.mtu_layers(c) == [("hosts' NIC", 1500), ("underlay VXLAN between hosts (-50): nodes' eth0", 1450),
                                    ("flannel.1 (-50): pods", 1400)]
    nf = fabric.node_fabric(c, c.nodes[0])
    assert (nf.eth0_mtu, nf.vxlan.mtu, nf.pod_mtu) == (1450, 1400, 1400)
    assert (nf.vxlan.vni, nf.vxlan.port) == (1, 8472)   # flannel.1 unchanged inside the underlay
    text = fabric.describe_hosts(c)
    assert ("# MTU: hosts' NIC 1500 > underlay VXLAN between hosts (-50): nodes' eth0 1450 > flannel.1 (-50): "
            "pods 1400") in text
    assert "ip link add underlay.vx type vxlan id 4242 local 192.168.240.3 dev eth0 dstport 4789" in text
    hgw = build(parse(THREE + SIX + "hostNetwork: {mtu: 9000}\nnetworking: {backend: host-gw}\n"))
    assert fabric.mtu_layers(hgw) == [("hosts' NIC", 9000), ("underlay VXLAN between hosts (-50): nodes' eth0", 8950),
                                      ("pods", 8950)]
    assert fabric.max_ping_payload(1400) == 1372


def test_a_one_machine_lab_is_unchanged():
    sc = parse("nodes: [{role: control-plane}, {role: worker}]\n")
    c = build(sc)
    assert sc.networking.hosts is None and sc.networking.mtu == 1500
    assert all(n.host is None and HOST_LABEL not in n.labels for n in c.nodes)
    assert c.underlay_netns == "nl.mh.underlay" and c.node_underlay_netns(c.nodes[0]) == "nl.mh.underlay"
    assert fabric.describe_hosts(c) == "" and fabric.mtu_layers(c) == [("underlay: nodes' eth0", 1500),
                                                                       ("flannel.1 (-50): pods", 1450)]


def test_the_node_objects_carry_the_host_label_and_get_nodes_wide_shows_it():
    from netlab.live.objects import node_objects
    from netlab.output import node_table
    c = build(parse(THREE + SIX))
    objs = node_objects(c)
    assert [o["metadata"]["labels"][HOST_LABEL] for o in objs] == list("abcabc")
    table = node_table(c, {n.name: [] for n in c.nodes}, None, wide=True).splitlines()
    assert table[0].split()[-1] == "HOST"
    assert [row.split()[-1] for row in table[1:]] == list("abcabc")
    assert "HOST" not in node_table(c, {}, None, wide=False)


def test_up_refuses_before_building_anything(tmp_path, monkeypatch):
    """`up` asks lab_spec.hosts_problem first: a kernel without VXLAN, or another lab's claim of the same VXLAN
    port and VNI on the segment, is one line, exit 2, and no namespace or lab directory is made."""
    import os

    from netlab import lab_spec
    from netlab.dataplane import layout
    text = HEAD.replace("name: mh", "name: hosts-unit-refused") + \
        "hosts: [{name: a, address: 192.168.56.11, interface: eth1}]\n" \
        "hostNetwork: {mode: real, segment: 192.168.56.0/24}\n"
    sc = load_text(text, "r.yaml")
    monkeypatch.setattr(kc, "_default", fake(tmp_path, config="CONFIG_VXLAN=y\n"))
    monkeypatch.setattr(lab_spec, "hosts_claims", lambda exclude=None: {"other": real("192.168.56.0/24")})
    with pytest.raises(UsageError) as e:
        lab_spec.up(sc, text)
    assert str(e.value) == ("r.yaml: Cluster hosts-unit-refused: hostNetwork port 4789 and vni 4242 on segment "
                            "192.168.56.0/24 are claimed by lab other (segment 192.168.56.0/24); give this lab another "
                            "hostNetwork.vni or port") and e.value.exit_code == 2
    monkeypatch.setattr(kc, "_default", fake(tmp_path / "novx", config=NO_VXLAN, proc_files=["modules"]))
    sc = load_text(text, "r.yaml")
    with pytest.raises(UsageError) as e:
        lab_spec.up(sc, text)
    assert str(e.value).startswith("r.yaml: Cluster hosts-unit-refused: hosts cannot be joined on this kernel: "
                                   "the kernel has no VXLAN")
    assert not os.path.exists(layout.lab_dir("hosts-unit-refused"))
    assert not [n for n in os.listdir("/run/netns") if "hosts-unit-refused" in n] if os.path.isdir("/run/netns") \
        else True


def test_the_graph_shows_which_host_holds_which_nodes():
    from netlab.graph.build import build as graph
    g = graph(build(parse(THREE + SIX)))
    underlay = next(e for e in g.elements if e.id == "underlay")
    assert underlay.attrs["netns"] == "nl.mh.host.a"
    assert underlay.details[1:] == ["spans hosts by VXLAN 4242/4789 over 192.168.240.0/24",
                                    "host a 192.168.240.2: mh-control-plane, mh-worker3",
                                    "host b 192.168.240.3: mh-worker, mh-worker4",
                                    "host c 192.168.240.4: mh-worker2, mh-worker5"]
    one = next(e for e in graph(build(parse(SIX))).elements if e.id == "underlay")
    assert one.details == ["gateway 172.18.0.1"]


def test_up_removes_the_hosts_a_lab_no_longer_has():
    from netlab.dataplane.plan import plan_namespaces
    three = build(parse(THREE + SIX))
    existing = {"nl.mh.segment", "nl.mh.host.a", "nl.mh.host.b", "nl.mh.host.c", "nl.mh.host.d", "nl.mh.underlay",
                "nl.mh.external", *(n.netns for n in three.nodes), "nl.mh.host.a.b", "nl.mh.mine"}
    assert plan_namespaces(three, {}, existing).remove == ["nl.mh.host.d", "nl.mh.underlay"]
    one = build(parse(SIX))   # off the hosts again: the segment and the hosts go, the underlay stays
    assert plan_namespaces(one, {}, existing).remove == ["nl.mh.host.a", "nl.mh.host.b", "nl.mh.host.c",
                                                         "nl.mh.host.d", "nl.mh.segment"]
