"""kubectl taint's decisions (netlab/controllers/taints.py): its arguments and a node's new taints."""
import pytest

from netlab.controllers import taints
from netlab.controllers.validation import ControllerError
from netlab.errors import SpecError

NOW = "2027-01-01T00:00:00Z"


def node(*ts):
    return {"kind": "Node", "metadata": {"name": "n1"}, "spec": {"taints": [dict(t) for t in ts]}}


def test_arguments_are_read_as_kubectl_reads_them():
    assert taints.parse(["a=b:NoSchedule", "c:NoExecute", "d:PreferNoSchedule-", "e-", "f=g:NoSchedule-"]) == (
        [{"key": "a", "value": "b", "effect": "NoSchedule"}, {"key": "c", "effect": "NoExecute"}],
        [{"key": "d", "effect": "PreferNoSchedule"}, {"key": "e"}, {"key": "f", "effect": "NoSchedule"}])
    assert [taints.is_taint(a) for a in ("n1", "node", "a=b:NoSchedule", "k:NoExecute", "k-", "-")] == [
        False, False, True, True, True, False]


@pytest.mark.parametrize("arg, problem", [
    ("a=b", "needs an effect"), ("a", "needs an effect"), ("a:Sometimes", "invalid taint effect: Sometimes"),
    ("a:b:NoSchedule", "more than one ':'"), ("a=b=c:NoSchedule", "more than one '='"),
    ("-a:NoSchedule", "invalid key"), ("a=" + "v" * 64 + ":NoSchedule", "invalid value"),
])
def test_a_malformed_taint_is_one_line_exit_2(arg, problem):
    with pytest.raises(SpecError) as e:
        taints.parse([arg])
    assert problem in str(e.value) and arg in str(e.value) and "\n" not in str(e.value)
    assert e.value.exit_code == 2


def test_the_same_key_and_effect_twice_is_refused():
    with pytest.raises(SpecError, match="duplicated taints"):
        taints.parse(["a=1:NoSchedule", "a=2:NoSchedule"])
    assert len(taints.parse(["a=1:NoSchedule", "a=1:NoExecute"])[0]) == 2   # another effect: another taint


def test_adding_removing_and_kubectls_words():
    old = {"key": "old", "effect": "NoSchedule"}
    add, rem = taints.parse(["new=x:NoExecute"])
    new, word = taints.retaint(node(old), add, rem, False, NOW)
    assert (new, word) == ([{"key": "new", "value": "x", "effect": "NoExecute", "timeAdded": NOW}, old], "tainted")
    assert taints.retaint(node(old), *taints.parse(["old-"]), False, NOW) == ([], "untainted")
    assert taints.retaint(node(old), *taints.parse(["old:NoSchedule-", "b:NoSchedule"]), False, NOW) == (
        [{"key": "b", "effect": "NoSchedule"}], "modified")
    # a key removed without an effect: every effect of it
    both = node(old, {"key": "old", "effect": "NoExecute"}, {"key": "keep", "effect": "NoSchedule"})
    assert taints.retaint(both, *taints.parse(["old-"]), False, NOW) == (
        [{"key": "keep", "effect": "NoSchedule"}], "untainted")


def test_an_existing_key_and_effect_needs_overwrite_and_a_missing_removal_is_an_error():
    old = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    with pytest.raises(ControllerError, match="node n1 already has dedicated taint.s. with same effect.s. and "
                                              "--overwrite is false"):
        taints.retaint(node(old), *taints.parse(["dedicated=web:NoSchedule"]), False, NOW)
    assert taints.retaint(node(old), *taints.parse(["dedicated=web:NoSchedule"]), True, NOW) == (
        [dict(old, value="web")], "modified")
    with pytest.raises(ControllerError, match='taint "gone:NoExecute" not found'):
        taints.retaint(node(old), *taints.parse(["gone:NoExecute-"]), False, NOW)
    with pytest.raises(ControllerError, match='taint "dedicated:NoExecute" not found'):
        taints.retaint(node(old), *taints.parse(["dedicated:NoExecute-"]), False, NOW)
