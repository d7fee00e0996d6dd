"""Bad input and missing privileges: a one-line error, exit status 2, and nothing changed in the kernel."""
from __future__ import annotations

import os

import pytest

from .conftest import netlab_cli, nobody_uid

BAD = {
    "not-yaml.yaml": ("a: [1,\n", "is not valid YAML"),
    "overlap.yaml": ("kind: Cluster\nnetworking: {podSubnet: 10.96.0.0/12}\n", "overlaps"),
    "badname.yaml": ("apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\nspec: {containers: [{name: c}]}\n",
                     "metadata.name 'Web_1' is not a valid DNS-1123"),
    "nonode.yaml": ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: nope, containers: [{name: c}]}\n",
                    "spec.nodeName 'nope' is not a node"),
    "kind.yaml": ("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: x}\n", "kind 'Ingress' is not supported"),
    "dup.yaml": ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n---\n"
                 "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n", "defined twice"),
    "shell.yaml": ("apiVersion: v1\nkind: Pod\nmetadata: {name: '$(touch /tmp/pwned)'}\nspec: {containers: [{name: c}]}\n",
                   "is not a valid DNS-1123"),
    "typo.yaml": ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replica: 2\n"
                  "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
                  "    spec: {containers: [{name: c}]}\n", "unknown field spec.replica; did you mean replicas?"),
    "quoted-port.yaml": ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n"
                         "    ports: [{containerPort: \"80\"}]\n", "containerPort must be an integer, not the string"),
    "concatenated.yaml": ("kind: Cluster\nname: x\napiVersion: v1\nkind: Service\n"
                          "metadata: {name: web}\nspec: {ports: [{port: 80}]}\n", "duplicate key"),
    "full.yaml": ("kind: Cluster\nnodes: [{role: worker}]\nnetworking: {nodeCIDRMaskSize: 29}\n---\napiVersion: apps/v1\n"
                  "kind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 9\n  selector: {matchLabels: {a: b}}\n"
                  "  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c}]}\n", "holds 5 pod addresses"),
}


@pytest.mark.parametrize("fname", sorted(BAD))
def test_bad_scenario_is_refused_without_kernel_change(tmp_path, fname):
    text, expected = BAD[fname]
    path = tmp_path / fname
    path.write_text(text)
    before = _namespaces("t-badinput")
    r = netlab_cli("up", str(path), "--lab", "t-badinput")
    assert r.returncode == 2, r
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert expected in lines[0]
    assert "Traceback" not in r.stderr
    assert before == _namespaces("t-badinput") == []
    assert not os.path.exists("/run/netlab/t-badinput")
    assert not os.path.exists("/tmp/pwned")


MANY_PROBLEMS = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replica: 2\n"
                 "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
                 "    spec: {containers: [{name: c, ports: [{containerPort: '80'}]}]}\n---\n"
                 "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80, nodeport: 1}]}\n")


@pytest.mark.parametrize("verb", ["up", "validate"])
def test_every_problem_of_a_file_is_reported_in_one_run(tmp_path, verb):
    path = tmp_path / "many.yaml"
    path.write_text(MANY_PROBLEMS)
    r = netlab_cli(verb, str(path), "--lab", "t-badinput") if verb == "up" else netlab_cli(verb, str(path))
    assert r.returncode == 2, r
    assert r.stderr.splitlines() == [
        "error: Deployment default/d: spec.template.spec.containers[0].ports[0].containerPort must be an integer, "
        "not the string '80'; write the number without quotes",
        "error: Deployment default/d: unknown field spec.replica; did you mean replicas?",
        "error: Service default/web: unknown field spec.ports[0].nodeport; did you mean nodePort?"]
    assert _namespaces("t-badinput") == [] and not os.path.exists("/run/netlab/t-badinput")


def _namespaces(lab: str) -> list[str]:
    """The lab's namespaces only: other tests may create and remove theirs meanwhile (pytest -n)."""
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(f"nl.{lab}."))
    except FileNotFoundError:
        return []


def test_missing_file():
    r = netlab_cli("up", "/nonexistent/scenario.yaml")
    assert r.returncode == 2 and "cannot read scenario" in r.stderr


@pytest.mark.skipif(nobody_uid() is None, reason="no 'nobody' user to drop privileges to")
@pytest.mark.parametrize("args", [["up"], ["down", "x"], ["exec", "p", "--", "true"]])
def test_not_root(args):
    r = netlab_cli(*args, user=nobody_uid())
    assert r.returncode == 2, r
    assert "must run as root" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_no_lab_up_says_how():
    r = netlab_cli("get", "pods", "--lab", "t-notthere")
    assert r.returncode == 2 and "is not up" in r.stderr and "netlab up" in r.stderr


def test_render_needs_no_root_and_changes_nothing():
    before = _namespaces("demo")
    r = netlab_cli("render", "--node", "demo-worker", user=nobody_uid())
    assert r.returncode == 0, r.stderr
    assert "*nat" in r.stdout and "FLANNEL-POSTRTG" in r.stdout
    assert before == _namespaces("demo")


def test_ipvs_mode_without_ipvs_is_refused_before_any_change():
    """On a kernel without ip_vs/dummy, --proxy-mode ipvs names what is missing; no silent fallback."""
    from netlab.dataplane import kernelcheck
    if not kernelcheck.missing_for_ipvs():
        pytest.skip("this kernel has IPVS; the refusal is for kernels without it")
    r = netlab_cli("up", "--lab", "t-noipvs", "--proxy-mode", "ipvs")
    assert r.returncode == 2, r
    assert "ipvs cannot run on this kernel" in r.stderr and "ip_vs" in r.stderr and "vm-run" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not [n for n in os.listdir("/run/netns") if n.startswith("nl.t-noipvs.")]
    assert not os.path.exists("/run/netlab/t-noipvs")


@pytest.mark.parametrize("container, expected", [
    ("{name: c, command: [no-such-program-xyz]}", "container c runs 'no-such-program-xyz', which is not installed"),
    ("{name: c, args: [serve-hostname]}", "container c has args but no command"),
    ("{name: c, args: [--port, '80']}", "spec.containers[0].args has no command to pass '--port' to"),
], ids=["command", "args", "flag-args"])
def test_validate_refuses_what_up_refuses_with_the_same_message(tmp_path, container, expected):
    path = tmp_path / "cmd.yaml"
    path.write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec: {{containers: [{container}]}}\n")
    v = netlab_cli("validate", str(path))
    u = netlab_cli("up", str(path), "--lab", "t-badinput")
    assert v.returncode == u.returncode == 2, (v, u)
    assert v.stderr == u.stderr and v.stderr.startswith("error: Pod default/p: ") and expected in v.stderr, (v, u)
    assert len(v.stderr.splitlines()) == 1
    assert _namespaces("t-badinput") == [] and not os.path.exists("/run/netlab/t-badinput")
