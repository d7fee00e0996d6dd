"""One control loop per host (netlab/live/agent.py): a lab of 4 nodes placed on 2 hosts is run by two
agents, each building only its host's nodes and pods; the controllers run in the one holding the Lease
kube-system/netlab-controllers, and move to the other when it dies; an agent killed and started again
loses nothing; a host whose agent stops for good has its nodes NotReady and its pods moved; in kube-proxy's
nftables mode, a NetworkPolicy is enforced by both hosts' nodes; in its userspace mode, each node has its one
proxy process and clients on both hosts reach the Service's pods on both; with the BGP backend, each agent's
BIRD peers with every node and the external router's with all of them.

(A netlab command starts an agent that is gone, so while one is meant to stay dead these tests read the
lab's store themselves instead of running commands.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from netlab import names
from netlab.bgp import bird
from netlab.dataplane import layout, procs
from netlab.live import agent, leader, loop, store_for
from netlab.live.hostscope import HOST_LABEL
from netlab.store.meta import get_condition

from .conftest import kubectl, netlab_cli, until

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: agents
controlPlane: {nodeMonitorGracePeriod: GRACE, defaultTolerationSeconds: 2}
nodes:
- {name: n1, role: control-plane, labels: {netlab.dev/host: ha}}
- {name: n2, role: worker, labels: {netlab.dev/host: ha}}
- {name: n3, role: worker, labels: {netlab.dev/host: hb}}
- {name: n4, role: worker, labels: {netlab.dev/host: hb}}
expectations:
- {from: pod/client, to: svc/web:80, expect: reachable, backends: all}
- {from: pod/client-b, to: svc/web:80, expect: reachable, backends: all}
- {from: external, to: nodeport/web, expect: reachable}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
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
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n2
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: client-b}
spec:
  nodeName: n4
  containers: [{name: c, image: busybox}]
"""
HOSTS = {"ha": {"n1", "n2"}, "hb": {"n3", "n4"}}


def scenario(grace: int, networking: str = "") -> str:
    """The lab with that grace period; `networking`: the Cluster's networking settings, as YAML flow items."""
    text = CLUSTER.replace("GRACE", str(grace))
    if networking:
        text = text.replace("name: agents\n", f"name: agents\nnetworking: {{{networking}}}\n", 1)
    return text


def pid_of(lab, host: str) -> int:
    rec = agent.running(lab.name, host)
    assert rec is not None, f"no agent of host {host} runs"
    return int(rec["pid"])


def holder(lab) -> str:
    obj = store_for(lab.name).try_get("Lease", leader.NAMESPACE, leader.NAME)
    return ((obj or {}).get("spec") or {}).get("holderIdentity") or ""


def pods(lab) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in store_for(lab.name).list("Pod")}


def ready(p: dict) -> bool:
    c = get_condition(p, "Ready")
    return bool(c and c.get("status") == "True") and not p["metadata"].get("deletionTimestamp")


def node_ready(lab, name: str) -> str:
    c = get_condition(store_for(lab.name).get("Node", None, name), "Ready")
    return (c or {}).get("status") or ""


def web_ready_on(lab, nodes: set[str]) -> set[str]:
    return {n for n, p in pods(lab).items() if n.startswith("web-") and ready(p) and p["spec"].get("nodeName") in nodes}


def pod_identity(lab, name: str) -> tuple:
    """What a rebuilt pod would change: its network namespace (inode), address and UID."""
    p = pods(lab)[name]
    netns = names.pod_netns(lab.name, p["metadata"]["namespace"], name)
    return os.stat(f"/run/netns/{netns}").st_ino, p["status"]["podIP"], p["metadata"]["uid"]


def probe_matrix_passes(lab, attempts: int = 3) -> None:
    """`netlab probe` (the whole matrix and the expectations) passes; looked at up to `attempts` times, a
    few seconds apart: the machine's neighbour table is shared with every other lab on it, and when
    another lab fills it some probes time out (netlab probe says so); the last output is shown."""
    for i in range(attempts):
        r = kubectl(lab, "probe", check=False)
        if r.returncode == 0:
            return
        time.sleep(3)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr


def up(lab, grace: int, networking: str = ""):
    up_text(lab, scenario(grace, networking))


def up_text(lab, text: str):
    """`up` of that scenario, then until both hosts' agents run and every pod is ready."""
    lab.up(text)
    until("both agents running", lambda: agent.running(lab.name, "ha") and agent.running(lab.name, "hb"), timeout=20)
    until("every pod ready", lambda: all(ready(p) for p in pods(lab).values()), timeout=60)


def test_two_agents_build_their_hosts_and_one_runs_the_controllers(lab):
    up(lab, grace=30)
    assert loop.running(lab.name) is None, "a lab placed on hosts has agents, not the one control loop"
    on = {n: p["spec"]["nodeName"] for n, p in pods(lab).items()}
    assert {on["client"], on["client-b"]} == {"n2", "n4"} and {on[n] for n in on if n.startswith("web-")} & {"n3", "n4"}
    # each agent tagged as its host's, keeping its own state: its nodes and their pods only
    for host, nodes in HOSTS.items():
        assert procs.owner_of(pid_of(lab, host)) == names.agent_owner(lab.name, host)
        with open(os.path.join(layout.host_dir(lab.name, host), "state.json")) as f:
            st = json.load(f)
        assert set(st["nodes"]) == nodes
        assert {k.split("/", 1)[1] for k in st["pods"]} == {n for n, node in on.items() if node in nodes}
    probe_matrix_passes(lab)
    # one leader, the Lease says which; the other agent runs no controller
    first = until("a Lease holder", lambda: holder(lab))
    lead, other = ("ha", "hb") if first.startswith("ha_") else ("hb", "ha")
    assert first.startswith(f"{lead}_")
    with open(layout.agent_log(lab.name, other)) as f:
        assert "leading: the controllers run here" not in f.read()
    # the leader dies: the other takes the Lease over within its duration (and a retry or two)
    os.kill(pid_of(lab, lead), signal.SIGKILL)
    t0 = time.monotonic()
    until("the other agent holding the Lease", lambda: holder(lab).startswith(f"{other}_"),
          timeout=leader.LEASE_SECONDS + 5, every=0.1)
    took = time.monotonic() - t0
    assert took <= leader.LEASE_SECONDS + 3, took
    spec = store_for(lab.name).get("Lease", leader.NAMESPACE, leader.NAME)["spec"]
    assert spec["leaseTransitions"] >= 1 and spec["leaseDurationSeconds"] == leader.LEASE_SECONDS
    # the controllers run there now: a Deployment scaled gets its pods (the command also starts the dead
    # agent again, a new candidate that does not take the Lease back)
    kubectl(lab, "scale", "deploy/web", "--replicas=6")
    until("six ready web pods", lambda: len(web_ready_on(lab, {"n1", "n2", "n3", "n4"})) == 6, timeout=60)
    assert holder(lab).startswith(f"{other}_")
    out = kubectl(lab, "get", "lease", "netlab-controllers", "-n", "kube-system").stdout.splitlines()
    assert out[0].split() == ["NAME", "HOLDER", "AGE"] and out[1].split()[:2] == ["netlab-controllers", holder(lab)]
    probe_matrix_passes(lab)


def test_an_agent_killed_and_started_again_loses_nothing(lab):
    up(lab, grace=30)
    theirs = {n for n, p in pods(lab).items() if p["spec"]["nodeName"] in HOSTS["hb"]}
    assert "client-b" in theirs and len(theirs) >= 2
    before = {n: pod_identity(lab, n) for n in theirs}
    old = pid_of(lab, "hb")
    os.kill(old, signal.SIGKILL)
    until("the agent gone", lambda: agent.running(lab.name, "hb") is None, timeout=10)
    # the agent started again needs only its host's records and the store (the lab's decisions are in the
    # ConfigMap kube-system/netlab-config): the lab's own state.json, which another machine would not
    # have, is out of the way meanwhile
    cm = store_for(lab.name).get("ConfigMap", "kube-system", "netlab-config")
    assert json.loads(cm["data"]["lab.json"])["scenario"].startswith("apiVersion: netlab.dev/v1alpha1")
    os.rename(layout.lab_state_file(lab.name), layout.lab_state_file(lab.name) + ".away")
    try:
        started = time.time()
        agent.start(lab.name, "hb")
        until("the agent back", lambda: agent.running(lab.name, "hb") and pid_of(lab, "hb") != old, timeout=10)
        # its first pass (a deep one: every pod's network read back) writes its host's state when done
        host_state = os.path.join(layout.host_dir(lab.name, "hb"), "state.json")
        until("its first pass done", lambda: os.path.getmtime(host_state) > started, timeout=30)
    finally:
        os.rename(layout.lab_state_file(lab.name) + ".away", layout.lab_state_file(lab.name))
    after = {n: pod_identity(lab, n) for n in theirs}
    assert after == before, "no pod rebuilt: same network namespace, address and UID"
    assert all(ready(pods(lab)[n]) for n in theirs)
    assert node_ready(lab, "n3") == "True" and node_ready(lab, "n4") == "True"
    probe_matrix_passes(lab)


def test_a_host_whose_agent_stops_has_its_nodes_notready_and_its_pods_moved(lab):
    up(lab, grace=4)
    lost = {n for n, p in pods(lab).items() if n.startswith("web-") and p["spec"]["nodeName"] in HOSTS["hb"]}
    assert lost, "the scheduler spread web over both hosts"
    pid = pid_of(lab, "hb")
    os.kill(pid, signal.SIGSTOP)   # the host is lost: its agent neither heartbeats nor reconciles
    try:
        until("n3 and n4 NotReady", lambda: node_ready(lab, "n3") != "True" and node_ready(lab, "n4") != "True",
              timeout=leader.LEASE_SECONDS + 20)
        assert node_ready(lab, "n1") == "True" and node_ready(lab, "n2") == "True"
        until("four ready web pods on the other host", lambda: len(web_ready_on(lab, HOSTS["ha"])) == 4, timeout=60)
        assert holder(lab).startswith("ha_"), "the surviving agent leads"
        taints = {t["key"] for t in store_for(lab.name).get("Node", None, "n3")["spec"].get("taints") or []}
        assert "node.kubernetes.io/unreachable" in taints
        # the Service answers from the surviving host's pods only (read from the client pod on n2)
        cip = next(s for s in lab.cluster.services if s.name == "web").cluster_ip
        seen = set()
        for _ in range(20):
            r = lab.ns_exec(lab.pod("client").netns, ["curl", "-sS", "--max-time", "2", f"http://{cip}/hostName"])
            assert r.returncode == 0, r.stderr
            seen.add(r.stdout.strip())
        assert seen and not seen & lost and seen <= web_ready_on(lab, HOSTS["ha"]), (seen, lost)
        assert store_for(lab.name).get("Node", None, "n3")["metadata"]["labels"][HOST_LABEL] == "hb"
    finally:
        os.kill(pid, signal.SIGCONT)


def test_bad_placement_and_unknown_hosts_are_refused(lab, tmp_path):
    half = tmp_path / "half.yaml"
    half.write_text(scenario(30).replace("{name: n3, role: worker, labels: {netlab.dev/host: hb}}",
                                         "{name: n3, role: worker}"))
    from .conftest import netlab_cli
    r = netlab_cli("up", str(half), "--lab", lab.name)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: nodes n3 are placed on no host while n1, n2, n4 are: give every node the label "
        "netlab.dev/host=<host> in the Cluster document's nodes[].labels, or none"], r.stderr
    assert not os.path.exists(f"/run/netns/{names.node_netns(lab.name, 'n1')}"), "nothing built"
    up(lab, grace=30)
    r = netlab_cli("agent", lab.name, "--host", "hc")
    assert r.returncode == 2 and "has no host 'hc' (its hosts: ha, hb)" in r.stderr, r.stderr
    r = netlab_cli("agent", lab.name, "--host", "ha")   # one runs: said, nothing started
    assert r.returncode == 0 and "already running" in r.stdout, r.stdout + r.stderr
    # down stops every agent of the lab (and nothing else: another lab's agent, here a stand-in tagged as
    # one of a lab whose name starts the same, lives on)
    import subprocess
    import sys
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env=dict(os.environ, NETLAB_OWNER=names.agent_owner(lab.name + "x", "ha")))
    try:
        agents = [pid_of(lab, "ha"), pid_of(lab, "hb")]
        lab.down()
        assert not [p for p in agents if os.path.exists(f"/proc/{p}")], "every agent stopped"
        assert other.poll() is None, "another lab's agent left alone"
    finally:
        other.kill()
        other.wait()


def test_a_lab_goes_from_one_loop_to_agents_and_back_rebuilding_nothing(lab):
    import re
    one = re.sub(r", labels: \{netlab.dev/host: h[ab]\}", "", scenario(30))
    lab.up(one)
    until("every pod ready", lambda: all(ready(p) for p in pods(lab).values()), timeout=60)
    assert loop.running(lab.name) and not agent.running(lab.name, "ha")
    before = {n: pod_identity(lab, n) for n in pods(lab)}
    up(lab, grace=30)   # placed on hosts: the agents adopt what the loop built
    assert loop.running(lab.name) is None
    assert {n: pod_identity(lab, n) for n in pods(lab)} == before
    probe_matrix_passes(lab)
    for n in ("n1", "n2", "n3", "n4"):
        kubectl(lab, "label", "node", n, f"{HOST_LABEL}-")
    lab.up(one)   # and back to one loop
    until("the one loop", lambda: loop.running(lab.name), timeout=10)
    assert not agent.running(lab.name, "ha") and not agent.running(lab.name, "hb")
    assert not os.path.exists(layout.hosts_dir(lab.name))
    assert {n: pod_identity(lab, n) for n in pods(lab)} == before
    probe_matrix_passes(lab)


def netpol_scenario() -> str:
    """The agents' lab in kube-proxy's nftables mode, web open only to pods labelled role=client (client on
    host ha may call it, client-b on host hb may not), as its expectations say."""
    text = scenario(30, "kubeProxyMode: nftables")
    text = text.replace("metadata: {name: client}\n", "metadata: {name: client, labels: {role: client}}\n", 1)
    text = text.replace("- {from: pod/client-b, to: svc/web:80, expect: reachable, backends: all}",
                        "- {from: pod/client-b, to: svc/web:80, expect: denied}", 1)
    text = text.replace("- {from: external, to: nodeport/web, expect: reachable}\n", "", 1)
    return text + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-clients}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
    ports: [{port: 8080}]
"""


def test_agents_in_nftables_mode_enforce_a_network_policy_across_hosts(lab):
    """Each agent programs its own host's nodes: kube-proxy's nftables table and the policy's filter rules
    are in every node of both hosts; a client on one host reaches web's pods on both, a pod the policy does not
    allow is refused by them (curl from inside the pods), and the probe's expectations hold."""
    up_text(lab, netpol_scenario())
    on = {n: p["spec"]["nodeName"] for n, p in pods(lab).items()}
    assert {on[n] for n in on if n.startswith("web-")} & HOSTS["ha"] and \
        {on[n] for n in on if n.startswith("web-")} & HOSTS["hb"], on
    for node in ("n1", "n2", "n3", "n4"):
        ns = names.node_netns(lab.name, node)
        table = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "ip", "kube-proxy"],
                               capture_output=True, text=True, timeout=30)
        assert table.returncode == 0 and "10.96." in table.stdout, (node, table.stderr)
    web = {p["status"]["podIP"]: n for n, p in pods(lab).items() if n.startswith("web-")}
    for name, allowed in (("client", True), ("client-b", False)):
        for ip, pod in web.items():   # every web pod, on both hosts, straight to its address
            r = netlab_cli("exec", "--lab", lab.name, name, "--", "curl", "-sS", "--max-time", "3",
                           f"http://{ip}:8080/hostname")
            if allowed:
                assert r.returncode == 0 and r.stdout.strip() == pod, (name, pod, on[pod], r.stdout, r.stderr)
            else:
                assert r.returncode != 0 and not r.stdout.strip(), (name, pod, on[pod], r.stdout)
    # and through the Service, by its name (the cluster DNS, on either host)
    r = netlab_cli("exec", "--lab", lab.name, "client", "--", "curl", "-sS", "--max-time", "5", "http://web/hostname")
    assert r.returncode == 0 and r.stdout.strip() in web.values(), r.stdout + r.stderr
    probe_matrix_passes(lab)


def test_agents_with_the_bgp_backend_route_pods_across_hosts(lab):
    """backend bgp (BIRD in every node, each node's podCIDR announced to the others): each agent starts its own
    host's nodes' BIRD, the sessions between nodes on different hosts come up, and the probe matrix passes
    across the hosts with plain routed pod traffic."""
    up(lab, 30, "backend: bgp")
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in store_for(lab.name).list("Node")}

    def learnt(node: str) -> set[str]:
        out = netlab_cli("exec", "--lab", lab.name, "--node", node, "--", "ip", "route", "show", "proto", "bird").stdout
        return {line.split()[0] for line in out.splitlines() if line.strip()}
    for node in ("n1", "n3"):   # a node on each host: the other host's nodes' podCIDRs, learnt over BGP
        until(f"{node} learnt every other node's podCIDR", lambda node=node: learnt(node) >= {
            c for n, c in cidrs.items() if n != node}, timeout=60)

    def router_sessions() -> set[str]:   # the external router (one speaker, run by one agent): every node's
        out = netlab_cli("exec", "--lab", lab.name, "--external", "--", "birdc", "show", "protocols").stdout
        return {name for name, p in bird.parse_protocols(out).items() if p.established}
    until("the external router's sessions with the nodes of both hosts",
          lambda: router_sessions() == set(bird.protocol_names(lab.cluster.nodes).values()), timeout=60)
    probe_matrix_passes(lab)


def test_agents_in_userspace_mode_run_each_hosts_proxies_and_reach_the_service_across_hosts(lab):
    """kube-proxy's userspace mode under agents: each agent starts the proxy process of its own host's nodes
    (one per node, tagged as that node's, none started twice by the two agents), and a client on each host
    reaches web's pods on both hosts through the Service's ClusterIP and name (curl from inside the pods)."""
    up(lab, 30, "kubeProxyMode: userspace")
    for node in ("n1", "n2", "n3", "n4"):
        path = f"/run/netns/{names.node_netns(lab.name, node)}"
        owners = procs.owned([path])
        assert len(owners.get(names.userspace_proxy_owner(lab.name, node), [])) == 1, (node, owners)
    on = {n: p["spec"]["nodeName"] for n, p in pods(lab).items()}
    web = {n for n in on if n.startswith("web-")}
    assert {on[n] for n in web} & HOSTS["ha"] and {on[n] for n in web} & HOSTS["hb"], on
    svc = store_for(lab.name).get("Service", "default", "web")["spec"]["clusterIP"]
    for client in ("client", "client-b"):
        seen = set()
        for _ in range(24):   # the proxy picks a backend per connection: every web pod, on both hosts
            r = netlab_cli("exec", "--lab", lab.name, client, "--", "curl", "-sS", "--max-time", "3",
                           f"http://{svc}/hostname")
            assert r.returncode == 0, (client, r.stdout, r.stderr)
            seen.add(r.stdout.strip())
            if seen == web:
                break
        assert seen == web, (client, seen, web)
        r = netlab_cli("exec", "--lab", lab.name, client, "--", "curl", "-sS", "--max-time", "5", "http://web/hostname")
        assert r.returncode == 0 and r.stdout.strip() in web, (client, r.stdout, r.stderr)
    probe_matrix_passes(lab)
