"""Bad input as pure checks: one line naming the object, the field and the fix."""

import pytest

from netlab.controllers import deployutil as du
from netlab.controllers.validation import ControllerError, check_deployment, validate_deployment
from netlab.controllers.verbs import (history, rollout_restart, rollout_status, rollout_undo, scale, set_image,
                                      set_paused)

from .ctrl_sim import deployment


def one(errs):
    assert len(errs) == 1, errs
    assert "\n" not in errs[0]
    return errs[0]


def test_valid_deployment_has_no_errors():
    assert validate_deployment(deployment()) == []
    assert validate_deployment(deployment(strategy="Recreate")) == []


@pytest.mark.parametrize("surge,unavail", [(0, 0), ("0%", "0%"), (0, "0%")])
def test_max_surge_and_max_unavailable_both_zero(surge, unavail):
    msg = one(validate_deployment(deployment(surge=surge, unavailable=unavail)))
    assert msg.startswith('Deployment "web" in namespace "default": spec.strategy.rollingUpdate.maxUnavailable: '
                          "Invalid value")
    assert "may not be 0 when `maxSurge` is 0" in msg and "set maxSurge or maxUnavailable to at least 1" in msg
    with pytest.raises(ControllerError) as e:
        check_deployment(deployment(surge=surge, unavailable=unavail))
    assert e.value.exit_code == 1


def test_rounding_to_zero_is_not_a_validation_error():
    # 1% of 2 rounds down to 0, but the spec is not literally 0: Kubernetes accepts it (and uses 1)
    assert validate_deployment(deployment(replicas=2, surge=0, unavailable="1%")) == []
    assert du.max_unavailable(deployment(replicas=2, surge=0, unavailable="1%")) == 1


def test_negative_replicas():
    msg = one(validate_deployment(deployment(replicas=-1)))
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in msg


def test_unknown_probe_handler():
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"httpGett": {"port": 80}, "periodSeconds": 1}
    msg = one(validate_deployment(d))
    assert 'spec.template.spec.containers[0].readinessProbe.httpGett: Unsupported value: "httpGett"' in msg
    assert '"exec", "grpc", "httpGet", "tcpSocket"' in msg
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"periodSeconds": 1}
    assert "must specify a handler type" in one(validate_deployment(d))
    d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = {"tcpSocket": {"port": 80}, "successThreshold": 2}
    d["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    assert "livenessProbe.successThreshold: Invalid value: 2: must be 1" in one(validate_deployment(d))


def test_selector_must_match_template():
    d = deployment()
    d["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    assert "`selector` does not match template `labels`" in one(validate_deployment(d))


def test_scale_of_something_not_scalable():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    with pytest.raises(ControllerError, match="cannot scale service/web: a Service has no replicas; scale a "
                                              "Deployment, ReplicaSet or StatefulSet instead"):
        scale(svc, 3)
    with pytest.raises(ControllerError, match="spec.replicas: Invalid value: -2"):
        scale(deployment(), -2)
    d = deployment()
    assert scale(d, 9)["spec"]["replicas"] == 9 and d["spec"]["replicas"] == 6


def _rs(rev, image):
    return {"kind": "ReplicaSet", "metadata": {"name": f"web-{rev}", "annotations": {du.REVISION: str(rev), "note": image},
                                               "ownerReferences": [{"uid": "u", "controller": True}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", du.HASH_LABEL: f"h{rev}"}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def test_rollout_undo_to_missing_revision_and_previous():
    d = deployment(image="v3")
    d["metadata"]["uid"] = "u"
    rss = [_rs(1, "v1"), _rs(2, "v2"), _rs(3, "v3")]
    d["spec"]["template"] = {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "app", "image": "v3"}]}}
    with pytest.raises(ControllerError, match=r"unable to find specified revision 7 in history of deployment/web; "
                                              r"revisions are: 1, 2, 3"):
        rollout_undo(d, rss, 7)
    out, msg = rollout_undo(d, rss)
    assert msg == "deployment.apps/web rolled back"
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "v2"
    assert du.HASH_LABEL not in out["spec"]["template"]["metadata"]["labels"]
    assert out["metadata"]["annotations"]["note"] == "v2"
    out, msg = rollout_undo(d, rss, 1)
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "v1"
    _, msg = rollout_undo(d, rss, 3)
    assert msg == "deployment.apps/web skipped rollback (current template already matches revision 3)"
    with pytest.raises(ControllerError, match='no rollout history found for deployment "web"'):
        rollout_undo(d, [_rs(1, "v3")])
    assert [r for r, _ in history(d, rss)] == [1, 2, 3]


def test_rollout_status_messages_and_deadline():
    d = deployment(replicas=3)
    d["metadata"]["generation"] = 2
    d["status"] = {"observedGeneration": 1}
    assert rollout_status(d) == ("Waiting for deployment spec update to be observed...", False)
    d["status"] = {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}
    assert rollout_status(d) == ('Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have '
                                 "been updated...", False)
    d["status"].update(updatedReplicas=3)
    assert rollout_status(d) == ('Waiting for deployment "web" rollout to finish: 1 old replicas are pending '
                                 "termination...", False)
    d["status"].update(replicas=3, availableReplicas=2)
    assert rollout_status(d) == ('Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are '
                                 "available...", False)
    d["status"].update(availableReplicas=3)
    assert rollout_status(d) == ('deployment "web" successfully rolled out', True)
    d["status"]["conditions"] = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    with pytest.raises(ControllerError, match='deployment "web" exceeded its progress deadline') as e:
        rollout_status(d)
    assert e.value.exit_code == 1


def test_restart_pause_resume_set_image():
    d = deployment()
    r, msg = rollout_restart(d, 1_800_000_000.5)
    assert msg == "deployment.apps/web restarted"
    assert r["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == "2027-01-15T08:00:00Z"
    p, msg = set_paused(d, True)
    assert p["spec"]["paused"] is True and msg == "deployment.apps/web paused"
    with pytest.raises(ControllerError, match="already paused"):
        set_paused(p, True)
    with pytest.raises(ControllerError, match="can't restart paused deployment"):
        rollout_restart(p, 0)
    u, msg = set_paused(p, False)
    assert "paused" not in u["spec"] and msg == "deployment.apps/web resumed"
    i, msg = set_image(d, {"app": "v9"})
    assert i["spec"]["template"]["spec"]["containers"][0]["image"] == "v9" and msg == "deployment.apps/web image updated"
    with pytest.raises(ControllerError, match='unable to find container named "nope"'):
        set_image(d, {"nope": "x"})


def test_defaults_as_the_api_server_stores_them():
    from netlab.controllers.validation import default_deployment
    d = deployment()
    d["spec"].pop("replicas")
    d["spec"].pop("strategy")
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"port": 8080}}
    out = default_deployment(d)
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert (out["spec"]["revisionHistoryLimit"], out["spec"]["progressDeadlineSeconds"]) == (10, 600)
    ps = out["spec"]["template"]["spec"]
    assert (ps["restartPolicy"], ps["terminationGracePeriodSeconds"]) == ("Always", 30)
    assert ps["containers"][0]["readinessProbe"] == {"httpGet": {"port": 8080}, "timeoutSeconds": 1,
                                                     "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert default_deployment(out) == out  # idempotent
    assert "strategy" not in d["spec"]  # the input is not changed
    assert validate_deployment(out) == []


def test_history_lines_and_undo_of_a_paused_deployment():
    from netlab.controllers.verbs import history_lines
    d = deployment()
    d["metadata"]["uid"] = "u"
    rss = [_rs(1, "v1"), _rs(2, "v2")]
    rss[1]["metadata"]["annotations"]["kubernetes.io/change-cause"] = "kubectl set image deploy/web app=v2"
    assert history_lines(d, rss) == ["deployment.apps/web", "REVISION  CHANGE-CAUSE", "1         <none>",
                                     "2         kubectl set image deploy/web app=v2"]
    d["spec"]["paused"] = True
    with pytest.raises(ControllerError, match="you cannot rollback a paused deployment; resume it first"):
        rollout_undo(d, rss)


def test_wait_for_conditions():
    from netlab.controllers.verbs import wait_for
    d = deployment()
    d["status"] = {"conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "False"}]}
    assert wait_for(d, "condition=Available") == (True, "deployment.apps/web condition met")
    assert wait_for(d, "condition=available=true")[0] is True
    assert wait_for(d, "condition=Progressing")[0] is False
    assert wait_for(d, "condition=Progressing=False")[0] is True
    assert wait_for(None, "delete") == (True, "condition met") and wait_for(d, "delete")[0] is False
    with pytest.raises(ControllerError, match='unrecognized condition: "ready"'):
        wait_for(d, "ready")
