"""netlab.api's pure parts (no root): the lazy export, ProbeResult from judged checks, the bad-input
refusals of the constructors and of exec_argv, and `netlab probe -o junit`'s conversion."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import netlab
from netlab import api, junit
from netlab.cli import cli
from netlab.cli.common import default_scenario_text
from netlab.errors import NotFound, SpecError
from netlab.lab_spec import desired
from netlab.probe import plan, run
from netlab.probe.engine import ProbeResult as Probe
from netlab.probe.engine import ProbeSpec
from netlab.spec.parse import load_text


def _cluster():
    text, _ = default_scenario_text()
    return desired(load_text(text, "<test>"), {})


def test_import_netlab_stays_cheap_and_lab_is_exported_lazily():
    code = ("import sys, netlab; a = 'netlab.api' in sys.modules; L = netlab.Lab; "
            "print(a, 'netlab.api' in sys.modules, 'netlab.dataplane.lab' in sys.modules, L.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "False", "netlab.api"]
    assert netlab.ProbeResult is api.ProbeResult and netlab.ExecResult is api.ExecResult
    assert {"Lab", "Pod", "Service", "Node"} <= set(dir(netlab))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        netlab.Nope   # noqa: B018


def _check(results, expect="reachable", backends=None, target="svc/web:80"):
    c = _cluster()
    src = plan.pod_source(c.pod("default", "client"))
    check = plan.Check("pod -> service", src, target, [r.spec for r in results], expect, backends)
    return run.judge(check, results)


def _probe(outcome, who=None, ip=None, rtt=0.5, detail=""):
    return Probe(ProbeSpec("ns", "http", "10.96.0.5", 80), outcome, rtt, detail, who, ip)


def test_probe_result_from_a_judged_check():
    r = api.ProbeResult.from_check(_check([_probe("reachable", "web-a", "10.244.1.2"),
                                           _probe("reachable", "web-b", "10.244.1.2"),
                                           _probe("reachable", "web-b", "10.244.1.2")], backends={"web-a", "web-b"}))
    assert (r.source, r.target, r.outcome, r.ok) == ("pod/client", "svc/web:80", "reachable", True)
    assert r.answered_by == "web-b" and r.answers == {"web-a": 1, "web-b": 2}
    assert r.source_ip == "10.244.1.2" and r.seen_as == ("10.244.1.2",) and r.detail == ""
    assert str(r) == "ok pod/client -> svc/web:80: reachable answered by web-b"
    bad = api.ProbeResult.from_check(_check([_probe("timeout", detail="no answer")]))
    assert (bad.outcome, bad.ok, bad.answered_by, bad.source_ip) == ("timeout", False, None, None)
    assert bad.detail == "expected reachable, got timeout (no answer)"
    stray = api.ProbeResult.from_check(_check([_probe("reachable", "db", "10.244.1.2")], backends={"web-a"}))
    assert not stray.ok and "db, which must not answer" in stray.detail
    with pytest.raises(Exception):
        r.ok = False   # frozen


def test_probe_results_of_several_checks_are_summed_up():
    a = api.ProbeResult("pod/client", "pod/web:8080/tcp", "reachable", "reachable", True, "web", "10.0.0.1",
                        answers={"web": 1}, seen_as=("10.0.0.1",))
    b = api.ProbeResult("pod/client", "pod/web", "reachable", "timeout", False,
                        detail="expected reachable, got timeout")
    both = api.ProbeResult.combine("pod/client", "pod/web", [a, b])
    assert (both.outcome, both.ok, both.answered_by, both.checks) == ("mixed", False, "web", (a, b))
    assert both.detail == "pod/web: expected reachable, got timeout"
    assert api.ProbeResult.combine("x", "y", [a]) is a


def test_constructors_refuse_bad_input_as_one_line():
    with pytest.raises(SpecError, match="not a list of Kubernetes objects"):
        api.Lab.from_objects({"kind": "Pod"})
    with pytest.raises(SpecError) as e:
        api.Lab.from_objects([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                               "spec": {"containers": [{"name": "c"}]}}], name="Not_A_Name")
    assert "\n" not in str(e.value) and "Not_A_Name" in str(e.value)
    with pytest.raises(SpecError, match="'bpf' is not a kube-proxy mode; use one of"):
        api.Lab.from_file("scenarios/hostgw.yaml", proxy_mode="bpf")
    with pytest.raises(SpecError, match="cannot read scenario /nonexistent.yaml"):
        api.Lab.from_file("/nonexistent.yaml")
    text, _ = default_scenario_text()
    lab = api.Lab.from_objects(list(__import__("yaml").safe_load_all(text)), name="t-unit")
    assert (lab.name, repr(lab)) == ("t-unit", "Lab('t-unit')")
    assert api.Lab.from_file("scenarios/hostgw.yaml", proxy_mode="ipvs").proxy_mode == "ipvs"


def test_exec_argv_names_what_does_not_exist():
    c = _cluster()
    with pytest.raises(NotFound, match='pod "nope" not found in namespace default'):
        api.exec_argv(c, ["true"], pod="nope")
    with pytest.raises(NotFound, match=r'node "n9" not found \(nodes: demo-control-plane, demo-worker\)'):
        api.exec_argv(c, ["true"], node="n9")
    with pytest.raises(NotFound, match="container x is not valid for pod client: use one of"):
        api.exec_argv(c, ["true"], pod="client", container="x")


def test_probe_checks_as_junit():
    ok = _check([_probe("reachable", "web-a", "10.244.1.2")], backends={"web-a"})
    bad = _check([_probe("refused")], target="10.244.0.9:9/tcp")
    bad.check.group = "probe"
    suites = run.as_junit([ok, bad])
    assert [s.name for s in suites] == ["pod -> service", "probe"]
    root = ET.fromstring(junit.to_xml(suites))
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    cases = list(root.iter("testcase"))
    assert [(c.get("name"), c.get("classname")) for c in cases] == [
        ("pod/client -> svc/web:80", "probe.pod -> service"), ("pod/client -> 10.244.0.9:9/tcp", "probe.probe")]
    assert cases[0].find("failure") is None
    assert cases[0].find("system-out").text == \
        "reachable (expected reachable); answered by web-a; seen as 10.244.1.2; rtt 0.50ms"
    assert cases[1].find("failure").get("message") == "expected reachable, got refused"


def test_probe_offers_junit_output():
    r = CliRunner().invoke(cli, ["probe", "--help"])
    assert r.exit_code == 0 and "[table|json|junit]" in r.output and "-o junit > probe.xml" in r.output
