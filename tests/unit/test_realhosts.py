"""Real hosts: the Vagrantfile's three VMs and the scenario it brings up agree (addresses, NIC, one node per
VM), and what `render --fabric` says a real host's VXLAN is (made from the machine's root namespace)."""
from __future__ import annotations

import pathlib
import re

from netlab.model.build import build
from netlab.render import fabric
from netlab.spec.parse import load_text

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_vagrant_scenario_places_one_node_on_each_vm():
    path = REPO / "examples" / "multihost-vagrant.yaml"
    c = build(load_text(path.read_text(), str(path)))
    hc = c.networking.hosts
    assert hc.mode == "real" and str(hc.segment) == "192.168.56.0/24"
    vagrant = (REPO / "Vagrantfile").read_text()
    peers = re.search(r'PEERS = \(1\.\.3\)\.map \{ \|i\| "([0-9.]+)1#\{i\}" \}', vagrant)
    assert peers, "the Vagrantfile's VM addresses"
    assert [(h.name, str(h.address), h.interface) for h in hc.hosts] == \
        [(f"h{i}", f"{peers.group(1)}1{i}", "eth1") for i in (1, 2, 3)]
    assert {h.name: [n.name for n in c.nodes_on_host(h.name)] for h in hc.hosts} == \
        {"h1": ["demo-control-plane"], "h2": ["demo-worker"], "h3": ["demo-worker2"]}
    assert "--host h#{i}" in vagrant and "examples/multihost-vagrant.yaml" in vagrant


def test_a_real_hosts_vxlan_is_made_from_the_root_namespace():
    c = build(load_text((REPO / "examples" / "multihost-vagrant.yaml").read_text(), "mh.yaml"))
    text = fabric.describe_hosts(c)
    assert "ip addr add" not in text and "segment0" not in text
    assert ("ip link add underlay.vx address {mac} mtu 1450 netns nl.demo.host.h2 type vxlan id 4242 local "
            "192.168.56.12 dev eth1 dstport 4789  # run in the machine's root namespace; its UDP socket stays "
            "there").format(mac=fabric.host_fabric(c, "h2").vxlan.mac) in text
