"""Issue 12, pods as Kubernetes describes them: two containers of one pod reach each other on localhost
and share an emptyDir; a configMap volume's file is read at its mountPath; env from fieldRef
status.podIP and secretKeyRef has the pod's IP and the decoded secret. Asserted on the wire: a client
pod fetches, over HTTP from the pod's IP, the file one container wrote after talking to the other over
127.0.0.1 (and the pod's built-in agnhost container likewise). Bad input: a volume naming a ConfigMap that does not exist is refused (exit 2, nothing built)."""
from __future__ import annotations

import json
import os

from netlab.dataplane import lab as labmod
from netlab.dataplane import layout

from .conftest import kubectl, netlab_cli, pods_json, pods_table, until

DUO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: NAME
nodes: [{name: n1, role: control-plane}, {name: n2}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: game}
data: {game.properties: "lives=3", mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {password: czNjcjN0}
---
apiVersion: v1
kind: Pod
metadata: {name: duo, labels: {app: duo}}
spec:
  nodeName: n2
  volumes:
  - {name: shared, emptyDir: {}}
  - name: conf
    configMap: {name: game, items: [{key: game.properties, path: game.txt}]}
  - {name: creds, secret: {secretName: creds}}
  - {name: hp, hostPath: {path: HOSTPATH, type: DirectoryOrCreate}}
  containers:
  - name: echo
    image: registry.k8s.io/e2e-test-images/agnhost:2.39
    args: [netexec, --http-port=8080]
    ports: [{containerPort: 8080}]
  - name: web
    command: [python3, -m, http.server, "8000", --directory, /shared]
    ports: [{containerPort: 8000}]
    volumeMounts: [{name: shared, mountPath: /shared, readOnly: true}]
  - name: writer
    command: [sh, -c]
    args:
    - |
      echo "$(MY_IP) $PASS $MODE $(cat /creds/password)" > /shared/env.txt
      echo written-by-pod > /hp/out.txt
      cat /config/game.txt > /shared/game.txt
      until curl -sf http://127.0.0.1:8080/hostname > /shared/builtin.txt; do sleep 0.2; done
      until curl -sf http://127.0.0.1:8000/env.txt > /shared/tmp; do sleep 0.2; done
      mv /shared/tmp /shared/loop.txt
      exec sleep 100000
    env:
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: PASS, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: game, key: mode}}}
    volumeMounts:
    - {name: shared, mountPath: /shared}
    - {name: conf, mountPath: /config}
    - {name: creds, mountPath: /creds}
    - {name: hp, mountPath: /hp}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n1
  containers: [{name: c, image: busybox}]
"""


def test_two_containers_talk_over_localhost_and_share_an_empty_dir_with_env_and_config(lab, tmp_path):
    hostpath = tmp_path / "made-by-kubelet"
    lab.up(DUO.replace("NAME", lab.name).replace("HOSTPATH", str(hostpath)))
    pod = lab.pod("duo")
    ip = str(pod.ip)

    def fetched():
        r = lab.pod_exec("client", ["curl", "-sf", "--max-time", "3", f"http://{ip}:8000/loop.txt"])
        return r.stdout.strip() if r.returncode == 0 else None
    # writer fetched env.txt from web over 127.0.0.1 and wrote it to the emptyDir that web serves
    assert until("the writer's file served by the web container", fetched, timeout=60) == f"{ip} s3cr3t fast s3cr3t"
    assert lab.http(("pod", "client"), ip, 8000, "/game.txt") == "lives=3"
    # and the built-in server's container of the same pod answered the writer on 127.0.0.1 too
    assert lab.http(("pod", "client"), ip, 8000, "/builtin.txt") == "duo"

    # the emptyDir is a directory of the pod under the lab's state directory; the configMap volume's
    # files are written atomically (..data link); the host's filesystem has no /config
    uid = json.loads(kubectl(lab, "get", "pod", "duo", "-o", "json").stdout)["metadata"]["uid"]
    base = os.path.join(layout.lab_dir(lab.name), "volumes", uid)
    assert open(os.path.join(base, "shared", "loop.txt")).read().strip() == f"{ip} s3cr3t fast s3cr3t"
    assert (hostpath / "out.txt").read_text() == "written-by-pod\n"   # DirectoryOrCreate made it
    assert oct(os.stat(os.path.join(base, "creds", "password")).st_mode & 0o777) == "0o644"
    assert os.path.islink(os.path.join(base, "conf", "..data"))
    assert oct(os.stat(os.path.join(base, "conf", "game.txt")).st_mode & 0o777) == "0o644"
    assert not os.path.exists("/config/game.txt")

    # apply: a pod naming a Secret that neither the file nor the lab's store has is refused (exit 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: lone}\nspec:\n  containers:\n  - name: c\n"
                   "    command: [sleep, '100']\n    env: [{name: X, valueFrom: {secretKeyRef: {name: nope, key: k}}}]\n")
    r = kubectl(lab, "apply", "-f", str(bad), check=False)
    assert r.returncode == 2 and "spec.containers[0].env[0].valueFrom.secretKeyRef.name: Secret 'nope' does not exist" \
        in r.stderr, r.stderr
    assert kubectl(lab, "get", "pod", "lone", check=False).returncode != 0
    good = tmp_path / "good.yaml"   # one naming the stored Secret is applied
    good.write_text(bad.read_text().replace("nope", "creds").replace("key: k", "key: password"))
    kubectl(lab, "apply", "-f", str(good))

    # the pod goes: its volumes go too
    kubectl(lab, "delete", "pod", "duo", "--grace-period=1")
    until("the pod's volume directory removed", lambda: not os.path.exists(base), timeout=60)


def test_a_volume_naming_a_missing_config_map_is_refused_and_nothing_is_built(lab, tmp_path):
    text = DUO.replace("NAME", lab.name).replace("HOSTPATH", str(tmp_path / "hp"))
    text = text[:text.index("---\napiVersion: v1\nkind: ConfigMap")] + text[text.index("---\napiVersion: v1\nkind: Secret"):]
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    want = ("Pod default/duo: spec.volumes[1].configMap.name: ConfigMap 'game' does not exist in namespace "
            "default; add a ConfigMap named 'game' to the manifests (or apply it first), or set optional: true")
    v = netlab_cli("validate", "-f", str(f))
    assert v.returncode == 2 and v.stderr.strip().endswith(want), v.stderr
    r = netlab_cli("up", "-f", str(f), "--lab", lab.name, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().endswith(want), r.stderr
    assert lab.name not in labmod.labs() and not labmod.lab_namespaces(lab.name)


WAITS = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: NAME
nodes: [{name: n1, role: control-plane}]
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {value: abc}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
      - name: c
        command: [sleep, "100000"]
        env: [{name: T, valueFrom: {secretKeyRef: {name: token, key: value}}}]
"""


def test_a_container_whose_secret_is_gone_waits_with_create_container_config_error(lab):
    lab.up(WAITS.replace("NAME", lab.name))
    first = until("the pod running", lambda: [n for n, row in pods_table(lab.name).items()
                                              if n.startswith("app-") and row[2] == "Running"], timeout=60)[0]
    kubectl(lab, "delete", "secret", "token")
    kubectl(lab, "delete", "pod", first, "--grace-period=1")

    def waiting():
        rows = [row for n, row in pods_table(lab.name).items() if n.startswith("app-") and n != first]
        return rows and rows[0][2] == "CreateContainerConfigError" and rows[0]
    row = until("the new pod waiting for its Secret", waiting, timeout=60)
    pod = pods_json(lab.name)[row[0]]
    state = pod["status"]["containerStatuses"][0]["state"]
    assert state == {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "token" not found'}}
    assert pod["status"]["phase"] == "Pending"
