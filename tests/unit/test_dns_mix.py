"""The DNS benchmark's query mix and expected answers (benchmarks/dns_mix.py) agree with netlab's zone,
and its dnsperf bookkeeping (benchmarks/dns_load.py: output parsing, rcode checks) holds. No root."""
from __future__ import annotations

import collections
import ipaddress
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import dns_load  # noqa: E402
import dns_mix  # noqa: E402

from netlab.dns.zone import DnsSettings, render_zone  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    objects = dns_mix.cluster_objects(namespaces=4, services_per_namespace=20)
    zone = render_zone(objects, DnsSettings(reverse_cidrs=(str(dns_mix.SERVICE_CIDR), str(dns_mix.POD_CIDR))))
    return objects, zone, dns_mix.Expected(zone), dns_mix.query_mix(objects)


def test_every_query_gets_the_rcode_the_builder_means(bench):
    _, _, exp, queries = bench
    wrong = [(q, exp.answer(q.name, q.qtype)) for q in queries if exp.answer(q.name, q.qtype)[0] != q.rcode]
    assert not wrong, wrong[:5]
    kinds = collections.Counter(q.kind for q in queries)
    assert set(kinds) == {"clusterip-a", "clusterip-aaaa-nodata", "headless-a", "hostname-a", "srv", "clusterip-ptr",
                          "endpoint-ptr", "externalname-cname", "txt", "nxdomain-searchpath", "nxdomain-service",
                          "nxdomain-ptr"}
    assert len(set((q.name, q.qtype) for q in queries)) == len(queries)


def test_the_answers_are_the_objects(bench):
    objects, _, exp, queries = bench
    svcs = {f"{s['metadata']['name']}.{s['metadata']['namespace']}.svc.cluster.local": s for s in objects["Service"]}
    ready = collections.defaultdict(set)
    for sl in objects["EndpointSlice"]:
        key = f"{sl['metadata']['labels']['kubernetes.io/service-name']}.{sl['metadata']['namespace']}.svc.cluster.local"
        ready[key] |= {e["addresses"][0] for e in sl["endpoints"] if e["conditions"]["ready"]}
    for q in queries:
        rcode, rdata = exp.answer(q.name, q.qtype)
        if q.kind == "clusterip-a":
            assert rdata == (svcs[q.name]["spec"]["clusterIP"],)
        elif q.kind == "clusterip-aaaa-nodata":
            assert (rcode, rdata) == ("NOERROR", ())
        elif q.kind == "headless-a":
            assert set(rdata) == ready[q.name] and len(rdata) == 3          # the 4th pod is not ready
        elif q.kind == "hostname-a":
            host, _, svc = q.name.partition(".")
            pod = next(p for p in objects["Pod"] if p["metadata"]["name"] == host
                       and svc.startswith(f"{p['spec']['subdomain']}.{p['metadata']['namespace']}."))
            assert rdata == (pod["status"]["podIP"],)
        elif q.kind == "clusterip-ptr":
            ip = str(ipaddress.ip_address(".".join(reversed(q.name.split(".")[:4]))))
            assert [svcs[rdata[0]]["spec"]["clusterIP"]] == [ip]
        elif q.kind == "srv":
            port, _, svc = q.name.split(".", 2)
            want = {p["port"] for p in svcs[svc]["spec"]["ports"] if f"_{p['name']}" == port}
            assert {int(r.split()[2]) for r in rdata} == want and rdata
        elif q.kind == "externalname-cname":
            assert rdata == (svcs[q.name]["spec"]["externalName"],)
        elif q.kind == "txt":
            assert rdata == ("1.1.0",)
        elif q.kind.startswith("nxdomain"):
            assert (rcode, rdata) == ("NXDOMAIN", ())


def test_expected_knows_nodata_from_nxdomain(bench):
    _, _, exp, _ = bench
    assert exp.answer("svc.cluster.local", "A") == ("NOERROR", ())                  # an empty non-terminal
    assert exp.answer("svc-000.default.svc.cluster.local", "TXT") == ("NOERROR", ())
    assert exp.answer("nothing.default.svc.cluster.local", "A") == ("NXDOMAIN", ())
    assert exp.answer("SVC-000.Default.svc.cluster.local.", "A")[1] == ("10.96.0.11",)


def test_the_cold_mix_is_the_mix_in_random_case(bench):
    _, _, exp, queries = bench
    cold = dns_mix.cold_mix(queries, 2000)
    known = {(q.name, q.qtype) for q in queries}
    assert all((q.name.lower(), q.qtype) in known for q in cold)
    assert len({q.name for q in cold}) > 1990                               # (nearly) no query repeats
    assert all(exp.answer(q.name, q.qtype) == exp.answer(q.name.lower(), q.qtype) for q in cold[:200])


DNSPERF = """DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -d q.txt -n 1 -v
> NOERROR web.default.svc.cluster.local A 0.000181
> NXDOMAIN nope.default.svc.cluster.local A 0.000117
> NOERROR _http._tcp.hl.default.svc.cluster.local SRV 0.000097
[Status] Testing complete (end of file)

Statistics:

  Queries sent:         4
  Queries completed:    3 (75.00%)
  Queries lost:         1 (25.00%)

  Response codes:       NOERROR 2 (66.67%), NXDOMAIN 1 (33.33%)
  Average packet size:  request 48, response 94
  Run time (s):         0.001362
  Queries per second:   2936.857562

  Average Latency (s):  0.000110 (min 0.000047, max 0.000181)
  Latency StdDev (s):   0.000055
"""


def test_dnsperf_output_is_read():
    x = dns_load.parse_dnsperf(DNSPERF)
    assert (x["sent"], x["completed"], x["lost"]) == (4, 3, 1)
    assert x["rcodes"] == {"NOERROR": 2, "NXDOMAIN": 1}
    assert x["qps"] == pytest.approx(2936.857562) and x["avg_latency_ms"] == pytest.approx(0.110)
    assert x["per_query"][1] == ("NXDOMAIN", "nope.default.svc.cluster.local", "A", 0.000117)


def test_rcode_counts_are_checked_against_the_file_order():
    Q = dns_mix.Query
    qs = [Q("a.x", "A", "k", "NOERROR"), Q("b.x", "A", "k", "NXDOMAIN"), Q("c.x", "A", "k", "NOERROR")]
    rcodes = {(q.name, q.qtype): q.rcode for q in qs}
    assert dns_load.expected_rcodes(qs, rcodes, 7) == {"NOERROR": 5, "NXDOMAIN": 2}
    ok = {"sent": 7, "lost": 0, "rcodes": {"NOERROR": 5, "NXDOMAIN": 2}}
    assert dns_load.check_rcodes(ok, qs, rcodes) == []
    servfail = {"sent": 7, "lost": 0, "rcodes": {"NOERROR": 4, "NXDOMAIN": 2, "SERVFAIL": 1}}
    assert any("SERVFAIL" in e for e in dns_load.check_rcodes(servfail, qs, rcodes))
    swapped = {"sent": 300, "lost": 0, "rcodes": {"NOERROR": 100, "NXDOMAIN": 200}}
    assert dns_load.check_rcodes(swapped, qs, rcodes)
    per_query = dict(ok, per_query=[("NOERROR", "B.x", "A", 0.0001)])
    assert any("B.x A: NOERROR, expected NXDOMAIN" in e for e in dns_load.check_rcodes(per_query, qs, rcodes))
