"""What a new user tripped on (issue 10), each reproduced through the CLI on a real lab."""
from __future__ import annotations

import json
import os
import subprocess
import time

from netlab.dataplane import procs, state

from .conftest import netlab_cli, nobody_uid, pods_json, pods_table

ECO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: eco-a}, {role: worker, name: eco-b}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers: [{name: shop, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: worker}
spec:
  containers: [{name: main, command: [sleep, "600"]}]
"""


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_up_without_a_file_reconciles_the_lab_from_its_own_scenario(lab, tmp_path):
    """`up --lab L` with no file on a lab built from another file reconciled it into the built-in demo
    (its pods destroyed, nodes renamed) and said "created". It must reconcile the lab from the scenario
    it was built from; another file that would destroy pods needs --replace; get nodes' hint names
    a command that repairs this lab."""
    eco = _write(tmp_path, "eco.yaml", ECO)
    r = netlab_cli("up", eco, "--lab", lab.name)
    assert r.returncode == 0, r.stderr
    assert f"lab {lab.name} created" in r.stdout
    before = state.load(lab.name)
    worker = before["pods"]["default/worker"]["procs"]["main"]
    # no file: the lab's own scenario, nothing changes, nothing is destroyed
    r = netlab_cli("up", "--lab", lab.name)
    assert r.returncode == 0, r.stderr
    assert f"lab {lab.name} reconciled: 2 nodes, 3 pods, 0 services; 0 changes" in r.stdout, r.stdout
    after = state.load(lab.name)
    assert sorted(after["nodes"]) == ["eco-a", "eco-b"]
    assert after["pods"].keys() == before["pods"].keys()
    assert {k: v["uid"] for k, v in after["pods"].items()} == {k: v["uid"] for k, v in before["pods"].items()}
    assert procs.alive(worker) and after["pods"]["default/worker"]["procs"]["main"] == worker
    # another file that would destroy the pods: refused (exit 2, nothing changed), says what and how
    other = _write(tmp_path, "other.yaml", "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\n"
                   "nodes: [{role: worker, name: x1}]\n")
    r = netlab_cli("up", other, "--lab", lab.name)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "would remove node eco-a, node eco-b, pod default/shop-" in r.stderr, r.stderr
    assert "--replace" in r.stderr and f"sudo netlab up --lab {lab.name}" in r.stderr
    assert procs.alive(worker) and sorted(state.load(lab.name)["nodes"]) == ["eco-a", "eco-b"]
    # the same file given by another path is the same source: edits reconcile as before
    rel = os.path.relpath(eco)
    r = netlab_cli("up", rel, "--lab", lab.name)
    assert r.returncode == 0 and "0 changes" in r.stdout, (r.stdout, r.stderr)
    # the hint of get nodes repairs this lab
    cluster_node = json.loads(netlab_cli("get", "nodes", "eco-a", "-o", "json", "--lab", lab.name,
                                         check=True).stdout)
    netns = cluster_node["metadata"]["annotations"]["netlab.dev/netns"]
    assert subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.ip_forward=0"]).returncode == 0
    r = netlab_cli("get", "nodes", "--lab", lab.name)
    assert f"`sudo netlab up --lab {lab.name}` would repair" in r.stderr, r.stderr
    cond = json.loads(netlab_cli("get", "nodes", "eco-a", "-o", "json", "--lab", lab.name).stdout)
    assert f"`sudo netlab up --lab {lab.name}` would repair" in json.dumps(cond["status"]["conditions"])
    hint = r.stderr.split("`")[1]
    assert hint.startswith("sudo ")
    r = netlab_cli(*hint.split()[2:])
    assert r.returncode == 0, r.stderr
    r = netlab_cli("get", "nodes", "--lab", lab.name)
    assert "NotReady" not in r.stdout and not r.stderr, (r.stdout, r.stderr)
    assert procs.alive(worker)
    # --replace does replace, and says so
    r = netlab_cli("up", other, "--lab", lab.name, "--replace")
    assert r.returncode == 0, r.stderr
    assert sorted(state.load(lab.name)["nodes"]) == ["x1"]
    assert not procs.alive(worker)


UNSORTED = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: nz}, {role: worker, name: na}]
---
apiVersion: v1
kind: Pod
metadata: {name: zeta, labels: {app: z}}
spec:
  containers: [{name: srv, ports: [{containerPort: 8080}]}, {name: side, command: [sleep, "600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: alpha, labels: {app: a}}
spec:
  containers: [{name: srv, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: zz}
spec: {selector: {app: z}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: aa}
spec: {selector: {app: a}, ports: [{port: 80, targetPort: 8080}]}
"""


def _names(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines()[1:] if line.strip()]


def test_kubectl_habits_exec_and_get(lab):
    """exec takes pod/NAME (what get -o name prints) and svc/NAME (one of its pods), -i (stdin passed;
    without it the command reads nothing), -t, -c CONTAINER (checked); get lists sorted by name; get labs -o json|yaml|name."""
    import yaml
    lab.up(UNSORTED)
    args = ("--lab", lab.name)
    assert _names(netlab_cli("get", "pods", *args, check=True).stdout) == ["alpha", "zeta"]
    assert _names(netlab_cli("get", "nodes", *args, check=True).stdout) == ["na", "nz"]
    # (and the kubernetes Service every cluster has in default)
    assert _names(netlab_cli("get", "svc", *args, check=True).stdout) == ["aa", "kubernetes", "zz"]
    assert _names(netlab_cli("get", "ep", *args, check=True).stdout) == ["aa", "zz"]
    items = json.loads(netlab_cli("get", "pods", "-o", "json", *args, check=True).stdout)["items"]
    assert [i["metadata"]["name"] for i in items] == ["alpha", "zeta"]
    names = netlab_cli("get", "pods", "-o", "name", *args, check=True).stdout.split()
    assert names == ["pod/alpha", "pod/zeta"]
    # exec pod/NAME, as printed
    r = netlab_cli("exec", names[1], *args, "--", "hostname")
    assert r.returncode == 0 and r.stdout.strip() == "zeta", (r.stdout, r.stderr)
    # svc/NAME: one of the Service's pods, as kubectl exec takes it; a kind without pods is refused
    r = netlab_cli("exec", "svc/zz", *args, "--", "hostname")
    assert r.returncode == 0 and r.stdout.strip() == "zeta", (r.stdout, r.stderr)
    r = netlab_cli("exec", "node/nz", *args, "--", "true")
    assert r.returncode == 2 and "give a pod, or a Deployment" in r.stderr, r
    # -c: a container of the pod, or an error listing the valid ones
    r = netlab_cli("exec", "zeta", "-c", "side", *args, "--", "hostname")
    assert r.returncode == 0 and r.stdout.strip() == "zeta"
    r = netlab_cli("exec", "zeta", "-c", "nope", *args, "--", "hostname")
    assert r.returncode != 0 and "container nope is not valid for pod zeta: use one of srv, side" in r.stderr
    # -i passes stdin; without it the command reads nothing; -t and -it are accepted
    base = ["exec", "-it", "alpha", *args, "--", "cat"]
    runner = _cli_argv()
    r = subprocess.run(runner + base, input="through stdin\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "through stdin\n", (r.stdout, r.stderr)
    r = subprocess.run(runner + ["exec", "-i", "alpha", *args, "--", "cat"], input="x\n", capture_output=True,
                       text=True, timeout=60)
    assert r.stdout == "x\n", r.stderr
    r = subprocess.run(runner + ["exec", "alpha", *args, "--", "cat"], input="not passed\n", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)
    # get labs: a table, or kubectl-shaped objects
    assert lab.name in _names(netlab_cli("get", "labs", check=True).stdout)
    doc = json.loads(netlab_cli("get", "labs", "-o", "json", check=True).stdout)
    assert doc["kind"] == "List"
    mine = [i for i in doc["items"] if i["metadata"]["name"] == lab.name]
    assert mine and mine[0]["kind"] == "Lab" and mine[0]["status"]["pods"] == 2 + 2   # and the cluster DNS's
    listed = [i["metadata"]["name"] for i in doc["items"]]
    assert listed == sorted(listed)
    one = yaml.safe_load(netlab_cli("get", "labs", lab.name, "-o", "yaml", check=True).stdout)
    assert one["kind"] == "Lab" and one["metadata"]["name"] == lab.name and one["status"]["phase"] == "Ready"
    assert f"lab/{lab.name}" in netlab_cli("get", "labs", "-o", "name", check=True).stdout.split()


def _cli_argv() -> list[str]:
    import sys
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "netlab"]


READINESS = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: r1}, {role: worker, name: r2}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: good}
spec:
  replicas: 1
  selector: {matchLabels: {app: good}}
  template:
    metadata: {labels: {app: good, tier: web}}
    spec:
      containers: [{name: web, ports: [{containerPort: 80}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: crash}
spec:
  replicas: 1
  selector: {matchLabels: {app: crash}}
  template:
    metadata: {labels: {app: crash, tier: web}}
    spec:
      containers: [{name: web, command: [sh, -c, "echo crashing now; exit 3"], ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: deaf, labels: {tier: web}}
spec:
  containers: [{name: web, command: [sleep, "1000"], ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: brief, labels: {tier: web}}
spec:
  containers:
  - name: web
    command: [python3, -c, "import socket, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('', 80)); s.listen(); time.sleep(10); s.close(); time.sleep(1000)"]
    ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  containers: [{name: job, command: [sh, -c, "exit 0"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: c, command: [sleep, "1000"]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {tier: web}, ports: [{port: 80, targetPort: 80}]}
"""


def _pods(lab) -> dict[str, list[str]]:
    return pods_table(lab.name)


def _pod_json(lab) -> dict[str, dict]:
    return pods_json(lab.name)


def _cond(obj: dict, kind: str) -> dict:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def _ask_many(lab, ip, n: int = 20) -> list[str]:
    return [lab.pod_exec("client", ["curl", "-sS", "--max-time", "3", f"http://{ip}/hostname"]).stdout.strip()
            for _ in range(n)]


def test_a_pod_that_does_not_listen_or_has_exited_is_not_ready_and_not_an_endpoint(lab):
    """A container that exited (exit 3), one that runs but listens on no declared port, and one that
    stops listening after `up`: not Ready (get pods READY 0/1 and why, -o json states and conditions),
    not endpoints, and a ClusterIP client only ever reaches the healthy pod; `up` resyncs the rules
    when readiness changes; logs of an exited container show its output or say there is none."""
    lab.control_loop = False  # the still picture: nothing changes between two `up`s
    t0 = time.monotonic()
    lab.up(READINESS)
    good = lab.pods("good-")[0]
    crash = lab.pods("crash-")[0]
    assert time.monotonic() - t0 < 30
    rows = _pods(lab)
    assert rows[good.name][1:3] == ["1/1", "Running"], rows
    assert rows[crash.name][1:3] == ["0/1", "Error"], rows
    assert rows["deaf"][1:3] == ["0/1", "Running"], rows
    assert rows["brief"][1:3] == ["1/1", "Running"], rows
    assert rows["done"][1:3] == ["0/1", "Completed"], rows
    objs = _pod_json(lab)
    cs = objs[crash.name]["status"]["containerStatuses"][0]
    assert cs["ready"] is False and cs["state"]["terminated"]["exitCode"] == 3
    assert cs["state"]["terminated"]["reason"] == "Error"
    assert _cond(objs[crash.name], "Ready")["status"] == "False"
    cs = objs["deaf"]["status"]["containerStatuses"][0]
    assert cs["ready"] is False and "running" in cs["state"]
    for kind in ("Ready", "ContainersReady"):
        cond = _cond(objs["deaf"], kind)
        assert cond["status"] == "False" and cond["reason"] == "ContainersNotReady", cond
    assert "TCP 80" in objs["deaf"]["status"]["message"]
    assert objs["done"]["status"]["phase"] == "Succeeded"
    assert objs["done"]["status"]["containerStatuses"][0]["state"]["terminated"] == {
        "reason": "Completed", "exitCode": 0, "message": "container job is not running (exit code 0)"}
    assert _cond(objs[good.name], "Ready")["status"] == "True"
    # endpoints: the ready pods only
    ep = netlab_cli("get", "ep", "web", "--lab", lab.name, check=True).stdout
    assert str(good.ip) in ep and str(lab.pod("brief").ip) in ep, ep
    assert str(crash.ip) not in ep and str(lab.pod("deaf").ip) not in ep, ep
    cip = lab.cluster.services[0].cluster_ip
    # logs: the exited container's output; none for one that printed nothing
    r = netlab_cli("logs", crash.name, "--lab", lab.name, check=True)
    assert r.stdout == "crashing now\n", r.stdout
    r = netlab_cli("logs", "done", "--lab", lab.name, check=True)
    assert r.stdout == "" and "no output from container job of pod done" in r.stderr
    # brief stops listening: get pods says so, and the next up takes it out of the rules
    deadline = time.monotonic() + 15
    while _pods(lab)["brief"][1] != "0/1" and time.monotonic() < deadline:
        time.sleep(0.3)
    r = netlab_cli("get", "pods", "--lab", lab.name, check=True)
    assert "pod brief: not ready since the last up" in r.stderr, r.stderr
    r = lab.up(READINESS)
    assert "pod default/brief: not ready (see netlab get pods)" in r.changes, r.changes
    ep = netlab_cli("get", "ep", "web", "--lab", lab.name, check=True).stdout
    assert str(lab.pod("brief").ip) not in ep and str(good.ip) in ep, ep
    # a real client through the ClusterIP only ever reaches the healthy pod
    assert _ask_many(lab, cip) == [good.name] * 20
    # the crashed container was restarted by that up and ended again: CrashLoopBackOff
    rows = _pods(lab)
    assert rows[crash.name][1:4] == ["0/1", "CrashLoopBackOff", "1"], rows
    cs = _pod_json(lab)[crash.name]["status"]["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 3


RESTARTS = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: a}]
dns: {replicas: 0}   # (no DNS pods to wait for: the restarts counted are the two ups' own)
---
apiVersion: v1
kind: Pod
metadata: {name: never}
spec:
  restartPolicy: Never
  containers: [{name: job, command: [sh, -c, "exit 0"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: never-failed}
spec:
  restartPolicy: Never
  containers: [{name: job, command: [sh, -c, "exit 4"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: onfailure-ok}
spec:
  restartPolicy: OnFailure
  containers: [{name: job, command: [sh, -c, "exit 0"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: onfailure-failed}
spec:
  restartPolicy: OnFailure
  containers: [{name: job, command: [sh, -c, "exit 4"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: always}
spec:
  containers: [{name: job, command: [sh, -c, "exit 0"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: half, labels: {app: half}}
spec:
  containers:
  - name: web
    command: [python3, -m, http.server, "80"]
    ports: [{containerPort: 80}, {containerPort: 81}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: c, command: [sleep, "1000"]}]
---
apiVersion: v1
kind: Service
metadata: {name: strict}
spec: {selector: {app: half}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: published}
spec: {selector: {app: half}, publishNotReadyAddresses: true, ports: [{port: 80}]}
"""


def test_restart_policy_and_publish_not_ready_addresses(lab):
    """`up` restarted a Completed container even with restartPolicy Never, and publishNotReadyAddresses
    was skipped in silence: a container that ended is restarted as its pod's restartPolicy says, and a
    Service that publishes pods that are not ready sends traffic to them (the other one does not)."""
    lab.up(RESTARTS)
    lab.up(RESTARTS)  # the second up finds every job ended
    rows = _pods(lab)
    restarts = {name: rows[name][3] for name in ("never", "never-failed", "onfailure-ok", "onfailure-failed",
                                                  "always")}
    assert restarts == {"never": "0", "never-failed": "0", "onfailure-ok": "0", "onfailure-failed": "1",
                        "always": "1"}, rows
    assert rows["never"][2] == "Completed" and rows["never-failed"][2] == "Error", rows
    # half listens on 80 but not on its containerPort 81: not ready
    assert rows["half"][1] == "0/1", rows
    by = {s.name: s.cluster_ip for s in lab.cluster.services}
    deadline = time.monotonic() + 20  # python's http.server may take a few seconds to listen

    def ask(svc: str) -> subprocess.CompletedProcess:
        return lab.pod_exec("client", ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                                       f"http://{by[svc]}/"])
    r = ask("published")
    while r.stdout != "200" and time.monotonic() < deadline:
        time.sleep(0.5)
        r = ask("published")
    assert r.stdout == "200", (r.stdout, r.stderr)
    r = ask("strict")  # the same pod, not published while it is not ready: refused
    assert r.returncode != 0 and r.stdout == "000", (r.stdout, r.stderr)


def test_render_without_a_file_renders_the_lab_from_its_own_scenario(lab, tmp_path):
    """`render --lab L --node N` with no file rendered the built-in demo (and refused N, a node of L);
    it must render what `up` programs into L: its own scenario, with its own addresses."""
    eco = _write(tmp_path, "eco.yaml", ECO + "---\napiVersion: v1\nkind: Service\nmetadata: {name: shop}\n"
                 "spec: {selector: {app: shop}, ports: [{port: 80, targetPort: 8080}]}\n")
    r = netlab_cli("up", eco, "--lab", lab.name)
    assert r.returncode == 0, r.stderr
    r = netlab_cli("render", "--lab", lab.name, "--node", "eco-a")
    assert r.returncode == 0, r.stderr
    st = state.load(lab.name)
    cip = st["services"]["default/shop"]["clusterIP"]
    shop_ips = [p["ip"] for k, p in st["pods"].items() if k.startswith("default/shop-")]
    assert f"-d {cip}/32" in r.stdout, r.stdout
    for ip in shop_ips:
        assert f"--to-destination {ip}:8080" in r.stdout, r.stdout
    # the same as rendering the file for that lab
    assert r.stdout == netlab_cli("render", eco, "--lab", lab.name, "--node", "eco-a", check=True).stdout
    # without root the state cannot be read: say so, and how
    r = netlab_cli("render", "--lab", lab.name, "--node", "eco-a", user=nobody_uid())
    assert r.returncode == 2 and r.stdout == "", r
    assert f"only root can read: run sudo netlab render --lab {lab.name}" in r.stderr, r.stderr
