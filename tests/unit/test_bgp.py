"""The BGP backend in the pure core: the networking.bgp map's validation, the BIRD configurations rendered
from the model (golden files, and BIRD's own parser when it is installed), the parser of `birdc show
protocols`, the masquerade rules of natOutgoing, the node fabric without static routes, `get nodes -o
wide`'s BGP column and `exec`'s birdc socket. No root."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from netlab.bgp import bird
from netlab.api import _birdc
from netlab.errors import SpecError, UsageError
from netlab.output import node_table
from netlab.render.fabric import iptables_flannel, nat_outgoing, node_fabric

from . import golden
from .scenarios import cluster, cluster_of, load, text

NODES = ["control-plane", "worker", "worker"]


def bgp_cluster(nodes=NODES, **bgp):
    net = {"backend": "bgp"}
    if bgp:
        net["bgp"] = bgp
    return cluster_of(cluster("g", nodes=nodes, **net))


# ---------------------------------------------------------------- spec

def test_defaults():
    cfg = bgp_cluster().networking.bgp
    assert (cfg.as_number, cfg.route_reflector, cfg.nat_outgoing, cfg.hold_time, cfg.keepalive_time,
            cfg.external_as, cfg.external_address) == (64512, False, False, 6, 2, 64513, None)


def test_every_field():
    cfg = bgp_cluster(asNumber=4200000000, routeReflector=True, natOutgoing=True, holdTime=9, keepaliveTime=3,
                      externalRouter={"asNumber": 65000, "address": "172.18.0.250"}).networking.bgp
    assert (cfg.as_number, cfg.route_reflector, cfg.nat_outgoing, cfg.hold_time, cfg.keepalive_time,
            cfg.external_as, cfg.external_address) == (4200000000, True, True, 9, 3, 65000, "172.18.0.250")


@pytest.mark.parametrize("bgp,message", [
    ({"asNumber": 0}, "networking.bgp.asNumber 0 is out of range 1-4294967295"),
    ({"asNumber": 4294967296}, "networking.bgp.asNumber 4294967296 is out of range 1-4294967295"),
    ({"asNumber": 23456}, "networking.bgp.asNumber 23456 is AS_TRANS"),
    ({"asNumber": "64512"}, "networking.bgp.asNumber must be an integer"),
    ({"externalRouter": {"asNumber": -1}}, "networking.bgp.externalRouter.asNumber -1 is out of range"),
    ({"externalRouter": {"address": "10.0.0.1"}},
     "networking.bgp.externalRouter.address 10.0.0.1 is outside the underlay 172.18.0.0/16"),
    ({"externalRouter": {"address": "172.18.255.255"}}, "is outside the underlay"),
    ({"externalRouter": {"address": "172.18.0.1"}}, "172.18.0.1 is the underlay's gateway"),
    ({"externalRouter": {"address": "router"}}, "'router' is not an IPv4 address"),
    ({"holdTime": 2}, "networking.bgp.holdTime 2 is out of range"),
    ({"holdTime": 6, "keepaliveTime": 3}, "keepaliveTime 3 is more than a third of holdTime 6"),
    ({"routeReflector": "yes"}, "routeReflector must be true or false"),
])
def test_bad_input_is_one_line(bgp, message):
    with pytest.raises(SpecError) as e:
        load(cluster("g", backend="bgp", bgp=bgp))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_bgp_map_needs_the_bgp_backend():
    with pytest.raises(SpecError, match="networking.bgp is set but networking.backend is vxlan; "
                                        "set networking.backend: bgp"):
        load(cluster("g", backend="vxlan", bgp={"asNumber": 64512}))


def test_validate_exits_2_with_one_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(text(cluster("g", backend="bgp", bgp={"asNumber": 99999999999})))
    r = subprocess.run([sys.executable, "-m", "netlab", "validate", str(f)], capture_output=True, text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "asNumber 99999999999 is out of range" in lines[0]


def test_the_routers_own_address_is_kept_off_the_nodes():
    c = bgp_cluster(externalRouter={"address": "172.18.0.3"})
    assert "172.18.0.3" not in {str(n.ip) for n in c.nodes}
    assert bird.router_address(c) == "172.18.0.3"
    assert "neighbor 172.18.0.3 as 64513;" in bird.node_config(c, c.nodes[0])


def test_the_external_hosts_address_is_the_default():
    c = bgp_cluster(externalRouter={"address": "172.18.255.254"})
    assert c.networking.bgp.external_address is None and bird.router_address(c) == "172.18.255.254"


# ---------------------------------------------------------------- BIRD configurations

def test_golden_full_mesh_node():
    c = bgp_cluster()
    golden.check("bgp_node_mesh", bird.node_config(c, c.nodes[1]), "BIRD config differs")


def test_golden_reflector_and_client():
    c = bgp_cluster(routeReflector=True)
    golden.check("bgp_node_reflector", bird.node_config(c, c.nodes[0]), "BIRD config differs")
    golden.check("bgp_node_client", bird.node_config(c, c.nodes[2]), "BIRD config differs")


def test_golden_external_router():
    c = bgp_cluster()
    golden.check("bgp_router", bird.router_config(c), "BIRD config differs")


def test_full_mesh_sessions():
    c = bgp_cluster(nodes=NODES + ["worker"])
    for node in c.nodes:
        peers = bird.node_peers(c, node)
        assert sorted(p.address for p in peers) == sorted([str(n.ip) for n in c.nodes if n is not node]
                                                          + [str(c.external_ip)])
        assert all(not p.rr_client for p in peers)
    assert [p.address for p in bird.router_peers(c)] == [str(n.ip) for n in c.nodes]


def test_route_reflector_sessions():
    c = bgp_cluster(nodes=NODES + ["worker"], routeReflector=True)
    rr = c.nodes[0]
    assert {p.address for p in bird.node_peers(c, rr) if p.rr_client} == {str(n.ip) for n in c.nodes[1:]}
    for client in c.nodes[1:]:
        assert [p.address for p in bird.node_peers(c, client)] == [str(rr.ip), str(c.external_ip)]


def test_ibgp_to_the_router_when_the_numbers_are_the_same():
    c = bgp_cluster(asNumber=65001, externalRouter={"asNumber": 65001})
    conf = bird.node_config(c, c.nodes[0])
    assert "local 172.18.0.2 as 65001;" in conf and "neighbor 172.18.255.254 as 65001;" in conf


def test_each_node_announces_its_own_pod_cidr_only():
    c = bgp_cluster()
    for node in c.nodes:
        conf = bird.node_config(c, node)
        routes = [ln.strip() for ln in conf.splitlines() if ln.strip().startswith("route ")]
        assert routes == [f"route {node.pod_cidr} blackhole;"]


def test_protocol_names_are_bird_symbols_and_distinct():
    c = cluster_of(cluster("g", nodes=[{"role": "worker", "name": "a-b"}, {"role": "worker", "name": "a-b-2"},
                                       {"role": "worker", "name": "0x"}], backend="bgp"))
    assert bird.protocol_names(c.nodes) == {"a-b": "node_a_b", "a-b-2": "node_a_b_2", "0x": "node_0x"}


bird_installed = pytest.mark.skipif(shutil.which("bird") is None, reason="bird2 is not installed (scripts/setup)")


@bird_installed
@pytest.mark.parametrize("bgp", [{}, {"routeReflector": True}, {"asNumber": 4200000000,
                                                                  "externalRouter": {"address": "172.18.9.9"}}])
def test_bird_accepts_every_config(tmp_path, bgp):
    """BIRD's own parser (bird -p) reads every configuration netlab writes."""
    c = bgp_cluster(**bgp)
    texts = [bird.node_config(c, n) for n in c.nodes] + [bird.router_config(c)]
    for i, t in enumerate(texts):
        f = tmp_path / f"{i}.conf"
        f.write_text(t)
        r = subprocess.run(["bird", "-p", "-c", str(f)], capture_output=True, text=True)
        assert r.returncode == 0, f"{r.stderr}\n{t}"


# ---------------------------------------------------------------- birdc

SHOW_PROTOCOLS = """BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     10:47:01.908  
pods       Static     master4    up     10:47:01.908  
kernel1    Kernel     master4    up     10:47:01.908  
node_bgp_dev_control_plane BGP        ---        up     10:47:02.664  Established   
node_bgp_dev_worker2 BGP        ---        start  10:49:11.020  Active        Socket: Connection refused
dc_router  BGP        ---        up     2026-12-01 10:47:02  Established   
"""


def test_parse_show_protocols():
    found = bird.parse_protocols(SHOW_PROTOCOLS)
    assert set(found) == {"device1", "pods", "kernel1", "node_bgp_dev_control_plane", "node_bgp_dev_worker2",
                          "dc_router"}
    assert found["node_bgp_dev_control_plane"].established and found["dc_router"].established
    w2 = found["node_bgp_dev_worker2"]
    assert not w2.established and w2.state == "start" and w2.info == "Active Socket: Connection refused"
    assert not found["pods"].established
    assert bird.bgp_summary(found, ["node_bgp_dev_control_plane", "node_bgp_dev_worker2", "dc_router"]) == "2/3"
    assert bird.bgp_summary({}, ["x"]) == "0/1"


def test_exec_adds_the_nodes_socket_to_birdc():
    c = bgp_cluster()
    argv = _birdc(c, "g-worker", ["birdc", "show", "route"])
    assert argv[:2] == ["birdc", "-s"] and argv[2].endswith("/bird/node-g-worker.ctl") and argv[3:] == ["show", "route"]
    assert _birdc(c, None, ["birdc", "show", "protocols"])[2].endswith("/bird/external.ctl")
    assert _birdc(c, "g-worker", ["birdc", "-s", "/x.ctl", "show"]) == ["birdc", "-s", "/x.ctl", "show"]
    assert _birdc(c, "g-worker", ["ip", "route"]) == ["ip", "route"]
    vx = cluster_of(cluster("g", nodes=NODES))
    assert _birdc(vx, "g-worker", ["birdc", "show"]) == ["birdc", "show"]


def test_long_node_names_keep_the_socket_path_short():
    from netlab.dataplane import bgp
    long = "n" * 63
    assert len(bgp.socket_path("x" * 24, long)) <= bgp.SOCKET_MAX


# ---------------------------------------------------------------- fabric and rules

def test_node_fabric_has_no_static_pod_routes():
    c = bgp_cluster()
    nf = node_fabric(c, c.nodes[0])
    assert [r.dst for r in nf.routes] == ["default"] and nf.vxlan is None and nf.pod_mtu == 1500


def _masq(c) -> list[str]:
    return [r for r in iptables_flannel(c, c.nodes[0])["nat"] if "MASQUERADE" in r]


def test_nat_outgoing_false_keeps_the_pods_address():
    c = bgp_cluster()
    assert not nat_outgoing(c)
    assert _masq(c) == ['-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment '
                        '"flanneld masq" -j MASQUERADE --random-fully']


def test_nat_outgoing_true_masquerades_as_the_overlays_do():
    c = bgp_cluster(natOutgoing=True)
    vx = cluster_of(cluster("g", nodes=NODES))
    assert nat_outgoing(c) and nat_outgoing(vx)
    assert _masq(c) == _masq(vx) and len(_masq(c)) == 2
    assert any("-s 10.244.0.0/16 ! -d 224.0.0.0/4" in r for r in _masq(c))


# ---------------------------------------------------------------- get nodes, preflight

def test_wide_node_table_has_a_bgp_column():
    c = bgp_cluster()
    ok = {n.name: [] for n in c.nodes}
    out = node_table(c, ok, None, True, bgp_of={"g-control-plane": "3/3", "g-worker": "2/3"})
    lines = out.splitlines()
    assert lines[0].split()[-1] == "BGP"
    assert [ln.split()[-1] for ln in lines[1:]] == ["3/3", "2/3", "down"]
    assert "BGP" not in node_table(c, ok, None, True).splitlines()[0]


def test_preflight_names_the_package(monkeypatch):
    from netlab.dataplane import bgp, procs
    monkeypatch.setattr(procs, "which", lambda t: None if t == "bird" else "/usr/sbin/" + t)
    with pytest.raises(UsageError) as e:
        bgp.preflight(bgp_cluster())
    assert str(e.value) == ("networking.backend bgp runs BIRD 2 on every node but bird is not installed; "
                            "run scripts/setup (or apt-get install bird2)")
    bgp.preflight(cluster_of(cluster("g", nodes=NODES)))   # not needed by the overlays


def test_bgps_port_is_reserved_on_the_nodes():
    """BIRD listens on TCP 179 in every node: the scheduler keeps hostPort 179 and hostNetwork pods off it."""
    from netlab.controllers.scheduler import RESERVED_PORTS
    from netlab.live.objects import node_objects
    for obj in node_objects(bgp_cluster()):
        assert obj["metadata"]["annotations"][RESERVED_PORTS] == "179/TCP"


def test_render_fabric_shows_the_bird_configurations(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(text(cluster("g", nodes=NODES, backend="bgp")))
    r = subprocess.run([sys.executable, "-m", "netlab", "render", str(f), "--fabric"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    c = bgp_cluster()
    for n in c.nodes:
        assert bird.node_config(c, n) in r.stdout
    assert r.stdout.endswith("# ---- external router (bird.conf)\n" + bird.router_config(c))
