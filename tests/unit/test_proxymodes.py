"""The kube-proxy mode registry (netlab/proxymodes/): one list that the CLI, the scenario parser, the
renderer and the dataplane all read, and a mode is added by adding a file."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import click
import pytest

from netlab import proxymodes
from netlab.cli import cli
from netlab.dataplane import proxy
from netlab.errors import SpecError, UsageError
from netlab.model.build import build
from netlab.render.iptables import node_rules
from netlab.spec.parse import load_text

from .scenarios import cluster, text

MODES = ("iptables", "nftables", "ipvs", "userspace")


def test_the_modes_in_their_order():
    assert proxymodes.names() == MODES
    assert all(proxymodes.get(n).name == n for n in MODES)


def test_an_unknown_mode_lists_the_valid_ones():
    with pytest.raises(UsageError, match="'ebpf' is not available.*available: iptables, nftables, ipvs, userspace"):
        proxymodes.get("ebpf")
    with pytest.raises(UsageError, match="available: iptables, nftables, ipvs, userspace"):
        proxy.backend("ebpf")


def test_the_cli_choices_are_the_registry():
    for command in ("up", "render"):
        opt = next(p for p in cli.commands[command].params if p.name == "proxy_mode")
        assert isinstance(opt.type, click.Choice) and tuple(opt.type.choices) == MODES


def test_the_scenario_accepts_the_registered_modes_only():
    for mode in MODES:
        assert load_text(text(cluster(kubeProxyMode=mode)), "t.yaml").networking.proxy_mode == mode
    with pytest.raises(SpecError, match="use one of: iptables, nftables, ipvs, userspace"):
        load_text(text(cluster(kubeProxyMode="ebpf")), "t.yaml")


def test_every_mode_has_its_own_backend():
    for mode in MODES:
        b = proxy.backend(mode)
        assert b.name == mode and isinstance(b, proxy.ProxyBackend)
        assert proxy.backend(mode) is b                     # one per mode: it may keep state between calls


def test_node_rules_take_the_chains_of_the_mode():
    from .test_kubeproxy_iptables import cluster_of
    c = cluster_of("basic")
    chains = {}
    for mode in MODES:
        c.networking.proxy_mode = mode
        chains[mode] = set(node_rules(c, c.nodes[0])["nat"].chains)
    assert "KUBE-NODEPORTS" in chains["iptables"] and "KUBE-NODE-PORT" in chains["ipvs"]
    assert chains["nftables"] == {"FLANNEL-POSTRTG"}        # only flannel's: the proxy is in its nft table
    assert chains["userspace"] == {"FLANNEL-POSTRTG", "KUBE-PORTALS-CONTAINER", "KUBE-PORTALS-HOST",
                                   "KUBE-NODEPORT-CONTAINER", "KUBE-NODEPORT-HOST"}


def test_the_cli_loads_no_renderer_and_no_kernel_layer():
    out = subprocess.run([sys.executable, "-c", "import netlab.cli, sys; print(sorted(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    loaded = [m for m in eval(out) if m.startswith("netlab.")]
    assert "netlab.proxymodes.ipvs" in loaded
    assert not [m for m in loaded if m.startswith(("netlab.dataplane", "netlab.render"))], loaded


def test_a_mode_is_added_by_adding_a_file(tmp_path, monkeypatch):
    (tmp_path / "ebpf.py").write_text(textwrap.dedent("""\
        from netlab.proxymodes import ProxyMode
        from netlab.dataplane.proxy import ProxyBackend

        class Ebpf(ProxyBackend):
            name = "ebpf"

        MODE = ProxyMode("ebpf", order=9, backend=Ebpf, render=lambda cluster, node: "# ebpf\\n")
    """))
    monkeypatch.setattr(proxymodes, "__path__", [*proxymodes.__path__, str(tmp_path)])
    monkeypatch.setattr(proxymodes, "_modes", None)
    monkeypatch.setattr(proxy, "_backends", {})
    try:
        assert proxymodes.names() == MODES + ("ebpf",)
        assert proxy.backend("ebpf").name == "ebpf"
        sc = load_text(text(cluster()), "t.yaml")
        sc.networking.proxy_mode = "ebpf"
        c = build(sc)
        assert set(node_rules(c, c.nodes[0])["nat"].chains) == {"FLANNEL-POSTRTG"}     # no iptables chains
        assert proxymodes.get("ebpf").render(c, c.nodes[0]) == "# ebpf\n"
    finally:
        sys.modules.pop("netlab.proxymodes.ebpf", None)
