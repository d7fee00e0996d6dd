"""Env valueFrom/envFrom resolution and the volume plan, as the kubelet makes them (pure)."""
from __future__ import annotations

import base64

import pytest

from netlab.errors import SpecError
from netlab.spec.parse import load_text
from netlab.spec.podparts import check_references
from netlab.workload.podenv import EnvError, Runtime, container_env, expand, parse_quantity
from netlab.workload.volumes import Mount, VolumeError, plan


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


CM = {"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
      "data": {"mode": "fast", "game.properties": "lives=3\n"}, "binaryData": {"bin": b64("\x00\x01")}}
SECRET = {"kind": "Secret", "metadata": {"name": "creds", "namespace": "default"},
          "data": {"password": b64("s3cr3t"), "user": b64("admin")}}
OBJS = {("ConfigMap", "default", "cfg"): CM, ("Secret", "default", "creds"): SECRET}
RT = Runtime("10.244.1.5", "172.18.0.3", {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"})


def pod(containers, volumes=None, **meta):
    md = {"name": "p", "namespace": "default", "uid": "u-1", "labels": {"app": "web"},
          "annotations": {"team": "net"}, **meta}
    spec = {"nodeName": "worker", "containers": containers}
    if volumes is not None:
        spec["volumes"] = volumes
    return {"kind": "Pod", "metadata": md, "spec": spec}


# ---- $(VAR) expansion

@pytest.mark.parametrize("text, want", [
    ("$(A)-x", "1-x"),
    ("$$(A)", "$(A)"),          # $$ escapes
    ("$(MISSING)", "$(MISSING)"),   # an undefined reference is kept as written
    ("$(A", "$(A"),             # unclosed
    ("a$b", "a$b"),             # $ before anything else
    ("end$", "end$"),
    ("$(A)$(B)", "12"),
])
def test_expand(text, want):
    assert expand(text, {"A": "1", "B": "2"}) == want


def test_quantities():
    assert parse_quantity("250m") == parse_quantity("0.25")
    assert parse_quantity("64Mi") == 64 * 1024 * 1024
    assert parse_quantity("1k") == 1000 and parse_quantity("2e3") == 2000


# ---- env

def test_env_value_from_every_source_in_the_kubelets_order():
    c = {"name": "app", "command": ["echo", "$(POD_IP)", "$$(POD_IP)"], "args": ["--node=$(NODE)"],
         "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "creds"}}],
         "env": [
             {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
             {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
             {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
             {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
             {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
             {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
             {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['team']"}}},
             {"name": "NOPE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['none']"}}},
             {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
             {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
             {"name": "IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
             {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
             {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
             {"name": "user", "value": "override"},           # env overrides envFrom
             {"name": "URL", "value": "http://$(POD_IP):80/$(MODE)"},
             {"name": "LATER", "value": "$(AFTER)"},          # defined after: kept as written
             {"name": "AFTER", "value": "x"},
             {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": True}}},
         ]}
    env, command, args = container_env(pod([c]), "app", OBJS, RT)
    assert env["CFG_mode"] == "fast" and env["CFG_game.properties"] == "lives=3\n"
    assert env["password"] == "s3cr3t" and env["user"] == "override"
    assert (env["POD_IP"], env["NODE"], env["NAME"], env["NS"], env["UID"]) == \
        ("10.244.1.5", "worker", "p", "default", "u-1")
    assert (env["APP"], env["TEAM"], env["NOPE"], env["SA"]) == ("web", "net", "", "default")
    assert (env["HOST"], env["IPS"], env["PASS"], env["MODE"]) == ("172.18.0.3", "10.244.1.5", "s3cr3t", "fast")
    assert env["URL"] == "http://10.244.1.5:80/fast" and env["LATER"] == "$(AFTER)"
    assert "OPT" not in env
    assert command == ["echo", "10.244.1.5", "$(POD_IP)"] and args == ["--node=worker"]


def test_resource_field_ref_defaults_to_the_node_allocatable_when_no_limit():
    c = {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
         "env": [{"name": "LCPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                 {"name": "RCPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
                 {"name": "LMEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                 {"name": "RSTO", "valueFrom": {"resourceFieldRef": {"resource": "requests.ephemeral-storage"}}}]}
    env, _, _ = container_env(pod([c]), "app", {}, RT)
    assert env == {"LCPU": "2", "RCPU": "250", "LMEM": "128", "RSTO": "0"}


@pytest.mark.parametrize("entry, message", [
    ({"configMapKeyRef": {"name": "gone", "key": "k"}}, 'configmap "gone" not found'),
    ({"secretKeyRef": {"name": "creds", "key": "nokey"}}, "couldn't find key nokey in Secret default/creds"),
    ({"configMapKeyRef": {"name": "cfg", "key": "nokey"}}, "couldn't find key nokey in ConfigMap default/cfg"),
])
def test_missing_sources_stop_the_container_as_the_kubelet_does(entry, message):
    c = {"name": "app", "env": [{"name": "X", "valueFrom": entry}]}
    with pytest.raises(EnvError, match=message):
        container_env(pod([c]), "app", OBJS, RT)


def test_optional_missing_key_and_env_from_are_skipped():
    c = {"name": "app", "envFrom": [{"secretRef": {"name": "gone", "optional": True}}],
         "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "no", "optional": True}}}]}
    assert container_env(pod([c]), "app", OBJS, RT)[0] == {}


# ---- volumes

def test_volume_plan_files_modes_items_and_mounts():
    vols = [{"name": "cache", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory"}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "picked", "configMap": {"name": "cfg", "items": [{"key": "mode", "path": "conf/mode", "mode": 0o600}],
                                             "defaultMode": 0o400}},
            {"name": "sec", "secret": {"secretName": "creds"}},
            {"name": "opt", "secret": {"secretName": "gone", "optional": True}},
            {"name": "host", "hostPath": {"path": "/var/log/", "type": "Directory"}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                                       {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "c"}}]
    a = {"name": "a", "volumeMounts": [{"name": "cache", "mountPath": "/cache"},
                                       {"name": "cfg", "mountPath": "/etc/cfg"},
                                       {"name": "cfg", "mountPath": "/etc/mode", "subPath": "mode"}]}
    b = {"name": "b", "volumeMounts": [{"name": "cache", "mountPath": "/data", "readOnly": True}]}
    vp = plan(pod([a, b], vols), "/run/netlab/lab/volumes", OBJS, RT)
    d = {x.name: x for x in vp.dirs}
    assert d["cache"].path == "/run/netlab/lab/volumes/u-1/cache" and d["cache"].files is None
    assert d["mem"].memory and not d["cache"].memory
    assert d["cfg"].files == {"mode": (b"fast", 0o644), "game.properties": (b"lives=3\n", 0o644),
                              "bin": (b"\x00\x01", 0o644)}
    assert d["picked"].files == {"conf/mode": (b"fast", 0o600)}
    assert d["sec"].files == {"password": (b"s3cr3t", 0o644), "user": (b"admin", 0o644)}
    assert d["opt"].files == {}
    assert (d["host"].path, d["host"].host_type) == ("/var/log", "Directory")
    assert d["info"].files == {"labels": (b'app="web"', 0o644), "name": (b"p", 0o644)}
    assert d["data"].files is None and d["data"].path.endswith("/u-1/data")
    assert vp.mounts["a"] == [Mount("/run/netlab/lab/volumes/u-1/cache", "/cache", False),
                              Mount("/run/netlab/lab/volumes/u-1/cfg", "/etc/cfg", True),
                              Mount("/run/netlab/lab/volumes/u-1/cfg/mode", "/etc/mode", True)]
    assert vp.mounts["b"] == [Mount("/run/netlab/lab/volumes/u-1/cache", "/data", True)]


@pytest.mark.parametrize("vol, message", [
    ({"name": "v", "configMap": {"name": "gone"}}, 'volume "v": configmap "gone" not found'),
    ({"name": "v", "secret": {"secretName": "creds", "items": [{"key": "nokey", "path": "x"}]}}, "has no key 'nokey'"),
])
def test_volume_plan_refuses_missing_objects(vol, message):
    with pytest.raises(VolumeError, match=message):
        plan(pod([{"name": "a"}], [vol]), "/v", OBJS, RT)


# ---- the parser and the reference check (validate / up / apply)

CLUSTER = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nmetadata: {name: t}\n---\n"


def doc(body: str):
    return load_text(CLUSTER + body, "<test>")


POD = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: app
    command: [sleep, "100"]
    volumeMounts: [{name: conf, mountPath: /etc/conf}]
  volumes:
  - name: conf
    configMap: {name: settings}
"""


def test_a_volume_naming_a_missing_config_map_is_refused_with_the_field_and_the_fix():
    sc = doc(POD)
    with pytest.raises(SpecError) as e:
        check_references(sc.documents)
    assert str(e.value) == ("Pod default/p: spec.volumes[0].configMap.name: ConfigMap 'settings' does not exist in "
                            "namespace default; add a ConfigMap named 'settings' to the manifests (or apply it "
                            "first), or set optional: true")
    check_references(sc.documents, {("ConfigMap", "default", "settings")})   # in the lab's store: fine
    sc = doc(POD + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n")
    check_references(sc.documents)


def test_a_deployment_templates_secret_env_is_checked_too():
    sc = doc("""apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        env: [{name: P, valueFrom: {secretKeyRef: {name: db, key: pw}}}]
""")
    with pytest.raises(SpecError, match=r"^Deployment default/web: spec.template.spec.containers\[0\].env\[0\]"
                                        r".valueFrom.secretKeyRef.name: Secret 'db' does not exist"):
        check_references(sc.documents)


@pytest.mark.parametrize("change, message", [
    ("    volumeMounts: [{name: other, mountPath: /x}]\n", r'volumeMounts\[0\].name Not found: "other"'),
    ("    volumeMounts: [{name: conf, mountPath: /x, subPath: ../up}]\n", "must not contain '..'"),
    ("    env: [{name: X, valueFrom: {fieldRef: {fieldPath: status.phase}}}]\n", "Unsupported value"),
    ("    env: [{name: X, value: a, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]\n", "may not be specified"),
    ("    env: [{name: X, valueFrom: {secretKeyRef: {name: s}}}]\n", "secretKeyRef.key is required"),
])
def test_bad_env_and_mounts_are_refused_as_the_api_server_does(change, message):
    text = POD.replace("    volumeMounts: [{name: conf, mountPath: /etc/conf}]\n", change)
    with pytest.raises(SpecError, match=message):
        doc(text)


def test_host_path_type_is_checked():
    text = POD.replace("configMap: {name: settings}", "hostPath: {path: /tmp, type: Dir}")
    with pytest.raises(SpecError, match="hostPath.type Unsupported value"):
        doc(text)


def test_launches_say_why_a_container_waits():
    from netlab.workload.volumes import launches
    env_bad = {"name": "a", "command": ["sleep"], "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]}
    good = {"name": "b", "command": ["echo", "$(Y)"], "env": [{"name": "Y", "value": "y"}],
            "volumeMounts": [{"name": "c", "mountPath": "/c"}]}
    vp, out = launches(pod([env_bad, good], [{"name": "c", "emptyDir": {}}]), "/v", OBJS, RT)
    assert (out["a"].reason, out["a"].error) == ("CreateContainerConfigError", 'secret "gone" not found')
    assert out["b"].argv == ["echo", "y"] and out["b"].mounts == [Mount("/v/u-1/c", "/c", False)] and not out["b"].error
    vp, out = launches(pod([good], [{"name": "c", "configMap": {"name": "gone"}}]), "/v", OBJS, RT)
    assert vp is None and out["b"].reason == "ContainerCreating" and 'configmap "gone" not found' in out["b"].error


def test_atomic_writer_switches_the_data_link_and_keeps_top_level_links(tmp_path):
    import os

    from netlab.dataplane.volumes import write_atomic
    d = str(tmp_path / "v")
    assert write_atomic(d, {"a": (b"1", 0o644), "sub/b": (b"2", 0o600)})
    first = os.readlink(os.path.join(d, "..data"))
    assert open(os.path.join(d, "a")).read() == "1" and open(os.path.join(d, "sub", "b")).read() == "2"
    assert os.readlink(os.path.join(d, "a")) == "..data/a"
    assert oct(os.stat(os.path.join(d, "sub", "b")).st_mode & 0o777) == "0o600"
    assert not write_atomic(d, {"a": (b"1", 0o644), "sub/b": (b"2", 0o600)})   # unchanged: not rewritten
    assert write_atomic(d, {"a": (b"new", 0o644)})
    assert open(os.path.join(d, "a")).read() == "new" and not os.path.lexists(os.path.join(d, "sub"))
    assert os.readlink(os.path.join(d, "..data")) != first and not os.path.exists(os.path.join(d, first))


def test_a_program_from_a_volume_is_not_looked_for_on_the_host():
    from netlab.model.build import build
    from netlab.model.preflight import check_host_commands
    sc = doc(POD.replace("command: [sleep, \"100\"]", "command: [/etc/conf/run.sh]") +
             "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {run.sh: 'echo hi'}\n")
    check_host_commands(build(sc))   # /etc/conf is the configMap volume's mountPath
    sc = doc(POD.replace("command: [sleep, \"100\"]", "command: [/opt/nowhere/run.sh]"))
    with pytest.raises(SpecError, match="not installed on this machine"):
        check_host_commands(build(sc))


def test_describe_shows_where_value_from_takes_a_value():
    from netlab.controllers.printers import env_value
    assert env_value({"name": "A", "value": "b"}) == "b"
    assert env_value({"name": "P", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw"}}}) == \
        "<set to the key 'pw' in secret 'creds'>  Optional: false"
    assert env_value({"name": "I", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}) == " (v1:status.podIP)"
