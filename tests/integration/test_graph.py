"""`netlab graph` against a live lab of two nodes: the real CLI's SVG, JSON and PNG hold every pod and node the
lab has (as `netlab get` lists them), the interfaces the picture names are the kernel's, and a bad format is one
line, exit 2."""
from __future__ import annotations

import json
import secrets
import subprocess
import xml.etree.ElementTree as ET

import pytest

from netlab.dataplane import lab as labmod

from ..builders import cluster, container, deployment, pod, service, text
from .conftest import Lab, netlab_cli, nobody_uid

SVG = "{http://www.w3.org/2000/svg}"
SCENARIO = text(cluster(None, nodes=("control-plane", "worker")),
                deployment("web", replicas=3, containers=[container(ports=[8080])],
                           tolerations=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
                pod("client"),
                service("web", ports=[{"port": 80, "targetPort": 8080}]))


@pytest.fixture(scope="module")
def live():
    """One lab for the module (drawing changes nothing), removed whatever happened."""
    handle = Lab(f"graph-{secrets.token_hex(3)}")
    try:
        handle.up(SCENARIO)
        yield handle
    finally:
        labmod.down(handle.name)
        assert not labmod.lab_namespaces(handle.name), f"down left namespaces of {handle.name}"


def listed(lab: Lab, kind: str) -> set[str]:
    """The ids the graph must have for what `netlab get KIND -A -o json` lists."""
    doc = json.loads(netlab_cli("get", kind, "-A", "-o", "json", "--lab", lab.name, check=True).stdout)
    items = [i["metadata"] for i in doc["items"]]
    if kind == "pods":
        return {f"pod:{m.get('namespace', 'default')}/{m['name']}" for m in items}
    return {f"node:{m['name']}" for m in items}


def test_svg_json_and_png_of_a_live_lab_hold_every_pod_and_node(live, tmp_path):
    pods, nodes = listed(live, "pods"), listed(live, "nodes")
    assert len(nodes) == 2 and {"pod:default/client"} < pods and len(pods) >= 4
    svg_file = tmp_path / "lab.svg"
    netlab_cli("graph", "--lab", live.name, "--output-file", str(svg_file), check=True)   # svg from the suffix
    root = ET.fromstring(svg_file.read_text())   # well-formed XML
    assert root.tag == f"{SVG}svg"
    ids = {g.get("id") for g in root.iter(f"{SVG}g")}
    assert pods | nodes <= ids
    assert {f"bridge:{n[5:]}" for n in nodes} | {f"vtep:{n[5:]}" for n in nodes} | {"underlay", "external"} <= ids
    assert "svc:default/web" in ids

    r = netlab_cli("graph", "--lab", live.name, "-o", "json", check=True)
    doc = json.loads(r.stdout)
    assert doc["lab"] == live.name and doc["backend"] == "vxlan"
    elements = {n["id"]: n for n in doc["nodes"]}
    assert pods | nodes <= set(elements)
    assert {n["id"] for n in doc["nodes"] if n["kind"] in ("pod", "node")} == pods | nodes   # nothing made up
    edges = {e["id"]: e for e in doc["edges"]}
    # what the picture names is what the kernel has: each pod's veth on its node's cni0, with the pod's address
    for pid in pods:
        pod_el = elements[pid]
        veth = edges[f"edge:bridge:{pod_el['node']}--{pid}"]["attributes"]["interfaces"][0]
        node_ns = elements[f"node:{pod_el['node']}"]["attributes"]["netns"]
        link = subprocess.run(["ip", "-n", node_ns, "-o", "link", "show", "dev", veth], capture_output=True, text=True)
        assert link.returncode == 0 and "master cni0" in link.stdout, (pid, veth, link.stderr)
        addr = subprocess.run(["ip", "-n", pod_el["attributes"]["netns"], "-o", "-4", "addr", "show", "dev", "eth0"],
                              capture_output=True, text=True, check=True).stdout
        assert f"inet {pod_el['addresses'][0]} " in addr
    for nid in nodes:
        node_ns = elements[nid]["attributes"]["netns"]
        vtep = elements[f"vtep:{nid[5:]}"]
        shown = subprocess.run(["ip", "-n", node_ns, "-o", "link", "show", "dev", "flannel.1"], capture_output=True,
                               text=True, check=True).stdout
        assert f"link/ether {vtep['attributes']['mac']} " in shown
    web = [e for e in doc["edges"] if e["kind"] == "endpoint" and e["from"] == "svc:default/web"]
    assert {e["to"] for e in web} == {p for p in pods if p.startswith("pod:default/web-")}

    png = tmp_path / "lab.png"
    netlab_cli("graph", "--lab", live.name, "-o", "png", "--output-file", str(png), check=True)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_path_drawn_over_a_live_lab(live):
    client = live.pod("client")
    path = [f"pod:{client.key}", f"bridge:{client.node}", f"node:{client.node}"]
    r = netlab_cli("graph", "--lab", live.name, "-o", "svg", "--highlight", ",".join(path), check=True)
    root = ET.fromstring(r.stdout)
    lit = {g.get("id") for g in root.iter(f"{SVG}g") if "highlighted" in (g.get("class") or "").split()}
    assert lit == set(path) | {f"edge:bridge:{client.node}--pod:{client.key}",
                               f"edge:node:{client.node}--bridge:{client.node}"}


def test_bad_format_is_one_line_exit_2_and_no_root_is_refused(live):
    r = netlab_cli("graph", "--lab", live.name, "-o", "gif")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == ["error: graph format 'gif' is not supported; use one of: dot, svg, png, "
                                     "mermaid, html, json"]
    user = nobody_uid()
    if user is not None:   # reading a lab's state needs root, as `netlab get` does
        r = netlab_cli("graph", "--lab", live.name, user=user)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "root" in r.stderr
