"""The StatefulSet kind: parsed strictly with one-line errors (serviceName required, the selector
matches the template, OnDelete without rollingUpdate), storage and maxUnavailable reported as
ignored, the API server's defaults, the pods <name>-<ordinal> of validate's model, a pod's
spec.hostname as its UTS hostname, rollout status and the printer's columns."""
from __future__ import annotations

import copy

import pytest

from netlab.controllers import printers
from netlab.controllers import statefulset as ssc
from netlab.errors import SpecError
from netlab.live.objects import with_defaults
from netlab.model.build import expand
from netlab.render.fabric import pod_fabric

from .scenarios import cluster, cluster_of, deployment, load


def sts(name="web", replicas=3, **spec):
    d = deployment(name, replicas)
    d["kind"] = "StatefulSet"
    d["spec"]["serviceName"] = name
    d["spec"].update(spec)
    return d


def without(doc, *path):
    doc = copy.deepcopy(doc)
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    del cur[path[-1]]
    return doc


@pytest.mark.parametrize("doc, line", [
    (without(sts(), "spec", "serviceName"),
     "StatefulSet default/web: spec.serviceName is required; name the headless Service (clusterIP: None) that "
     "governs the pods, e.g. serviceName: web"),
    (sts(selector={"matchLabels": {"app": "db"}}),
     "StatefulSet default/web: spec.selector.matchLabels app=db does not match spec.template.metadata.labels; "
     "the selector must match the template's labels"),
    (sts(podManagementPolicy="Random"),
     "StatefulSet default/web: spec.podManagementPolicy 'Random' is not supported; use one of: OrderedReady, "
     "Parallel"),
    (sts(updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}}),
     "StatefulSet default/web: spec.updateStrategy.rollingUpdate is only allowed for type RollingUpdate; remove "
     "rollingUpdate, or set type: RollingUpdate"),
    (sts(updateStrategy={"rollingUpdate": {"partition": -1}}),
     "StatefulSet default/web: spec.updateStrategy.rollingUpdate.partition -1"),
    (sts(replicas=-1), "StatefulSet default/web: spec.replicas -1 is out of range"),
    (sts(ordinals={"begin": 1}), "StatefulSet default/web: unknown field spec.ordinals.begin"),
    (sts(name="a" * 53), "StatefulSet default/aaa"),
])
def test_bad_input_is_one_line(doc, line):
    with pytest.raises(SpecError) as e:
        load(cluster(), doc)
    assert str(e.value).startswith(line), str(e.value)
    assert "\n" not in str(e.value)
    if "aaa" in line:
        assert "is longer than 52 characters; shorten it" in str(e.value)


def test_storage_and_max_unavailable_are_reported_as_ignored_never_dropped():
    doc = sts(volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
              persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"},
              updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1, "maxUnavailable": 2}})
    s = load(cluster(), doc)
    assert s.ignored == [
        "StatefulSet default/web: spec.updateStrategy.rollingUpdate.maxUnavailable (pods are replaced one at a time)",
        "StatefulSet default/web: spec.volumeClaimTemplates (data: netlab has no storage, no PersistentVolumeClaim "
        "is made: each pod mounts an empty directory)",
        "StatefulSet default/web: spec.persistentVolumeClaimRetentionPolicy"]
    assert load(cluster(), sts(updateStrategy={"rollingUpdate": {"maxUnavailable": 1}})).ignored == []


def test_validate_models_the_pods_with_their_stable_names():
    s = load(cluster(), sts(replicas=2), sts("db", 2, ordinals={"start": 3}))
    assert [(p.name, p.owner) for p in expand(s)] == [("web-0", "StatefulSet/web"), ("web-1", "StatefulSet/web"),
                                                      ("db-3", "StatefulSet/db"), ("db-4", "StatefulSet/db")]
    assert s.statefulsets[0].service_name == "web" and s.statefulsets[1].start == 3


def test_the_api_server_defaults():
    d = with_defaults(sts())
    assert d["spec"]["podManagementPolicy"] == "OrderedReady"
    assert d["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert d["spec"]["revisionHistoryLimit"] == 10
    assert d["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert with_defaults(sts(updateStrategy={"type": "OnDelete"}))["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_a_pods_hostname_is_its_uts_hostname():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"hostname": "web-0", "subdomain": "web", "containers": [{"name": "c"}]}}
    c = cluster_of(cluster(), pod)
    assert pod_fabric(c, c.pod("default", "p")).hostname == "web-0"
    plain = cluster_of(cluster(), without(without(pod, "spec", "hostname"), "spec", "subdomain"))
    assert pod_fabric(plain, plain.pod("default", "p")).hostname == "p"
    assert load(cluster(), pod).ignored == []   # read, not reported as ignored
    bad = copy.deepcopy(pod)
    bad["spec"]["hostname"] = "Web_0"
    with pytest.raises(SpecError, match="spec.hostname"):
        load(cluster(), bad)


def test_rollout_status_says_what_kubectl_says():
    s = with_defaults(sts())
    s["metadata"].update(generation=2)
    s["status"] = {"observedGeneration": 1}
    assert ssc.rollout_status(s) == ("Waiting for statefulset spec update to be observed...", False)
    s["status"] = {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 1, "currentReplicas": 2,
                   "currentRevision": "web-a", "updateRevision": "web-b"}
    assert ssc.rollout_status(s) == ("Waiting for 2 pods to be ready...", False)
    s["status"]["readyReplicas"] = 3
    assert ssc.rollout_status(s) == ("waiting for statefulset rolling update to complete 1 pods at revision web-b...",
                                     False)
    s["status"].update(currentRevision="web-b", currentReplicas=3, updatedReplicas=3)
    assert ssc.rollout_status(s) == ("statefulset rolling update complete 3 pods at revision web-b...", True)
    s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 2
    s["status"].update(updatedReplicas=0, currentRevision="web-a")
    assert ssc.rollout_status(s) == ("Waiting for partitioned roll out to finish: 0 out of 1 new pods have been "
                                     "updated...", False)
    s["spec"]["updateStrategy"] = {"type": "OnDelete"}
    with pytest.raises(ValueError, match="only available for RollingUpdate"):
        ssc.rollout_status(s)


def test_get_columns():
    s = dict(sts(), status={"readyReplicas": 2})
    s["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    rows = printers.table("StatefulSet", [s], 1767225600.0 + 90)
    assert rows[0] == ["NAME", "READY", "AGE"] and rows[1][:2] == ["web", "2/3"]


def test_a_template_may_mount_its_claim_templates_and_each_pod_gets_the_claim_as_a_volume():
    doc = sts(replicas=2, volumeClaimTemplates=[{"metadata": {"name": "www"}, "spec": {}}])
    c = doc["spec"]["template"]["spec"]["containers"][0]
    c["volumeMounts"] = [{"name": "www", "mountPath": "/usr/share/nginx/html"}]
    s = load(cluster(), doc)   # the mount names no volume of spec.volumes: accepted, as the API server does
    (tmpl,) = [x.template for x in s.statefulsets]
    assert [(v.name, v.kind) for v in tmpl.volumes] == [("www", "persistentVolumeClaim")]
    with pytest.raises(SpecError):   # any other undeclared name is still the API server's Not found
        c["volumeMounts"] = [{"name": "nope", "mountPath": "/x"}]
        load(cluster(), doc)
    pod = ssc.new_pod(with_defaults(dict(doc, metadata={"name": "web", "namespace": "default", "uid": "u"})), 1,
                      doc["spec"]["template"], "web-1234")
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}} in pod["spec"]["volumes"]
