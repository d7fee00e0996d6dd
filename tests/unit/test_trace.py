"""netlab trace's pure parts: the monitors' output parsed (fixtures captured from real labs with
`xtables-monitor --trace` and `nft monitor trace`), the kernel's fate of a packet per node, the
differences with the model, the report formats and the graph highlight."""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET


from netlab.trace import Hop, TraceResult, path
from netlab.trace.build import events_of
from netlab.trace.monitor import parse_nft, parse_xtables

HERE = os.path.join(os.path.dirname(__file__), "fixtures_trace")


def fixture(name: str) -> str:
    with open(os.path.join(HERE, name)) as f:
        return f.read()


def test_xtables_monitor_clusterip_across_nodes():
    events = parse_xtables(fixture("xt_udp.worker.txt"))
    where = [e.where for e in events]
    assert where[:2] == ["raw/NETLAB-TRACE-" + events[0].chain.split("-")[-1], "raw/PREROUTING"]
    sep = next(e for e in events if e.dnat)
    assert sep.chain.startswith("KUBE-SEP-") and sep.dnat == "10.244.0.2:8081" and sep.verdict == "accept"
    svc = next(e for e in events if e.chain.startswith("KUBE-SVC-"))
    assert svc.verdict == "jump" and svc.target == sep.chain
    ret = next(e for e in events if e.chain == "KUBE-POSTROUTING")
    assert ret.verdict == "return" and ret.rule.startswith("-A KUBE-POSTROUTING")
    # the packet as the kernel saw it: before the DNAT, then after it on its way out to flannel.1
    assert events[0].packet["dst"] == "10.96.14.88" and events[0].packet["iif"] == "cni0"
    assert events[-1].packet["dst"] == "10.244.0.2" and events[-1].packet["oif"] == "flannel.1"
    fate = path.observed_fate(events)
    assert (fate.verdict, fate.dnat, fate.masquerade) == ("ACCEPT", "10.244.0.2:8081", False)
    assert "nat/" + sep.chain in fate.chains and not any(c.startswith("raw/") for c in fate.chains)


def test_xtables_monitor_reject_and_masquerade():
    fate = path.observed_fate(parse_xtables(fixture("xt_reject.worker.txt")))
    assert fate.verdict == "REJECT" and "KUBE-SERVICES" in fate.by and "has no endpoints" in fate.by
    ext = parse_xtables(fixture("xt_nodeport_ext.control-plane.txt"))
    fate = path.observed_fate(ext)
    assert fate.masquerade and fate.dnat and "nat/KUBE-MARK-MASQ" in fate.chains
    assert any(e.chain == "KUBE-NODEPORTS" for e in ext)
    assert path.packet_in(ext)["iif"] == "eth0" and not path.from_host(ext)
    far = parse_xtables(fixture("xt_nodeport_ext.worker.txt"))
    assert path.packet_in(far)["iif"] == "flannel.1" and path.packet_in(far)["src"] == "10.244.0.0"


def test_nft_monitor_trace():
    events = parse_nft(fixture("nft_clusterip.worker.txt"))
    goto = next(e for e in events if e.chain == "services")
    assert goto.verdict == "goto" and goto.target.startswith("service-") and goto.table == "kube-proxy"
    dn = next(e for e in events if e.dnat)
    assert dn.chain.startswith("endpoint-") and dn.dnat == "10.244.1.3:8080"
    assert events[0].packet["id"] and events[0].packet["sport"] and events[0].packet["iif"] == "cni0"
    assert path.observed_fate(events).verdict == "ACCEPT"
    rej = path.observed_fate(parse_nft(fixture("nft_reject.worker.txt")))
    assert rej.verdict == "REJECT" and rej.by.startswith("kube-proxy/reject-chain")


def test_events_of_keeps_only_the_traced_packet():
    text = fixture("xt_udp.worker.txt")
    ipid = parse_xtables(text)[0].packet["id"]
    assert events_of(text, "iptables", ipid) == parse_xtables(text)
    assert events_of(text, "iptables", (ipid + 1) % 65536) == []
    other = text.replace(f"ID={ipid} ", f"ID={ipid + 1} ")   # same lines, another packet's id
    assert events_of(other, "iptables", ipid) == []


def test_differences_name_what_the_model_does_not_predict():
    seen = path.Fate("DROP", None, False, ["filter/FORWARD"], "filter/FORWARD: -A FORWARD -s 10.244.1.2/32 -j DROP")
    model = [path.Fate("ACCEPT", "10.244.0.2:8080", False, ["nat/PREROUTING", "filter/FORWARD"]),
             path.Fate("ACCEPT", "10.244.0.3:8080", False, ["nat/PREROUTING", "filter/FORWARD"])]
    diffs = path.differences("node n1", seen, model, True, ["-A FORWARD -s 10.244.1.2/32 -j DROP"])
    assert any("DNATed to nothing" in d and "10.244.0.2:8080 or 10.244.0.3:8080" in d for d in diffs)
    assert any("verdict is DROP" in d for d in diffs)
    assert any("did not render" in d for d in diffs)
    same = path.Fate("ACCEPT", "10.244.0.3:8080", False, ["nat/PREROUTING"])
    assert path.differences("node n1", same, model, True) == []
    extra = path.Fate("ACCEPT", "10.244.0.3:8080", False, ["nat/PREROUTING", "nat/HAND-MADE"])
    assert path.differences("node n1", extra, model, True) == ["node n1: the kernel traversed nat/HAND-MADE, "
                                                               "which the model does not predict"]


def test_unknown_rules_against_rendered():
    events = parse_xtables(fixture("xt_reject.worker.txt"))
    rendered = {path._norm(e.rule) for e in events if e.rule}
    assert path.unknown_rules(events, rendered) == []
    missing = next(e.rule for e in events if e.table == "filter" and "REJECT" in e.rule)
    assert path.unknown_rules(events, rendered - {path._norm(missing)}) == [missing]


def _result() -> TraceResult:
    r = TraceResult("l", "pod/client", "svc/web:80", {"proto": "tcp", "src": "10.244.1.2", "dst": "10.96.0.5",
                                                        "sport": 61001, "dport": 80, "ip_id": 7}, "iptables")
    r.hops = [Hop("ns.a", "pod:default/client", "route", "route"), Hop("ns.n", "bridge:n1", "route", "in"),
              Hop("ns.n", "node:n1", "netfilter", "a"), Hop("ns.n", "node:n1", "netfilter", "b"),
              Hop("ns.n", "svc:default/web", "netfilter", "dnat"), Hop("ns.n", None, "netfilter", "IPVS", False),
              Hop("ns.p", "pod:default/web-1", "deliver", "d")]
    r.outcome, r.differences = "reachable", ["node n1: x"]
    return r


def test_json_and_junit_and_table():
    r = _result()
    doc = json.loads(json.dumps(r.to_dict()))
    assert set(doc) == {"lab", "source", "target", "mode", "packet", "outcome", "detail", "answered_by", "hops",
                        "differences", "warnings"}
    assert set(doc["hops"][0]) == {"netns", "graph_id", "kind", "text", "observed", "node"}
    from netlab.trace.report import junit, table
    case = ET.fromstring(junit(r)).find(".//testcase")
    assert case.find("failure") is not None and "node n1: x" in case.find("failure").get("message", "") + \
        (case.find("failure").text or "")
    text = table(r)
    assert "[predicted" in text and "1 difference(s)" in text


def test_highlight_is_the_ordered_graph_ids():
    from netlab.cli.trace import highlight
    assert highlight(_result()) == ["pod:default/client", "bridge:n1", "node:n1", "svc:default/web",
                                    "pod:default/web-1"]


def test_trace_drawn_over_the_graph():
    """Contract 2: `-o svg|dot|...` is netlab.graph's picture with the hops' ids highlighted."""
    from netlab import graph
    from netlab.cli.trace import GRAPH_FORMATS, draw
    assert set(GRAPH_FORMATS) == set(graph.FORMATS) - {"json"}
    from .scenarios import DEFAULT_SCENARIO, build, load_text
    with open(DEFAULT_SCENARIO) as f:
        c = build(load_text(f.read()), None)
    r = _result()
    client = next(p for p in c.pods if p.name == "client")
    web = next(p for p in c.pods if p.name.startswith("web"))
    r.hops = [Hop("", f"pod:{client.key}", "route", ""), Hop("", f"node:{client.node}", "netfilter", ""),
              Hop("", "svc:default/web", "netfilter", ""), Hop("", f"pod:{web.key}", "deliver", "")]
    dot = draw(c, r, "dot")
    assert isinstance(dot, str) and "graph" in dot
    for h in r.hops:
        assert h.graph_id.split(":", 1)[1].split("/")[-1] in dot


def test_the_trace_rule_matches_the_packet_only():
    from netlab.trace.kernel import Packet, nft_match, u32_match
    syn = Packet("10.96.0.10", "tcp", 80, 61234, 0x1234, 0xDEADBEEF, 3.0)
    assert u32_match(syn) == "4>>16=0x1234&&0>>22&0x3C@4=0xdeadbeef"
    assert nft_match(syn) == f"ip id {0x1234} meta l4proto tcp tcp sequence {0xDEADBEEF}"
    udp = Packet("10.96.0.10", "udp", 53, 61234, 7, 1, 3.0)
    assert u32_match(udp) == "4>>16=0x7" and nft_match(udp) == "ip id 7 meta l4proto udp"
