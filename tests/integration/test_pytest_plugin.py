"""The example suite (examples/pytest) run under netlab's pytest plugin, as a user runs it: it passes on
real labs; a copy with a wrong expectation fails, naming the test; as an unprivileged user every test is
skipped with the reason; and no lab of the plugin is left behind."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from netlab.dataplane import lab as labmod

from .conftest import nobody_uid

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pytest"


def run_pytest(where: Path, *args: str, user: str | None = None,
               prefix: str = "t-plug-") -> subprocess.CompletedProcess:
    """pytest on `where` in a fresh process, the plugin loaded by its entry point name (`-p netlab`, which
    works with and without PYTEST_DISABLE_PLUGIN_AUTOLOAD), labs named `prefix`... (t-: the project's own
    leak check watches their processes too)."""
    argv = [sys.executable, "-m", "pytest", str(where), "-p", "netlab", "-p", "no:cacheprovider", "-rfs",
            "--netlab-prefix", prefix, "-o", "addopts=", "--rootdir", str(where), *args]
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=where, env=env)


def copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def plugin_labs(prefix: str) -> list[str]:
    return [n for n in labmod.labs() if n.startswith(prefix)]


def test_the_example_suite_passes_under_the_plugin(tmp_path):
    where = copy_example(tmp_path / "example")
    r = run_pytest(where, "-v", prefix="t-plug-ok-")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    passed = re.findall(r"::(test_\w+) PASSED", r.stdout)
    assert len(passed) == 5, r.stdout[-3000:]
    assert "NETLAB LEAK CHECK FAILED" not in r.stdout
    assert plugin_labs("t-plug-ok-") == []


def test_a_wrong_expectation_fails_the_suite(tmp_path):
    where = copy_example(tmp_path / "example")
    test = where / "test_example_network.py"
    text = test.read_text()
    wrong = text.replace('assert r.outcome == "denied", r.detail', 'assert r.outcome == "reachable", r.detail')
    assert wrong != text
    test.write_text(wrong)
    r = run_pytest(where, prefix="t-plug-bad-")
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "FAILED test_example_network.py::test_the_policy_denies_the_client_the_database" in r.stdout
    assert "4 passed" in r.stdout and "1 failed" in r.stdout
    assert plugin_labs("t-plug-bad-") == []


def test_a_function_scoped_lab_per_test_and_the_factory(tmp_path):
    where = tmp_path / "own"
    where.mkdir()
    (where / "test_own.py").write_text('''
import pytest
from netlab.dataplane import lab as labmod

OBJS = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo"},
         "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}}]
SEEN = []

@pytest.mark.netlab_lab(objects=OBJS)
def test_one(netlab_lab):
    SEEN.append(netlab_lab.name)
    assert [p.name for p in netlab_lab.get("pods", namespace="default")] == ["solo"]

@pytest.mark.netlab_lab(objects=OBJS)
def test_two(netlab_lab):
    assert netlab_lab.name != SEEN[0] and SEEN[0] not in labmod.labs()   # the first is gone already
    assert netlab_lab.name.startswith("t-plug-fn-") and len(netlab_lab.name) == len("t-plug-fn-") + 8

def test_factory(netlab_labs):
    a, b = netlab_labs(objects=OBJS), netlab_labs(objects=OBJS)
    assert a.name != b.name and {a.name, b.name} <= set(labmod.labs())
    assert a.probe("pod/solo", f"node/{a.get('nodes')[0].name}").ok
''')
    r = run_pytest(where, prefix="t-plug-fn-")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "3 passed" in r.stdout
    assert plugin_labs("t-plug-fn-") == []


def test_the_leak_check_fails_the_run_and_removes_what_was_left(tmp_path):
    where = tmp_path / "leaky"
    where.mkdir()
    (where / "test_leaky.py").write_text('''
import netlab.api

def test_leaves_its_lab(monkeypatch, netlab_labs):
    monkeypatch.setattr(netlab.api.Lab, "down", lambda self: None)   # the fixture's teardown now does nothing
    netlab_labs(objects=[{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                          "spec": {"containers": [{"name": "c"}]}}])
''')
    r = run_pytest(where, prefix="t-plug-leak-")
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 passed" in r.stdout
    assert "NETLAB LEAK CHECK FAILED" in r.stdout
    assert re.search(r"lab t-plug-leak-[0-9a-f]{8}: \d+ namespaces left", r.stdout), r.stdout[-2000:]
    assert re.search(r"lab t-plug-leak-[0-9a-f]{8}: removed now", r.stdout), r.stdout[-2000:]
    assert plugin_labs("t-plug-leak-") == []


def test_without_root_every_test_is_skipped_with_the_reason():
    user = nobody_uid()
    if user is None:
        pytest.skip("no unprivileged user 'nobody' on this machine")
    where = Path(tempfile.mkdtemp(prefix="netlab-plugin-"))
    try:
        copy_example(where / "example")
        for p in [where, *where.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        r = run_pytest(where / "example", user=user, prefix="t-plug-nobody-")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        assert "5 skipped" in r.stdout, r.stdout[-3000:]
        assert "netlab labs need root" in r.stdout
    finally:
        shutil.rmtree(where, ignore_errors=True)
