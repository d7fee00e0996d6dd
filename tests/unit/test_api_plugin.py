"""netlab's pytest plugin, its pure parts: lab names, the skip reasons, the marker's arguments, the leak
check, and its registration as the `netlab` pytest11 entry point."""
from __future__ import annotations

import os
from importlib import metadata

import pytest

from netlab.testing import plugin


def test_registered_as_the_netlab_entry_point():
    eps = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "netlab"]
    assert [ep.value for ep in eps] == ["netlab.testing.plugin"]


def test_prefix_and_unique_names():
    assert plugin.check_prefix("pt-") is None and plugin.check_prefix("ci0") is None
    assert "longer than 16" in plugin.check_prefix("a" * 17)
    assert "lowercase letters" in plugin.check_prefix("CI-")
    assert "lowercase letters" in plugin.check_prefix("-x")
    names = {plugin.unique_name("pt-") for _ in range(50)}
    assert len(names) == 50 and all(len(n) == 11 and n.startswith("pt-") for n in names)


def test_skip_reasons():
    everything = lambda tool: f"/usr/bin/{tool}"   # noqa: E731
    assert plugin.missing_requirements(0, everything) is None
    assert "need root" in plugin.missing_requirements(1000, everything)
    reason = plugin.missing_requirements(0, lambda tool: None if tool in ("nsenter", "setpriv") else "/x")
    assert reason.startswith("netlab needs nsenter, setpriv, not found on PATH")


def test_the_marker_arguments(tmp_path):
    spec = plugin.LabSpec.from_marker(("lab.yaml",), {"scope": "module"}, str(tmp_path))
    assert spec == plugin.LabSpec(str(tmp_path / "lab.yaml"), None, None, "module")
    same = plugin.LabSpec.from_marker((), {"scenario": "./lab.yaml", "scope": "module"}, str(tmp_path))
    assert hash(same) == hash(spec) and same == spec          # one shared lab for both
    objs = plugin.LabSpec.from_marker((), {"objects": [{"kind": "Pod", "metadata": {"name": "a"}}],
                                           "proxy_mode": "ipvs"}, str(tmp_path))
    assert objs.scenario is None and objs.proxy_mode == "ipvs" and objs.scope == "function"
    assert plugin.LabSpec.from_marker((), {}, "/") == plugin.LabSpec()
    assert plugin.LabSpec.from_marker((), {"scenario": "/abs/x.yaml"}, "/else").scenario == "/abs/x.yaml"
    for args, kwargs, problem in [((), {"scenario": "a", "objects": []}, "not both"),
                                  ((), {"scope": "class"}, "scope 'class' is not one of"),
                                  ((), {"replicas": 3}, r"unknown argument\(s\) replicas"),
                                  (("a", "b"), {}, "at most one positional argument")]:
        with pytest.raises(pytest.UsageError, match=problem):
            plugin.LabSpec.from_marker(args, kwargs, "/")


def test_a_spec_makes_a_lab_without_bringing_it_up(tmp_path):
    lab = plugin.LabSpec().make("t-unit-default")
    assert lab.name == "t-unit-default" and lab.result is None
    lab = plugin.LabSpec(objects='[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, '
                                 '"spec": {"containers": [{"name": "c"}]}}]').make("t-unit-obj")
    assert [d.name for d in lab.scenario.pods] == ["a"]


def test_the_leak_check():
    left = {"pt-1": ["nl.pt-1.underlay"], "pt-2": []}
    assert plugin.leaked({"pt-1", "pt-2"}, lambda n: left.get(n, [])) == {"pt-1": ["nl.pt-1.underlay"]}
    assert plugin.leaked(set(), lambda n: ["x"]) == {}


def test_the_project_suite_runs_with_the_plugin_loaded(pytestconfig):
    # this very run: the plugin is installed in the venv and loaded (unless autoload is off), and it left
    # the project's own tests alone (their fixtures, markers and leak check are the project's)
    loaded = pytestconfig.pluginmanager.get_plugin("netlab") or pytestconfig.pluginmanager.get_plugin(
        "netlab.testing.plugin")
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        pytest.skip("plugin autoload is off in this run")
    assert loaded is plugin
    assert pytestconfig.stash[plugin._made] == set()
