"""The DNS benchmark's dnsmasq peer (benchmarks/dns_peer.py): its configuration, rendered from netlab's
zone dict, is golden-tested, and read back as dnsmasq reads it, it serves exactly the zone's A, AAAA,
SRV, PTR, CNAME and TXT records. No root."""
from __future__ import annotations

import collections
import ipaddress
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import dns_mix  # noqa: E402
import dns_peer  # noqa: E402

from netlab.dns.zone import DnsSettings, render_zone  # noqa: E402

from . import dns_objects, golden  # noqa: E402

SETTINGS = DnsSettings(reverse_cidrs=("10.96.0.0/12", "10.244.0.0/16"))


def served(files: dict[str, str]) -> dict[tuple[str, str], set[str]]:
    """What dnsmasq answers from these files, as {(name, type): {rdata}} (names without the final dot):
    hosts lines give A/AAAA of every name and the PTR of the first; ptr-record= replaces the hosts file's
    PTR of that name."""
    out: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    ptr_records: dict[str, set[str]] = collections.defaultdict(set)
    for line in files["hosts"].splitlines():
        addr, *names = line.split()
        for n in names:
            out[(n, "AAAA" if ":" in addr else "A")].add(addr)
        out[(ipaddress.ip_address(addr).reverse_pointer, "PTR")].add(names[0])
    for line in files["dnsmasq.conf"].splitlines():
        key, _, value = line.partition("=")
        if key == "srv-host":
            name, target, port, prio, weight = value.split(",")
            out[(name, "SRV")].add(f"{prio} {weight} {port} {target}")
        elif key == "ptr-record":
            name, target = value.split(",")
            ptr_records[name].add(target)
        elif key == "cname":
            name, target = value.split(",")
            out[(name, "CNAME")].add(target)
        elif key == "txt-record":
            name, text = value.split(",", 1)
            out[(name, "TXT")].add(text.strip('"'))
    for name, targets in ptr_records.items():
        out[(name, "PTR")] = targets
    return dict(out)


def zone_records(zone: dict) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for owner, _ttl, rtype, rdata in zone["records"]:
        if rtype not in ("SOA", "NS"):
            out[(owner.rstrip("."), rtype)].add(dns_mix.canonical(rtype, rdata))
    return dict(out)


def test_golden():
    """netlab's zone tests' objects (tests/unit/dns_objects.py): every kind of record, small."""
    files = dns_peer.render_dnsmasq(render_zone(dns_objects.objects(), dns_objects.SETTINGS), "/run/bench-dns")
    assert served(files) == zone_records(render_zone(dns_objects.objects(), dns_objects.SETTINGS))
    golden.check("dns_peer_dnsmasq", "".join(f"### {name}\n{text}" for name, text in sorted(files.items())),
                 "dnsmasq configuration differs")


def test_the_peer_serves_the_zones_records():
    zone = render_zone(dns_mix.cluster_objects(namespaces=6, services_per_namespace=20), SETTINGS)
    files = dns_peer.render_dnsmasq(zone, "/tmp/x")
    assert served(files) == zone_records(zone)
    conf = files["dnsmasq.conf"].splitlines()
    assert "addn-hosts=/tmp/x/hosts" in conf and "local=/cluster.local/" in conf and "no-resolv" in conf
    assert not any(line.startswith(("server=", "host-record=")) for line in conf)    # nothing forwarded
    assert conf[-1] == "# not served by this peer: 1 NS, 1 SOA"


def test_a_ptr_that_is_not_the_addresses_name_is_a_ptr_record():
    zone = {"domain": "cluster.local", "ttl": 30, "reverse": [], "records": [
        ["a.ns.svc.cluster.local.", 30, "A", "10.96.0.20"],
        ["b.ns.svc.cluster.local.", 30, "A", "10.96.0.20"],
        ["20.0.96.10.in-addr.arpa.", 30, "PTR", "b.ns.svc.cluster.local."],       # the second name: put first
        ["21.0.96.10.in-addr.arpa.", 30, "PTR", "c.ns.svc.cluster.local."],       # no A: a ptr-record
        ["x.ns.svc.cluster.local.", 30, "A", "10.244.0.5"],
        ["5.0.244.10.in-addr.arpa.", 30, "PTR", "p.x.ns.svc.cluster.local."],     # two PTRs: ptr-records
        ["5.0.244.10.in-addr.arpa.", 30, "PTR", "q.y.ns.svc.cluster.local."],
    ]}
    files = dns_peer.render_dnsmasq(zone, "/d")
    assert files["hosts"] == "10.96.0.20 b.ns.svc.cluster.local a.ns.svc.cluster.local\n" \
                             "10.244.0.5 x.ns.svc.cluster.local\n"
    assert served(files) == zone_records(zone)


def test_reverse_zones_cover_the_subnet_in_whole_labels():
    assert dns_peer.reverse_zones("10.244.0.0/16") == ["244.10.in-addr.arpa"]
    z = dns_peer.reverse_zones("10.96.0.0/12")
    assert len(z) == 16 and z[0] == "96.10.in-addr.arpa" and z[-1] == "111.10.in-addr.arpa"
    assert dns_peer.reverse_zones("10.0.0.0/8") == ["10.in-addr.arpa"]
    assert dns_peer.reverse_zones("fd00::/8") == ["d.f.ip6.arpa"]
