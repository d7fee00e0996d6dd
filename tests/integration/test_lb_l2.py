"""MetalLB's layer-2 mode on real namespaces (issue 14): a LoadBalancer Service's IP is announced on the
underlay by exactly one elected node's speaker, the external host reaches EXTERNAL-IP:port, and when that
node fails another takes over with a gratuitous ARP.

The LB IP comes from spec.loadBalancerIP with a real IPAddressPool holding it and an L2Advertisement (see
docs: before the IPAM controller it is the fallback's, after it the controller's), so the test holds both
ways."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from netlab.dataplane import layout
from netlab.lb.announce import election_order
from netlab.live import store_for

from .conftest import kubectl, netlab_cli, until

LB_IP = "172.18.200.10"

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: lbl2
nodes: [{name: n1, role: control-plane}, {name: n2}, {name: n3}]
networking: {kubeProxyMode: MODE, nodeSubnet: 172.18.0.0/16}
controlPlane: {nodeMonitorGracePeriod: 4, defaultTolerationSeconds: 2}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab-pool, namespace: metallb-system}
spec: {addresses: [172.18.200.0/28]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab-l2, namespace: metallb-system}
spec: {ipAddressPools: [lab-pool]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  loadBalancerIP: 172.18.200.10
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def announced(lab) -> dict[str, str]:
    """The published announcements: IP -> node."""
    path = os.path.join(layout.lb_dir(lab.name), "announce.json")
    try:
        with open(path) as f:
            return {a["ip"]: a["node"] for a in json.load(f)["announcements"]}
    except (OSError, ValueError, KeyError):
        return {}


def eth0_mac(lab, node: str) -> str:
    r = lab.node_exec(node, ["ip", "-j", "link", "show", "eth0"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]["address"].lower()


def arp_replies(lab, count: int = 3) -> list[str]:
    """The MACs that answer the external host's ARP requests for LB_IP (arping keeps broadcasting: -b)."""
    r = lab.ext_exec(["arping", "-b", "-c", str(count), "-w", str(count + 2), "-I", "eth0", LB_IP], timeout=count + 10)
    return [m.lower() for m in re.findall(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]", r.stdout)]


def ready_speakers(lab) -> set[str]:
    return {p["spec"]["nodeName"] for p in store_for(lab.name).list("Pod", "metallb-system")
            if any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])}


def curl_ok(lab) -> bool:
    r = lab.ext_exec(["curl", "-sS", "--max-time", "2", f"http://{LB_IP}/hostname"])
    return r.returncode == 0 and r.stdout.startswith("web-")


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_one_node_announces_the_lb_ip_and_another_takes_over_when_it_fails(lab, mode, tmp_path):
    lab.up(SCENARIO.replace("MODE", mode))
    until("a speaker on every node", lambda: ready_speakers(lab) == {"n1", "n2", "n3"}, timeout=60)
    until("the LB IP announced", lambda: LB_IP in announced(lab), timeout=30)
    winner = announced(lab)[LB_IP]
    # MetalLB's election: the first of the nodes by sha256(node#ip)
    assert winner == election_order(["n1", "n2", "n3"], LB_IP)[0]
    macs = {n: eth0_mac(lab, n) for n in ("n1", "n2", "n3")}

    # the external host reaches EXTERNAL-IP:port
    until("EXTERNAL-IP:80 answers from the external host", lambda: curl_ok(lab), timeout=20)
    r = netlab_cli("exec", "--external", "--lab", lab.name, "--", "curl", "-sS", "--max-time", "3",
                   f"http://{LB_IP}/hostname", check=True)
    assert r.stdout.startswith("web-"), r.stdout   # as a user runs it
    # exactly one node answers ARP for it: the elected one, with its underlay MAC
    replies = arp_replies(lab)
    assert replies and set(replies) == {macs[winner]}, (replies, macs, winner)
    neigh = json.loads(lab.ext_exec(["ip", "-j", "neigh", "show", LB_IP, "dev", "eth0"]).stdout or "[]")
    assert neigh and neigh[0].get("lladdr", "").lower() == macs[winner], neigh
    # MetalLB's event on the Service, and the speaker's log
    ev = kubectl(lab, "get", "events", "-o", "json").stdout
    assert "nodeAssigned" in ev and f'announcing from node \\"{winner}\\" with protocol \\"layer2\\"' in ev
    pod = next(p["metadata"]["name"] for p in store_for(lab.name).list("Pod", "metallb-system")
               if p["spec"]["nodeName"] == winner)
    logs = kubectl(lab, "logs", "-n", "metallb-system", pod).stdout
    assert "serviceAnnounced" in logs and LB_IP in logs, logs

    # the elected node fails: after the grace another node takes over and says so with a gratuitous ARP
    cap = tmp_path / "arp.txt"
    dump = subprocess.Popen(["ip", "netns", "exec", lab.cluster.external_netns, "tcpdump", "-i", "eth0", "-n", "-e",
                             "-l", "-U", "arp"], stdout=open(cap, "w"), stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        kubectl(lab, "node", "stop", winner)
        until("another node announces", lambda: announced(lab).get(LB_IP) not in (None, winner), timeout=40)
        second = announced(lab)[LB_IP]
        assert second == election_order(sorted({"n1", "n2", "n3"} - {winner}), LB_IP)[0]
        until("the new node's gratuitous ARP", lambda: re.search(
            rf"{macs[second]} > ff:ff:ff:ff:ff:ff.*(Request who-has {re.escape(LB_IP)} tell {re.escape(LB_IP)}|"
            rf"Reply {re.escape(LB_IP)} is-at {macs[second]})", cap.read_text(), re.I), timeout=10)
        until("requests answered through the new node", lambda: curl_ok(lab), timeout=20)
        neigh = json.loads(lab.ext_exec(["ip", "-j", "neigh", "show", LB_IP, "dev", "eth0"]).stdout or "[]")
        assert neigh and neigh[0].get("lladdr", "").lower() == macs[second], neigh
        replies = arp_replies(lab, 2)
        assert replies and set(replies) == {macs[second]}, (replies, macs, second)
    finally:
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=10)
    # back: the node rejoins, the election gives the IP back to it (first in the order), still one answer
    kubectl(lab, "node", "start", winner)
    until("the first node announces again", lambda: announced(lab).get(LB_IP) == winner, timeout=40)
    until("requests answered", lambda: curl_ok(lab), timeout=20)
    until("only the first node answers ARP", lambda: set(arp_replies(lab, 2)) == {macs[winner]}, timeout=10)


def test_speaker_answers_only_its_nodes_ips_and_ends_on_sigterm(tmp_path):
    """The speaker process alone, in a namespace of its own wired to another by a veth pair: ARP answered
    for exactly the IPs the file gives its node (not another node's, not unknown ones, not those whose
    advertisement names other interfaces), a change followed
    at once with a gratuitous ARP, exit 0 on SIGTERM."""
    import secrets
    import sys
    from netlab.lb.announce import Announcement, document
    a, b = f"nl.spk{secrets.token_hex(3)}", f"nl.cli{secrets.token_hex(3)}"
    ann = tmp_path / "announce.json"

    def write(*items):
        tmp = tmp_path / "new.json"
        tmp.write_text(json.dumps(document([Announcement(i[0], "default/web", i[1], "p", i[2] if len(i) > 2 else None)
                                            for i in items])))
        os.replace(tmp, ann)
    # .12 is this node's, but its L2Advertisement names only an interface the node does not have
    write(("192.0.2.10", "me"), ("192.0.2.11", "other"), ("192.0.2.12", "me", ("eth1",)))
    sh = lambda *argv: subprocess.run(argv, check=True, capture_output=True)  # noqa: E731
    proc = None
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", "spk0", "netns", a, "type", "veth", "peer", "name", "cli0", "netns", b)
        sh("ip", "-n", a, "link", "set", "spk0", "name", "eth0")
        sh("ip", "-n", a, "link", "set", "eth0", "up")
        sh("ip", "-n", b, "link", "set", "cli0", "up")
        sh("ip", "-n", b, "addr", "add", "192.0.2.1/24", "dev", "cli0")
        mac = json.loads(subprocess.run(["ip", "-n", a, "-j", "link", "show", "eth0"], capture_output=True,
                                        text=True).stdout)[0]["address"].lower()
        proc = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-m", "netlab.lb.speaker", "--announcements",
                                 str(ann), "--node-name", "me", "--port", "17472"], stdout=subprocess.PIPE, text=True)

        def answers(ip):
            r = subprocess.run(["ip", "netns", "exec", b, "arping", "-b", "-c", "2", "-w", "3", "-I", "cli0", ip],
                               capture_output=True, text=True)
            return {m.lower() for m in re.findall(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]", r.stdout)}
        until("the speaker answering for its IP", lambda: answers("192.0.2.10") == {mac}, timeout=10)
        assert answers("192.0.2.11") == set()      # another node's
        assert answers("192.0.2.12") == set()      # not on eth0
        assert answers("192.0.2.13") == set()      # nobody's
        # the file moves 192.0.2.11 to this node: answered, and announced by gratuitous ARP at once
        dump = subprocess.Popen(["ip", "netns", "exec", b, "tcpdump", "-i", "cli0", "-n", "-e", "-l", "-U", "arp"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1.0)
        t0 = time.monotonic()
        write(("192.0.2.11", "me"))
        line = dump.stdout.readline()
        took = time.monotonic() - t0
        dump.terminate()
        dump.wait(timeout=5)
        assert mac in line.lower() and "192.0.2.11" in line and took < 1.0, (line, took)
        assert answers("192.0.2.11") == {mac} and answers("192.0.2.10") == set()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        logs = proc.stdout.read()
        assert '"serviceAnnounced"' in logs and '"serviceWithdrawn"' in logs and "SIGTERM" in logs, logs
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


LOCAL = SCENARIO.replace("replicas: 3", "replicas: 2") + """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: solo}
spec:
  replicas: 1
  selector: {matchLabels: {app: solo}}
  template:
    metadata: {labels: {app: solo}}
    spec:
      nodeSelector: {kubernetes.io/hostname: NODE}
      containers:
      - name: solo
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec:
  type: LoadBalancer
  loadBalancerIP: 172.18.200.11
  externalTrafficPolicy: Local
  selector: {app: solo}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_local_policy_and_node_selectors_choose_the_announcing_node(lab, tmp_path):
    """externalTrafficPolicy Local: only the node with the endpoint announces, even where the hash would
    pick another; an L2Advertisement changed by `apply` (no pass reads those) moves the announcements at
    once, and an IP whose only candidate is no longer selected is answered by nobody."""
    solo_ip = "172.18.200.11"
    # the endpoint's node: the LAST of the election order, so that the hash alone would never pick it
    node = election_order(["n1", "n2", "n3"], solo_ip)[-1]
    lab.up(LOCAL.replace("MODE", "iptables").replace("NODE", node))
    until("both IPs announced", lambda: {LB_IP, solo_ip} <= set(announced(lab)), timeout=60)
    assert announced(lab)[solo_ip] == node
    macs = {n: eth0_mac(lab, n) for n in ("n1", "n2", "n3")}

    def macs_for(ip):
        r = lab.ext_exec(["arping", "-b", "-c", "2", "-w", "4", "-I", "eth0", ip], timeout=15)
        return {m.lower() for m in re.findall(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]", r.stdout)}
    assert macs_for(solo_ip) == {macs[node]}
    r = lab.ext_exec(["curl", "-sS", "--max-time", "3", f"http://{solo_ip}/hostname"])
    assert r.returncode == 0 and r.stdout.startswith("solo-"), r.stderr

    # the advertisement now selects one other node only: web moves there, solo has no candidate left
    other = next(n for n in ("n1", "n2", "n3") if n != node)
    ad = tmp_path / "ad.yaml"
    ad.write_text("apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\n"
                  "metadata: {name: lab-l2, namespace: metallb-system}\n"
                  f"spec: {{ipAddressPools: [lab-pool], nodeSelectors: [{{matchLabels: "
                  f"{{kubernetes.io/hostname: {other}}}}}]}}\n")
    kubectl(lab, "apply", "-f", str(ad))
    until("web announced by the selected node, solo by none",
          lambda: announced(lab).get(LB_IP) == other and solo_ip not in announced(lab), timeout=15)
    until("only the selected node answers for web", lambda: macs_for(LB_IP) == {macs[other]}, timeout=10)
    assert macs_for(solo_ip) == set()
