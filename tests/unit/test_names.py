"""netlab.names: namespace names formatted and parsed in one place."""
from __future__ import annotations

import pytest

from netlab import names

@pytest.mark.parametrize("name,want", [
    ("nl.t.underlay", ("t", "underlay", "", "", "")),
    ("nl.t.external", ("t", "external", "", "", "")),
    ("nl.t.node.w1", ("t", "node", "w1", "", "")),
    ("nl.t.pod.default.web-1", ("t", "pod", "", "default", "web-1")),
    ("nl.t.pod.default.a.b", ("t", "pod", "", "default", "a.b")),
    ("nl.t", None), ("nl.t.mine", None), ("nl.t.pod.x", None), ("nl.t.node.", None), ("x.t.node.a", None),
    ("nl.t.underlay.x", None),
])
def test_netns_names_parse_back(name, want):
    got = names.parse_netns(name)
    assert (None if got is None else (got.lab, got.kind, got.node, got.namespace, got.pod)) == want


def test_netns_names_round_trip_and_labs_do_not_overlap():
    assert names.parse_netns(names.pod_netns("a-b", "ns", "p"), "a-b").pod_key == "ns/p"
    assert names.parse_netns(names.node_netns("a-b", "n"), "a").__class__ is type(None)
    assert names.parse_netns(names.node_netns("a", "n"), "a").node == "n"
