"""Change lists are data: filtered by their fields, printed as the lines `up -v` shows."""
from __future__ import annotations

from netlab.dataplane.changes import Change, Changes


def test_a_change_prints_where_then_what():
    assert str(Change("link", "cni0", "create", "bridge cni0", "nl.t.node.a")) == "nl.t.node.a: bridge cni0"
    assert str(Change("namespace", "nl.t.node.a", "create", "namespace nl.t.node.a")) == "namespace nl.t.node.a"
    c = Change("container", "default/p/c", "start", "container c started (pid 7)", "nl.t.pod.default.p", "pod default/p")
    assert str(c) == "pod default/p: container c started (pid 7)"


def test_changes_are_filtered_by_fields_and_listed_as_text():
    ch = Changes()
    ch.add(Change("namespace", "nl.t.node.a", "create", "namespace nl.t.node.a"))
    ch.add(Change("link", "cni0", "create", "bridge cni0", "nl.t.node.a"))
    ch.add("nl.t.node.a: iptables 3 lines")  # a plain line is kept, as kind "other"
    assert len(ch) == 3
    assert [c.object for c in ch.records if c.kind == "namespace" and c.action == "create"] == ["nl.t.node.a"]
    assert ch.records[2].kind == "other"
    assert ch.items == ["namespace nl.t.node.a", "nl.t.node.a: bridge cni0", "nl.t.node.a: iptables 3 lines"]
