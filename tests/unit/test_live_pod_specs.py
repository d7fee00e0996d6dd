"""The live pass's pod parse cache (live/objects.pod_specs): kept through status writes, not through a
change of the spec or the labels."""
from netlab.live.objects import pod_specs
from netlab.store import MemoryStore


def _pod(image="img:1"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "default", "labels": {"app": "a"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": image}]}}


def _one(store, cache):
    (ps, _), = pod_specs(store.list("Pod"), cache=cache)
    return ps


def test_a_status_write_keeps_the_parsed_pod_a_spec_or_label_change_does_not():
    store = MemoryStore()
    store.create(_pod())
    cache: dict = {}
    first = _one(store, cache)
    # the kubelet's status write: a new resourceVersion, the same generation
    cur = store.get("Pod", "default", "a")
    store.update_status(dict(cur, status={"phase": "Running", "podIP": "10.244.1.2"}))
    assert _one(store, cache).template is first.template
    # a label: parsed again, with the label
    cur = store.get("Pod", "default", "a")
    cur["metadata"]["labels"]["tier"] = "db"
    store.update(cur)
    relabelled = _one(store, cache)
    assert relabelled.template is not first.template and relabelled.template.labels == {"app": "a", "tier": "db"}
    # the spec: parsed again
    cur = store.get("Pod", "default", "a")
    cur["spec"]["containers"][0]["image"] = "img:2"
    store.update(cur)
    changed = _one(store, cache)
    assert changed.template is not relabelled.template
    assert changed.template.containers[0].image == "img:2"


def test_pods_with_the_same_spec_and_labels_share_one_parse_equal_to_their_own():
    store = MemoryStore()
    for name, node, labels in (("a", "n1", {"app": "a"}), ("b", "n1", {"app": "a"}), ("c", "n2", {"app": "a"}),
                               ("d", "n1", {"app": "d"})):
        p = _pod()
        p["metadata"].update(name=name, labels=labels)
        p["spec"]["nodeName"] = node
        store.create(p)
    got = {ps.name: ps for ps, _ in pod_specs(store.list("Pod"))}
    assert [ps.name for ps, _ in pod_specs(store.list("Pod"))] == ["a", "b", "c", "d"]
    assert got["b"].template is got["a"].template            # same spec, same labels: one parse
    assert got["c"].template is not got["a"].template        # another node (spec.nodeName)
    assert got["c"].template.node_name == "n2" and got["a"].template.node_name == "n1"
    assert got["d"].template is not got["a"].template and got["d"].template.labels == {"app": "d"}
    for name in "abcd":   # each as the pod parsed alone would be
        (alone, _), = pod_specs([store.get("Pod", "default", name)])
        assert got[name] == alone, name
