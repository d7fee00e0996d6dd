"""NetworkPolicy truth tables in IPVS proxy mode (inside the VM of scripts/vm-run, whose kernel has IPVS):
cases of tests/netpol_cases.py (VM_SUBSET: default deny both ways; with NETLAB_VM_NETPOL=long,
VM_SUBSET_LONG: one case per feature, over an hour in the emulated VM), each step applied with
`netlab apply` and the whole 9x9 matrix probed on 80 and 81, TCP and UDP, against the independent oracle
(tests/netpol_truth.py), as tests/integration/test_netpol_truth.py does in iptables and nftables modes.
The truth tables probe pod addresses, which IPVS never handles: test_policies_judge_connections_through_an_ipvs_
virtual_server checks what IPVS changes, connections to a ClusterIP judged at their endpoint.
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

driver.SYNC_TIMEOUT = max(driver.SYNC_TIMEOUT, 240.0)   # Python is ~15x slower in the emulated VM, and CI
                                                         # shares the host's 2 cores with the other tests
driver.CLI_TIMEOUT = max(driver.CLI_TIMEOUT, 600.0)
driver.EXEC_TIMEOUT = max(driver.EXEC_TIMEOUT, 120.0)


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


SERVICE_SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: n1}, {role: worker, name: n2}]
networking: {kubeProxyMode: ipvs}
---
apiVersion: v1
kind: Pod
metadata: {name: s1, labels: {app: srv}}
spec:
  nodeName: n1
  containers: [{name: web, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: s2, labels: {app: srv}}
spec:
  nodeName: n2
  containers: [{name: web, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: srv}
spec:
  selector: {app: srv}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: friend, labels: {role: friend}}
spec:
  nodeName: n1
  containers: [{name: c, ports: [{containerPort: 9000}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: foe, labels: {role: foe}}
spec:
  nodeName: n1
  containers: [{name: c, ports: [{containerPort: 9000}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: srv-from-friend}
spec:
  podSelector: {matchLabels: {app: srv}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: friend}}}]
"""


def test_policies_judge_connections_through_an_ipvs_virtual_server():
    """IPVS delivers a ClusterIP connection locally and sends it to the endpoint from LOCAL_OUT: the policy
    rules must see it there too (OUTPUT's jump), for the endpoint on the client's own node (s1) as well as
    the one across nodes (s2, judged in n2's FORWARD)."""
    from collections import Counter

    from netlab.probe import plan
    from netlab.probe.engine import ProbeSpec, run_probes
    name = f"t-{secrets.token_hex(3)}"
    sc = load_text(SERVICE_SCENARIO, f"<test {name}>")
    sc.name = name
    try:
        cluster = lab_spec.up(sc, SERVICE_SCENARIO, control_loop=False).cluster
        cip = str(next(s.cluster_ip for s in cluster.services if s.name == "srv"))

        def http(source: str, n: int = 10):
            src = plan.resolve_sources(cluster, source)[0]
            return run_probes([ProbeSpec(src.netns, "http", cip, 80, 3.0) for _ in range(n)])
        ok = http("pod/friend")
        assert all(r.outcome == "reachable" for r in ok), [r.detail for r in ok]
        assert set(Counter(r.answered_by for r in ok)) == {"s1", "s2"}      # round robin over both nodes
        denied = http("pod/foe")
        assert [r.outcome for r in denied] == ["denied"] * 10, [(r.outcome, r.detail) for r in denied]
    finally:
        labmod.down(name)
