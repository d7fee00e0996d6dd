"""An example suite to copy: it tests a lab's network behaviour on real packets.

Run it as root (the labs are real network namespaces), from a venv where netlab is installed (its pytest
plugin is then loaded by itself; with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 add `-p netlab`):

    sudo .venv/bin/python -m pytest examples/pytest
"""
import pytest

# every test of this module shares one lab made from scenario.yaml (next to this file), removed at the end
pytestmark = pytest.mark.netlab_lab(scenario="scenario.yaml", scope="module")


def test_the_service_is_answered_by_a_web_pod(netlab_lab):
    r = netlab_lab.probe("pod/client", "svc/web:80")
    assert r.ok and r.outcome == "reachable", r.detail
    assert r.answered_by in {p.name for p in netlab_lab.get("pods") if p.labels.get("app") == "web"}


def test_the_service_balances_over_every_replica(netlab_lab):
    r = netlab_lab.probe("pod/client", "svc/web:80", count=40)
    assert r.outcome == "reachable", r.detail
    assert len(r.answers) == 2, f"only {sorted(r.answers)} answered"


def test_the_policy_denies_the_client_the_database(netlab_lab):
    r = netlab_lab.probe("pod/client", "svc/db:5432")
    assert r.outcome == "denied", r.detail


def test_a_pod_reaches_the_service_by_its_name(netlab_lab):
    got = netlab_lab.exec("client", ["curl", "-sS", "--max-time", "5", "http://web/hostname"])
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("web-"), got.stdout


def test_a_new_service_is_reachable_once_applied(netlab_lab):
    netlab_lab.apply([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-alt"},
                       "spec": {"selector": {"app": "web"}, "ports": [{"port": 8000, "targetPort": 8080}]}}])
    r = netlab_lab.probe("pod/client", "svc/web-alt:8000")
    assert r.ok and r.outcome == "reachable", r.detail
