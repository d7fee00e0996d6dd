"""netlab.Lab on real labs: up and down as a context manager (also when the body raises), an existing lab
never replaced, apply, exec, probe (the answering pod, the source IP), get, bad input as one line."""
from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET

import pytest
import yaml

import netlab
from netlab.dataplane import lab as labmod
from netlab.errors import NotFound, SpecError, UsageError
from netlab.store.api import Conflict
from netlab.store.api import NotFoundError as StoreNotFound

from .conftest import netlab_cli

CLUSTER = {"apiVersion": "netlab.dev/v1alpha1", "kind": "Cluster", "name": "apitest",
           "nodes": [{"role": "control-plane"}, {"role": "worker"}]}
WEB = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
       "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                                       "effect": "NoSchedule"}],
                                      "containers": [{"name": "web",
                                                      "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                                                      "args": ["netexec", "--http-port=8080"],
                                                      "ports": [{"name": "http", "containerPort": 8080}]}]}}}}
WEB_SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
CLIENT = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "labels": {"app": "client"}},
          "spec": {"containers": [{"name": "client", "image": "curlimages/curl"}]}}
OBJECTS = [CLUSTER, WEB, WEB_SVC, CLIENT]


def _name() -> str:
    return f"t-api-{secrets.token_hex(4)}"   # t-: the suite's leak check watches these labs' processes


@pytest.fixture
def api_lab():
    """A netlab.Lab up for one test, removed after it whatever happened."""
    lab = netlab.Lab.from_objects(OBJECTS, _name())
    try:
        with lab:
            yield lab
    finally:
        labmod.down(lab.name)


def test_from_objects_brings_the_lab_up_and_takes_it_down():
    lab = netlab.Lab.from_objects(OBJECTS, _name())
    assert lab.name not in labmod.labs()          # reading the objects changed nothing
    try:
        with lab as entered:
            assert entered is lab
            assert any(".node." in n for n in labmod.lab_namespaces(lab.name))
            pods = {p.name: p for p in lab.get("pods")}
            assert pods["client"].phase == "Running" and pods["client"].ready
            assert sum(p.labels.get("app") == "web" for p in pods.values()) == 2
            nodes = lab.get("nodes")
            assert len(nodes) == 2 and all(n.ready for n in nodes), nodes
            assert {n.role for n in nodes} == {"control-plane", "worker"}
            with pytest.raises(Exception):
                nodes[0].name = "x"                   # frozen data classes
        assert labmod.lab_namespaces(lab.name) == []
        assert lab.name not in labmod.labs()
    finally:
        labmod.down(lab.name)


def test_the_lab_is_taken_down_when_the_body_raises():
    lab = netlab.Lab.from_objects([CLUSTER, CLIENT], _name())
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with lab:
                assert labmod.lab_namespaces(lab.name)
                raise RuntimeError("boom")
        assert labmod.lab_namespaces(lab.name) == []
        assert lab.name not in labmod.labs()
    finally:
        labmod.down(lab.name)


def test_an_existing_lab_of_the_same_name_is_never_replaced():
    name = _name()
    first = netlab.Lab.from_objects([CLUSTER, CLIENT], name)
    try:
        with first:
            before = sorted(labmod.lab_namespaces(name))
            second = netlab.Lab.from_objects([CLUSTER, WEB], name)
            with pytest.raises(UsageError, match=f"lab {name} already exists") as e:
                with second:
                    pass
            assert "\n" not in str(e.value)
            assert sorted(labmod.lab_namespaces(name)) == before      # untouched, and still up
            assert [p.name for p in first.get("pods", namespace="default")] == ["client"]
    finally:
        labmod.down(name)
    assert labmod.lab_namespaces(name) == []


def test_probe_names_the_pod_that_answered_and_the_source_address_it_saw(api_lab):
    pods = {p.name: p for p in api_lab.get("pods")}
    web = {n for n in pods if n.startswith("web-")}
    r = api_lab.probe("pod/client", "svc/web:80")
    assert isinstance(r, netlab.ProbeResult)
    assert (r.ok, r.outcome) == (True, "reachable"), r.detail
    assert r.answered_by in web
    assert r.source_ip == pods["client"].ip      # pod to ClusterIP: no SNAT
    many = api_lab.probe("pod/client", "svc/web:80", count=30)
    assert set(many.answers) == web and sum(many.answers.values()) == 30
    # a pod target makes several checks (ICMP and every port its server serves): each in .checks, summed up
    target = sorted(web)[0]
    both = api_lab.probe("pod/client", f"pod/{target}")
    assert both.ok and both.answered_by == target, both.detail
    assert {f"pod/{target}", f"pod/{target}:8080/tcp"} <= {c.target for c in both.checks}
    # dns/NAME: resolved through the pod's own resolv.conf (search path), or the rcode
    dns = api_lab.probe("pod/client", "dns/web")
    assert (dns.ok, dns.outcome, dns.group) == (True, "resolved", "dns") and "web.default.svc" in dns.detail
    nx = api_lab.probe("pod/client", "dns/nosuch.default.svc.cluster.local.")
    assert (nx.ok, nx.outcome) == (False, "nxdomain"), nx
    # a port nothing listens on: refused, and not ok (the model expects reachable for a raw address)
    refused = api_lab.probe("pod/client", f"{pods[target].ip}:9/tcp")
    assert refused.outcome == "refused" and not refused.ok and "expected reachable" in refused.detail


def test_exec_runs_in_the_pod_a_node_and_the_external_host(api_lab):
    r = api_lab.exec("client", ["hostname"])
    assert isinstance(r, netlab.ExecResult) and (r.returncode, r.stdout.strip()) == (0, "client")
    got = api_lab.exec("client", ["curl", "-sS", "--max-time", "5", "http://web/hostname"])
    assert got.ok, got.stderr
    assert got.stdout.startswith("web-")
    fail = api_lab.exec("client", ["sh", "-c", "echo oops >&2; exit 3"])
    assert (fail.returncode, fail.stderr.strip(), fail.ok) == (3, "oops", False)
    node = api_lab.get("nodes")[0]
    assert node.ip in api_lab.exec(f"node/{node.name}", ["ip", "-4", "addr", "show", "eth0"]).stdout
    assert api_lab.exec("external", ["true"]).ok
    assert api_lab.exec("client", ["cat"], input="typed\n").stdout == "typed\n"
    with pytest.raises(NotFound, match='pod "nope" not found'):
        api_lab.exec("nope", ["true"])


def test_apply_a_new_deployment_and_service(api_lab):
    api = dict(WEB, metadata={"name": "api", "labels": {"app": "api"}})
    api["spec"] = dict(WEB["spec"], replicas=1, selector={"matchLabels": {"app": "api"}},
                       template=dict(WEB["spec"]["template"], metadata={"labels": {"app": "api"}}))
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
           "spec": {"selector": {"app": "api"}, "ports": [{"port": 9000, "targetPort": 8080}]}}
    assert api_lab.apply([api, svc]) == ["deployment.apps/api created", "service/api created"]
    new = [p for p in api_lab.get("pods") if p.labels.get("app") == "api"]
    assert len(new) == 1 and new[0].ready, new
    r = api_lab.probe("pod/client", "svc/api:9000")
    assert r.ok and r.answered_by == new[0].name, r.detail
    services = {s.name: s for s in api_lab.get("svc")}
    assert [e.pod for e in services["api"].endpoints] == [new[0].name]
    url = f"http://{services['api'].cluster_ip}:9000/hostname"
    got = api_lab.exec("client", ["curl", "-sS", "--max-time", "5", url])
    assert got.stdout == new[0].name, got.stderr
    # again: nothing changes; from a file, as `netlab apply -f`
    assert api_lab.apply([api, svc]) == ["deployment.apps/api unchanged", "service/api unchanged"]


def test_apply_from_a_file_and_prune(api_lab, tmp_path):
    path = tmp_path / "extra.yaml"
    extra = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "extra", "labels": {"team": "x"}},
             "spec": {"selector": {"app": "web"}, "ports": [{"port": 81, "targetPort": 8080}]}}
    path.write_text(yaml.safe_dump(extra))
    assert api_lab.apply(str(path)) == ["service/extra created"]
    assert api_lab.probe("pod/client", "svc/extra:81").ok
    path.write_text(yaml.safe_dump(CLIENT))
    assert "service/extra pruned" in api_lab.apply(path, prune="team=x")
    assert "extra" not in {s.name for s in api_lab.get("services")}


def test_a_bad_manifest_is_one_line_naming_the_field_and_nothing_is_written(api_lab):
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 99999}]}}
    with pytest.raises(SpecError) as e:
        api_lab.apply([WEB_SVC, bad])
    msg = str(e.value)
    assert "\n" not in msg and "bad" in msg and "port" in msg, msg
    assert "bad" not in {s.name for s in api_lab.get("services")}
    with pytest.raises(SpecError, match="Cluster document cannot be applied"):
        api_lab.apply([CLUSTER])
    with pytest.raises(SpecError, match="not a probe target"):
        api_lab.probe("pod/client", "nowhere")
    with pytest.raises(SpecError, match="not a kind"):
        api_lab.get("gadgets")


def test_patch_and_replace_a_service_to_a_node_port_and_a_deployments_replicas(api_lab):
    assert api_lab.patch("svc", "web", {"spec": {"type": "NodePort"}}) == "service/web patched"
    svc = next(s for s in api_lab.get("services") if s.name == "web")
    port = svc.ports[0].node_port
    assert 30000 <= port <= 32767
    node = api_lab.cluster.nodes[0]
    got = api_lab.exec("client", ["curl", "-sS", "--max-time", "5", f"http://{node.ip}:{port}/hostname"])
    assert got.stdout in {p.name for p in api_lab.get("pods") if p.labels.get("app") == "web"}, got.stderr
    assert api_lab.patch("Deployment", "web", [{"op": "replace", "path": "/spec/replicas", "value": 3}],
                         patch_type="json") == "deployment.apps/web patched"
    assert len([p for p in api_lab.get("pods") if p.labels.get("app") == "web" and p.ready]) == 3
    with pytest.raises(SpecError, match="unknown field spec.replica"):
        api_lab.patch("deploy", "web", {"spec": {"replica": 1}})
    with pytest.raises(NotFound):
        api_lab.patch("deploy", "nope", {})
    # replace: the Service becomes what is given, a node port of its own choosing; a stale resourceVersion is
    # the API server's Conflict, and an object that is not there NotFound
    svc = {**WEB_SVC, "spec": {**WEB_SVC["spec"], "type": "NodePort",
                               "ports": [{"port": 80, "targetPort": "http", "nodePort": 30090}]}}
    # diff: what apply of it would change, nothing changed
    (name, live, merged), = api_lab.diff(svc)
    assert name == "service/web" and live["spec"]["type"] == "NodePort"
    assert merged["spec"]["ports"][0]["nodePort"] == 30090
    assert next(s for s in api_lab.get("services") if s.name == "web").ports[0].node_port == port
    assert api_lab.replace(svc) == ["service/web replaced"]
    got = api_lab.exec("client", ["curl", "-sS", "--max-time", "5", f"http://{node.ip}:30090/hostname"])
    assert got.stdout in {p.name for p in api_lab.get("pods") if p.labels.get("app") == "web"}, got.stderr
    with pytest.raises(Conflict):
        api_lab.replace({**svc, "metadata": {"name": "web", "resourceVersion": "1"}})
    with pytest.raises(StoreNotFound):
        api_lab.replace({**svc, "metadata": {"name": "nope"}})


def test_a_bad_scenario_is_refused_before_anything_is_made():
    with pytest.raises(SpecError) as e:
        netlab.Lab.from_objects([CLUSTER, dict(CLIENT, metadata={"name": "Bad_Name"})], _name())
    assert "\n" not in str(e.value) and "Bad_Name" in str(e.value)
    with pytest.raises(SpecError, match="not a kube-proxy mode"):
        netlab.Lab.from_objects(OBJECTS, _name(), proxy_mode="bpf")


def test_probe_matrix_and_the_cli_junit_report(api_lab):
    results = api_lab.probe_matrix()
    assert results and all(r.ok for r in results), [str(r) for r in results if not r.ok]
    groups = {r.group for r in results}
    assert {"node -> pod", "pod -> service"} <= groups
    r = netlab_cli("probe", "-o", "junit", "--lab", api_lab.name)
    assert r.returncode == 0, r.stderr
    root = ET.fromstring(r.stdout)
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(results) and int(root.get("failures")) == 0
    assert {c.get("classname") for c in cases} == {f"probe.{g}" for g in groups}
    assert all(" -> " in c.get("name") for c in cases)
    # a check that misses its expectation is a failure naming why
    r = netlab_cli("probe", "-o", "junit", "--lab", api_lab.name, "--from", "pod/client", "10.244.0.1:9/tcp",
                   "svc/web:80", "dns/web.default")
    assert r.returncode == 1, r.stderr
    root = ET.fromstring(r.stdout)
    failed = {c.get("name"): c.find("failure").get("message") for c in root.iter("testcase")
              if c.find("failure") is not None}
    assert list(failed) == ["pod/client -> 10.244.0.1:9/tcp"], failed
    assert "expected reachable" in failed["pod/client -> 10.244.0.1:9/tcp"]
    names = {c.get("name") for c in root.iter("testcase")}
    assert {"pod/client -> svc/web:80", "pod/client -> dns/web.default"} <= names
    assert os.geteuid() == 0


def test_trace_follows_a_clusterip_request_to_the_pod_the_kernel_chose(api_lab):
    """lab.trace is netlab.trace.trace: the kernel's own path, the KUBE-SEP chain of the pod it DNATed to."""
    pods = {p.name: p for p in api_lab.get("pods")}
    r = api_lab.trace("pod/client", "svc/web:80")
    assert r.outcome == "reachable", r.detail
    assert r.answered_by in {f"pod/{n}" for n in pods if n.startswith("web-")}
    ip = pods[r.answered_by.removeprefix("pod/")].ip
    observed = [h.text for h in r.hops if h.observed and h.kind == "netfilter"]
    assert any("KUBE-SEP-" in t and ip in t for t in observed), observed
    assert not r.differences, r.differences
