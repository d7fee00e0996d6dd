"""`netlab probe` on real labs: healthy labs pass, and networks broken on purpose fail the right way."""
from __future__ import annotations

import glob
import json
import os

import pytest

from netlab.dataplane import lab as labmod

from netlab.probe import plan, run

from ..builders import cluster, container, deployment, pod, service, text, workers
from .conftest import netlab_cli

SCENARIO = text(
    cluster("probe", workers("n1", "n2"), expectations=[
        {"from": "pod/client", "to": "svc/web:80", "expect": "reachable", "backends": "all"},
        {"from": "pod/client", "to": "svc/empty", "expect": "refused"},
        {"from": "external", "to": "nodeport/web", "expect": "reachable"}]),
    deployment("web", 3, containers=[container("web", [8080, {"containerPort": 8081, "protocol": "UDP"}])]),
    service("web", [{"name": "http", "port": 80, "targetPort": 8080},
                    {"name": "udp", "port": 81, "targetPort": 8081, "protocol": "UDP"}], type="NodePort"),
    service("sticky", [{"port": 80, "targetPort": 8080}], {"app": "web"}, sessionAffinity="ClientIP"),
    service("empty", [{"port": 80, "targetPort": 8080}], {"app": "none"}),
    pod("client", containers=[container("c", [8080])], nodeName="n1"),
    pod("far", containers=[container("c", [8080])], nodeName="n2"))


@pytest.fixture
def plab(lab):
    lab.up(SCENARIO)
    return lab


def freeze(name: str) -> None:
    """The lab as a still picture from now on: its control loop stopped, and not started again by the
    commands that follow (`up --no-control-loop`'s marker)."""
    from netlab.live import loop
    loop.set_frozen(name, True)
    labmod.stop_control_loop(name)


def probe_json(lab, *args):
    r = netlab_cli("probe", "--lab", lab.name, "-o", "json", *args)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def test_default_matrix_passes_on_a_healthy_lab(plab):
    code, out = probe_json(plab)
    bad = [c for c in out["checks"] if not c["ok"]]
    assert code == 0 and out["ok"] and not bad, bad
    groups = {c["group"] for c in out["checks"]}
    assert {"node -> pod", "pod -> node", "pod -> pod (same node)", "pod -> pod (across nodes)",
            "pod -> service", "external -> nodeport"} <= groups
    # the expectations of the scenario are part of it, and the empty service is refused
    empty = [c for c in out["checks"] if c["target"].startswith("svc/empty")]
    assert empty and all(c["outcome"] == "refused" for c in empty)
    # a probe that says reachable names the pod that answered
    for c in out["checks"]:
        if c["outcome"] == "reachable" and c["target"].startswith("pod/") and ":" in c["target"]:
            pod = c["target"].split("/")[1].split(":")[0]
            assert list(c["answered_by"]) == [pod]


def test_reachable_carries_the_backend_and_source_ip(plab):
    far = plab.pod("far")
    client = plab.pod("client")
    src = plan.resolve_sources(plab.cluster, "pod/client")[0]
    checks = plan.target_checks(plab.cluster, src, "pod/far")
    results, _, _ = run.run_checks(checks)
    tcp = next(r for r in results if r.check.target.endswith("8080/tcp"))
    assert tcp.outcome == "reachable" and tcp.ok
    assert dict(tcp.answered) == {"far": 1}
    assert tcp.seen_as == {str(client.ip)}
    icmp = next(r for r in results if r.check.target == "pod/far")
    assert icmp.outcome == "reachable" and icmp.results[0].reply_src == str(far.ip)


def test_pod_veth_down_gives_timeout(plab):
    freeze(plab.name)  # its control loop would repair what this test breaks
    far = plab.pod("far")
    plab.node_exec("n2", ["ip", "link", "set", far.host_veth, "down"])
    code, out = probe_json(plab, "--from", "pod/client", "pod/far")
    assert code == 1
    assert {c["outcome"] for c in out["checks"]} == {"timeout"}
    # the default matrix fails too, and says which checks
    r = netlab_cli("probe", "--lab", plab.name)
    assert r.returncode == 1 and "FAIL" in r.stdout and "expected reachable, got timeout" in r.stdout


def test_service_without_endpoints_is_refused(plab):
    code, out = probe_json(plab, "--from", "pod/client", "svc/empty")
    assert code == 0  # refused is what the model predicts for a Service without endpoints
    c = out["checks"][0]
    assert c["expect"] == "refused" and c["outcome"] == "refused"
    assert "ICMP port-unreachable" in c["probes"][0]["detail"]


def test_deleted_route_across_nodes(plab):
    freeze(plab.name)  # its control loop would repair what this test breaks
    n2 = plab.node("n2")
    plab.node_exec("n1", ["ip", "route", "del", str(n2.pod_cidr)])
    src = plan.resolve_sources(plab.cluster, "pod/client")[0]
    results, _, _ = run.run_checks(plan.target_checks(plab.cluster, src, "pod/far"))
    assert all(r.outcome in ("timeout", "unreachable") for r in results), [(r.outcome, r.why) for r in results]
    assert not any(r.ok for r in results)
    # netlab up repairs it
    assert any("route" in c for c in plab.up(SCENARIO).changes)
    results, _, _ = run.run_checks(plan.target_checks(plab.cluster, src, "pod/far"))
    assert all(r.ok for r in results)


def test_count_shows_the_spread_and_affinity(plab):
    r = netlab_cli("probe", "--lab", plab.name, "--from", "pod/client", "--count", "60", "svc/web:80")
    assert r.returncode == 0, r.stdout + r.stderr
    for p in plab.pods("web-"):
        assert p.name in r.stdout
    assert "60 connections" in r.stdout
    code, out = probe_json(plab, "--from", "pod/client", "--count", "20", "svc/sticky")
    assert code == 0
    assert len(out["checks"][0]["answered_by"]) == 1  # ClientIP affinity: one backend for all 20


def test_nodeport_from_external(plab):
    code, out = probe_json(plab, "--from", "external", "nodeport/web:http")
    assert code == 0
    assert {c["target"].split("@")[1] for c in out["checks"]} == {"n1", "n2"}


@pytest.mark.parametrize("args,msg", [
    (["--from", "pod/nosuch", "pod/far"], "no pod or Deployment 'nosuch'"),
    (["--from", "pod/client", "svc/nosuch"], "no Service 'nosuch'"),
    (["--from", "pod/client", "svc/web:9999"], "has no port '9999'"),
    (["--from", "pod/client", "not a target"], "is not a probe target"),
    (["--from", "elsewhere", "pod/far"], "is not a probe source"),
    (["--from", "node/nosuch", "pod/far"], "no node 'nosuch'"),
])
def test_bad_targets(plab, args, msg):
    r = netlab_cli("probe", "--lab", plab.name, *args)
    assert r.returncode == 2, r
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_probe_without_a_lab():
    r = netlab_cli("probe", "--lab", "t-notup")
    assert r.returncode == 2 and "is not up" in r.stderr and "netlab up" in r.stderr


SCENARIOS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "scenarios", "*.yaml")))


@pytest.mark.parametrize("path", SCENARIOS, ids=[os.path.basename(p) for p in SCENARIOS])
def test_shipped_scenarios_meet_their_expectations(lab, path):
    """Every scenario in scenarios/ states expectations, and `netlab up --probe` meets them all."""
    text = open(path).read()
    assert "expectations:" in text, f"{path} states no expectations"
    r = netlab_cli("up", path, "--lab", lab.name, "--probe")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert " 0 not," in r.stdout
