"""`netlab annotate` without root: the CLI against a simulated cluster's store (tests/unit/test_kubectl_cli.py's
World). What is checked: kubectl annotate's lines, errors and exit codes, that refused input writes nothing,
that a write asks for the lab's control loop, that the pod annotated is the same pod, and that a Deployment's
kubernetes.io/change-cause reaches `rollout history` through the Deployment controller."""
from __future__ import annotations

import pytest

from netlab.controllers import labeling
from netlab.errors import SpecError

from .test_kubectl_cli import lines
from .test_netpol_cli import POD, world  # noqa: F401 - the fixture: pods a and b in a simulated cluster


APPLIED = "kubectl.kubernetes.io/last-applied-configuration"   # apply's own, on every object applied


def annotations(world, kind, name, ns="default"):
    """The object's annotations but apply's own."""
    return {k: v for k, v in (world.store.get(kind, ns, name)["metadata"].get("annotations") or {}).items()
            if k != APPLIED}


def test_annotate_sets_refuses_overwrite_then_overwrites_and_removes(world):
    uid = world.store.get("Pod", "default", "a")["metadata"]["uid"]
    world.ensured.clear()
    r = world.run("annotate", "pod", "a", "note=hello world = yes", "owner=")
    assert r.exit_code == 0 and lines(r) == ["pod/a annotated"] and world.ensured == ["sim"]
    # the value is everything after the first '=' (spaces and '=' included), and may be empty
    assert annotations(world, "Pod", "a") == {"note": "hello world = yes", "owner": ""}
    # another value without --overwrite: kubectl's error, exit 1, nothing written (not even to the other pod)
    before = world.store.revision()
    r = world.run("annotate", "pods", "b", "a", "x=1", "note=other", settle=False)
    assert r.exit_code == 1 and lines(r) == ["error: --overwrite is false but found the following declared "
                                             "annotation(s): 'note' already has a value (hello world = yes)"]
    assert world.store.revision() == before and annotations(world, "Pod", "b") == {}
    # the same value again: nothing written, and kubectl still says annotated
    r = world.run("annotate", "pod/a", "owner=", settle=False)
    assert r.exit_code == 0 and lines(r) == ["pod/a annotated"] and world.store.revision() == before
    r = world.run("annotate", "pod", "a", "note=other", "--overwrite")
    assert r.exit_code == 0 and annotations(world, "Pod", "a")["note"] == "other"
    r = world.run("annotate", "pod", "a", "note-", "owner-", "gone-")   # a key it does not have: no complaint
    assert r.exit_code == 0 and lines(r) == ["pod/a annotated"] and annotations(world, "Pod", "a") == {}
    assert APPLIED in world.store.get("Pod", "default", "a")["metadata"]["annotations"]   # the others kept
    # the same pod all along: an annotation does not make a pod again
    assert world.store.get("Pod", "default", "a")["metadata"]["uid"] == uid


def test_annotate_selects_with_all_and_a_label_selector(world):
    r = world.run("annotate", "pods", "-l", "pod=b", "team=blue")
    assert r.exit_code == 0 and lines(r) == ["pod/b annotated"]
    assert annotations(world, "Pod", "b") == {"team": "blue"} and annotations(world, "Pod", "a") == {}
    r = world.run("annotate", "pods", "--all", "team=red", "--overwrite")
    assert r.exit_code == 0 and sorted(lines(r)) == ["pod/a annotated", "pod/b annotated"]
    r = world.run("annotate", "pods", "-l", "pod=nothing", "team=x")
    assert r.exit_code == 0 and "No resources found" in r.output


@pytest.mark.parametrize("arg, expected", [
    ("Bad Key=1", "metadata.annotations: invalid key 'Bad Key'"),
    ("_x=1", "metadata.annotations: invalid key '_x'"),
    ("a/b/c=1", "metadata.annotations: invalid key 'a/b/c'"),
    (f"{'k' * 64}=1", "metadata.annotations: invalid key"),
])
def test_annotate_bad_key_is_one_line_exit_2_and_changes_nothing(world, arg, expected):
    before = world.store.revision()
    r = world.run("annotate", "pod", "a", "ok=1", arg, settle=False)
    assert r.exit_code == 2 and world.store.revision() == before
    assert len(lines(r)) == 1 and lines(r)[0].startswith("error: annotation ") and expected in lines(r)[0], r.output


def test_annotate_argument_errors(world):
    r = world.run("annotate", "pod", "a", settle=False)
    assert r.exit_code == 1 and "at least one annotation update is required" in r.output
    r = world.run("annotate", "pod", "a", "x=1", "x-", settle=False)
    assert r.exit_code == 2 and "can not both modify and remove an annotation in the same command" in r.output
    r = world.run("annotate", "pod", "nope", "x=1", settle=False)
    assert r.exit_code == 1 and 'pods "nope" not found' in r.output
    r = world.run("annotate", "pod", "pod/a", "x=1", settle=False)
    assert r.exit_code == 1 and "'netlab annotate pod/a'" in r.output


def test_annotations_over_256_kib_are_refused_whole(world):
    stored = world.store.get("Pod", "default", "a")["metadata"]["annotations"]
    room = 256 * 1024 - sum(len(k) + len(v) for k, v in stored.items()) - len("big")   # keys and values count
    before = world.store.revision()
    r = world.run("annotate", "pod", "a", f"big={'x' * (room + 1)}", settle=False)
    assert r.exit_code == 2 and world.store.revision() == before
    assert "metadata.annotations: Too long: must have at most 262144 bytes, not 262145" in r.output
    r = world.run("annotate", "pod", "a", f"big={'x' * room}")   # exactly the limit
    assert r.exit_code == 0 and len(annotations(world, "Pod", "a")["big"]) == room


def test_change_cause_goes_to_rollout_history_and_needs_no_overwrite(world):
    world.deploy(replicas=2)
    r = world.run("annotate", "deploy/web", "kubernetes.io/change-cause=first")
    assert lines(r) == ["deployment.apps/web annotated"]
    for _ in range(3):
        world.sim.tick(1)
    # the Deployment controller copies the Deployment's annotations to its newest ReplicaSet: revision 1 now
    assert lines(world.run("rollout", "history", "deploy/web")) == [
        "deployment.apps/web", "REVISION  CHANGE-CAUSE", "1         first"]
    # kubectl lets kubernetes.io/change-cause be replaced without --overwrite, and the next revision carries it
    r = world.run("annotate", "deploy/web", "kubernetes.io/change-cause=agnhost 2.54")
    assert r.exit_code == 0, r.output
    assert world.run("set", "image", "deploy/web", "web=agnhost:2.54").exit_code == 0
    for _ in range(10):
        world.sim.tick(31)
    assert lines(world.run("rollout", "history", "deploy/web"))[-1] == "2         agnhost 2.54"


def test_parse_annotations_is_kubectls_reading():
    assert labeling.parse_annotations(["a=1", "b==2", "c=", "d-", "d-"]) == ({"a": "1", "b": "=2", "c": ""}, ["d"])
    with pytest.raises(SpecError, match="invalid annotation format"):
        labeling.parse_annotations(["plain"])
    # a key is checked as the API server checks it: lower-cased first (so upper case passes)
    assert labeling.parse_annotations(["Example.COM/Key=1"]) == ({"Example.COM/Key": "1"}, [])


def test_apply_again_keeps_what_annotate_added(world):
    """kubectl apply merges: an annotation its file never set is not its to remove (as for what scale changed)."""
    assert world.run("annotate", "pod", "a", "team=blue").exit_code == 0
    r = world.run("apply", "-f", world.file(POD % ("a", "a")))
    assert r.exit_code == 0 and lines(r) == ["pod/a unchanged"]
    assert annotations(world, "Pod", "a") == {"team": "blue"}
