"""Bad input and missing privileges: a one-line error, exit status 2, and nothing changed in the kernel."""
from __future__ import annotations

import os
import re
import time

import pytest

from .conftest import netlab_cli, nobody_uid

BAD = {
    "not-yaml.yaml": ("a: [1,\n", "is not valid YAML"),
    "overlap.yaml": ("kind: Cluster\nnetworking: {podSubnet: 10.96.0.0/12}\n", "overlaps"),
    "badname.yaml": ("apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\nspec: {containers: [{name: c}]}\n",
                     "metadata.name 'Web_1' is not a valid DNS-1123"),
    "nonode.yaml": ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: nope, containers: [{name: c}]}\n",
                    "spec.nodeName 'nope' is not a node"),
    "kind.yaml": ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n", "kind 'HorizontalPodAutoscaler' is not supported"),
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


def test_validate_refuses_a_proxy_mode_the_kernel_cannot_run_as_up_does():
    """validate said valid to kubeProxyMode: ipvs on a kernel without IPVS, which up refuses (exit 2):
    validate reads the same kernel facts, without root, and refuses with the same line; the line says
    how to get the features once (it said it once per missing feature)."""
    from netlab.dataplane import kernelcheck
    if not kernelcheck.missing_for_ipvs():
        pytest.skip("this kernel has IPVS; the refusal is for kernels without it")
    import shutil
    import tempfile
    where = tempfile.mkdtemp(prefix="netlab-test-")  # readable by nobody (pytest's tmp_path is not)
    try:
        os.chmod(where, 0o755)
        path = os.path.join(where, "ipvs.yaml")
        with open(path, "w") as f:
            f.write("apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nnetworking: {kubeProxyMode: ipvs}\n")
        os.chmod(path, 0o644)
        v = netlab_cli("validate", path, user=nobody_uid())
        u = netlab_cli("up", path, "--lab", "t-noipvs2")
    finally:
        shutil.rmtree(where)
    assert v.returncode == u.returncode == 2, (v, u)
    assert v.stderr == u.stderr and "ipvs cannot run on this kernel" in v.stderr, (v, u)
    assert len(v.stderr.splitlines()) == 1 and v.stdout == ""
    assert v.stderr.count("linux-image-amd64") == 1 and v.stderr.count("vm-run") == 1, v.stderr
    assert _namespaces("t-noipvs2") == [] and not os.path.exists("/run/netlab/t-noipvs2")


@pytest.mark.parametrize("container, expected", [
    ("{name: c, command: [no-such-program-xyz]}", "container c runs 'no-such-program-xyz', which is not installed"),
    ("{name: c, args: [serve-hostname]}", "container c has args but no command"),
    ("{name: c, args: [--port, '80']}", "spec.containers[0].args has no command to pass '--port' to"),
], ids=["command", "args", "flag-args"])
def test_validate_and_render_refuse_what_up_refuses_with_the_same_message(tmp_path, container, expected):
    path = tmp_path / "cmd.yaml"
    path.write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec: {{containers: [{container}]}}\n")
    v = netlab_cli("validate", str(path))
    u = netlab_cli("up", str(path), "--lab", "t-badinput")
    rd = netlab_cli("render", str(path))  # a dry run of up refuses what up refuses
    assert v.returncode == u.returncode == rd.returncode == 2, (v, u, rd)
    assert v.stderr == u.stderr == rd.stderr and v.stderr.startswith("error: Pod default/p: ") \
        and expected in v.stderr, (v, u, rd)
    assert rd.stdout == ""
    assert len(v.stderr.splitlines()) == 1
    assert _namespaces("t-badinput") == [] and not os.path.exists("/run/netlab/t-badinput")


# ---- kubectl's habits: several -f, a directory, - (stdin)

POD_A = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\n"
POD_B = "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\n"
SVC_JSON = ('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, '
            '"spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}\n')
KIND_ONE_NODE = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: t-kind1\n"


def test_validate_takes_several_files(tmp_path):
    (tmp_path / "a.yaml").write_text(POD_A)
    (tmp_path / "b.yaml").write_text(POD_B)
    r = netlab_cli("validate", str(tmp_path / "a.yaml"), "-f", str(tmp_path / "b.yaml"))
    assert r.returncode == 0, r.stderr
    assert "valid: lab netlab, 2 nodes, 2 pods, 0 services" in r.stdout


def test_validate_takes_a_directory_in_name_order(tmp_path):
    (tmp_path / "1-cluster.yml").write_text(KIND_ONE_NODE)
    (tmp_path / "2-pods.yaml").write_text(POD_A + "---\n" + POD_B)
    (tmp_path / "3-svc.json").write_text(SVC_JSON)
    (tmp_path / "README.md").write_text("not a manifest: [")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.yaml").write_text("not read: [")  # kubectl -f DIR does not recurse
    r = netlab_cli("validate", "-f", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "valid: lab t-kind1, 1 nodes, 2 pods, 1 services" in r.stdout
    r = netlab_cli("render", "-f", str(tmp_path), "--fabric")
    assert r.returncode == 0 and "t-kind1-control-plane" in r.stdout, r.stderr


def test_validate_reads_stdin(tmp_path):
    exe = os.path.join(os.path.dirname(__import__("sys").executable), "netlab")
    import subprocess
    r = subprocess.run([exe, "validate", "-f", "-"], input=POD_A, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<stdin>: valid: lab netlab, 2 nodes, 1 pods")


def test_an_error_names_the_file_it_is_in(tmp_path):
    (tmp_path / "a.yaml").write_text(POD_A)
    (tmp_path / "b.yaml").write_text("a: [1,\n")
    r = netlab_cli("validate", "-f", str(tmp_path / "a.yaml"), "-f", str(tmp_path / "b.yaml"))
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {tmp_path / 'b.yaml'}: is not valid YAML"), r.stderr


@pytest.mark.parametrize("content", ["", "# nothing but a comment\n", None], ids=["empty", "comment", "empty-dir"])
def test_no_objects_is_refused_and_says_how_to_get_the_default_lab(tmp_path, content):
    target = tmp_path / "in.yaml"
    if content is None:
        target = tmp_path / "empty"
        target.mkdir()
    else:
        target.write_text(content)
    for verb in (["validate"], ["up", "--lab", "t-badinput"]):
        r = netlab_cli(*verb, str(target))
        assert r.returncode == 2, r
        assert "no objects passed to apply" in r.stderr and "`netlab up` with no file" in r.stderr, r.stderr
        assert len(r.stderr.splitlines()) == 1
    assert _namespaces("t-badinput") == [] and not os.path.exists("/run/netlab/t-badinput")


def test_up_takes_several_files_and_a_kind_config_without_nodes_is_one_node(tmp_path, lab):
    """`up -f kind.yaml -f pods/`: one schedulable control-plane node (kind's default) running both pods;
    the stored scenario (the inputs joined) is what later commands read back."""
    (tmp_path / "kind.yaml").write_text(KIND_ONE_NODE)
    (tmp_path / "pods").mkdir()
    (tmp_path / "pods" / "a.yaml").write_text(POD_A)
    (tmp_path / "pods" / "b.yml").write_text(POD_B)
    t0 = time.monotonic()
    r = netlab_cli("up", "-f", str(tmp_path / "kind.yaml"), "-f", str(tmp_path / "pods"), "--lab", lab.name)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert f"lab {lab.name} created: 1 nodes, 2 pods" in r.stdout
    # the time it reports is the whole up's (not its last pass's): within the command's own wall time,
    # and most of it: the rest is the CLI's start (Python, imports, reading the files; here about 0.6 s of
    # 2.3 s, where the last pass alone was 0.15 s)
    took = float(re.search(r" changes? in ([0-9.]+)s ", r.stdout).group(1))
    assert 0.4 * wall <= took <= wall, (took, wall, r.stdout)
    nodes = netlab_cli("get", "nodes", "--lab", lab.name, "-o", "name", check=True)
    assert nodes.stdout == "node/t-kind1-control-plane\n"  # named after the kind config's name
    pods = netlab_cli("get", "pods", "--lab", lab.name, "-o", "wide", check=True)
    rows = [line.split() for line in pods.stdout.splitlines()[1:]]
    assert [(row[0], row[2]) for row in rows] == [("a", "Running"), ("b", "Running")], pods.stdout
    assert all("t-kind1-control-plane" in row for row in rows), pods.stdout
    again = netlab_cli("up", "-f", str(tmp_path / "kind.yaml"), "-f", str(tmp_path / "pods"), "--lab", lab.name)
    assert again.returncode == 0 and "reconciled" in again.stdout and "0 changes" in again.stdout, again


NAMED_PORT_LATER = """\
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: web}}
spec: {containers: [{name: c, ports: [{containerPort: 8080, name: web}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: web, port: 81, targetPort: web}
---
apiVersion: v1
kind: Service
metadata: {name: later}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""


def test_a_named_target_port_no_pod_defines_yet_is_accepted_with_no_endpoints(tmp_path, lab):
    """Kubernetes accepts the Service and gives the port no endpoints (connections to it are refused);
    `up` used to refuse the whole scenario."""
    import json
    path = tmp_path / "named.yaml"
    path.write_text(NAMED_PORT_LATER)
    r = netlab_cli("up", str(path), "--lab", lab.name)
    assert r.returncode == 0, r.stderr
    later = json.loads(netlab_cli("get", "ep", "later", "--lab", lab.name, "-o", "json", check=True).stdout)
    assert later["subsets"] == []
    table = netlab_cli("get", "ep", "later", "--lab", lab.name, check=True).stdout.splitlines()
    assert table[1].split()[:2] == ["later", "<none>"]
    web = json.loads(netlab_cli("get", "ep", "web", "--lab", lab.name, "-o", "json", check=True).stdout)
    assert [s["ports"] for s in web["subsets"]] == [[{"port": 8080, "protocol": "TCP", "name": "web"}]]
    svcs = json.loads(netlab_cli("get", "svc", "web", "--lab", lab.name, "-o", "json", check=True).stdout)
    ip = svcs["spec"]["clusterIP"]
    node = netlab_cli("get", "nodes", "--lab", lab.name, "-o", "name", check=True).stdout.split()[-1].split("/")[1]
    served = netlab_cli("exec", "--node", node, "--lab", lab.name, "--", "curl", "-sS", "--max-time", "5",
                        f"http://{ip}:81/hostname")
    assert served.returncode == 0 and served.stdout.strip() == "a", served
    refused = netlab_cli("exec", "--node", node, "--lab", lab.name, "--", "curl", "-sS", "--max-time", "5",
                         f"http://{ip}:80/hostname")
    assert refused.returncode == 7, refused  # could not connect at once (REJECT: no endpoints), not a timeout (28)
