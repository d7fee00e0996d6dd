"""Static pods (netlab/live/staticpods.py): a mirror pod per manifest file of a node, named
<pod>-<node>, annotated and owned by the Node; a deleted mirror comes back with the same static UID;
a removed file deletes the mirror gracefully; a changed file makes the pod anew; invalid files are
reported, not fatal."""

from netlab.controllers.runner import apply_actions
from netlab.live import staticpods as sp
from netlab.store import MemoryStore

NOW = 1_800_000_000.0
POD = """apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: c, ports: [{containerPort: 8080}]}]
"""
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "w1", "uid": "node-uid"}, "spec": {}}
NS = {"default", "kube-system"}


def run(store, files):
    acts, problems = sp.decide([NODE], {"w1": files}, store.list("Pod"), NS, NOW)
    if acts:
        apply_actions(store, acts, NOW)
    return acts, problems


def test_a_manifest_makes_a_mirror_pod_that_comes_back_when_deleted():
    store = MemoryStore()
    acts, problems = run(store, [("/m/w1/web.yaml", POD)])
    assert not problems
    (p,) = store.list("Pod")
    md = p["metadata"]
    assert md["name"] == "web-w1" and md["labels"] == {"app": "web"} and p["spec"]["nodeName"] == "w1"
    assert md["annotations"][sp.MIRROR] == md["annotations"][sp.HASH] and md["annotations"][sp.SOURCE] == "file"
    assert md["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "w1", "uid": "node-uid",
                                      "controller": True}]
    assert {"operator": "Exists", "effect": "NoExecute"} in p["spec"]["tolerations"]
    uid = sp.static_uid(p)
    assert run(store, [("/m/w1/web.yaml", POD)])[0] == []   # nothing to do the second time
    store.delete("Pod", "default", "web-w1", grace_seconds=30)   # kubectl delete pod web-w1
    run(store, [("/m/w1/web.yaml", POD)])
    (again,) = store.list("Pod")
    assert not again["metadata"].get("deletionTimestamp")
    assert again["metadata"]["uid"] != md["uid"] and sp.static_uid(again) == uid


def test_a_changed_file_makes_the_pod_anew_and_a_removed_file_deletes_it_gracefully():
    store = MemoryStore()
    run(store, [("/m/w1/web.yaml", POD)])
    uid = sp.static_uid(store.list("Pod")[0])
    run(store, [("/m/w1/web.yaml", POD.replace("app: web", "app: web2"))])
    (p,) = store.list("Pod")
    assert sp.static_uid(p) != uid and p["metadata"]["labels"] == {"app": "web2"}
    run(store, [])
    (p,) = store.list("Pod")
    assert p["metadata"].get("deletionTimestamp") and p["metadata"]["deletionGracePeriodSeconds"] == 30


def test_invalid_files_are_reported_and_the_others_still_run():
    store = MemoryStore()
    bad = [("/m/w1/a.yaml", "kind: [unclosed"), ("/m/w1/b.yaml", "apiVersion: v1\nkind: Service\n"),
           ("/m/w1/c.yaml", POD.replace("containers:", "containerz:")),
           ("/m/w1/d.yaml", POD.replace("name: web,", "name: other, namespace: nope,"))]
    _, problems = run(store, bad + [("/m/w1/web.yaml", POD)])
    assert [p[1] for p in problems] == ["/m/w1/a.yaml", "/m/w1/b.yaml", "/m/w1/c.yaml", "/m/w1/d.yaml"]
    assert all(m.startswith(f"static pod file {f}") for _, f, m in problems)
    assert "does not exist" in problems[3][2]
    assert [p["metadata"]["name"] for p in store.list("Pod")] == ["web-w1"]


def test_a_regular_pod_with_the_mirror_name_is_left_alone():
    store = MemoryStore()
    store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-w1", "namespace": "default"},
                  "spec": {"containers": [{"name": "c"}]}})
    acts, problems = run(store, [("/m/w1/web.yaml", POD)])
    assert acts == [] and "exists already" in problems[0][2]


def test_read_manifests_skips_hidden_and_other_files(tmp_path):
    (tmp_path / "a.yaml").write_text(POD)
    (tmp_path / ".b.yaml").write_text(POD)
    (tmp_path / "c.txt").write_text(POD)
    (tmp_path / "d.json").write_text("{}")
    assert [p for p, _ in sp.read_manifests(str(tmp_path))] == [str(tmp_path / "a.yaml"), str(tmp_path / "d.json")]
