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
