"""DaemonSet documents: accepted as Kubernetes accepts them, refused with one line naming the
document, the field and the fix; stored with the API server's defaults."""

import pytest

from netlab.errors import SpecError
from netlab.live.objects import scenario_objects, with_defaults

from .scenarios import load


def ds(**spec):
    doc = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
           "spec": {"selector": {"matchLabels": {"app": "agent"}},
                    "template": {"metadata": {"labels": {"app": "agent"}},
                                 "spec": {"containers": [{"name": "a"}]}}}}
    doc["spec"].update(spec)
    return doc


def test_a_daemonset_is_accepted_and_stored_with_defaults():
    sc = load(ds(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}},
                 minReadySeconds=3, revisionHistoryLimit=4))
    (obj,) = [o for o in scenario_objects(sc) if o["kind"] == "DaemonSet"]
    stored = with_defaults(obj)
    assert stored["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 0}}
    assert stored["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    plain = with_defaults([o for o in scenario_objects(load(ds())) if o["kind"] == "DaemonSet"][0])
    assert plain["spec"]["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}
    assert plain["spec"]["revisionHistoryLimit"] == 10
    assert load(ds(updateStrategy={"type": "OnDelete"})).documents


@pytest.mark.parametrize("doc, line", [
    (dict(ds(), spec=dict(ds()["spec"], template={"metadata": {"labels": {"app": "other"}},
                                                  "spec": {"containers": [{"name": "a"}]}})),
     "DaemonSet default/agent: spec.selector.matchLabels app=agent does not match spec.template.metadata.labels; "
     "the selector must match the template's labels"),
    (ds(updateStrategy={"type": "Rolling"}),
     "DaemonSet default/agent: spec.updateStrategy.type"),
    (ds(updateStrategy={"rollingUpdate": {"maxUnavailable": 0}}),
     "DaemonSet default/agent: spec.updateStrategy.rollingUpdate.maxUnavailable may not be 0 when maxSurge is 0; "
     "set maxUnavailable or maxSurge to at least 1"),
    (ds(updateStrategy={"rollingUpdate": {"maxUnavailable": "x"}}),
     "DaemonSet default/agent: spec.updateStrategy.rollingUpdate.maxUnavailable must be a non-negative number or "
     "a percentage, not 'x'; write e.g. 1 or 10%"),
    (ds(updateStrategy={"type": "OnDelete", "rollingUpdate": {"maxUnavailable": 1}}),
     "DaemonSet default/agent: spec.updateStrategy.rollingUpdate may not be given when type is OnDelete"),
    (ds(minReadySeconds=-1), "DaemonSet default/agent: spec.minReadySeconds"),
])
def test_bad_daemonsets_are_refused_in_one_line(doc, line):
    with pytest.raises(SpecError) as e:
        load(doc)
    assert str(e.value).startswith(line), str(e.value)
    assert "\n" not in str(e.value)
