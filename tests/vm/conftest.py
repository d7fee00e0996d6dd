"""Inside the VM: bring the kernel to the state a node with IPVS has *before* the suite's leak check
takes its snapshot of the root namespace (tests/conftest.py), since some of it shows there and stays:
loading ipip creates the fallback device tunl0 in every namespace, root included, and the first
`ip netns add` makes /run/netns a mount point. Outside the VM (NETLAB_IN_VM unset) this does nothing.
"""
from __future__ import annotations

import os
import subprocess

import pytest

MODULES = ("ip_vs", "ip_vs_rr", "dummy", "sch_netem", "ipip",
           # what a netlab lab needs on a stock kernel (autoloaded elsewhere, but br_netfilter is not)
           "br_netfilter", "bridge", "veth", "vxlan", "ip_set", "xt_set", "nf_conntrack", "iptable_nat",
           "iptable_filter", "xt_statistic", "xt_recent", "xt_comment", "xt_addrtype", "xt_mark",
           "xt_MASQUERADE", "xt_conntrack", "nft_chain_nat")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    if os.environ.get("NETLAB_IN_VM") != "1" or os.geteuid() != 0:
        return
    subprocess.run(["modprobe", "-a", *MODULES], check=False)
    name = "nl.vm-warmup"
    subprocess.run(["ip", "netns", "add", name], capture_output=True)
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
