"""NetworkPolicy truth tables in IPVS proxy mode (inside the VM of scripts/vm-run, whose kernel has IPVS):
cases of tests/netpol_cases.py (VM_SUBSET: default deny both ways, both selectors in one peer, a named
port from a namespace, endPort, ipBlock with except, a pod's label changed after the fact; with
NETLAB_VM_NETPOL=long, VM_SUBSET_LONG: one case per feature, ~35 min in the emulated VM), each step applied with `netlab apply` and
the whole 9x9 matrix probed on 80 and 81, TCP and UDP, against the independent oracle
(tests/netpol_truth.py), as tests/integration/test_netpol_truth.py does in iptables and nftables modes.
tests/integration/test_vm.py runs this from the host.
"""
from __future__ import annotations

import os
import secrets

import pytest

if os.environ.get("NETLAB_IN_VM") != "1":
    pytest.skip("runs inside the IPVS test VM only (tests/integration/test_vm.py starts it)", allow_module_level=True)

from netlab import lab_spec  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

from .. import netpol_truth_lab as driver  # noqa: E402
from ..netpol_cases import VM_SUBSET, VM_SUBSET_LONG, by_name  # noqa: E402

driver.SYNC_TIMEOUT = max(driver.SYNC_TIMEOUT, 90.0)   # Python is ~15x slower in the emulated VM


@pytest.fixture(scope="module")
def ipvs_truth_lab():
    name = f"t-{secrets.token_hex(3)}"
    text = driver.scenario("ipvs")
    sc = load_text(text, f"<test {name}>")
    sc.name = name
    try:
        lab_spec.up(sc, text)
        yield driver.TruthLab(name)
    finally:
        labmod.down(name)


@pytest.mark.parametrize("name", VM_SUBSET_LONG if os.environ.get("NETLAB_VM_NETPOL") == "long" else VM_SUBSET)
def test_truth_table_ipvs(ipvs_truth_lab, name):
    case = by_name(name)
    for i in range(len(case.steps)):
        failures = ipvs_truth_lab.run_step(case, i)
        if failures:
            pytest.fail("[ipvs] " + "\n".join(failures), pytrace=False)
