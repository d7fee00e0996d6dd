"""`netlab render`: what it prints for every kube-proxy mode (no root needed: rendering is pure)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from netlab.cli import cli
from netlab.model.build import build
from netlab.render.iptables import node_rules, to_restore
from netlab.spec.parse import load_text

from .scenarios import DEFAULT_SCENARIO


@pytest.fixture(autouse=True)
def no_lab_here(monkeypatch):
    """As root, `render` takes the addresses of a lab of the scenario's name that exists on this machine (a
    developer's demo lab); these tests compare with a fresh build of the file they name, so they see no lab."""
    from netlab.dataplane import state
    monkeypatch.setattr(state, "load", lambda lab: None)


def default_cluster(mode: str):
    sc = load_text(DEFAULT_SCENARIO.read_text(), str(DEFAULT_SCENARIO))
    sc.networking.proxy_mode = mode
    return build(sc)


def render(*args: str) -> str:
    r = CliRunner().invoke(cli, ["render", str(DEFAULT_SCENARIO), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
def test_render_prints_the_iptables_payload_once_per_node(mode):
    cluster = default_cluster(mode)
    node = cluster.nodes[-1]
    payload = to_restore(node_rules(cluster, node))
    out = render("--proxy-mode", mode, "--node", node.name)
    assert out.count(payload) == 1
    assert out.startswith(payload)
    assert out.count("*nat\n") == 1 and out.count("*filter\n") == 1


def test_render_ipvs_shows_the_ipvs_state_after_the_iptables_payload():
    cluster = default_cluster("ipvs")
    out = render("--proxy-mode", "ipvs")
    for node in cluster.nodes:
        payload = to_restore(node_rules(cluster, node))
        section = out.split(f"# ---- node {node.name}\n")[1].split("# ---- node ")[0]
        assert section.count(payload) == 1
        ipvs = section[section.index(payload) + len(payload):]
        for part in ("## sysctls", "## ip link add kube-ipvs0 type dummy", "## ipset restore", "## ipvsadm-restore"):
            assert ipvs.count(part) == 1, part
        assert "iptables-restore" not in ipvs
