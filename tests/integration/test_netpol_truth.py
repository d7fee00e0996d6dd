"""The upstream NetworkPolicy e2e suite's model on a real lab, in iptables and nftables proxy modes: for
every case of tests/netpol_cases.py (55 cases: default deny, namespace and pod peers, both selectors,
matchExpressions, ipBlock with except, named ports, endPort, UDP-only, egress to DNS only, stacking,
policyTypes defaults, label changes and a policy deleted after the fact), each step is applied with
`netlab apply` and the whole 9x9 matrix (x,y,z x a,b,c) is probed on 80 and 81, TCP and UDP, and
compared cell for cell with the independent oracle (tests/netpol_truth.py). A mismatch fails with the
expected and observed tables (rows: from, columns: to; '.' allowed, 'X' denied) and the wrong cells.

One lab per proxy mode (module scope), removed whatever happens. The driver: tests/netpol_truth_lab.py.
"""
from __future__ import annotations

import secrets
import statistics
import time

import pytest

from netlab import lab_spec
from netlab.dataplane import lab as labmod
from netlab.spec.parse import load_text

from ..netpol_cases import CASES
from ..netpol_truth_lab import TruthLab, scenario


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def truth_lab(request):
    name = f"t-{secrets.token_hex(4)}"
    handle = TruthLab(name)
    handle.mode = request.param
    try:
        sc = load_text(scenario(request.param), f"<test {name}>")
        sc.name = name
        t0 = time.monotonic()
        lab_spec.up(sc, scenario(request.param))
        handle.up_s = time.monotonic() - t0
        yield handle
        t = handle.timing
        if t.sync_s:
            print(f"\n{request.param}: up {handle.up_s:.1f}s, {t.steps} steps, {t.sweeps} sweeps of "
                  f"{t.probes} probes in {t.probe_s:.1f}s; apply-to-agreement median "
                  f"{statistics.median(t.sync_s):.2f}s, max {max(t.sync_s):.2f}s; slowest: "
                  + ", ".join(f"{n} {s}s" for s, n in sorted(t.slowest, reverse=True)[:5]))
    finally:
        labmod.down(name)
        assert not labmod.lab_namespaces(name), f"down left namespaces of {name}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_truth_table(truth_lab, case):
    for i in range(len(case.steps)):
        failures = truth_lab.run_step(case, i)
        if failures:
            pytest.fail(f"[{truth_lab.mode}] " + "\n".join(failures), pytrace=False)
