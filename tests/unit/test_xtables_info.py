"""The legacy tables' shapes (dataplane.xtables_info): the entry count a table must have for given chains,
checked against counts the kernel reported for real tables, and what `holds` accepts."""
from __future__ import annotations

from netlab.dataplane import xtables_info as xi

NAT_HOOKS = 0b11011      # PREROUTING, INPUT, OUTPUT, POSTROUTING (bits 0, 1, 3, 4)
FILTER_HOOKS = 0b01110   # INPUT, FORWARD, OUTPUT


def shape(hooks: int, entries: int, size: int = 0) -> tuple:
    return (hooks, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, entries, size)


def test_entries_of_counts_rules_policies_and_chain_heads():
    # an empty nat table: four policies and the end of the table (what the kernel reports: 5)
    assert xi.entries_of({}, NAT_HOOKS) == 5
    # built-in chains listed or not, as iptables-save lists them (with their rules)
    assert xi.entries_of({"PREROUTING": [], "OUTPUT": []}, NAT_HOOKS) == 5
    chains = {"PREROUTING": ["-A PREROUTING -j KUBE-SERVICES"], "KUBE-SERVICES": ["-A KUBE-SERVICES -j RETURN"],
              "KUBE-SEP-X": ["-A KUBE-SEP-X -j ACCEPT", "-A KUBE-SEP-X -j DROP"], "EMPTY": []}
    # 4 rules + 4 policies + 3 user chains x (head + RETURN) + the end
    assert xi.entries_of(chains, NAT_HOOKS) == 4 + 4 + 6 + 1
    # the kernel's count for the benchmark's node at 10,000 Services: 110,015 rules, 40,005 user chains
    big = {f"C{i}": [] for i in range(40005)}
    big["C0"] = ["-A C0 -j RETURN"] * 110015
    assert xi.entries_of(big, NAT_HOOKS) == 190030


def test_holds_needs_the_same_tables_and_counts():
    tables = {"nat": {"KUBE-SERVICES": ["-A KUBE-SERVICES -j RETURN"]}, "filter": {}}
    good = (("filter", shape(FILTER_HOOKS, 4)), ("nat", shape(NAT_HOOKS, 8)))
    assert xi.holds(good, tables)
    # a rule added or removed by hand moves the count
    assert not xi.holds((("filter", shape(FILTER_HOOKS, 5)), ("nat", shape(NAT_HOOKS, 8))), tables)
    assert not xi.holds((("filter", shape(FILTER_HOOKS, 4)), ("nat", shape(NAT_HOOKS, 7))), tables)
    # a table the record does not know of (or one it has that the kernel lacks)
    assert not xi.holds(good + (("raw", shape(0b01001, 3)),), tables)
    assert not xi.holds(good[:1], tables)


def test_shapes_are_compared_whole():
    # the identity a sync compares is the tuple itself: any field that moves (size, offsets) counts
    a = (("nat", shape(NAT_HOOKS, 8, 1000)),)
    assert a != (("nat", shape(NAT_HOOKS, 8, 1008)),)
