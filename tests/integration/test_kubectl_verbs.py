"""kubectl's verbs on a real, live lab (its control loop runs the controllers and the dataplane):
apply, scale, set image, rollout status/history/undo, delete, drain, and bad input that changes
nothing. Pods are checked where they live: their network namespaces (`ip netns list`) and the
answers of their servers through the Service (curl from a node)."""
from __future__ import annotations

import json
import subprocess
import time

from .conftest import kubectl, netlab_cli, pods_table, until  # noqa: F401

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes:
- {role: worker, name: n1}
- {role: worker, name: n2}
"""

WEB = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def netlab_argv() -> list[str]:
    import os
    import sys
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "netlab"]


def pod_netns(lab) -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    prefix = f"nl.{lab.name}.pod.default."
    return {line.split()[0][len(prefix):] for line in out.splitlines() if line.startswith(prefix)}


def store_obj(lab, kind: str, name: str) -> dict:
    return json.loads(kubectl(lab, "get", kind, name, "-o", "json").stdout)


def hashes(lab) -> set[str]:
    """pod-template-hash of the pods that run (get pods --show-labels)."""
    out = kubectl(lab, "get", "pods", "-l", "app=web", "--show-labels").stdout.splitlines()[1:]
    return {lb.split("pod-template-hash=")[1].split(",")[0] for lb in (x.split()[-1] for x in out)
            if "pod-template-hash=" in lb}


def served_by(lab, n: int = 6) -> set[str]:
    """The pods that answer /hostname through the Service's ClusterIP: n new connections from node n1."""
    ip = json.loads(kubectl(lab, "get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
    loop = f"for i in $(seq {n}); do curl -sS --max-time 3 http://{ip}/hostname || exit 1; echo; done"
    r = netlab_cli("exec", "--node", "n1", "--lab", lab.name, "--", "sh", "-c", loop)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_apply_scale_set_image_rollout_undo_delete(lab, tmp_path):
    lab.up(CLUSTER)
    f = tmp_path / "web.yaml"
    f.write_text(WEB)
    r = kubectl(lab, "apply", "-f", str(f))
    assert r.stdout.splitlines() == ["deployment.apps/web created", "service/web created"]
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0

    # scale: 5/5, five pods Running, five namespaces
    assert kubectl(lab, "scale", "deploy/web", "--replicas", "5").stdout == "deployment.apps/web scaled\n"
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    row = kubectl(lab, "get", "deploy", "web").stdout.splitlines()[1].split()
    assert row[:4] == ["web", "5/5", "5", "5"], row
    pods = until("5 pods Running", lambda: (t := pods_table(lab.name)) and len(t) == 5
                 and all(c[2] == "Running" for c in t.values()) and t)
    assert set(pods) == pod_netns(lab)

    # past what this machine holds: scale and apply refuse with one line, exit 2, nothing written or built
    rev = store_obj(lab, "deploy", "web")["metadata"]["resourceVersion"]
    r = kubectl(lab, "scale", "deploy/web", "--replicas", "10000000", check=False)
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr.startswith(f"error: deployment.apps/web: 9999995 more pods bring lab {lab.name} to ")
    assert "but this machine holds at most" in r.stderr and len(r.stderr.splitlines()) == 1
    big = tmp_path / "big.yaml"
    big.write_text(WEB.split("---")[0].replace("replicas: 2", "replicas: 10000000").replace("name: web, labels",
                                                                                           "name: big, labels"))
    r = kubectl(lab, "apply", "-f", str(big), check=False)
    assert r.returncode == 2 and r.stderr.startswith("error: Deployment default/big: 10000000 more pods"), r
    assert kubectl(lab, "get", "deploy", "big", check=False).returncode == 1
    assert store_obj(lab, "deploy", "web")["metadata"]["resourceVersion"] == rev
    assert len(pods_table(lab.name)) == 5 and set(pods) == pod_netns(lab)
    v1 = hashes(lab)
    assert len(v1) == 1 and served_by(lab) <= set(pods)

    # set image: a rollout to a second ReplicaSet, two revisions
    r = kubectl(lab, "set", "image", "deploy/web", "web=registry.k8s.io/e2e-test-images/agnhost:2.54")
    assert r.stdout == "deployment.apps/web image updated\n"
    r = kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "90s")
    assert r.stdout.splitlines()[-1] == 'deployment "web" successfully rolled out'
    hist = kubectl(lab, "rollout", "history", "deploy/web").stdout.split("\n")
    assert [x.split()[0] for x in hist[2:] if x.strip()] == ["1", "2"], hist
    v2 = until("only v2 pods", lambda: (h := hashes(lab)) and h != v1 and len(h) == 1 and h)
    assert all(p.startswith(f"web-{next(iter(v2))}-") for p in served_by(lab))

    # undo: back to revision 1's template, the pods' hash is v1's again
    assert kubectl(lab, "rollout", "undo", "deploy/web").stdout == "deployment.apps/web rolled back\n"
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "90s").returncode == 0
    until("v1 pods again", lambda: hashes(lab) == v1)
    assert all(p.startswith(f"web-{next(iter(v1))}-") for p in served_by(lab))
    hist = kubectl(lab, "rollout", "history", "deploy/web").stdout.split("\n")
    assert [x.split()[0] for x in hist[2:] if x.strip()] == ["2", "3"], hist

    # bad input: one line, kubectl's exit status, nothing changed
    before_d, before_s = store_obj(lab, "deploy", "web"), kubectl(lab, "get", "svc", "web", "-o", "json").stdout
    bad = {
        "surge": WEB.replace("  replicas: 2\n", "  replicas: 2\n  strategy: {rollingUpdate: {maxSurge: 0, "
                             "maxUnavailable: 0}}\n"),
        "negative": WEB.replace("replicas: 2", "replicas: -1"),
        "probe": WEB.replace("args: [netexec, --http-port=8080]",
                             "args: [netexec, --http-port=8080]\n        livenessProbe: {httpGot: {port: 8080}}"),
    }
    for case, text in bad.items():
        p = tmp_path / f"{case}.yaml"
        p.write_text(text)
        r = kubectl(lab, "apply", "-f", str(p), check=False)
        errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
        assert r.returncode == 2 and len(errors) == 1 and f"{case}.yaml" in errors[0], (case, r.stderr)
    assert "may not be 0 when `maxSurge` is 0" in kubectl(lab, "apply", "-f", str(tmp_path / "surge.yaml"),
                                                            check=False).stderr
    r = kubectl(lab, "rollout", "undo", "deploy/web", "--to-revision", "9", check=False)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "error: unable to find specified revision 9 in history of deployment/web; revisions are: 2, 3 "
        "(see rollout history)"]
    r = kubectl(lab, "scale", "svc/web", "--replicas", "3", check=False)
    assert r.returncode == 1 and r.stderr.startswith("error: cannot scale service/web")
    after_d = store_obj(lab, "deploy", "web")
    assert after_d["metadata"]["resourceVersion"] == before_d["metadata"]["resourceVersion"]
    assert after_d["spec"] == before_d["spec"]
    assert kubectl(lab, "get", "svc", "web", "-o", "json").stdout == before_s

    # delete: the pods and their namespaces go (well before the loop's 30 s periodic resync)
    names = set(pods_table(lab.name))
    assert kubectl(lab, "delete", "deploy", "web").stdout == 'deployment.apps "web" deleted\n'
    until("the pods' namespaces gone", lambda: not (pod_netns(lab) & names), timeout=15)
    r = kubectl(lab, "get", "deploy", "web", check=False)
    assert r.returncode == 1 and r.stderr.strip() == 'Error from server (NotFound): deployments.apps "web" not found'
    r = kubectl(lab, "delete", "deploy", "web", check=False)
    assert r.returncode == 1 and r.stderr.strip() == 'Error from server (NotFound): deployments.apps "web" not found'


def test_drain_moves_pods_and_uncordon_brings_the_node_back(lab, tmp_path):
    lab.up(CLUSTER)
    f = tmp_path / "web.yaml"
    f.write_text(WEB.replace("replicas: 2", "replicas: 4"))
    kubectl(lab, "apply", "-f", str(f))
    r = kubectl(lab, "wait", "--for=condition=Available", "deploy/web", "--timeout=60s")
    assert r.stdout == "deployment.apps/web condition met\n"
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    wide = kubectl(lab, "get", "pods", "-o", "wide").stdout.splitlines()[1:]
    on_n1 = {x.split()[0] for x in wide if x.split()[6] == "n1"}
    assert on_n1, wide  # the scheduler spread them
    r = kubectl(lab, "drain", "n1", "--timeout", "60s")
    out = r.stdout.splitlines()
    assert out[0] == "node/n1 cordoned" and out[-1] == "node/n1 drained"
    # (and the cluster DNS's pod there, kube-system's, as kubectl drain evicts it too)
    assert {x.split("/")[1].split()[0] for x in out if x.startswith("pod/") and not x.startswith("pod/coredns-")} \
        == on_n1
    nodes = {x.split()[0]: x.split()[1] for x in kubectl(lab, "get", "nodes").stdout.splitlines()[1:]}
    assert nodes == {"n1": "Ready,SchedulingDisabled", "n2": "Ready"}
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    wide = kubectl(lab, "get", "pods", "-o", "wide").stdout.splitlines()[1:]
    assert len(wide) == 4 and {x.split()[6] for x in wide} == {"n2"}, wide
    assert not (pod_netns(lab) & on_n1)
    assert "Unschedulable:      true" in kubectl(lab, "describe", "node", "n1").stdout

    # no node takes new pods: a scale-up leaves one Pending (get pods, and get -w shows it start later)
    kubectl(lab, "cordon", "n2")
    watch = subprocess.Popen([*netlab_argv(), "get", "pods", "-w", "-l", "app=web", "--lab", lab.name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        kubectl(lab, "scale", "deploy/web", "--replicas", "5")
        pending = until("a Pending pod", lambda: [r for r in pods_table(lab.name).values() if r[2] == "Pending"])
        assert len(pending) == 1 and pending[0][1] == "0/1", pending
        assert kubectl(lab, "uncordon", "n1").stdout == "node/n1 uncordoned\n"
        assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    finally:
        time.sleep(1)
        watch.terminate()
        out, _ = watch.communicate(timeout=10)
    assert watch.returncode == 0, out  # SIGTERM ends the watch quietly
    rows = [x.split() for x in out.splitlines()]
    assert rows[0][:3] == ["NAME", "READY", "STATUS"] and len(rows) > 6
    new = pending[0][0]
    assert [r[2] for r in rows if r[0] == new][-1] == "Running" and [r for r in rows if r[0] == new][0][2] == "Pending"
    kubectl(lab, "uncordon", "n2")
    nodes = {x.split()[0]: x.split()[1] for x in kubectl(lab, "get", "nodes").stdout.splitlines()[1:]}
    assert nodes == {"n1": "Ready", "n2": "Ready"}

    # a rollout that cannot progress (no node has the label it asks for): rollout status exits 1
    stuck = WEB.split("---\n")[0].replace("name: web, labels", "name: stuck, labels").replace("app: web", "app: stuck")
    stuck = stuck.replace("  replicas: 2\n", "  replicas: 1\n  progressDeadlineSeconds: 2\n")
    stuck = stuck.replace("    spec:\n      containers", "    spec:\n      nodeSelector: {disk: ssd}\n      containers")
    (tmp_path / "stuck.yaml").write_text(stuck)
    kubectl(lab, "apply", "-f", str(tmp_path / "stuck.yaml"))
    r = kubectl(lab, "rollout", "status", "deploy/stuck", "--timeout", "60s", check=False)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == 'error: deployment "stuck" exceeded its progress deadline'
    assert "FailedScheduling" in kubectl(lab, "get", "events").stdout


def test_delete_f_of_a_file_with_a_namespace_and_its_objects(lab, tmp_path):
    """kubectl delete -f of a file that declares a Namespace and then objects in it: every object is
    reported deleted (the Namespace takes them with it), exit 0; the pods' namespaces are gone from the
    kernel; an object the file names that never existed is still NotFound (exit 1)."""
    lab.up(CLUSTER)
    text = ("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
            + WEB.replace("metadata: {name: web", "metadata: {namespace: shop, name: web"))
    f = tmp_path / "shop.yaml"
    f.write_text(text)
    r = kubectl(lab, "apply", "-f", str(f))
    assert r.stdout.splitlines() == ["namespace/shop created", "deployment.apps/web created", "service/web created"]
    assert kubectl(lab, "rollout", "status", "deploy/web", "-n", "shop", "--timeout", "60s").returncode == 0

    def shop_netns() -> set[str]:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        return {line.split()[0] for line in out.splitlines() if line.startswith(f"nl.{lab.name}.pod.shop.")}
    assert len(shop_netns()) == 2
    r = kubectl(lab, "delete", "-f", str(f), "--timeout", "60s", check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ['namespace "shop" deleted', 'deployment.apps "web" deleted',
                                     'service "web" deleted'], r.stdout
    assert kubectl(lab, "get", "ns", "shop", check=False).returncode == 1
    until("the shop pods' network namespaces are gone", lambda: not shop_netns())
    r = kubectl(lab, "delete", "-f", str(f), check=False)   # nothing left: NotFound, as kubectl says it
    assert r.returncode == 1 and 'namespaces "shop" not found' in r.stderr, r


def node_answers(lab, from_node: str, url: str) -> str | None:
    """The body of one request from a node (curl), or None when nothing answered within 3 s."""
    r = netlab_cli("exec", "--node", from_node, "--lab", lab.name, "--", "curl", "-sS", "--max-time", "3", url)
    return r.stdout.strip() if r.returncode == 0 else None


def web_up(lab, tmp_path) -> set[str]:
    """The lab up with WEB applied and rolled out: its two pods, once Running."""
    lab.up(CLUSTER)
    f = tmp_path / "web.yaml"
    f.write_text(WEB)
    kubectl(lab, "apply", "-f", str(f))
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    return set(until("2 pods Running", lambda: (t := pods_table(lab.name)) and len(t) == 2
                     and all(c[2] == "Running" for c in t.values()) and t))


def node_ip(lab, node: str) -> str:
    return next(a["address"] for a in store_obj(lab, "node", node)["status"]["addresses"] if a["type"] == "InternalIP")


def test_patch_strategic_merge_and_json_on_a_live_lab(lab, tmp_path):
    pods = web_up(lab, tmp_path)
    n1 = node_ip(lab, "n1")

    # the tutorials' patch: the Service becomes a NodePort; a node port is allocated and answers from the pods
    r = kubectl(lab, "patch", "svc", "web", "-p", '{"spec": {"type": "NodePort"}}')
    assert r.stdout == "service/web patched\n", r
    port = store_obj(lab, "svc", "web")["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    got = until("the node port answering", lambda: node_answers(lab, "n2", f"http://{n1}:{port}/hostname"))
    assert got in pods, (got, pods)

    # a strategic merge patch of the pod template: the container (found by its name) gets an env var and keeps
    # its image and args; a rollout to new pods follows, and they see the variable
    v1 = hashes(lab)
    r = kubectl(lab, "patch", "deploy/web", "-p",
                '{"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "COLOR", '
                '"value": "blue"}]}]}}}}')
    assert r.stdout == "deployment.apps/web patched\n", r
    c = store_obj(lab, "deploy", "web")["spec"]["template"]["spec"]["containers"]
    assert len(c) == 1 and c[0]["env"] == [{"name": "COLOR", "value": "blue"}]
    assert c[0]["args"] == ["netexec", "--http-port=8080"] and c[0]["image"].endswith("agnhost:2.53")
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "90s").returncode == 0
    until("only new pods", lambda: (h := hashes(lab)) and h.isdisjoint(v1) and len(h) == 1)
    new = next(iter(until("2 new pods", lambda: (t := pods_table(lab.name)) and len(t) == 2 and not set(t) & pods
                          and all(x[2] == "Running" for x in t.values()) and t)))
    r = netlab_cli("exec", "--lab", lab.name, new, "--", "sh", "-c", "echo $COLOR")
    assert r.stdout.strip() == "blue", r

    # a JSON patch (RFC 6902): 3 replicas
    r = kubectl(lab, "patch", "deploy", "web", "--type", "json", "-p",
                '[{"op": "replace", "path": "/spec/replicas", "value": 3}]')
    assert r.stdout == "deployment.apps/web patched\n", r
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    pods = set(until("3 pods Running", lambda: (t := pods_table(lab.name)) and len(t) == 3
                     and all(x[2] == "Running" for x in t.values()) and t))
    assert pods == pod_netns(lab)

    # a pod's label taken off (JSON merge patch, null removes): it leaves the Service and its ReplicaSet, which
    # makes another; the pod itself runs on
    out = sorted(pods)[0]
    r = kubectl(lab, "patch", f"pod/{out}", "--type", "merge", "-p", '{"metadata": {"labels": {"app": null}}}')
    assert r.stdout == f"pod/{out} patched\n", r
    until("3 labelled pods again", lambda: len(kubectl(lab, "get", "pods", "-l", "app=web").stdout.splitlines()) == 4)
    assert until("the Service without the unlabelled pod",
                 lambda: (s := served_by(lab, 9)) and out not in s and s)
    assert out in pod_netns(lab)
    # labelled back: the ReplicaSet adopts it again, and deletes one of its four (namespace and all)
    assert kubectl(lab, "label", "pod", out, "app=web").stdout == f"pod/{out} labeled\n"
    until("3 pods again", lambda: len(pod_netns(lab)) == 3, timeout=60)
    assert len(kubectl(lab, "get", "pods", "-l", "app=web").stdout.splitlines()) == 4

    # bad patches: one line, exit 2 (1 for a pod's spec, as the API server refuses it), nothing written
    before = store_obj(lab, "deploy", "web")
    for args, code, says in [
        (("-p", '{"spec": {"replica": 3}}'), 2, "unknown field spec.replica; did you mean replicas?"),
        (("-p", '{"spec": {"replicas": "three"}}'), 2, "spec.replicas must be an integer"),
        (("-p", '{"spec": {"replicas": 1, "replicas": 2}}'), 2, "duplicate key spec.replicas"),
        (("-p", '{"status": {"replicas": 9}}'), 2, "status"),
        (("--type", "json", "-p", '[{"op": "test", "path": "/spec/replicas", "value": 7}]'), 2, "testing value failed"),
        (("-p", '{"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}'), 2, "merge key 'name'"),
    ]:
        r = kubectl(lab, "patch", "deploy/web", *args, check=False)
        assert r.returncode == code and r.stdout == "" and len(r.stderr.splitlines()) == 1, (args, r)
        assert says in r.stderr, (args, r.stderr)
    r = kubectl(lab, "patch", f"pod/{out}", "-p", '{"spec": {"containers": [{"name": "web", "image": "x"}]}}',
                check=False)
    assert r.returncode == 1 and "Forbidden: pod updates may not change" in r.stderr, r
    assert store_obj(lab, "deploy", "web")["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    # back to ClusterIP: the node port is released (dropped with the type, as the API server drops it) and no
    # longer answers
    r = kubectl(lab, "patch", "svc", "web", "--type", "merge", "-p", '{"spec": {"type": "ClusterIP"}}')
    assert r.stdout == "service/web patched\n", r
    assert "nodePort" not in store_obj(lab, "svc", "web")["spec"]["ports"][0]
    until("the node port closed", lambda: node_answers(lab, "n2", f"http://{n1}:{port}/hostname") is None)
    assert served_by(lab, 3)


def test_edit_in_an_editor_makes_the_service_a_node_port(lab, tmp_path, monkeypatch):
    pods = web_up(lab, tmp_path)
    # the editor a user would run, scripted: it changes one line of the file it is given and saves
    ed = tmp_path / "ed.sh"
    ed.write_text("#!/bin/sh\ngrep -q '^  type: NodePort$' \"$1\" || sed -i '/^  type: /d; s/^spec:$/spec:\\n  type: NodePort/' "
                  "\"$1\"\n")
    ed.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(ed))
    r = kubectl(lab, "edit", "svc", "web")
    assert r.stdout == "service/web edited\n", r
    port = store_obj(lab, "svc", "web")["spec"]["ports"][0]["nodePort"]
    n1 = node_ip(lab, "n1")
    got = until("the node port answering", lambda: node_answers(lab, "n2", f"http://{n1}:{port}/hostname"))
    assert got in pods, (got, pods)
    # run again: the line is already NodePort, nothing changes
    assert kubectl(lab, "edit", "svc", "web").stdout == "Edit cancelled, no changes made.\n"


def test_replace_a_service_from_get_o_yaml_and_a_deployment_with_force(lab, tmp_path):
    pods = web_up(lab, tmp_path)
    # the round trip users make: get -o yaml, edit the file, replace -f it (status and resourceVersion included)
    svc = store_obj(lab, "svc", "web")
    svc["spec"]["type"] = "NodePort"
    svc["spec"]["ports"][0]["nodePort"] = 30080
    svc["spec"]["publishNotReadyAddresses"] = True   # (a field the lab's model does not render)
    f = tmp_path / "svc.json"
    f.write_text(json.dumps(svc))
    r = kubectl(lab, "replace", "-f", str(f))
    assert r.returncode == 0 and r.stdout == "service/web replaced\n", r
    assert store_obj(lab, "svc", "web")["spec"]["publishNotReadyAddresses"] is True   # get -o json shows it
    n1 = node_ip(lab, "n1")
    got = until("node port 30080 answering", lambda: node_answers(lab, "n2", f"http://{n1}:30080/hostname"))
    assert got in pods, (got, pods)
    # the same file again: its resourceVersion is stale now, so the API server's Conflict, and nothing changes
    before = store_obj(lab, "svc", "web")["metadata"]["resourceVersion"]
    r = kubectl(lab, "replace", "-f", str(f), check=False)
    assert r.returncode == 1 and r.stderr.startswith("Error from server (Conflict)"), r
    assert store_obj(lab, "svc", "web")["metadata"]["resourceVersion"] == before

    # --force: the Deployment is deleted and made again from the file, with new pods that see the new variable
    d = tmp_path / "web.yaml"
    args = "args: [netexec, --http-port=8080]"
    d.write_text(WEB.split("---\n")[0].replace(args, args + "\n        env: [{name: COLOR, value: green}]"))
    r = kubectl(lab, "replace", "--force", "-f", str(d))
    assert r.returncode == 0 and r.stdout == 'deployment.apps "web" deleted\ndeployment.apps/web replaced\n', r
    new = set(until("2 new pods Running", lambda: (t := pods_table(lab.name)) and len(t) == 2 and not set(t) & pods
                    and all(c[2] == "Running" for c in t.values()) and t))
    for p in new:
        assert netlab_cli("exec", "--lab", lab.name, p, "--", "sh", "-c", "echo $COLOR").stdout.strip() == "green"
    assert new == pod_netns(lab)   # the old pods' namespaces are gone
    got = until("the node port answering from a new pod", lambda: (a := node_answers(lab, "n2",
                                                                                    f"http://{n1}:30080/hostname"))
                in new and a)
    assert got in new


def test_diff_and_a_dry_run_preview_an_apply_without_changing_the_lab(lab, tmp_path):
    pods = web_up(lab, tmp_path)
    rv = store_obj(lab, "deploy", "web")["metadata"]["resourceVersion"]
    f = tmp_path / "web3.yaml"
    f.write_text(WEB.replace("replicas: 2", "replicas: 3"))
    r = kubectl(lab, "diff", "-f", str(f), check=False)
    assert r.returncode == 1 and "-  replicas: 2\n+  replicas: 3\n" in r.stdout, r
    assert [x.rsplit("/", 1)[1] for x in r.stdout.splitlines() if x.startswith("diff -u -N")] == \
        ["apps.v1.Deployment.default.web"], r.stdout
    r = kubectl(lab, "apply", "--dry-run=server", "-f", str(f))
    assert r.stdout == "deployment.apps/web configured (server dry run)\nservice/web unchanged (server dry run)\n", r
    time.sleep(2)   # (a loop that had been told to scale would have made the pod by now)
    assert store_obj(lab, "deploy", "web")["metadata"]["resourceVersion"] == rv
    assert set(pods_table(lab.name)) == pods == pod_netns(lab)
    kubectl(lab, "apply", "-f", str(f))
    until("3 pods", lambda: len(pod_netns(lab)) == 3)
    r = kubectl(lab, "diff", "-f", str(f), check=False)
    assert r.returncode == 0 and r.stdout == "", r


def test_create_f_makes_a_deployment_and_its_service_once(lab, tmp_path):
    lab.up(CLUSTER)
    f = tmp_path / "web.yaml"
    f.write_text(WEB)
    r = kubectl(lab, "create", "-f", str(f))
    assert r.stdout == "deployment.apps/web created\nservice/web created\n", r
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    pods = set(until("2 pods Running", lambda: (t := pods_table(lab.name)) and len(t) == 2
                     and all(c[2] == "Running" for c in t.values()) and t))
    assert until("both pods behind the Service", lambda: served_by(lab, 12) == pods)
    r = kubectl(lab, "create", "-f", str(f), check=False)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.splitlines() == [
        f'Error from server (AlreadyExists): error when creating "{f}": deployments.apps "web" already exists',
        f'Error from server (AlreadyExists): error when creating "{f}": services "web" already exists'], r
    assert set(pods_table(lab.name)) == pods


def test_get_of_a_name_that_does_not_exist_is_kubectls_not_found(lab):
    """`get svc|pod|node|ep NAME` of a missing name: kubectl's line and exit status 1, as every store kind's get;
    a lab that does not exist stays netlab's own error (exit 2)."""
    lab.up(CLUSTER)
    for kind, plural in (("svc", "services"), ("pod", "pods"), ("node", "nodes"), ("ep", "endpoints"),
                         ("deploy", "deployments.apps")):
        r = kubectl(lab, "get", kind, "nope", check=False)
        assert (r.returncode, r.stdout, r.stderr) == (
            1, "", f'Error from server (NotFound): {plural} "nope" not found\n'), (kind, r)
    r = kubectl(lab, "get", "svc", "kubernetes", check=False)
    assert r.returncode == 0 and r.stdout.splitlines()[1].split()[0] == "kubernetes", r
    # some found, some not: kubectl shows what it found, then a NotFound line for each of the others, exit 1
    r = kubectl(lab, "get", "svc", "nope", "kubernetes", "gone", check=False)
    assert r.returncode == 1 and [ln.split()[0] for ln in r.stdout.splitlines()] == ["NAME", "kubernetes"], r
    assert r.stderr == 'Error from server (NotFound): services "nope" not found\n' \
                       'Error from server (NotFound): services "gone" not found\n', r
    r = kubectl(lab, "get", "deploy,svc", "kubernetes", "-o", "name", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "service/kubernetes\n", 'Error from server (NotFound): deployments.apps "kubernetes" not found\n'), r
    r = kubectl(lab, "get", "node", "nope", "-o", "json", check=False)
    assert (r.returncode, r.stdout) == (1, ""), r
    r = netlab_cli("get", "labs", "nope", check=False)
    assert r.returncode == 2 and r.stderr.strip() == 'error: lab "nope" not found', r


def test_get_pod_json_and_yaml_is_the_stored_pod(lab, tmp_path):
    """`get pod -o json|yaml` prints the Pod as the store holds it (as the API server returns it): its
    resourceVersion, the spec as applied (fields netlab's model never renders), the status its kubelet wrote;
    netlab adds the annotation naming its network namespace. A pod no node can take is shown too, Pending."""
    lab.up(CLUSTER + "---\n" + WEB.replace("containers:", "terminationGracePeriodSeconds: 7\n      containers:"))
    until("2 pods Running", lambda: sum(r[2] == "Running" for r in pods_table(lab.name).values()) == 2, timeout=60)
    pods = json.loads(kubectl(lab, "get", "pods", "-o", "json").stdout)["items"]
    assert len(pods) == 2, pods
    p = pods[0]
    name = p["metadata"]["name"]
    stored = store_obj(lab, "pod", name)
    assert stored["metadata"]["resourceVersion"] == p["metadata"]["resourceVersion"] != ""
    assert p["spec"]["terminationGracePeriodSeconds"] == 7 and p["spec"]["containers"][0]["args"] == [
        "netexec", "--http-port=8080"], p["spec"]
    assert p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" and p["metadata"]["ownerReferences"][0]["uid"]
    netns = p["metadata"]["annotations"]["netlab.dev/netns"]
    assert netns == f"nl.{lab.name}.pod.default.{name}" and name in pod_netns(lab)
    assert p["status"]["phase"] == "Running" and p["status"]["podIP"].startswith("10.244.")
    assert {c["type"]: c["status"] for c in p["status"]["conditions"]}["Ready"] == "True"
    y = kubectl(lab, "get", "pod", name, "-o", "yaml").stdout
    assert f"resourceVersion: '{p['metadata']['resourceVersion']}'" in y and "terminationGracePeriodSeconds: 7" in y, y
    # no node matches its nodeSelector: Pending, unscheduled, and listed all the same
    f = tmp_path / "nowhere.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: nowhere}\nspec:\n  nodeSelector: {zone: mars}\n"
                 "  containers: [{name: c, image: registry.k8s.io/pause:3.9}]\n")
    kubectl(lab, "apply", "-f", str(f))
    until("nowhere unschedulable", lambda: store_obj(lab, "pod", "nowhere")["status"].get("conditions"), timeout=30)
    pending = store_obj(lab, "pod", "nowhere")
    assert pending["status"]["phase"] == "Pending" and "nodeName" not in pending["spec"], pending
    assert "netlab.dev/netns" not in (pending["metadata"].get("annotations") or {}), pending
    names = [i["metadata"]["name"] for i in json.loads(kubectl(lab, "get", "pods", "-o", "json").stdout)["items"]]
    assert names == sorted(names) and "nowhere" in names and len(names) == 3, names


def test_get_all_shows_each_kind_with_its_kind_in_the_name(lab):
    """`get all` as kubectl prints it: pods, services, deployments, replicasets (the kinds with objects, in
    kubectl's order), each table's names with their kind, a blank line between tables; `-o name` every name;
    -o json one List; a namespace with nothing says so once."""
    lab.up(CLUSTER + "---\n" + WEB)
    until("2 pods Running", lambda: sum(r[2] == "Running" for r in pods_table(lab.name).values()) == 2, timeout=60)
    out = kubectl(lab, "get", "all").stdout
    tables = [t.splitlines() for t in out.strip().split("\n\n")]
    assert [t[0].split()[:2] for t in tables] == [["NAME", "READY"], ["NAME", "TYPE"], ["NAME", "READY"],
                                                  ["NAME", "DESIRED"]], out
    assert all(r.split()[0].startswith("pod/web-") and r.split()[2] == "Running" for r in tables[0][1:]), out
    assert [r.split()[0] for r in tables[1][1:]] == ["service/kubernetes", "service/web"], out
    assert tables[2][1].split()[:2] == ["deployment.apps/web", "2/2"], out
    assert tables[3][1].split()[0].startswith("replicaset.apps/web-") and len(tables[3]) == 2, out
    names = kubectl(lab, "get", "all", "-o", "name").stdout.split()
    assert len(names) == 6 and {n.split("/")[0] for n in names} == {"pod", "service", "deployment.apps",
                                                                    "replicaset.apps"}, names
    items = json.loads(kubectl(lab, "get", "all", "-o", "json").stdout)["items"]
    assert [i["kind"] for i in items] == ["Pod", "Pod", "Service", "Service", "Deployment", "ReplicaSet"], items
    r = kubectl(lab, "get", "all", "-n", "nowhere", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "No resources found in nowhere namespace.\n"), r
    r = kubectl(lab, "get", "svc,po", "web", check=False)   # kubectl: service/web's row, then pods "web" not found
    assert r.returncode == 1 and r.stdout.splitlines()[1].split()[0] == "service/web", r
    assert r.stderr == 'Error from server (NotFound): pods "web" not found\n', r


def test_logs_exec_and_debug_of_a_deployment_or_service_act_on_one_of_its_pods(lab):
    """kubectl's TYPE/NAME for a one-pod verb: `logs deploy/web` says which of the pods it took (stderr) and
    prints that pod's log; `exec svc/web` runs in one of the Service's pods; an object without pods, or of a
    kind without them, is one line and exit 2."""
    lab.up(CLUSTER + "---\n" + WEB)
    until("2 pods Running", lambda: sum(r[2] == "Running" for r in pods_table(lab.name).values()) == 2, timeout=60)
    pods = {p for p in pods_table(lab.name) if p.startswith("web-")}
    r = kubectl(lab, "logs", "deploy/web")
    chosen = r.stderr.strip().removeprefix("Found 2 pods, using pod/")
    assert chosen in pods and r.stderr == f"Found 2 pods, using pod/{chosen}\n", r
    assert f"(pod {chosen}, netns /run/netns/nl.{lab.name}.pod.default.{chosen})" in r.stdout, r.stdout
    r = netlab_cli("exec", "svc/web", "--lab", lab.name, "--", "hostname")
    assert r.stdout.strip() in pods, r
    r = netlab_cli("debug", "deployment.apps/web", "--lab", lab.name, "--", "cat", "/etc/hosts")
    assert len([p for p in pods if p in r.stdout]) == 1, r   # the pod's own /etc/hosts names it
    for ref, says in (("deploy/nope", 'deployments.apps "nope" not found in namespace default'),
                      ("svc/kubernetes", "cannot attach to service/kubernetes: it has no selector"),
                      ("cm/kube-root-ca.crt", "cannot attach to configmap/kube-root-ca.crt")):
        r = kubectl(lab, "logs", ref, check=False)
        assert r.returncode == 2 and r.stdout == "" and says in r.stderr and len(r.stderr.splitlines()) == 1, r


def test_taint_no_execute_moves_pods_off_a_node_and_its_namespaces_go(lab, tmp_path):
    """`taint node n1 maint:NoExecute` on a live lab: the taint eviction controller evicts n1's pods that do not
    tolerate it (kubectl's TaintManagerEviction events), their ReplicaSet makes them again on n2, their network
    namespaces on n1 are removed, and the Service still answers from the new pods; a pod that tolerates it stays.
    Removing the taint lets the scheduler use n1 again."""
    lab.up(CLUSTER)
    f = tmp_path / "web.yaml"
    stay = ("apiVersion: v1\nkind: Pod\nmetadata: {name: stay}\nspec:\n  nodeName: n1\n  tolerations: "
            "[{key: maint, operator: Exists, effect: NoExecute}]\n  containers:\n  - {name: c, image: "
            "registry.k8s.io/e2e-test-images/agnhost:2.53, args: [netexec, --http-port=8080]}\n")
    f.write_text(WEB.replace("replicas: 2", "replicas: 4") + "---\n" + stay)
    kubectl(lab, "apply", "-f", str(f))
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    wide = kubectl(lab, "get", "pods", "-o", "wide").stdout.splitlines()[1:]
    on_n1 = {x.split()[0] for x in wide if x.split()[6] == "n1" and x.split()[0].startswith("web-")}
    assert on_n1 and on_n1 <= pod_netns(lab), wide
    assert kubectl(lab, "taint", "node", "n1", "maint=now:NoExecute").stdout == "node/n1 tainted\n"
    until("n1's web pods gone", lambda: not (pod_netns(lab) & on_n1), timeout=60)
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    wide = kubectl(lab, "get", "pods", "-o", "wide").stdout.splitlines()[1:]
    where = {x.split()[0]: x.split()[6] for x in wide}
    assert where.pop("stay") == "n1" and len(where) == 4 and set(where.values()) == {"n2"}, wide
    assert "stay" in pod_netns(lab)
    evicted = [ln for ln in kubectl(lab, "get", "events").stdout.splitlines() if "TaintManagerEviction" in ln]
    assert len(evicted) >= len(on_n1), evicted
    svc = store_obj(lab, "svc", "web")["spec"]["clusterIP"]
    answers = {lab.http(("node", "n2"), svc, 80, "/hostname") for _ in range(12)}
    assert answers and answers <= set(where), answers
    assert ["Taints:", "maint=now:NoExecute"] in [ln.split() for ln in kubectl(lab, "describe", "node", "n1").stdout
                                                   .splitlines()]
    assert kubectl(lab, "taint", "node", "n1", "maint-").stdout == "node/n1 untainted\n"
    kubectl(lab, "scale", "deploy/web", "--replicas", "6")
    assert kubectl(lab, "rollout", "status", "deploy/web", "--timeout", "60s").returncode == 0
    wide = kubectl(lab, "get", "pods", "-o", "wide", "-l", "app=web").stdout.splitlines()[1:]
    assert {x.split()[6] for x in wide} == {"n1", "n2"}, wide   # the scheduler spreads onto n1 again
