"""`netlab expose` on a real lab: the Service kubectl expose makes, programmed by the lab's proxy and named
by its DNS, answered by the Deployment's pods: from a pod by name (getent + curl), and from the external
host through the NodePort of each node (curl). Then an existing name is refused and nothing changes."""
from __future__ import annotations

import json
import time

from netlab.store.meta import parse_time

from ..builders import cluster, container, deployment, pod, text
from .conftest import kubectl, netlab_cli, until

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"
SCENARIO = text(cluster(None, nodes=[{"name": "cp", "role": "control-plane"}, {"name": "w1"}]),
                dict(deployment("web", 2, containers=[container("web", [(8080, "http")], image=AGNHOST,
                                                                 args=["netexec", "--http-port=8080"])],
                                tolerations=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
                     metadata={"name": "web", "labels": {"app": "web", "tier": "front"}}),
                pod("client", containers=[container("c", image=AGNHOST, args=["pause"])]))


def test_expose_a_deployment_as_a_nodeport_and_reach_it(lab):
    lab.up(SCENARIO)
    web = {p.name for p in lab.pods("web-")}
    assert len(web) == 2
    time.sleep(1.5)   # (so that a Service stamped with the lab's own time would be seen as older than `before`)
    before = time.time()
    r = kubectl(lab, "expose", "deploy/web", "--port", "80", "--target-port", "http", "--type", "NodePort")
    assert r.stdout.strip() == "service/web exposed", r.stdout + r.stderr
    svc = json.loads(kubectl(lab, "get", "svc", "web", "-o", "json").stdout)
    # kubectl's Service: the Deployment's selector and labels, one port to the named containerPort
    assert svc["spec"]["selector"] == {"app": "web"} and svc["metadata"]["labels"] == {"app": "web", "tier": "front"}
    [port] = svc["spec"]["ports"]
    assert port["port"] == 80 and port["targetPort"] == "http" and 30000 <= port["nodePort"] <= 32767
    assert parse_time(svc["metadata"]["creationTimestamp"]) >= int(before)   # made now, not with the lab
    # from a pod, by the Service's DNS name
    fqdn = "web.default.svc.cluster.local"
    hosts = until("the Service's name resolves",
                  lambda: lab.pod_exec("client", ["getent", "hosts", fqdn]).stdout.split(), timeout=30)
    assert hosts[0] == svc["spec"]["clusterIP"]
    curl = ["curl", "-sS", "--max-time", "3", "http://web/hostname"]
    until("the Service answers the client", lambda: lab.pod_exec("client", curl).returncode == 0, timeout=30)
    got = set()
    for _ in range(20):
        r = lab.pod_exec("client", curl)
        assert r.returncode == 0, r.stderr
        got.add(r.stdout.strip())
    assert got == web, got
    # from the external host, through the node port of every node
    for node in lab.cluster.nodes:
        url = f"http://{node.ip}:{port['nodePort']}/hostname"
        r = until(f"{url} answers", lambda url=url: (lambda r: r if r.returncode == 0 else None)(
            lab.ext_exec(["curl", "-sS", "--max-time", "3", url])), timeout=30)
        assert r.stdout.strip() in web, (url, r.stdout)
    # the name is taken now: kubectl's AlreadyExists, exit 1, the Service as it was
    r = kubectl(lab, "expose", "deploy/web", "--port", "81", check=False)
    assert r.returncode == 1 and 'services "web" already exists' in r.stderr
    again = json.loads(kubectl(lab, "get", "svc", "web", "-o", "json").stdout)
    assert again["spec"]["ports"] == svc["spec"]["ports"]


def test_create_deployment_and_expose_it_as_the_tutorials_do(lab):
    """kubectl's first steps, as written: create deployment (nginx, 2 replicas, port 80), expose it as a
    NodePort with the port taken from the template, curl a node's port from outside."""
    lab.up(text(cluster(None, nodes=[{"name": "cp", "role": "control-plane"}, {"name": "w1"}])))
    r = kubectl(lab, "create", "deployment", "nginx", "--image=nginx:1.25", "--replicas=2", "--port=80")
    assert r.stdout.strip() == "deployment.apps/nginx created", r.stdout + r.stderr
    kubectl(lab, "rollout", "status", "deployment/nginx", "--timeout=60s")
    assert kubectl(lab, "expose", "deployment", "nginx", "--type=NodePort").stdout.strip() == "service/nginx exposed"
    svc = json.loads(kubectl(lab, "get", "svc", "nginx", "-o", "json").stdout)
    [port] = svc["spec"]["ports"]
    assert port["port"] == 80 and port["targetPort"] == 80
    ip = json.loads(kubectl(lab, "get", "nodes", "-o", "json").stdout)["items"][1]["status"]["addresses"][0]["address"]
    url = f"http://{ip}:{port['nodePort']}/"
    r = until(f"{url} answers", lambda: (lambda r: r if r.returncode == 0 else None)(
        lab.ext_exec(["curl", "-sS", "--max-time", "3", url])), timeout=30)
    assert "Welcome to nginx!" in r.stdout
    # kubectl run: a pod and its Service (--expose), reached by name from another pod run the same way
    r = kubectl(lab, "run", "web1", "--image=nginx", "--port=80", "--expose")
    assert r.stdout.split() == ["service/web1", "created", "pod/web1", "created"], r.stdout
    netlab_cli("run", "client", "--image=busybox", "--restart=Never", "--lab", lab.name, "--", "sleep", "3600",
               check=True)
    kubectl(lab, "wait", "--for=condition=Ready", "pod/client", "pod/web1", "--timeout=60s")
    r = until("web1 answers client by name", lambda: (lambda r: r if r.returncode == 0 else None)(
        netlab_cli("exec", "client", "--lab", lab.name, "--", "curl", "-sS", "--max-time", "3", "http://web1/")),
        timeout=30)
    assert "Welcome to nginx!" in r.stdout


def test_manifests_generated_with_dry_run_client_then_applied(lab, tmp_path):
    """The tutorials' other first step: kubectl create deployment ... --dry-run=client -o yaml > file (no lab
    needed), edit, apply -f; expose ... --dry-run=client -o yaml the same way; a node port answers."""
    r = netlab_cli("create", "deployment", "nginx", "--image=nginx:1.25", "--replicas=2", "--port=80",
                   "--dry-run=client", "-o", "yaml", check=True)   # (no lab is up yet)
    d = tmp_path / "deploy.yaml"
    d.write_text(r.stdout.replace("replicas: 2", "replicas: 3"))
    lab.up(text(cluster(None, nodes=[{"name": "cp", "role": "control-plane"}, {"name": "w1"}])))
    assert kubectl(lab, "apply", "-f", str(d)).stdout.strip() == "deployment.apps/nginx created"
    kubectl(lab, "rollout", "status", "deployment/nginx", "--timeout=60s")
    r = kubectl(lab, "expose", "deployment", "nginx", "--type=NodePort", "--dry-run=client", "-o", "yaml")
    assert "kind: Service" in r.stdout and "not found" in kubectl(lab, "get", "svc", "nginx", check=False).stderr
    s = tmp_path / "svc.yaml"
    s.write_text(r.stdout)
    assert kubectl(lab, "apply", "-f", str(s)).stdout.strip() == "service/nginx created"
    svc = json.loads(kubectl(lab, "get", "svc", "nginx", "-o", "json").stdout)
    ip = json.loads(kubectl(lab, "get", "nodes", "-o", "json").stdout)["items"][1]["status"]["addresses"][0]["address"]
    url = f"http://{ip}:{svc['spec']['ports'][0]['nodePort']}/"
    r = until(f"{url} answers", lambda: (lambda r: r if r.returncode == 0 else None)(
        lab.ext_exec(["curl", "-sS", "--max-time", "3", url])), timeout=30)
    assert "Welcome to nginx!" in r.stdout
    assert len(json.loads(kubectl(lab, "get", "pods", "-o", "json").stdout)["items"]) == 3
