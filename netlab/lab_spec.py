"""A lab's desired cluster, from its scenario: the pure side of `up` and of every command that reads a
lab (get, exec, probe, logs). Scenario text is parsed and the model built here, never in dataplane/,
which receives a `Cluster` and the previous state and only applies them.

    scenario text ─ spec.parse ─> Scenario ─ model.build (+ previous state) ─> Cluster ─ dataplane.lab.apply
"""
from __future__ import annotations

import sys
from typing import Any

from .errors import NetlabError
from .model.build import build
from .model.objects import Cluster
from .names import repair_command
from .spec.parse import load_text
from .spec.types import PROXY_MODES, Scenario


def desired(scenario: Scenario, prev: dict[str, Any], proxy_mode: str | None = None) -> Cluster:
    """The cluster `up` should make of `scenario`, keeping what `prev` (the lab's state) allocated;
    `proxy_mode` (`up --proxy-mode`) overrides the scenario's."""
    if proxy_mode:
        scenario.networking.proxy_mode = proxy_mode
    return build(scenario, prev)


def up(scenario: Scenario, scenario_text: str, progress=None, proxy_mode: str | None = None, replace: bool = True):
    """Build or reconcile lab `scenario.name` (see `dataplane.lab.apply`); returns its UpResult."""
    from .dataplane import lab as labmod
    from .dataplane import state
    prev = state.load(scenario.name) or {}
    return labmod.apply(desired(scenario, prev, proxy_mode), scenario_text, prev, progress, replace)


def from_state(lab: str, st: dict[str, Any] | None, state_path: str) -> Cluster:
    """The cluster as the last `up` of `lab` decided it, rebuilt from its state `st` (read from
    `state_path`)."""
    if st is None or not st.get("scenario"):
        raise NetlabError(f"lab '{lab}' has no readable state ({state_path}); "
                          f"remove it with: sudo netlab down {lab}")
    scenario = load_text(st["scenario"], st.get("source") or "<state>")
    scenario.name = lab
    if st.get("proxyMode") in PROXY_MODES:  # `up --proxy-mode` overrides the scenario
        scenario.networking.proxy_mode = st["proxyMode"]
    cluster = build(scenario, st)
    if {p.key for p in cluster.pods} != set(st.get("pods", {})):
        raise NetlabError(f"lab '{lab}' was built by another version of netlab (its pods would be named "
                          f"differently now); reconcile it with: {repair_command(lab)}")
    return cluster


def load_cluster(lab: str) -> tuple[Cluster, dict[str, Any]]:
    """The cluster of a lab that exists, and its state."""
    from .dataplane import layout, state
    st = state.load(lab)
    cluster = from_state(lab, st, layout.state_file(lab))
    if st.get("phase") != "ready":
        sys.stderr.write(f"warning: the last 'netlab up' of lab '{lab}' did not finish; what is shown may be "
                         f"incomplete (finish it with: {repair_command(lab)})\n")
    return cluster, st
