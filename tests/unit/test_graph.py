"""`netlab graph` in the pure core: the graph built from a lab's model (ids, edges), every format (DOT that
Graphviz renders, SVG that is XML, Mermaid, JSON that round-trips, the HTML page), a highlighted path, and the
errors (an unknown format, an unknown id, no Graphviz). No root."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from netlab import graph
from netlab.cli import cli
from netlab.errors import SpecError, UsageError
from netlab.graph.formats import dot as dotfmt
from netlab.model.build import build
from netlab.spec.parse import load_text

from .scenarios import DEFAULT_SCENARIO, cluster, cluster_of, container, pod, service

SVG = "{http://www.w3.org/2000/svg}"
LINK = re.compile(r"  n\d+ (---|===|-\.-|==>|<==>)[| ]")   # a Mermaid link line
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz is not installed (scripts/setup)")


def default_cluster():
    return build(load_text(DEFAULT_SCENARIO.read_text(), str(DEFAULT_SCENARIO)))


def hostgw_cluster():
    return cluster_of(cluster("g", nodes=[{"role": "worker", "name": "a"}, {"role": "worker", "name": "b"},
                                          {"role": "worker", "name": "c"}], backend="host-gw"),
                      pod("h", labels={"app": "h"}, hostNetwork=True, nodeName="a", containers=[container(ports=[80])]),
                      pod("p", labels={"app": "p"}, nodeName="b", containers=[container(ports=[8080])]),
                      service("h", selector={"app": "h"}, ports=[{"port": 80}]),
                      service("p", selector={"app": "p"}, ports=[{"port": 80, "targetPort": 8080}]))


def cross_node_path(c) -> list[str]:
    """client (on the worker) to a web pod on the control plane, through both nodes' VXLAN devices."""
    client = c.pod("default", "client")
    web = next(p for p in c.pods if p.owner == "Deployment/web" and p.node != client.node)
    a, b = client.node, web.node
    return [f"pod:{client.key}", f"bridge:{a}", f"node:{a}", f"vtep:{a}", f"vtep:{b}", f"node:{b}", f"bridge:{b}",
            f"pod:{web.key}"]


def svg_groups(svg: str) -> dict[str, str]:
    """id -> class of every <g> of a Graphviz SVG (parsed as XML: it must be well formed), without the class
    Graphviz adds (node, edge, cluster)."""
    root = ET.fromstring(svg)
    return {g.get("id"): g.get("class", "").split(" ", 1)[-1] for g in root.iter(f"{SVG}g") if g.get("id")}


# ---------------------------------------------------------------- build

def test_build_has_every_namespace_device_and_service_of_the_lab_with_stable_ids():
    c = default_cluster()
    g = graph.build(c)
    ids = [e.id for e in g.elements]
    assert len(ids) == len(set(ids))
    want = {"external", "underlay"}
    want |= {f"{k}:{n.name}" for n in c.nodes for k in ("node", "bridge", "vtep")}
    want |= {f"pod:{p.key}" for p in c.pods} | {f"svc:{s.key}" for s in c.services}
    assert set(ids) == want
    assert {e.kind for e in g.elements} == {"external", "underlay", "node", "bridge", "vtep", "pod", "service"}
    node = c.nodes[0]
    el = g.element(f"node:{node.name}")
    assert el.addresses == [f"{node.ip}/16"] and el.attrs["podCIDR"] == str(node.pod_cidr)
    assert g.element(f"bridge:{node.name}").addresses == [f"{node.gateway}/24"]
    assert g.element(f"vtep:{node.name}").attrs["mac"] == node.vtep_mac
    assert g.element("svc:default/web").attrs["clusterIP"] == str(c.services[0].cluster_ip)
    # every element of a node is drawn in it, the rest outside
    for p in c.pods:
        assert g.element(f"pod:{p.key}").node == p.node
    assert g.element("external").node is None and g.element("svc:default/web").node is None
    assert g.by_netns(c.pods[0].netns) == f"pod:{c.pods[0].key}" and g.by_netns(node.netns) == f"node:{node.name}"


def test_build_edges_veths_devices_tunnels_and_endpoints():
    c = default_cluster()
    g = graph.build(c)
    eids = [e.id for e in g.edges]
    assert len(eids) == len(set(eids))
    assert all(e.id == f"edge:{e.source}--{e.target}" for e in g.edges)
    for p in c.pods:   # the pod's veth to its node's cni0, named as the kubelet names it
        e = g.edge_between(f"bridge:{p.node}", f"pod:{p.key}")
        assert e.kind == "veth" and e.attrs["interfaces"] == [p.host_veth, "eth0"] and p.host_veth in e.label
    for n in c.nodes:
        assert g.edge_between("underlay", f"node:{n.name}").attrs["interfaces"] == [n.underlay_veth, "eth0"]
        assert g.edge_between(f"node:{n.name}", f"bridge:{n.name}").kind == "device"
    a, b = c.nodes
    tunnel = g.edge_between(f"vtep:{b.name}", f"vtep:{a.name}")   # found either way round
    assert tunnel.kind == "tunnel" and f"{b.pod_cidr} via {b.vtep_ip} dev flannel.1 onlink" in tunnel.attrs["routes"][0]
    assert [e.kind for e in g.edges].count("tunnel") == 1
    web = [p for p in c.pods if p.owner == "Deployment/web"]
    endpoints = [e for e in g.edges if e.kind == "endpoint"]
    assert {e.target for e in endpoints} == {f"pod:{p.key}" for p in web}
    assert all(e.source == "svc:default/web" and e.label == "8080/TCP, 8081/UDP" for e in endpoints)
    assert g.edge_between("pod:default/client", "svc:default/web") is None


def test_build_host_gw_draws_routes_not_tunnels_and_host_network_pods_in_their_node():
    c = hostgw_cluster()
    g = graph.build(c)
    assert not [e for e in g.elements if e.kind == "vtep"]
    routes = [e for e in g.edges if e.kind == "route"]
    assert len(routes) == 3   # a full mesh of 3 nodes
    a, b = c.node("a"), c.node("b")
    ab = g.edge_between("node:a", "node:b")
    assert ab.attrs["routes"] == [f"a: {b.pod_cidr} via {b.ip}", f"b: {a.pod_cidr} via {a.ip}"]
    h = g.element("pod:default/h")
    assert h.attrs["hostNetwork"] and h.addresses == [str(a.ip)] and h.node == "a"
    assert g.edge_between("node:a", "pod:default/h").kind == "hostnet"
    assert g.edge_between("bridge:a", "pod:default/h") is None
    assert g.by_netns(a.netns) == "node:a"     # the hostNetwork pod does not take its node's namespace
    assert g.edge_between("svc:default/h", "pod:default/h").kind == "endpoint"


def test_a_stopped_node_s_links_are_drawn_down():
    c = default_cluster()
    worker = c.nodes[1]
    worker.partitioned = True    # `netlab node stop`: its underlay link is down
    g = graph.build(c)
    assert g.edge_between("underlay", f"node:{worker.name}").down
    assert g.edge_between(f"vtep:{c.nodes[0].name}", f"vtep:{worker.name}").down
    assert not g.edge_between("underlay", f"node:{c.nodes[0].name}").down
    assert "stopped (uplink down)" in g.element(f"node:{worker.name}").details
    line = next(x for x in graph.render(g, "dot").splitlines() if f'id="edge:underlay--node:{worker.name}"' in x)
    assert 'style="dashed"' in line and 'color="#999999"' in line


def test_build_a_selectorless_service_s_endpoints_are_addresses():
    c = build(load_text("""apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{name: n1, role: control-plane}, {name: n2}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  ports: [{name: sql, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-1, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: sql, port: 15432}]
endpoints:
- addresses: ["192.0.2.10"]
- addresses: ["192.0.2.11"]
  conditions: {ready: false}
- addresses: ["192.0.2.12"]
  conditions: {ready: false, serving: true, terminating: true}
"""))
    g = graph.build(c)
    assert g.element("addr:192.0.2.10").kind == "address"
    ready, unready = g.edge_between("svc:default/db", "addr:192.0.2.10"), g.edge_between("svc:default/db",
                                                                                          "addr:192.0.2.12")
    assert ready.label == "15432/TCP" and not ready.down
    assert g.element("addr:192.0.2.11") is None     # neither ready nor serving: no endpoint of the model
    assert unready.down and unready.attrs["ready"] is False and "not ready" in unready.label


# ---------------------------------------------------------------- formats

def test_formats_registry_lists_every_format_in_order():
    assert list(graph.FORMATS) == ["dot", "svg", "png", "mermaid", "html", "json"]
    assert [f.name for f in graph.FORMATS.values() if f.binary] == ["png"]


def test_dot_escapes_quotes_backslashes_and_line_breaks():
    assert dotfmt.escape('a"b\\N') == 'a\\"b\\\\N'
    assert dotfmt.quote("x\ny") == '"x\\\\ny"'   # a line break in a name is shown escaped, not a new line
    assert dotfmt.label(["one", 'tw"o']) == '"one\\ntw\\"o"'


@needs_dot
def test_dot_renders_with_graphviz_and_the_svg_carries_every_id():
    c = default_cluster()
    g = graph.build(c)
    g.elements[0].details.append('quote " backslash \\G end')   # what could break the DOT text
    text = graph.render(g, "dot")
    assert text.startswith('digraph "netlab demo" {') and text.rstrip().endswith("}")
    svg = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, check=True).stdout
    assert svg == graph.render(g, "svg")
    groups = svg_groups(svg)
    for e in g.elements:
        assert groups[e.id] == e.kind
    for e in g.edges:
        assert groups[e.id] == e.kind
    assert {f"group:{n.name}" for n in c.nodes} <= set(groups)
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert 'quote " backslash \\G end' in texts   # drawn as written
    assert f"{c.pods[0].key}" in texts and str(c.pods[0].ip) + "/24" in texts


@needs_dot
def test_png_is_a_png_picture():
    out = graph.render(graph.build(default_cluster()), "png")
    assert isinstance(out, bytes) and out.startswith(b"\x89PNG\r\n\x1a\n") and len(out) > 1000


def test_mermaid_is_a_flowchart_of_every_element_and_edge():
    g = graph.build(default_cluster())
    text = graph.render(g, "mermaid")
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    for i, e in enumerate(g.elements):
        assert f"  %% n{i} = {e.id}" in lines
        assert sum(1 for line in lines if re.match(rf'\s+n{i}\W+"', line)) == 1
    links = [line for line in lines if LINK.match(line)]
    assert len(links) == len(g.edges)
    assert sum(1 for line in lines if line.startswith("  linkStyle ")) == len(g.edges)
    assert lines.count("  end") == len(g.groups)
    assert "#40;underlay0#41;" in text     # parentheses in a label are entity codes, not Mermaid syntax


def test_json_round_trips_and_is_stable():
    c = default_cluster()
    g = graph.build(c)
    text = graph.render(g, "json")
    assert text == graph.render(graph.build(c), "json")
    doc = json.loads(text)
    assert doc["kind"] == "NetlabGraph" and doc["version"] == 1 and doc["lab"] == "demo"
    assert doc["backend"] == "vxlan" and doc["proxyMode"] == "iptables" and doc["path"] == []
    assert [n["id"] for n in doc["nodes"]] == [e.id for e in g.elements]
    assert [e["id"] for e in doc["edges"]] == [e.id for e in g.edges]
    pod = c.pods[0]
    entry = next(n for n in doc["nodes"] if n["id"] == f"pod:{pod.key}")
    assert entry["kind"] == "pod" and entry["addresses"] == [f"{pod.ip}/24"] and entry["node"] == pod.node
    assert entry["attributes"]["hostVeth"] == pod.host_veth and entry["steps"] == []
    assert all(set(e) == {"id", "kind", "from", "to", "label", "down", "attributes", "hops"} for e in doc["edges"])


@needs_dot
def test_html_is_one_page_with_the_svg_and_a_legend():
    g = graph.build(default_cluster())
    page = graph.render(g, "html")
    tags = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, dict(attrs)))
    Tags().feed(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert [t for t, _ in tags].count("svg") == 1
    assert not [t for t, a in tags if t in ("script", "link", "img") or "src" in a]   # self-contained
    ids = {a.get("id") for t, a in tags if t == "g"}
    assert {e.id for e in g.elements} <= ids
    for kind in graph.ELEMENT_KINDS + graph.EDGE_KINDS:
        assert f"<code>{kind}</code>" in page


# ---------------------------------------------------------------- highlight

def test_highlight_numbers_the_steps_and_the_hops_between_them():
    c = default_cluster()
    g = graph.build(c)
    hops = cross_node_path(c)
    doc = json.loads(graph.render(g, "json", highlight=[hops[0], *hops]))   # a repeat in a row counts once
    assert doc["path"] == hops
    steps = {n["id"]: n["steps"] for n in doc["nodes"] if n["steps"]}
    assert steps == {id: [i] for i, id in enumerate(hops, 1)}
    marked = {e["id"]: e["hops"] for e in doc["edges"] if e["hops"]}
    assert marked == {g.edge_between(a, b).id: [i] for i, (a, b) in enumerate(zip(hops, hops[1:]), 1)}
    assert all(e["kind"] != "path" for e in doc["edges"])   # every hop of this path is a link of the lab


@needs_dot
def test_highlight_in_svg_marks_exactly_the_path():
    c = default_cluster()
    g = graph.build(c)
    hops = cross_node_path(c)
    groups = svg_groups(graph.render(g, "svg", highlight=hops))
    lit = {id for id, cls in groups.items() if "highlighted" in cls.split()}
    edges = {g.edge_between(a, b).id for a, b in zip(hops, hops[1:])}
    assert lit == set(hops) | edges
    text = graph.render(g, "dot", highlight=hops)
    assert f'label="[1] {hops[0][4:]}' in text and "[8] " in text
    tunnel = g.edge_between(hops[3], hops[4])
    line = next(x for x in text.splitlines() if f'id="{tunnel.id}"' in x)
    assert 'label="4\u21925  VXLAN 1, UDP 8472"' in line and 'color="#cc0000"' in line
    # the path goes a -> b; the edge was made b -> a or a -> b: the arrow points the way the packet went
    want = "forward" if tunnel.source == hops[3] else "back"
    assert f'dir="{want}"' in line


def test_highlight_between_elements_no_link_joins_draws_a_path_edge_and_a_node_seen_twice_has_both_numbers():
    g = graph.build(default_cluster())
    path = ["external", "svc:default/web", "external"]
    doc = json.loads(graph.render(g, "json", highlight=path))
    extra = [e for e in doc["edges"] if e["kind"] == "path"]
    assert [(e["from"], e["to"], e["hops"]) for e in extra] == [("external", "svc:default/web", [1]),
                                                                ("svc:default/web", "external", [2])]
    assert next(n for n in doc["nodes"] if n["id"] == "external")["steps"] == [1, 3]
    mermaid = graph.render(g, "mermaid", highlight=path).splitlines()
    ids = {line.split(" = ")[1]: line.split()[1] for line in mermaid if line.startswith("  %% n")}
    assert f"  {ids['external']} ==>|1\u21922| {ids['svc:default/web']}" in mermaid
    links = [line for line in mermaid if LINK.match(line)]
    styled = [int(line.split()[1]) for line in mermaid if line.startswith("  linkStyle ") and "#cc0000" in line]
    assert [links[i] for i in styled] == [f"  {ids['external']} ==>|1\u21922| {ids['svc:default/web']}",
                                          f"  {ids['svc:default/web']} ==>|2\u21923| {ids['external']}"]
    assert f"  style {ids['external']} fill:#f4cccc,stroke:#cc0000,stroke-width:3px" in mermaid


def test_highlight_of_an_unknown_id_is_one_line_exit_2():
    g = graph.build(default_cluster())
    with pytest.raises(SpecError) as e:
        graph.render(g, "dot", highlight=["external", "pod:default/nope"])
    assert e.value.exit_code == 2 and "\n" not in str(e.value) and "pod:default/nope" in str(e.value)


# ---------------------------------------------------------------- errors and the CLI

def test_an_unknown_format_is_one_line_listing_the_formats_exit_2():
    with pytest.raises(UsageError) as e:
        graph.render(graph.build(default_cluster()), "gif")
    msg = str(e.value)
    assert e.value.exit_code == 2 and "\n" not in msg
    assert "'gif'" in msg and msg.endswith("dot, svg, png, mermaid, html, json")


def test_no_graphviz_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr("netlab.graph.graphviz.shutil.which", lambda name: None)
    g = graph.build(default_cluster())
    for fmt in ("svg", "png", "html"):
        with pytest.raises(UsageError, match=r"^graphviz is not installed: run scripts/setup"):
            graph.render(g, fmt)
    assert graph.render(g, "dot") and graph.render(g, "mermaid")   # the text formats need no Graphviz


def run(*args: str):
    return CliRunner().invoke(cli, ["graph", *args])


def test_cli_draws_a_scenario_file_without_root(tmp_path):
    r = run(str(DEFAULT_SCENARIO), "-o", "json")
    assert r.exit_code == 0, r.output
    assert {n["id"] for n in json.loads(r.output)["nodes"]} >= {"node:demo-worker", "pod:default/client"}
    r = run(str(DEFAULT_SCENARIO))
    assert r.exit_code == 0 and r.output.startswith('digraph "netlab demo"')   # dot by default
    out = tmp_path / "lab.mmd"
    r = run(str(DEFAULT_SCENARIO), "--output-file", str(out), "--highlight", "external,underlay")
    assert r.exit_code == 0 and r.output == ""
    assert out.read_text().startswith("flowchart TB") and "#cc0000" in out.read_text()


def test_cli_bad_format_and_unknown_suffix_are_usage_errors(tmp_path):
    r = run(str(DEFAULT_SCENARIO), "-o", "gif")
    assert isinstance(r.exception, UsageError) and "dot, svg, png, mermaid, html, json" in str(r.exception)
    r = run(str(DEFAULT_SCENARIO), "--output-file", str(tmp_path / "lab.gif"))
    assert isinstance(r.exception, UsageError) and "give -o FORMAT" in str(r.exception)
    assert not (tmp_path / "lab.gif").exists()
