"""A pod made again with the same IP announces its new MAC (gratuitous ARP), so its node's neighbour
entry for that IP does not keep the old MAC while it is REACHABLE (traffic lost for up to 45 s)."""
from __future__ import annotations

import json
import subprocess
import time

from netlab.dataplane import lab as labmod

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: garp
nodes: [{role: worker, name: n1}]
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: n1
  containers: [{name: c, ports: [{containerPort: 8080}]}]
"""


def neighbour(lab, ip) -> dict:
    r = lab.node_exec("n1", ["ip", "-j", "neigh", "show", str(ip), "dev", "cni0"])
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout or "[]")
    return got[0] if got else {}


def pod_mac(lab) -> str:
    r = lab.pod_exec("web", ["ip", "-j", "link", "show", "eth0"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]["address"]


def test_recreated_pod_with_same_ip_updates_the_node_neighbour_at_once(lab):
    lab.up(SCENARIO)
    # Two things in the kernel would drop the old entry on their own and hide what is tested:
    # - cni0 takes the lowest MAC of its ports unless its own was set, and a change of cni0's MAC flushes
    #   its neighbour entries: pin cni0's MAC;
    # - when its last port goes, cni0 loses its carrier, which flushes them too (with this pod's veth as
    #   its only port that happens whenever the old veth is gone before the new one comes, i.e. when the
    #   kernel's namespace cleanup runs first): give cni0 a second port, as a node with more pods has.
    link = json.loads(lab.node_exec("n1", ["ip", "-j", "link", "show", "cni0"]).stdout)[0]
    assert lab.node_exec("n1", ["ip", "link", "set", "cni0", "address", link["address"]]).returncode == 0
    for argv in (["ip", "link", "add", "keep0", "type", "veth", "peer", "name", "keep1"],
                 ["ip", "link", "set", "keep0", "master", "cni0", "up"], ["ip", "link", "set", "keep1", "up"]):
        done = lab.node_exec("n1", argv)
        assert done.returncode == 0, (argv, done.stderr)
    ip, old_mac = lab.pod("web").ip, pod_mac(lab)
    assert lab.ping(("node", "n1"), ip)
    before = neighbour(lab, ip)
    assert before.get("lladdr") == old_mac and "REACHABLE" in before.get("state", []), before

    # on every link of the node (the pod's new veth included, which does not exist yet): the frame is
    # seen as it arrives from the pod, even if the bridge does not forward it yet (see fabric._create_pod).
    # Listening starts before the namespace goes: the control loop may make the pod again before `up` does.
    cap = subprocess.Popen(labmod.netns_exec_argv(lab.node("n1").netns, [
        "tcpdump", "-i", "any", "-nn", "-l", "-c", "1", f"arp and arp[14:4] = arp[24:4] and arp[14:4] = {int(ip)}"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        line = ""
        while "listening on" not in line and time.monotonic() < deadline:
            line = cap.stderr.readline()
        assert "listening on" in line, line
        # the pod's namespace goes away (its veth with it); the next `up` (or the control loop, whichever
        # comes first) makes it again, same IP, new MAC
        gone = subprocess.run(["ip", "netns", "del", lab.pod("web").netns], capture_output=True, text=True)
        assert gone.returncode == 0, gone.stderr
        lab.up(SCENARIO)
        assert lab.pod("web").ip == ip
        new_mac = pod_mac(lab)
        assert new_mac != old_mac
        # right after `up`, before anything else is sent: the node already has the new MAC
        after = neighbour(lab, ip)
        assert after.get("lladdr") == new_mac, (after, old_mac, new_mac)
        assert lab.ping(("node", "n1"), ip)
        assert lab.http(("node", "n1"), ip, 8080, "/hostname") == "web"
        seen, _ = cap.communicate(timeout=10)
        assert str(ip) in seen, seen   # the gratuitous ARP itself
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.communicate()
