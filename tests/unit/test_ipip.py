"""backend ipip (Calico's tunl0 way), ipipMode / vxlanMode CrossSubnet and nodes[].subnet: the spec, the model
and the rendered fabric (pure; golden files), and the refusal on a kernel without the ipip module (faked)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from netlab.dataplane import kernelcheck as kc
from netlab.errors import SpecError, UsageError
from netlab.probe.policy import address_toward
from netlab.render.fabric import describe, node_fabric, node_local_ips, pod_fabric, pod_mtu

from . import golden
from .scenarios import cluster, cluster_of, load, pod, text
from .test_kernelcheck import fake

THREE = [{"role": "control-plane", "name": "a1"}, {"role": "worker", "name": "a2"},
         {"role": "worker", "name": "b1", "subnet": "172.19.0.0/24"}]


def lab(backend="ipip", nodes=THREE, pods=True, **net):
    return cluster_of(cluster("g", nodes=nodes, backend=backend, **net),
                      *(pod(f"p{n['name']}", nodeName=n["name"]) for n in nodes if pods))


def routes(c, node):
    return {r.dst: (r.gateway, r.dev, r.onlink) for r in node_fabric(c, c.node(node)).routes}


# ---------------------------------------------------------------- spec

def test_defaults_and_fields():
    assert lab(nodes=THREE[:2]).networking.tunnel_mode == "Always"
    assert lab(ipipMode="CrossSubnet").networking.tunnel_mode == "CrossSubnet"
    assert lab("vxlan", vxlanMode="CrossSubnet").networking.tunnel_mode == "CrossSubnet"
    c = lab()
    assert [str(n.ip) for n in c.nodes] == ["172.18.0.2", "172.18.0.3", "172.19.0.2"]   # .1: the gateway there
    assert [str(c.node_gateway(n)) for n in c.nodes] == ["172.18.0.1", "172.18.0.1", "172.19.0.1"]
    assert [str(s) for s in c.extra_subnets()] == ["172.19.0.0/24"]


@pytest.mark.parametrize("net,nodes,message", [
    ({"backend": "ipip", "ipipMode": "Sometimes"}, None,
     "networking.ipipMode 'Sometimes' is not an ipipMode; use one of: Always, CrossSubnet"),
    ({"backend": "ipip", "ipipMode": "Never"}, None, "ipipMode Never means no encapsulation; use networking.backend: "
                                                     "host-gw"),
    ({"backend": "vxlan", "ipipMode": "Always"}, None,
     "networking.ipipMode is set but networking.backend is vxlan; set networking.backend: ipip"),
    ({"backend": "ipip", "vxlanMode": "CrossSubnet"}, None,
     "networking.vxlanMode is set but networking.backend is ipip"),
    ({"backend": "host-gw"}, THREE, "which backend host-gw cannot reach"),
    ({"backend": "bgp"}, THREE, "which backend bgp cannot reach"),
    ({"backend": "ipip"}, [{"role": "worker", "subnet": "10.244.5.0/24"}, "worker"],
     "nodes[0].subnet 10.244.5.0/24 overlaps networking.podSubnet"),
    ({"backend": "ipip"}, [{"role": "worker", "subnet": "172.18.5.0/24"}, "worker"], "overlaps networking.nodeSubnet"),
    ({"backend": "ipip"}, [{"role": "worker", "subnet": "172.19.0.0/24"},
                           {"role": "worker", "subnet": "172.19.0.0/16"}],
     "nodes[1].subnet 172.19.0.0/16 overlaps another node's subnet 172.19.0.0/24"),
    ({"backend": "ipip"}, [{"role": "worker", "subnet": "172.19.0.0/24"}], "none is in networking.nodeSubnet"),
    ({"backend": "ipip"}, ["worker", {"role": "worker", "subnet": "172.19.0.0/30"}], "172.19.0.0/30 has prefix /30"),
    ({"backend": "ipip"}, ["worker"] + [{"role": "worker", "subnet": "172.19.0.0/29"}] * 6,
     "nodes[1].subnet 172.19.0.0/29 is too small for its 6 nodes and its gateway"),
])
def test_bad_input_is_one_line(net, nodes, message):
    with pytest.raises(SpecError) as e:
        load(cluster("g", nodes=nodes or ["control-plane", "worker"], **net))
    assert message in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------- fabric

def test_always_tunnels_to_every_peer():
    c = lab()
    nf = node_fabric(c, c.node("a1"))
    assert (nf.ipip.name, nf.ipip.mtu, nf.ipip.address) == ("tunl0", 1480, "10.244.0.0/32")
    assert nf.vxlan is None and nf.neighbours == [] and nf.fdb == []
    assert routes(c, "a1") == {"default": ("172.18.0.1", "eth0", False),
                               "10.244.1.0/24": ("172.18.0.3", "tunl0", True),
                               "10.244.2.0/24": ("172.19.0.2", "tunl0", True)}
    assert pod_mtu(c) == 1480 and pod_fabric(c, c.pods[0]).mtu == 1480
    assert "10.244.0.0" in node_local_ips(c, c.node("a1"))
    assert str(address_toward(c, c.node("a1"), "a2")) == "10.244.0.0"   # tunl0's address is the source


def test_cross_subnet_routes_same_subnet_peers_directly():
    c = lab(ipipMode="CrossSubnet", mtu=9000)
    assert routes(c, "a1") == {"default": ("172.18.0.1", "eth0", False),
                               "10.244.1.0/24": ("172.18.0.3", "eth0", False),
                               "10.244.2.0/24": ("172.19.0.2", "tunl0", True)}
    assert routes(c, "b1") == {"default": ("172.19.0.1", "eth0", False),
                               "10.244.0.0/24": ("172.18.0.2", "tunl0", True),
                               "10.244.1.0/24": ("172.18.0.3", "tunl0", True)}
    assert node_fabric(c, c.node("b1")).eth0_address == "172.19.0.2/24"
    assert node_fabric(c, c.node("a1")).ipip.mtu == 8980 and pod_mtu(c) == 8980   # one MTU, as Calico's
    assert str(address_toward(c, c.node("a1"), "a2")) == "172.18.0.2"
    assert str(address_toward(c, c.node("a1"), "b1")) == "10.244.0.0"


def test_vxlan_cross_subnet_is_flannels_direct_routing():
    c = lab("vxlan", vxlanMode="CrossSubnet")
    nf = node_fabric(c, c.node("a1"))
    b1 = c.node("b1")
    assert routes(c, "a1")["10.244.1.0/24"] == ("172.18.0.3", "eth0", False)
    assert routes(c, "a1")["10.244.2.0/24"] == (str(b1.vtep_ip), "flannel.1", True)
    assert [(n.dst, f.dst) for n, f in zip(nf.neighbours, nf.fdb)] == [(str(b1.vtep_ip), str(b1.ip))]
    assert nf.vxlan.mtu == 1450 and pod_mtu(c) == 1450
    always = lab("vxlan")
    assert len(node_fabric(always, always.node("a1")).fdb) == 2


def test_other_backends_have_no_tunl0():
    for backend in ("vxlan", "host-gw"):
        c = cluster_of(cluster("g", backend=backend))
        assert node_fabric(c, c.nodes[0]).ipip is None
        assert "tunl0" not in describe(c, c.nodes[0])


def test_golden_fabric():
    c = lab(ipipMode="CrossSubnet", pods=False)   # (a pod's veth name has its random uid in it)
    golden.check("fabric_ipip_crosssubnet", "".join(describe(c, n) for n in c.nodes), "fabric differs")
    c = lab("vxlan", vxlanMode="CrossSubnet", pods=False)
    golden.check("fabric_vxlan_crosssubnet", describe(c, c.node("a1")), "fabric differs")


# ---------------------------------------------------------------- the kernel

NO_IPIP = "# CONFIG_MODULES is not set\n# CONFIG_NET_IPIP is not set\n"


def test_refused_on_a_kernel_without_ipip(tmp_path):
    k = fake(tmp_path, config=NO_IPIP, moddir=False)
    line = kc.backend_refusal("ipip", k)
    assert line.startswith("networking.backend ipip cannot run on this kernel: the kernel has no IPIP tunnels "
                           "(ipip module")
    assert "scripts/vm-run" in line and "networking.backend vxlan" in line and "\n" not in line
    assert kc.backend_refusal("vxlan", k) is None and kc.backend_refusal("host-gw", k) is None
    ok = fake(tmp_path / "ok", modules=["kernel/net/ipv4/ipip.ko.xz"])
    assert kc.backend_refusal("ipip", ok) is None


def test_up_refuses_before_any_change(tmp_path, monkeypatch):
    """lab.preflight (what `up` runs before touching anything) raises the kernel check's line, exit 2."""
    from netlab.dataplane import fabric, lab as labmod
    k = fake(tmp_path, config=NO_IPIP, moddir=False)
    monkeypatch.setattr(kc, "running_kernel", lambda: k)
    ran = []
    monkeypatch.setattr("subprocess.run", lambda *a, **kw: ran.append(a))
    c = lab()
    with pytest.raises(UsageError, match="^networking.backend ipip cannot run on this kernel") as e:
        fabric.preflight(c)
    assert e.value.exit_code == 2 and ran == []            # no modprobe, nothing else
    monkeypatch.setattr(labmod, "require_root", lambda what: None)
    monkeypatch.setattr(labmod, "require_tools", lambda *t: None)
    with pytest.raises(UsageError, match="^networking.backend ipip cannot run"):
        labmod.preflight(c)


def test_validate_refuses_ipip_here_or_accepts_it(tmp_path):
    """This machine's real kernel: validate exits 2 with the one line when it lacks ipip, 0 when it has it."""
    f = tmp_path / "ipip.yaml"
    f.write_text(text(cluster("g", backend="ipip")))
    r = subprocess.run([sys.executable, "-m", "netlab", "validate", str(f)], capture_output=True, text=True)
    if kc.has_ipip():
        assert r.returncode == 0, r.stderr
    else:
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and "backend ipip cannot run on this kernel" in lines[0], lines


def test_graph_draws_tunnels_and_cross_subnet_routes():
    from netlab.graph.build import build
    g = build(lab(ipipMode="CrossSubnet", pods=False))
    kinds = {(e.source, e.target): e.kind for e in g.edges if e.kind in ("tunnel", "route")}
    assert kinds == {("node:a1", "node:a2"): "route", ("tunl:a1", "tunl:b1"): "tunnel",
                     ("tunl:a2", "tunl:b1"): "tunnel"}
    assert g.element("tunl:b1").addresses == ["10.244.2.0/32"] and g.element("node:b1").addresses == ["172.19.0.2/24"]
    assert g.element("underlay").addresses == ["172.18.0.0/16", "172.19.0.0/24"]


def test_node_objects_carry_calicos_annotations():
    from netlab.output import node_objects
    c = lab(pods=False)
    b1 = next(o for o in node_objects(c, {}, None) if o["metadata"]["name"] == "b1")["metadata"]["annotations"]
    assert b1["projectcalico.org/IPv4Address"] == "172.19.0.2/24"
    assert b1["projectcalico.org/IPv4IPIPTunnelAddr"] == "10.244.2.0"
    v = lab("vxlan", pods=False)
    assert not any(k.startswith("projectcalico") for o in node_objects(v, {}, None)
                   for k in o["metadata"]["annotations"])
