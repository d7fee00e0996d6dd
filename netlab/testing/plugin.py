"""netlab's pytest plugin: labs as fixtures, for suites that test network behaviour.

Installed with netlab (the `netlab` pytest11 entry point; or `-p netlab.testing.plugin`). It gives:

* `netlab_lab`: a lab (netlab.Lab, up) for one test, taken down after it whatever happened. What it
  is comes from the closest `@pytest.mark.netlab_lab(...)` marker (test, class or module):
  `scenario="file.yaml"` (relative to the test file's directory) or `objects=[{...}, ...]`, neither:
  the built-in default lab; `proxy_mode="ipvs"`; `scope="module"` or `"session"`: tests asking for the
  same lab share one, taken down at the end of the module or session.
* `netlab_lab_module`: one lab for the module (from the module's `pytestmark` marker).
* `netlab_lab_session`: one lab for the session (`--netlab-scenario FILE`, ini `netlab_scenario`).
* `netlab_labs`: a factory, `netlab_labs(scenario=..., objects=..., proxy_mode=...)`, for several labs in
  one test (all taken down after it).
* The `netlab` marker: a test that needs a lab but uses none of these fixtures. A test that uses them
  or has the marker is skipped, with the reason, when not run as root or a tool netlab needs is missing.

Every lab gets a unique name: the prefix (`--netlab-prefix`, ini `netlab_prefix`, default `pt-`) and
8 random hex digits. At the end of the session the plugin checks that none of the labs it made is
left (namespaces or state): a leak fails the run, names the labs, and they are then removed.

Nothing here acts on a test that does not use its fixtures or marker, and nothing of netlab's kernel
layer is imported until a lab is made.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from typing import Any

import pytest

DEFAULT_PREFIX = "pt-"
TOOLS = ("ip", "nsenter", "unshare", "setpriv", "iptables")
FIXTURES = ("netlab_lab", "netlab_lab_module", "netlab_lab_session", "netlab_labs")
SCOPES = ("function", "module", "session")
_NAME_LEN = 24          # netlab's longest lab name (spec.limits.MAX_LAB_NAME)
_SUFFIX_LEN = 8

_made = pytest.StashKey[set]()          # names of the labs this session made
_prefix = pytest.StashKey[str]()


# ------------------------------------------------------------------ pure parts (unit-tested)

def check_prefix(prefix: str) -> str | None:
    """Why `prefix` cannot start lab names, or None."""
    if len(prefix) > _NAME_LEN - _SUFFIX_LEN:
        return f"--netlab-prefix {prefix!r} is longer than {_NAME_LEN - _SUFFIX_LEN} characters"
    if not re.fullmatch(r"[a-z0-9][-a-z0-9]*", prefix):
        return (f"--netlab-prefix {prefix!r} is not the start of a lab name: use lowercase letters, digits and '-', "
                "starting with a letter or digit")
    return None


def unique_name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(_SUFFIX_LEN // 2)}"


def missing_requirements(euid: int | None = None, which=shutil.which) -> str | None:
    """Why a lab cannot be made here (the skip reason), or None."""
    if (os.geteuid() if euid is None else euid) != 0:
        return ("netlab labs need root (they are real network namespaces): run the tests as root, "
                "e.g. sudo -E python -m pytest")
    missing = [t for t in TOOLS if which(t) is None]
    if missing:
        return f"netlab needs {', '.join(missing)}, not found on PATH: install them (netlab's scripts/setup)"
    return None


@dataclass(frozen=True)
class LabSpec:
    """What a lab is made of: a scenario file (absolute path), objects, or neither (the default lab)."""
    scenario: str | None = None
    objects: str | None = None       # the objects as JSON text (comparable, hashable)
    proxy_mode: str | None = None
    scope: str = "function"

    @classmethod
    def from_marker(cls, args: tuple, kwargs: dict[str, Any], base_dir: str) -> LabSpec:
        """From `netlab_lab(scenario=..., objects=..., proxy_mode=..., scope=...)` (the scenario may be the
        one positional argument); a relative scenario path is taken from `base_dir` (the test file's)."""
        kwargs = dict(kwargs)
        if args:
            if len(args) > 1 or "scenario" in kwargs:
                raise pytest.UsageError("netlab_lab marker: give at most one positional argument, the scenario file")
            kwargs["scenario"] = args[0]
        unknown = set(kwargs) - {"scenario", "objects", "proxy_mode", "scope"}
        if unknown:
            raise pytest.UsageError(f"netlab_lab marker: unknown argument(s) {', '.join(sorted(unknown))}; "
                                    "it takes scenario, objects, proxy_mode and scope")
        scenario, objects = kwargs.get("scenario"), kwargs.get("objects")
        if scenario is not None and objects is not None:
            raise pytest.UsageError("netlab_lab marker: give scenario or objects, not both")
        scope = kwargs.get("scope") or "function"
        if scope not in SCOPES:
            raise pytest.UsageError(f"netlab_lab marker: scope {scope!r} is not one of {', '.join(SCOPES)}")
        if scenario is not None:
            scenario = os.path.normpath(os.path.join(base_dir, os.fspath(scenario)))
        return cls(scenario, json.dumps(objects, sort_keys=True) if objects is not None else None,
                   kwargs.get("proxy_mode"), scope)

    def make(self, name: str):
        """The (not yet up) netlab.Lab of this spec, named `name`."""
        from netlab.api import Lab
        if self.objects is not None:
            return Lab.from_objects(json.loads(self.objects), name, proxy_mode=self.proxy_mode)
        if self.scenario is not None:
            return Lab.from_file(self.scenario, name, proxy_mode=self.proxy_mode)
        from importlib import resources
        path = resources.files("netlab").joinpath("data/default.yaml")
        return Lab.from_file(str(path), name, proxy_mode=self.proxy_mode)


def leaked(made: set[str], namespaces_of) -> dict[str, list[str]]:
    """The labs of `made` that still have namespaces (`namespaces_of(name)` lists them)."""
    out = {}
    for name in sorted(made):
        left = namespaces_of(name)
        if left:
            out[name] = list(left)
    return out


# ------------------------------------------------------------------ hooks

def pytest_addoption(parser) -> None:
    group = parser.getgroup("netlab", "netlab labs (netlab.testing.plugin)")
    group.addoption("--netlab-prefix", default=None, metavar="PREFIX",
                    help=f"Start of the names of the labs the netlab fixtures make (default {DEFAULT_PREFIX}).")
    group.addoption("--netlab-scenario", default=None, metavar="FILE",
                    help="Scenario of the netlab_lab_session fixture (default: netlab's built-in lab).")
    parser.addini("netlab_prefix", "Start of the names of the labs the netlab fixtures make.", default="")
    parser.addini("netlab_scenario", "Scenario of the netlab_lab_session fixture.", default="")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "netlab_lab(scenario=None, objects=None, proxy_mode=None, scope='function'): "
                                       "the lab the netlab_lab fixture brings up (netlab.testing.plugin)")
    config.addinivalue_line("markers", "netlab: the test needs netlab labs (root, netlab's tools); skipped otherwise")
    prefix = config.getoption("netlab_prefix") or config.getini("netlab_prefix") or DEFAULT_PREFIX
    problem = check_prefix(prefix)
    if problem:
        raise pytest.UsageError(problem)
    config.stash[_prefix] = prefix
    config.stash[_made] = set()


def _uses_netlab(item) -> bool:
    return bool(set(getattr(item, "fixturenames", ())) & set(FIXTURES)) or item.get_closest_marker("netlab") is not None


def pytest_collection_modifyitems(config, items) -> None:
    mine = [item for item in items if _uses_netlab(item)]
    if not mine:
        return
    reason = missing_requirements()
    if reason:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_sessionfinish(session, exitstatus) -> None:
    made = session.config.stash.get(_made, set())
    if not made:
        return
    from netlab.dataplane import lab as labmod
    left = leaked(made, labmod.lab_namespaces)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"lab {name}: {len(ns)} namespaces left ({', '.join(ns[:3])}{' ...' if len(ns) > 3 else ''})"
             for name, ns in left.items()]
    for name in left:
        try:
            labmod.down(name)
            lines.append(f"lab {name}: removed now")
        except Exception as e:   # noqa: BLE001 - reported, the run fails anyway
            lines.append(f"lab {name}: could not be removed ({e}); run: sudo netlab down {name}")
    if reporter is not None:
        reporter.write_line("NETLAB LEAK CHECK FAILED: labs made by the netlab fixtures were left behind:",
                            red=True, bold=True)
        for line in lines:
            reporter.write_line(f"  {line}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ------------------------------------------------------------------ fixtures

def _base_dir(node) -> str:
    path = getattr(node, "path", None)
    return str(path.parent) if path is not None else os.getcwd()


def _spec_of(node) -> LabSpec:
    marker = node.get_closest_marker("netlab_lab")
    if marker is None:
        return LabSpec()
    return LabSpec.from_marker(marker.args, marker.kwargs, _base_dir(node))


class _Labs:
    """The labs of one scope: made on first use (one per LabSpec), all taken down when the scope ends."""

    def __init__(self, config):
        self.config = config
        self.made: list = []
        self.by_spec: dict[LabSpec, Any] = {}

    def get(self, spec: LabSpec):
        if spec not in self.by_spec:
            self.by_spec[spec] = self.make(spec)
        return self.by_spec[spec]

    def make(self, spec: LabSpec):
        reason = missing_requirements()
        if reason:
            pytest.skip(reason)
        name = unique_name(self.config.stash[_prefix])
        lab = spec.make(name)          # bad input: an error here, before anything is made
        self.config.stash[_made].add(name)
        self.made.append(lab)
        lab.up()                       # (a lab half built by a failing up is removed by up itself)
        return lab

    def close(self) -> None:
        errors = []
        for lab in self.made:
            try:
                lab.down()
            except Exception as e:   # noqa: BLE001 - every lab is taken down; the first error is raised
                errors.append(e)
        self.made.clear()
        self.by_spec.clear()
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def _netlab_session_labs(request):
    labs = _Labs(request.config)
    yield labs
    labs.close()


@pytest.fixture(scope="module")
def _netlab_module_labs(request):
    labs = _Labs(request.config)
    yield labs
    labs.close()


@pytest.fixture
def netlab_lab(request):
    """A lab (netlab.Lab, up) as the closest `netlab_lab` marker describes it; removed after the test
    (with scope="module"/"session" in the marker: shared, removed after the module/session)."""
    spec = _spec_of(request.node)
    if spec.scope == "module":
        yield request.getfixturevalue("_netlab_module_labs").get(spec)
        return
    if spec.scope == "session":
        yield request.getfixturevalue("_netlab_session_labs").get(spec)
        return
    labs = _Labs(request.config)
    try:
        yield labs.make(spec)
    finally:
        labs.close()


@pytest.fixture(scope="module")
def netlab_lab_module(request, _netlab_module_labs):
    """One lab for the whole module, as its `pytestmark = pytest.mark.netlab_lab(...)` describes it."""
    return _netlab_module_labs.get(_spec_of(request.node))


@pytest.fixture(scope="session")
def netlab_lab_session(request, _netlab_session_labs):
    """One lab for the whole session: --netlab-scenario FILE (ini netlab_scenario), else the default lab."""
    path = request.config.getoption("netlab_scenario") or request.config.getini("netlab_scenario") or None
    spec = LabSpec(os.path.abspath(path)) if path else LabSpec()
    return _netlab_session_labs.get(spec)


@pytest.fixture
def netlab_labs(request):
    """A factory: `netlab_labs(scenario=..., objects=..., proxy_mode=...)` makes a lab, up; every lab
    it made is removed after the test."""
    labs = _Labs(request.config)
    base = _base_dir(request.node)

    def make(scenario: str | None = None, *, objects: list[dict] | None = None, proxy_mode: str | None = None):
        kwargs = {"scenario": scenario, "objects": objects, "proxy_mode": proxy_mode}
        return labs.make(LabSpec.from_marker((), {k: v for k, v in kwargs.items() if v is not None}, base))
    try:
        yield make
    finally:
        labs.close()
