"""Objects that carry no dataplane (ConfigMap, Secret, ServiceAccount, add-ons' custom resources) and
a standalone ReplicaSet: parsed strictly, refused with one line, stored (and pruned) by `up`/`apply`,
reported once, listed by `get` without a Secret's values."""
from __future__ import annotations

import base64

import pytest
from click.testing import CliRunner

from netlab.cli.common import warn_ignored
from netlab.controllers import printers
from netlab.errors import SpecError
from netlab.live.objects import apply_objects, scenario_objects
from netlab.model.build import expand
from netlab.spec.kinds.inert import ADDONS
from netlab.store import MemoryStore

from .ctrl_sim import Sim
from .scenarios import cluster, container, deployment, load, service

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a.txt": "hello", "b": "2"}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "type": "Opaque",
          "data": {"user": base64.b64encode(b"admin").decode()}, "stringData": {"password": "hunter2"}}
SA = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}
POOL = {"apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile",   # (MetalLB's BFD: not emulated)
        "metadata": {"name": "pool", "namespace": "metallb-system"}, "spec": {"receiveInterval": 300}}


def replicaset(name="rs1", replicas=2, labels=None, selector=None, **spec):
    labels = labels if labels is not None else {"app": name}
    d = deployment(name, replicas, labels=labels, selector=selector)
    d["kind"] = "ReplicaSet"
    d["spec"].update(spec)
    return d


def test_inert_objects_are_accepted_and_reported_once_each():
    s = load(cluster(), CM, SECRET, SA, POOL, deployment(), service())
    assert s.inert == ["ServiceAccount default/robot"]   # ConfigMaps and Secrets are read by pods
    assert s.addons == ["BFDProfile pool (MetalLB)"]
    assert s.ignored == []  # their fields are not "ignored fields"
    kinds = [o["kind"] for o in scenario_objects(s)]
    assert kinds.count("ConfigMap") == kinds.count("Secret") == kinds.count("BFDProfile") == 1


def test_the_notices_are_one_line_each(capsys):
    warn_ignored(load(cluster(), CM, SECRET, SA, POOL))
    err = capsys.readouterr().err.splitlines()
    assert err == ["netlab: storing objects netlab does not use yet: ServiceAccount default/robot",
                   "netlab: ignoring add-ons' objects netlab does not emulate (stored only): BFDProfile pool "
                   "(MetalLB)"]


@pytest.mark.parametrize("kind", sorted(ADDONS))
def test_every_listed_addon_kind_is_accepted(kind):
    api = ADDONS[kind][1][0]
    s = load(cluster(), {"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": {"anything": 1}})
    assert s.addons == [f"{kind} x ({ADDONS[kind][0]})"]


@pytest.mark.parametrize("doc, line", [
    ({"apiVersion": "foo.example/v1", "kind": "Widget", "metadata": {"name": "w"}},
     "Widget w: kind 'Widget' is not supported; netlab understands Cluster, Namespace, Pod, Deployment, "
     "ReplicaSet, Service, EndpointSlice, Endpoints, StatefulSet, DaemonSet, Job, CronJob, ConfigMap, Secret, "
     "ServiceAccount, Ingress, IngressClass, NetworkPolicy, IPAddressPool, L2Advertisement, BGPPeer, "
     "BGPAdvertisement (or a List of them)"),
    (dict(CM, data={"a": 1}), 'ConfigMap default/cfg: data.a must be a string, not an integer; quote it, e.g. "1"'),
    (dict(CM, data={"a/b": "x"}), "ConfigMap default/cfg: data key 'a/b' is not a valid key; use letters, digits, "
     "'-', '_' and '.' (a file name)"),
    (dict(CM, binaryData={"a.txt": "aGk="}), "ConfigMap default/cfg: binaryData key 'a.txt' is in data too; "
     "give each key once"),
    (dict(CM, dta={}), "ConfigMap default/cfg: unknown field dta; did you mean data?"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "data": {}}, "ConfigMap (document 2): metadata.name is required; "
     "set metadata.name"),
    (dict(SECRET, data={"u": "not base64!"}), "Secret default/db: data.u is not base64; encode the value "
     "(base64), or put it in stringData as text"),
    (dict(SECRET, type=3), "Secret default/db: type must be a string, not 3; write e.g. type: Opaque"),
    (dict(CM, metadata={"name": "cfg", "namespace": "nope"}), "ConfigMap nope/cfg: metadata.namespace 'nope' does "
     "not exist; add a Namespace document named nope"),
    (dict(SA, secrets="x"), "ServiceAccount default/robot: secrets must be a list; write it as '- name: NAME' lines"),
    ({"apiVersion": "metallb.io/v1", "kind": "BGPAdvertisement", "metadata": {"name": "p"}},
     "BGPAdvertisement p: apiVersion 'metallb.io/v1' does not match kind BGPAdvertisement; use apiVersion: "
     "metallb.io/v1beta1"),
    (replicaset(selector={"app": "other"}), "ReplicaSet default/rs1: spec.selector.matchLabels app=other does not "
     "match spec.template.metadata.labels; the selector must match the template's labels"),
    (replicaset(replicas=-1), "ReplicaSet default/rs1: spec.replicas -1 is out of range 0-2147483647; use a number from "
     "0 to 2147483647"),
    (replicaset(strategy={}), "ReplicaSet default/rs1: unknown field spec.strategy; remove it: ReplicaSetSpec has "
     "no such field (kubectl's strict field validation refuses it too)"),
])
def test_bad_input_is_one_line(doc, line):
    with pytest.raises(SpecError) as e:
        load(cluster(), doc)
    assert str(e.value) == line


def test_a_standalone_replicaset_is_parsed_and_expanded():
    s = load(cluster(), replicaset(replicas=3))
    assert [(r.name, r.replicas, r.selector) for r in s.replicasets] == [("rs1", 3, {"app": "rs1"})]
    pods = expand(s)
    assert len(pods) == 3 and all(p.name.startswith("rs1-") and p.owner == "ReplicaSet/rs1" for p in pods)


def test_store_apply_prune_and_secret_defaults():
    store = MemoryStore()
    objs = scenario_objects(load(cluster(), CM, SECRET, SA, POOL, replicaset()))
    assert {str(a) for a in apply_objects(store, objs, prune=True)} == {
        "configmap/cfg created", "secret/db created", "serviceaccount/robot created", "bfdprofile/pool created",
        "replicaset.apps/rs1 created"}
    sec = store.get("Secret", "default", "db")
    assert "stringData" not in sec and sec["type"] == "Opaque"
    assert base64.b64decode(sec["data"]["password"]) == b"hunter2"
    assert store.get("ReplicaSet", "default", "rs1")["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    # a ConfigMap's data change is an update (it has no spec); the others unchanged
    objs2 = scenario_objects(load(cluster(), dict(CM, data={"a.txt": "bye"}), SECRET, replicaset()))
    got = {str(a) for a in apply_objects(store, objs2, prune=True)}
    assert got == {"configmap/cfg configured", "secret/db unchanged", "replicaset.apps/rs1 unchanged",
                   "serviceaccount/robot pruned", "bfdprofile/pool pruned"}
    assert store.get("ConfigMap", "default", "cfg")["data"] == {"a.txt": "bye"}


def test_get_shows_counts_never_a_secrets_value():
    store = MemoryStore()
    apply_objects(store, scenario_objects(load(cluster(), CM, SECRET, SA)))
    rows = printers.table("Secret", store.list("Secret"), 0)
    assert rows[0] == ["NAME", "TYPE", "DATA", "AGE"] and rows[1][:3] == ["db", "Opaque", "2"]
    text = printers.render(rows)
    assert "hunter2" not in text and base64.b64encode(b"hunter2").decode() not in text
    assert printers.table("ConfigMap", store.list("ConfigMap"), 0)[1][:2] == ["cfg", "2"]
    assert printers.table("ServiceAccount", store.list("ServiceAccount"), 0)[1][:2] == ["robot", "0"]


def test_the_replicaset_controller_runs_a_standalone_replicaset():
    sim = Sim(nodes=("n1", "n2"))
    objs = scenario_objects(load(cluster(), replicaset(replicas=3)))
    apply_objects(sim.store, [o for o in objs if o["kind"] == "ReplicaSet"])
    sim.settle()
    pods = [p for p in sim.pods() if p["metadata"]["name"].startswith("rs1-")]
    assert len(pods) == 3
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)


def test_get_lists_the_new_kinds(monkeypatch):
    from netlab.cli import kubeutil
    from netlab.cli.get import get
    store = MemoryStore()
    apply_objects(store, scenario_objects(load(cluster(), CM, SECRET, SA)))

    class T:
        pass
    t = T()
    t.store = store
    monkeypatch.setattr(kubeutil, "open_target", lambda lab=None: t)
    out = CliRunner().invoke(get, ["cm"]).output
    assert out.split("\n")[0].split() == ["NAME", "DATA", "AGE"] and out.split("\n")[1].split()[:2] == ["cfg", "2"]
    out = CliRunner().invoke(get, ["secrets"]).output
    assert "db" in out and "hunter2" not in out
    assert "robot" in CliRunner().invoke(get, ["sa"]).output
