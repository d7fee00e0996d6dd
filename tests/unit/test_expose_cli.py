"""`netlab expose` without root: the Service kubectl expose makes (netlab/cli/expose.service_for, pure) and the CLI
against a simulated cluster's store (tests/unit/test_kubectl_cli.py's World): kubectl's lines and exit codes, that
the Service is written as apply writes one (checked, allocated, the loop asked for) and that refused input writes
nothing."""
from __future__ import annotations

import pytest

from netlab.cli.expose import service_for
from netlab.cli.kubeutil import KubeError

from .test_kubectl_cli import WEB, World, lines

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team",
                                                                      "labels": {"app": "web"}},
          "spec": {"selector": {"matchLabels": {"app": "web", "tier": "a"}},
                   "template": {"spec": {"containers": [
                       {"name": "c", "ports": [{"containerPort": 8080, "name": "http"}]},
                       {"name": "d", "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}}}}


def test_the_objects_selector_labels_and_ports_are_taken():
    svc = service_for(DEPLOY, "web", None, None, None, None, None, None)
    assert svc["metadata"] == {"name": "web", "namespace": "team", "labels": {"app": "web"}}
    assert svc["spec"] == {"selector": {"app": "web", "tier": "a"}, "ports": [
        {"port": 8080, "targetPort": 8080, "protocol": "TCP", "name": "port-1"},
        {"port": 53, "targetPort": 53, "protocol": "UDP", "name": "port-2"}]}


def test_given_port_target_type_selector_and_external_ip():
    svc = service_for(DEPLOY, "w2", 80, "http", None, "NodePort", "app=web", "192.0.2.7")
    assert svc["spec"] == {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}],
                           "type": "NodePort", "externalIPs": ["192.0.2.7"]}
    # --target-port defaults to --port, a number is a number
    assert service_for(DEPLOY, "w", 80, None, "UDP", None, None, None)["spec"]["ports"] == [
        {"port": 80, "targetPort": 80, "protocol": "UDP"}]
    assert service_for(DEPLOY, "w", 80, "9000", None, None, None, None)["spec"]["ports"][0]["targetPort"] == 9000


def test_a_pod_is_selected_by_its_labels_and_a_service_by_its_selector():
    pod = {"kind": "Pod", "metadata": {"name": "a", "labels": {"run": "a"}},
           "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}
    assert service_for(pod, "a", None, None, None, None, None, None)["spec"] == {
        "selector": {"run": "a"}, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}
    svc = {"kind": "Service", "metadata": {"name": "s"},
           "spec": {"selector": {"x": "1"}, "ports": [{"port": 80, "targetPort": "http"}]}}
    assert service_for(svc, "s2", None, None, None, "NodePort", None, None)["spec"] == {
        "selector": {"x": "1"}, "ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}], "type": "NodePort"}


@pytest.mark.parametrize("obj, kw, expected", [
    (dict(DEPLOY, spec={"selector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}), {},
     "matchExpressions"),
    ({"kind": "Pod", "metadata": {"name": "a"},
      "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}},
     {}, "couldn't retrieve selectors"),
    ({"kind": "Pod", "metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"containers": [{"name": "c"}]}}, {},
     "couldn't find port"),
    (DEPLOY, {"selector": "app!=web"}, "expose takes KEY=VALUE"),
    (DEPLOY, {"target_port": "80"}, "--target-port needs --port"),
])
def test_what_kubectl_expose_cannot_make(obj, kw, expected):
    args = dict(port=None, target_port=None, protocol=None, svc_type=None, selector=None, external_ip=None)
    args.update(kw)
    with pytest.raises(KubeError, match=expected):
        service_for(obj, "x", **args)


@pytest.fixture
def world(monkeypatch, tmp_path):
    w = World(monkeypatch, tmp_path)
    w.deploy()
    return w


def test_expose_writes_an_allocated_service_and_refuses_a_taken_name(world):
    world.ensured.clear()
    r = world.run("expose", "deploy", "web", "--port", "80", "--type", "NodePort", "--name", "front")
    assert r.exit_code == 0 and lines(r) == ["service/front exposed"] and world.ensured == ["sim"]
    svc = world.store.get("Service", "default", "front")
    assert svc["spec"]["selector"] == {"app": "web"} and svc["spec"]["clusterIP"]
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    before = world.store.revision()
    r = world.run("expose", "deploy/web", "--port", "81", settle=False)   # WEB's own Service is named web
    assert r.exit_code == 1 and 'Error from server (AlreadyExists): services "web" already exists' in r.output
    assert world.store.revision() == before


def test_expose_refusals_write_nothing(world):
    before = world.store.revision()
    r = world.run("expose", "deploy/web", "--name", "w2", "--port", "80", "--target-port", "0", settle=False)
    assert r.exit_code == 2 and "spec.ports[0].targetPort 0 is out of range" in r.output
    r = world.run("expose", "deploy/nope", "--port", "80", settle=False)
    assert r.exit_code == 1 and 'deployments.apps "nope" not found' in r.output
    r = world.run("expose", "node", "n1", "--port", "80", settle=False)
    assert r.exit_code == 1 and "cannot expose a Node" in r.output
    r = world.run("expose", "deploy/web", "svc/x", settle=False)
    assert r.exit_code == 1 and "expose takes one object" in r.output
    assert world.store.revision() == before


# ------------------------------------------------------------------ create deployment (what expose is used with)

def test_create_deployment_is_kubectls():
    from netlab.cli.create import deployment_for
    d = deployment_for("web", "team", ["registry.k8s.io/e2e-test-images/agnhost:2.53", "my_app@sha256:00",
                                       "nginx", "other/nginx:1.25"], 3, 8080, ["sleep", "60"])
    assert d["metadata"] == {"name": "web", "namespace": "team", "labels": {"app": "web"}}
    assert d["spec"]["replicas"] == 3 and d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert d["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}
    cs = d["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs[:3]] == ["agnhost", "my-app", "nginx"]
    assert cs[3]["name"].startswith("nginx-") and len(cs[3]["name"]) == len("nginx-") + 5   # a repeated name
    assert cs[0]["ports"] == [{"containerPort": 8080}] and all("ports" not in c for c in cs[1:])
    assert all(c["command"] == ["sleep", "60"] for c in cs)


def test_create_deployment_then_expose_it(world):
    r = world.run("create", "deployment", "hello", "--image", "nginx:1.25", "--replicas", "2", "--port", "80")
    assert r.exit_code == 0 and lines(r) == ["deployment.apps/hello created"], r.output
    for _ in range(5):
        world.sim.tick(1)
    assert len([p for p in world.store.list("Pod") if p["metadata"]["labels"].get("app") == "hello"]) == 2
    r = world.run("expose", "deployment", "hello", "--type", "NodePort")   # the port from the template
    assert r.exit_code == 0 and lines(r) == ["service/hello exposed"]
    svc = world.store.get("Service", "default", "hello")
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 80
    before = world.store.revision()
    r = world.run("create", "deployment", "hello", "--image", "nginx", settle=False)
    assert r.exit_code == 1 and 'deployments.apps "hello" already exists' in r.output
    r = world.run("create", "deployment", "bad_name", "--image", "nginx", settle=False)
    assert r.exit_code == 2 and "bad_name" in r.output
    assert world.store.revision() == before


# ------------------------------------------------------------------ run (a pod, often exposed)

def test_run_makes_kubectls_pod():
    from netlab.cli.run import pod_for
    p = pod_for("tmp", "team", "busybox", ["sleep", "60"], False, 8080, ["A=1", "B=x=y"], None, "Never")
    assert p["metadata"] == {"name": "tmp", "namespace": "team", "labels": {"run": "tmp"}}
    assert p["spec"] == {"restartPolicy": "Never", "containers": [
        {"name": "tmp", "image": "busybox", "args": ["sleep", "60"], "ports": [{"containerPort": 8080}],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "x=y"}]}]}
    q = pod_for("tmp", "default", "busybox", ["sleep", "60"], True, None, [], "a=1,b=2", "Always")
    assert q["spec"]["containers"][0]["command"] == ["sleep", "60"] and q["metadata"]["labels"] == {"a": "1", "b": "2"}
    with pytest.raises(KubeError, match="invalid env"):
        pod_for("tmp", "default", "busybox", [], False, None, ["NOVALUE"], None, "Always")


def test_run_with_expose_then_refusals(world):
    world.ensured.clear()
    r = world.run("run", "tmp", "--image=nginx", "--port=80", "--expose")
    assert r.exit_code == 0 and lines(r) == ["service/tmp created", "pod/tmp created"], r.output
    assert world.ensured == ["sim"]
    assert world.store.get("Service", "default", "tmp")["spec"]["selector"] == {"run": "tmp"}
    assert world.store.get("Pod", "default", "tmp")["spec"]["containers"][0]["ports"][0]["containerPort"] == 80
    before = world.store.revision()
    for args, code, said in [(("tmp", "--image=nginx"), 1, 'pods "tmp" already exists'),
                             (("x", "--image=nginx", "--expose"), 1, "--port must be set when exposing"),
                             (("x", "-it", "--rm", "--image=busybox", "--", "sh"), 1, "netlab exec x -- CMD"),
                             (("Bad", "--image=nginx"), 2, "Bad")]:
        r = world.run("run", *args, settle=False)
        assert r.exit_code == code and said in r.output, (args, r.output)
    assert world.store.revision() == before
