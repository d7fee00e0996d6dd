"""Input kubectl refuses is refused (duplicate keys, wrong types, unknown fields, no objects), every
problem of a file in one run; fields Kubernetes knows but netlab does not emulate are only reported."""
from __future__ import annotations

import pytest

from netlab.errors import SpecError
from netlab.spec.parse import MAX_PROBLEMS, load_text

from .scenarios import cluster, cluster_of, container, deployment, load, pod, service, text

KIND_CONFIG = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
"""


def _problems(scenario_text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        load_text(scenario_text, "in.yaml")
    assert e.value.exit_code == 2
    return str(e.value).splitlines()


# ---- duplicate keys

def test_two_files_concatenated_without_a_separator_are_refused():
    """PyYAML kept the last of each key: the kind config became part of the Service, silently."""
    assert _problems(KIND_CONFIG + SERVICE) == [
        "Service default/web: duplicate key apiVersion at line 6 (first at line 2); remove one of them "
        "(or separate documents with ---)",
        "Service default/web: duplicate key kind at line 7 (first at line 1); remove one of them "
        "(or separate documents with ---)"]
    s = load_text(KIND_CONFIG + "---\n" + SERVICE)  # with the separator: two documents
    assert [sv.name for sv in s.services] == ["web"] and len(s.nodes) == 2


def test_a_nested_duplicate_key_names_its_path_and_line():
    scenario = SERVICE.replace("  - port: 80\n", "  - port: 80\n    protocol: TCP\n    port: 81\n")
    assert _problems(scenario) == [
        "Service default/web: duplicate key spec.ports[0].port at line 10 (first at line 8); remove one of them "
        "(or separate documents with ---)"]


def test_duplicate_keys_in_fields_netlab_ignores_are_refused_too():
    scenario = text(pod(containers=[container(resources={"limits": {"cpu": "1"}})]))
    scenario = scenario.replace("      limits:\n", "      limits: {memory: 1Gi}\n      limits:\n")
    (line,) = _problems(scenario)
    assert line.startswith("Pod default/p: duplicate key spec.containers[0].resources.limits at line ")


def test_a_merge_key_is_not_a_duplicate():
    scenario = ("base: &b {role: worker}\nkind: Cluster\nnodes:\n- <<: *b\n  role: control-plane\n")
    with pytest.raises(SpecError, match="unknown field base"):
        load_text(scenario)  # `base` is no Cluster field; the merge itself is fine
    s = load_text("kind: Cluster\nnodes:\n- &w {role: worker}\n- <<: *w\n  name: other\n")
    assert [n.name for n in s.nodes] == ["netlab-worker", "other"]


# ---- wrong types

@pytest.mark.parametrize("value, message", [
    ('"80"', "spec.containers[0].ports[0].containerPort must be an integer, not the string '80'; "
             "write the number without quotes"),
    ("80.0", "spec.containers[0].ports[0].containerPort must be an integer, not the number 80.0"),
    ("true", "spec.containers[0].ports[0].containerPort must be an integer, not a boolean"),
])
def test_a_quoted_number_is_not_an_integer(value, message):
    scenario = ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n"
                f"    ports:\n    - containerPort: {value}\n")
    (line,) = _problems(scenario)
    assert line.startswith("Pod default/p: " + message)


@pytest.mark.parametrize("doc, message", [
    (pod(labels={"version": 1}), "metadata.labels.version must be a string, not an integer; quote it"),
    (pod(containers=[container(command=["sleep", 3600])]), "spec.containers[0].command[1] must be a string, "
                                                           "not an integer; quote it"),
    (pod(containers=[container(env=[{"name": "A", "value": 8080}])]), "spec.containers[0].env[0].value must be "
                                                                      "a string, not an integer"),
    (deployment("web", "3"), "spec.replicas must be an integer, not the string '3'"),
    (service("web", [{"port": "80"}]), "spec.ports[0].port must be an integer, not the string '80'"),
    (service("web", [{"port": 80, "targetPort": "8080"}]), "spec.ports[0].targetPort must be an integer, not "
                                                           "the string '8080'; write the number without quotes"),
])
def test_wrong_types_kubectl_refuses(doc, message):
    with pytest.raises(SpecError) as e:
        load(cluster(), doc)
    assert message in str(e.value)


# ---- unknown fields versus known fields netlab does not emulate

def test_a_misspelt_field_is_unknown_with_a_suggestion():
    d = deployment("web", 1)
    d["spec"]["replica"] = 2
    with pytest.raises(SpecError) as e:
        load(cluster(), d)
    assert str(e.value) == "Deployment default/web: unknown field spec.replica; did you mean replicas?"
    assert e.value.exit_code == 2


@pytest.mark.parametrize("where, key, suggestion", [
    ("container", "containerport", None), ("container", "imagePullPolicyy", "imagePullPolicy"),
    ("spec", "nodeSelecter", "nodeSelector"), ("metadata", "label", "labels"), ("port", "containerPorts", "containerPort"),
])
def test_unknown_fields_at_each_level(where, key, suggestion):
    c = container(ports=[80])
    p = pod(containers=[c])
    target = {"container": c, "spec": p["spec"], "metadata": p["metadata"], "port": c["ports"][0]}[where]
    target[key] = "x"
    with pytest.raises(SpecError) as e:
        load(p)
    assert "unknown field " in str(e.value) and key in str(e.value)
    if suggestion:
        assert str(e.value).endswith(f"; did you mean {suggestion}?")


def test_known_fields_that_netlab_does_not_emulate_are_reported_once_as_ignored():
    c = container("app", [(8080, "http")], resources={"limits": {"cpu": "1"}},
                  volumeMounts=[{"name": "v", "mountPath": "/v"}], securityContext={"runAsUser": 1000})
    p = pod("p", containers=[c], volumes=[{"name": "v", "emptyDir": {}}], affinity={"nodeAffinity": {}})
    s = load(cluster(), p)
    assert sorted(s.ignored) == sorted([
        "Pod default/p: spec.containers[0].resources", "Pod default/p: spec.affinity"])


REAL_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    deployment.kubernetes.io/revision: "1"
  creationTimestamp: "2024-05-01T10:00:00Z"
  generation: 1
  labels: {app: web}
  managedFields:
  - apiVersion: apps/v1
    fieldsType: FieldsV1
    fieldsV1: {"f:spec": {"f:replicas": {}}}
    manager: kubectl-client-side-apply
    operation: Update
    time: "2024-05-01T10:00:00Z"
  name: web
  namespace: default
  resourceVersion: "1234"
  uid: 0b6c1a6e-0000-4000-8000-000000000001
spec:
  progressDeadlineSeconds: 600
  replicas: 2
  revisionHistoryLimit: 10
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
    type: RollingUpdate
  template:
    metadata:
      creationTimestamp: null
      labels: {app: web}
    spec:
      containers:
      - args: [netexec, --http-port=8080]
        image: registry.k8s.io/e2e-test-images/agnhost:2.47
        imagePullPolicy: IfNotPresent
        livenessProbe:
          failureThreshold: 3
          httpGet: {path: /healthz, port: 8080, scheme: HTTP}
          periodSeconds: 10
          successThreshold: 1
          timeoutSeconds: 1
        name: agnhost
        ports:
        - containerPort: 8080
          name: http
          protocol: TCP
        readinessProbe:
          tcpSocket: {port: 8080}
        resources: {}
        securityContext: {allowPrivilegeEscalation: false}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
status:
  availableReplicas: 2
  conditions:
  - type: Available
    status: "True"
  observedGeneration: 1
  readyReplicas: 2
  replicas: 2
---
apiVersion: v1
kind: Service
metadata:
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
  creationTimestamp: "2024-05-01T10:00:00Z"
  name: web
  namespace: default
  resourceVersion: "1240"
  uid: 0b6c1a6e-0000-4000-8000-000000000002
spec:
  clusterIP: 10.96.20.30
  clusterIPs: [10.96.20.30]
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: http
  selector: {app: web}
  sessionAffinity: None
  type: ClusterIP
status:
  loadBalancer: {}
"""


def test_a_manifest_saved_from_a_live_cluster_has_no_unknown_field():
    s = load_text(REAL_MANIFEST)
    assert [(d.name, d.replicas) for d in s.deployments] == [("web", 2)]
    assert sorted(s.ignored) == sorted([
        "Deployment default/web: spec.template.spec.containers[0].resources"])
    # securityContext: honoured (the sandbox); dnsPolicy: honoured (the pod's resolv.conf)


# ---- every problem in one run

def test_every_problem_of_a_file_is_reported_in_one_run():
    d = deployment("web", 1)
    d["spec"]["replica"] = 2
    bad_port = pod("a", containers=[container("x", [{"containerPort": "80"}]),
                                    container("y", [{"containerPort": 70000}])])
    lines = _problems(text(cluster(), d, bad_port, service("web", [{"port": 80, "nodeport": 30080}])))
    assert lines == [
        "Deployment default/web: unknown field spec.replica; did you mean replicas?",
        "Pod default/a: spec.containers[0].ports[0].containerPort must be an integer, not the string '80'; "
        "write the number without quotes",
        "Pod default/a: spec.containers[1].ports[0].containerPort 70000 is out of range 1-65535; "
        "use a number from 1 to 65535",
        "Service default/web: unknown field spec.ports[0].nodeport; did you mean nodePort?",
    ]


def test_each_port_of_a_service_is_checked():
    lines = _problems(text(service("web", [{"port": 80}, {"port": "81"}, {"port": 82, "targetPort": True}])))
    assert [line.split(";")[0] for line in lines] == [
        "Service default/web: spec.ports[0].name is required when a Service has more than one port",
        "Service default/web: spec.ports[1].port must be an integer, not the string '81'",
        "Service default/web: spec.ports[2].targetPort must be a number or a name, not a boolean"]


def test_problems_beyond_the_limit_are_counted():
    pods = [pod(f"p{i}", bogus=1) for i in range(MAX_PROBLEMS + 5)]
    lines = _problems(text(*pods))
    assert len(lines) == MAX_PROBLEMS + 1
    assert lines[0].startswith("Pod default/p0: unknown field spec.bogus")
    assert lines[-1] == "and 5 more problems"


def test_a_document_with_an_error_does_not_hide_the_next_one():
    lines = _problems(text(pod("a", nodeName=5), pod("b", hostNetwork="yes")))
    assert [line.split(":")[0] for line in lines] == ["Pod default/a", "Pod default/b"]


def test_structural_yaml_errors_stay_single():
    assert len(_problems("a: [1,\nb: {")) == 1


REAL_POD = """\
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: "2024-05-01T10:00:00Z"
  generateName: web-5d8f7c9b4-
  labels: {app: web, pod-template-hash: 5d8f7c9b4}
  name: web-5d8f7c9b4-x2x7q
  namespace: default
  ownerReferences:
  - {apiVersion: apps/v1, blockOwnerDeletion: true, controller: true, kind: ReplicaSet, name: web-5d8f7c9b4, uid: u1}
  resourceVersion: "1301"
  uid: 7c1d5a0e-0000-4000-8000-000000000003
spec:
  containers:
  - image: nginx:1.27
    imagePullPolicy: IfNotPresent
    name: nginx
    ports: [{containerPort: 80, protocol: TCP}]
    resources: {}
    startupProbe: {httpGet: {path: /, port: 80}}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    volumeMounts:
    - {mountPath: /var/run/secrets/kubernetes.io/serviceaccount, name: kube-api-access-abcde, readOnly: true}
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  nodeName: netlab-worker
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext: {}
  serviceAccount: default
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
  tolerations:
  - {effect: NoExecute, key: node.kubernetes.io/not-ready, operator: Exists, tolerationSeconds: 300}
  volumes:
  - name: kube-api-access-abcde
    projected: {defaultMode: 420, sources: [{serviceAccountToken: {expirationSeconds: 3607, path: token}}]}
status:
  conditions: [{lastProbeTime: null, lastTransitionTime: "2024-05-01T10:00:02Z", status: "True", type: Ready}]
  containerStatuses:
  - {containerID: "containerd://abc", image: "docker.io/library/nginx:1.27", name: nginx, ready: true,
     restartCount: 0, started: true, state: {running: {startedAt: "2024-05-01T10:00:01Z"}}}
  hostIP: 172.18.0.3
  phase: Running
  podIP: 10.244.1.2
  podIPs: [{ip: 10.244.1.2}]
  qosClass: BestEffort
  startTime: "2024-05-01T10:00:00Z"
"""


def test_a_pod_saved_from_a_live_cluster_has_no_unknown_field():
    s = load_text(REAL_POD)
    assert [p.name for p in s.pods] == ["web-5d8f7c9b4-x2x7q"]
    assert [item.split(": ", 1)[1] for item in s.ignored] == [
        "metadata.generateName", "spec.volumes[0].projected.sources[0].serviceAccountToken (netlab issues no "
        "service account token: no file is written)", "spec.containers[0].resources",
        "spec.preemptionPolicy"]   # dnsPolicy: honoured (the pod's resolv.conf)


# ---- a misspelt required field is an unknown field, not a missing one

def _rename(mapping: dict, old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


def _typo_cases():
    s = service("web")
    _rename(s["spec"], "ports", "prots")
    p = pod("p")
    _rename(p["spec"], "containers", "containres")
    port = pod("p", containers=[container("c", [{"containerPrt": 81}])])
    meta = pod("p")
    meta["metadata"] = {"nme": "p"}
    lst = {"apiVersion": "v1", "kind": "List", "item": [pod("p")]}
    env = pod("p", containers=[container("c", env=[{"nam": "A", "value": "1"}])])
    sel = deployment("web", 1)
    _rename(sel["spec"], "selector", "selectr")
    tmpl = deployment("web", 1)
    _rename(tmpl["spec"]["template"], "spec", "spc")
    return [
        (s, "Service default/web: unknown field spec.prots; did you mean ports?"),
        (p, "Pod default/p: unknown field spec.containres; did you mean containers?"),
        (port, "Pod default/p: unknown field spec.containers[0].ports[0].containerPrt; did you mean containerPort?"),
        (meta, "Pod (document 2): unknown field metadata.nme; did you mean name?"),
        (lst, "List (document 2): unknown field item; did you mean items?"),
        (env, "Pod default/p: unknown field spec.containers[0].env[0].nam; did you mean name?"),
        (sel, "Deployment default/web: unknown field spec.selectr; did you mean selector?"),
        (tmpl, "Deployment default/web: unknown field spec.template.spc; did you mean spec?"),
    ]


@pytest.mark.parametrize("doc, message", _typo_cases(),
                         ids=["service-ports", "pod-containers", "containerPort", "metadata-name", "list-items",
                              "env-name", "deployment-selector", "template-spec"])
def test_a_misspelt_required_field_is_an_unknown_field_with_a_suggestion(doc, message):
    """kubectl's strict validation names the misspelt key; "spec.ports must list at least one port"
    sent the user looking for a field that is there, spelt wrong."""
    assert _problems(text(cluster(), doc)) == [message]


def test_a_missing_required_field_with_no_near_key_is_still_missing():
    s = service("web")
    del s["spec"]["ports"]
    s["spec"]["zzz"] = 1  # unknown, but nothing like "ports"
    lines = _problems(text(cluster(), s))
    assert lines[0] == "Service default/web: spec.ports must list at least one port; add '- port: 80'"


# ---- fields that change behaviour: emulated, or reported as ignored (never skipped in silence)

@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_restart_policy_is_read_into_the_model(policy):
    p = pod("p", containers=[container("c", command=["true"])])
    p["spec"]["restartPolicy"] = policy
    c = cluster_of(cluster(), p)
    assert c.pod("default", "p").restart_policy == policy
    assert load(cluster(), p).ignored == []


def test_restart_policy_is_validated_and_a_deployment_takes_only_always():
    p = pod("p")
    p["spec"]["restartPolicy"] = "Sometimes"
    assert _problems(text(cluster(), p)) == [
        "Pod default/p: spec.restartPolicy 'Sometimes' is not supported; use one of: Always, OnFailure, Never"]
    d = deployment("web", 1)
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    (line,) = _problems(text(cluster(), d))
    assert line.startswith("Deployment default/web: spec.template.spec.restartPolicy 'Never' is not supported "
                           "by a Deployment; use Always")
    assert [p.restart_policy for p in cluster_of(cluster(), deployment("web", 2)).pods] == ["Always", "Always"]


def test_behaviour_changing_fields_are_reported_as_ignored_and_host_port_is_not():
    c = container("c", [{"containerPort": 80, "hostPort": 8080, "hostIP": "0.0.0.0"}])
    p = pod("p", containers=[c])
    p["spec"]["schedulerName"] = "my-scheduler"
    d = deployment("web", 1)
    d["spec"]["paused"] = True
    d["spec"]["minReadySeconds"] = 5
    # a Service's LoadBalancer fields are honoured since issue 14: not reported as ignored
    s = service("web", type="LoadBalancer", allocateLoadBalancerNodePorts=False,
                loadBalancerSourceRanges=["10.0.0.0/8"])
    assert sorted(load(cluster(), p, d, s).ignored) == ["Pod default/p: spec.schedulerName"]
    # at their defaults (as a manifest saved from a live cluster has them) they change nothing: no word
    p["spec"]["schedulerName"] = "default-scheduler"
    d["spec"].update(paused=False, minReadySeconds=0)
    s["spec"].update(allocateLoadBalancerNodePorts=True, loadBalancerSourceRanges=[])
    p["spec"]["containers"][0]["ports"][0] = {"containerPort": 80}
    assert load(cluster(), p, d, s).ignored == []


def test_publish_not_ready_addresses_makes_pods_that_are_not_ready_endpoints():
    from netlab.model.build import refresh_endpoints
    c = cluster_of(cluster(), deployment("web", 2),
                   service("web", [{"port": 80, "targetPort": 8080}]),
                   service("all", [{"port": 80, "targetPort": 8080}], selector={"app": "web"},
                           publishNotReadyAddresses=True))
    for p in c.pods:
        p.ready = False
    refresh_endpoints(c)
    by = {s.name: s.endpoints[""] for s in c.services if s.namespace == "default" and s.name != "kubernetes"}
    assert by["web"] == []
    assert sorted(str(e.ip) for e in by["all"]) == sorted(str(p.ip) for p in c.pods)
    assert all(e.ready for e in by["all"])


# ---- several inputs: a problem names the file its document came from

def test_with_several_inputs_problems_name_the_file_and_number_documents_within_it(tmp_path):
    from netlab.spec.sources import load_inputs
    d = tmp_path / "dir"
    d.mkdir()
    (d / "a.yaml").write_text(text(cluster()))
    bad = pod("x", containers=[container("c", [{"containerPort": 70000}])])
    nameless = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "c"}]}}
    (d / "b.yaml").write_text(text(pod("ok"), bad, nameless))
    (d / "c.yaml").write_text(text(cluster("two")))
    with pytest.raises(SpecError) as e:
        load_inputs([str(d)])
    lines = str(e.value).splitlines()
    b, c = d / "b.yaml", d / "c.yaml"
    assert lines == [
        f"{c}: Cluster (document 1): is a second Cluster document; a scenario has exactly one Cluster document",
        f"{b}: Pod default/x: spec.containers[0].ports[0].containerPort 70000 is out of range 1-65535; "
        "use a number from 1 to 65535",
        f"{b}: Pod (document 3): metadata.name is required; set metadata.name"], lines
    # a duplicate key, and an object defined twice, name their files too
    (d / "c.yaml").write_text("apiVersion: v1\nkind: Pod\nkind: Pod\nmetadata: {name: y}\n")
    (d / "b.yaml").write_text(text(pod("ok"), pod("ok")))
    with pytest.raises(SpecError) as e:
        load_inputs([str(d)])
    assert str(e.value).splitlines() == [
        f"{c}: Pod default/y: duplicate key kind at line 3 (first at line 2); remove one of them "
        "(or separate documents with ---)",
        f"{b}: Pod default/ok: is defined twice (also {b}: Pod default/ok); give each object its own name"]
    # one input: as before, no file name in front
    with pytest.raises(SpecError) as e:
        load_inputs([str(b)])
    assert str(e.value) == "Pod default/ok: is defined twice (also Pod default/ok); give each object its own name"


def test_with_several_inputs_a_reference_problem_names_the_file(tmp_path):
    from netlab.spec.sources import load_inputs
    (tmp_path / "a.yaml").write_text(text(cluster()))
    (tmp_path / "b.yaml").write_text(text(pod("p", namespace="nowhere")))
    with pytest.raises(SpecError) as e:
        load_inputs([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    assert str(e.value) == (f"{tmp_path / 'b.yaml'}: Pod nowhere/p: metadata.namespace 'nowhere' does not exist; "
                            "add a Namespace document named nowhere")


def test_rollout_and_termination_fields_are_emulated_and_priority_away_from_its_default_is_ignored():
    """The control loop runs strategies, revisions, deadlines and graceful termination: no word about
    them; who is preempted first is not emulated: reported unless at the API server's default."""
    p = pod("p")
    p["spec"].update(terminationGracePeriodSeconds=5, priority=1000, priorityClassName="high")
    d = deployment("web", 1)
    d["spec"].update(strategy={"type": "Recreate"}, revisionHistoryLimit=2, progressDeadlineSeconds=60,
                     minReadySeconds=3, paused=True)
    assert sorted(load(cluster(), p, d).ignored) == sorted([
        "Pod default/p: spec.priority", "Pod default/p: spec.priorityClassName"])
    # the API server's defaults, as `kubectl get -o yaml` prints them: no word
    p["spec"].update(terminationGracePeriodSeconds=30, priority=0, priorityClassName="")
    d["spec"].update(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     revisionHistoryLimit=10, progressDeadlineSeconds=600)
    assert load(cluster(), p, d).ignored == []


@pytest.mark.parametrize("change,expected", [
    (lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
     "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"),
    (lambda d: d["spec"].update(strategy={"type": "Blue"}), "strategy.type"),
    (lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxSurge": [1]}}),
     "strategy.rollingUpdate.maxSurge must be a number or a percentage"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinessProbe={"httpGot": {"port": 80}}),
     'readinessProbe.httpGot: Unsupported value: "httpGot"'),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(livenessProbe={"grpc": {"port": 80}}),
     "livenessProbe.grpc is not run by netlab's kubelet"),
])
def test_up_refuses_rollout_and_probe_settings_the_api_server_refuses(change, expected):
    """What the control loop runs is checked when the file is read (up, validate, apply): one line
    naming the Deployment and the field."""
    d = deployment("web", 2)
    change(d)
    with pytest.raises(SpecError) as e:
        load(cluster(), d)
    assert expected in str(e.value) and "Deployment default/web" in str(e.value), str(e.value)
    assert "\n" not in str(e.value)
