"""kubectl patch's three types applied as the API server applies them (netlab/controllers/patch.py)."""
import copy

import pytest

from netlab.controllers.patch import PatchError, apply_patch, merge_key

DEPLOY = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web", "tier": "a"}},
    "spec": {"replicas": 2, "template": {"spec": {
        "containers": [
            {"name": "web", "image": "v1", "args": ["a", "b"],
             "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 8081, "protocol": "UDP"}],
             "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "s1"}],
        "volumes": [{"name": "v", "emptyDir": {}}],
        "tolerations": [{"key": "k", "operator": "Exists"}]}}},
}
SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
       "spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080},
                                              {"port": 81, "protocol": "UDP"}]}}


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_strategic_merges_containers_by_name_and_keeps_the_rest():
    before = copy.deepcopy(DEPLOY)
    out = apply_patch(DEPLOY, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "v2", "env": [{"name": "B", "value": "2"}]},
        {"name": "new", "image": "n"}]}}}}, "strategic")
    web, side, new = containers(out)
    assert (web["name"], side["name"], new["name"]) == ("web", "side", "new")   # the object's order, new ones last
    assert web["image"] == "v2" and web["args"] == ["a", "b"] and len(web["ports"]) == 2
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]   # env merged by name
    assert side == {"name": "side", "image": "s1"} and new == {"name": "new", "image": "n"}
    assert DEPLOY == before   # the object given is not changed


def test_strategic_delete_and_replace_directives_and_null():
    out = apply_patch(DEPLOY, {"metadata": {"labels": {"tier": None}}, "spec": {"template": {"spec": {
        "containers": [{"name": "side", "$patch": "delete"},
                       {"name": "web", "ports": [{"containerPort": 8081, "$patch": "delete"}]}]}}}}, "strategic")
    assert out["metadata"]["labels"] == {"app": "web"}
    assert [c["name"] for c in containers(out)] == ["web"]
    assert containers(out)[0]["ports"] == [{"containerPort": 8080, "name": "http"}]
    out = apply_patch(DEPLOY, {"spec": {"template": {"spec": {"volumes": [{"name": "w", "emptyDir": {}},
                                                                          {"$patch": "replace"}]}}}}, "strategic")
    assert out["spec"]["template"]["spec"]["volumes"] == [{"name": "w", "emptyDir": {}}]
    out = apply_patch(DEPLOY, {"metadata": {"$patch": "replace", "name": "web"}}, "strategic")
    assert out["metadata"] == {"name": "web"}


def test_lists_without_a_merge_key_are_replaced():
    out = apply_patch(DEPLOY, {"spec": {"template": {"spec": {
        "tolerations": [{"key": "other", "operator": "Exists"}],
        "containers": [{"name": "web", "args": ["c"]}]}}}}, "strategic")
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"}]
    assert containers(out)[0]["args"] == ["c"]


def test_a_services_ports_merge_by_port_a_containers_by_container_port():
    assert merge_key(("spec", "ports"), "Service") == "port"
    assert merge_key(("spec", "template", "spec", "containers", "ports"), "Deployment") == "containerPort"
    assert merge_key(("spec", "ports"), "EndpointSlice") is None
    out = apply_patch(SVC, {"spec": {"type": "ClusterIP", "ports": [{"port": 80, "targetPort": 9090}]}}, "strategic")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "nodePort": 30080}, {"port": 81, "protocol": "UDP"}]


def test_merge_patch_replaces_lists_and_null_removes():
    out = apply_patch(SVC, {"spec": {"ports": [{"port": 90}], "type": None}}, "merge")
    assert out["spec"] == {"ports": [{"port": 90}]}


def test_json_patch_operations_and_test():
    out = apply_patch(DEPLOY, [{"op": "replace", "path": "/spec/replicas", "value": 5},
                               {"op": "add", "path": "/metadata/labels/x", "value": "y"},
                               {"op": "remove", "path": "/spec/template/spec/containers/1"},
                               {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": "v1"}], "json")
    assert out["spec"]["replicas"] == 5 and out["metadata"]["labels"]["x"] == "y" and len(containers(out)) == 1
    with pytest.raises(PatchError, match="testing value failed"):
        apply_patch(DEPLOY, [{"op": "test", "path": "/spec/replicas", "value": 7}], "json")
    with pytest.raises(PatchError, match="cannot be applied"):
        apply_patch(DEPLOY, [{"op": "remove", "path": "/spec/nothere"}], "json")
    with pytest.raises(PatchError, match="not valid|cannot be applied"):
        apply_patch(DEPLOY, [{"op": "jump", "path": "/spec"}], "json")


@pytest.mark.parametrize("patch,ptype,says", [
    ([{"op": "add"}], "strategic", "is a map"),
    ({"spec": 1}, "json", "list of operations"),
    ({"spec": {"$retainKeys": ["replicas"]}}, "strategic", "directive $retainKeys is not supported"),
    ({"spec": {"$patch": "merge"}}, "strategic", "is not a patch directive"),
    ({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}, "strategic", "merge key 'name'"),
    ({}, "yaml", "--type must be one of"),
])
def test_bad_patches_say_what_is_wrong(patch, ptype, says):
    with pytest.raises(PatchError, match=says.replace("$", r"\$")):
        apply_patch(DEPLOY, patch, ptype)


def test_merge_diff_gives_back_the_edit():
    from netlab.controllers.patch import merge_diff
    edited = copy.deepcopy(DEPLOY)
    edited["spec"]["replicas"] = 4
    del edited["metadata"]["labels"]["tier"]
    containers(edited)[0]["image"] = "v9"
    edited["spec"]["paused"] = True
    diff = merge_diff(DEPLOY, edited)
    assert diff["spec"]["replicas"] == 4 and diff["spec"]["paused"] is True
    assert diff["metadata"] == {"labels": {"tier": None}}
    assert diff["spec"]["template"]["spec"]["containers"][0]["image"] == "v9"   # a list: given whole
    assert "volumes" not in diff["spec"]["template"]["spec"]
    assert apply_patch(DEPLOY, diff, "merge") == edited
    assert merge_diff(DEPLOY, copy.deepcopy(DEPLOY)) == {}
