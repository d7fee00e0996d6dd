"""Drives the NetworkPolicy truth-table cases (tests/netpol_cases.py) on a real lab: the e2e model's
scenario (namespaces x, y, z; pods a, b, c in each, serving TCP and UDP on 80 and 81 with the named
ports serve-80-tcp ...; over two workers), each step's manifests applied with `netlab apply` as a user
does, the whole 9x9 matrix probed for each port/protocol with netlab's probe engine (the same one
`netlab probe` uses: crafted SYNs and UDP datagrams from inside each pod's namespace), and what the wire
says compared with the independent oracle (tests/netpol_truth.py).

Used by tests/integration/test_netpol_truth.py (iptables and nftables modes) and tests/vm/
test_netpol_ipvs.py (IPVS mode, in the VM). Needs root.

What counts as what on the wire (the enforcement contract: a denied packet is rejected with ICMP
admin-prohibited): allowed = the connection was answered (SYN-ACK, or the UDP answer of the built-in
server); denied = the probe's `denied` outcome, or, while the probe engine has no such outcome yet, a
`refused` whose ICMP error is admin-prohibited. Anything else (a timeout, an RST, port-unreachable) is
wrong in both cases and shown as '?' in the observed table.

Every probe is a new flow, as the upstream suite's are (each of its probes is a new connection): the
probe engine's source ports come from a counter over 61000-65535 that wraps every 14 sweeps, so the same
(source, source port, destination, port) comes round within seconds, while the nodes' conntrack still
holds the earlier flow (UDP for 30-180 s, TCP in CLOSE for 10 s and in SYN_SENT for 120 s). A packet of
a known flow is ESTABLISHED to netfilter, and the policy chains (like every real implementation's) let
ESTABLISHED through: a UDP probe answered before a policy change passes again, and so does a SYN on a TCP
entry that has seen a reply but was left in SYN_SENT (seen on w1 after a run of ingress-denied and
answered probes on the same tuples; the nodes' conntrack then accepts each new SYN of that tuple as a
retransmission). Egress cases took 10-20 s to agree, and sometimes 30 s was not enough. So before each
sweep the nodes' conntrack entries of TCP and UDP to 80, 81 and 53 are deleted.

Sync: nothing tells a test when the lab's control loop has applied a change, so a step polls: the
matrix is probed until it equals the oracle's twice in a row (0.5 s apart), or fails after SYNC_TIMEOUT
with both tables and the wrong cells. When the new expectation equals the last one (a change that must
not change reachability) the first comparison waits QUIET seconds, so a late change would show.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import yaml

from netlab import names
from netlab.probe.engine import OUTCOMES, ProbeSpec, run_probes

from . import netpol_truth as T
from .netpol_cases import LABEL, Case

SYNC_TIMEOUT = float(os.environ.get("NETLAB_TRUTH_SYNC_TIMEOUT", "30"))
QUIET = 2.0
PROBE_TIMEOUT = 2.0
CLI_TIMEOUT = 120.0    # a netlab command (tests/vm raises it, EXEC_TIMEOUT and SYNC_TIMEOUT for the VM)
EXEC_TIMEOUT = 30.0    # a shell script in a pod's namespace
NODES = ("w1", "w2")
# a DNS query (A kubernetes.default.svc.cluster.local, id "NL"): every byte is ASCII, so the probe's
# str payload encodes to exactly these bytes; the cluster DNS answers it
DNS_QUERY = ("NL\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             "\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01")


def node_of(key: str) -> str:
    """Pods alternate over the two workers in matrix order: x/a w1, x/b w2, x/c w1, y/a w2 ..."""
    return NODES[T.MATRIX.index(key) % 2]


def pod_manifest(ns: str, name: str, labels: dict | None = None) -> dict:
    ports = [{"name": n, "containerPort": p, "protocol": proto} for n, (p, proto) in T.NAMED_PORTS.items()]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": ns, "name": name, "labels": labels if labels is not None else {"pod": name}},
            "spec": {"nodeName": node_of(f"{ns}/{name}"),
                     "containers": [{"name": "cont-80-81", "ports": ports}]}}


def namespace_manifest(ns: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": labels if labels is not None else {"ns": ns}}}


def scenario(mode: str) -> str:
    cluster = {"apiVersion": "netlab.dev/v1alpha1", "kind": "Cluster",
               "nodes": [{"role": "control-plane"}, {"role": "worker", "name": "w1"},
                         {"role": "worker", "name": "w2"}],
               "networking": {"kubeProxyMode": mode, "backend": "vxlan"}}
    docs = [cluster] + [namespace_manifest(ns) for ns in T.NAMESPACES] + \
        [pod_manifest(*k.split("/")) for k in T.MATRIX]
    return yaml.safe_dump_all(docs, sort_keys=False)


def step_documents(manifests, ips: dict) -> list[dict]:
    """What one `netlab apply` gets for a step: its policies (addresses filled in), and every namespace
    and pod of the model with the step's labels (the model's defaults unless the step changes them), so
    that a case starts from the model's labels whatever the case before it changed."""
    ns_labels = {m["metadata"]["name"]: m["metadata"]["labels"] for m in manifests if m["kind"] == "Namespace"}
    pod_labels = {f"{m['metadata']['namespace']}/{m['metadata']['name']}": m["metadata"]["labels"]
                  for m in manifests if m["kind"] == "Pod"}
    docs = [namespace_manifest(ns, ns_labels.get(ns)) for ns in T.NAMESPACES]
    docs += [pod_manifest(*k.split("/"), pod_labels.get(k)) for k in T.MATRIX]
    docs += [T.fill(m, ips) for m in manifests if m["kind"] == "NetworkPolicy"]
    return docs


def cli(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    argv = [exe, *args] if os.path.exists(exe) else [sys.executable, "-m", "netlab", *args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout or CLI_TIMEOUT)
    assert r.returncode == 0, f"netlab {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}"
    return r


def symbol(r) -> str:
    """A probe result as a table cell: '.' answered, 'X' denied by a policy, '?' anything else."""
    if r.outcome == "reachable":
        return T.ALLOWED
    if r.outcome == "denied" or ("denied" not in OUTCOMES and r.outcome == "refused"
                                 and "admin-prohibited" in (r.detail or "")):
        return T.DENIED
    return "?"


@dataclass
class Timing:
    steps: int = 0
    sweeps: int = 0
    probes: int = 0
    probe_s: float = 0.0
    sync_s: list = field(default_factory=list)     # per step: apply to the first matching sweep
    slowest: list = field(default_factory=list)    # (seconds, "case#step")


class TruthLab:
    """One lab of the e2e model, and the cases run on it."""

    def __init__(self, name: str):
        self.name = name
        self.timing = Timing()
        self.last_expected = None
        self.applied = False

    def netlab(self, *args: str, timeout: float | None = None):
        return cli(*args, "--lab", self.name, timeout=timeout)

    # ---- the lab's state
    def pods(self) -> dict:
        """Every pod's object (`netlab get pods -A -o json`), by "ns/name"."""
        doc = json.loads(self.netlab("get", "pods", "-A", "-o", "json").stdout)
        return {f"{i['metadata']['namespace']}/{i['metadata']['name']}": i for i in doc["items"]}

    def world(self, manifests, pods: dict) -> tuple[T.World, dict]:
        ips = {k: p.get("status", {}).get("podIP", "") for k, p in pods.items()}
        w = T.base_world(ips)
        for key, p in pods.items():     # the cluster DNS pods, as the lab has them
            if key.startswith("kube-system/") and (p["metadata"].get("labels") or {}).get("k8s-app") == "kube-dns":
                ports = {c["name"]: (c["containerPort"], c.get("protocol", "TCP"))
                         for ct in p["spec"]["containers"] for c in ct.get("ports") or [] if c.get("name")}
                w.pods[key] = T.Pod("kube-system", p["metadata"]["name"], dict(p["metadata"]["labels"]),
                                    ips[key], ports)
        return T.with_manifests(w, [T.fill(m, ips) for m in manifests]), ips

    # ---- one step
    def apply(self, manifests, ips: dict) -> None:
        docs = step_documents(manifests, ips)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="netpol-truth-") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
            f.flush()
            sel = ",".join(f"{k}={v}" for k, v in LABEL.items())
            self.netlab("apply", "-f", f.name, "--prune", "-l", sel)
        want = sorted(f"{m['metadata']['namespace']}/{m['metadata']['name']}" for m in manifests
                      if m["kind"] == "NetworkPolicy")
        assert self.stored_policies() == want, \
            f"after apply --prune the lab holds the policies {self.stored_policies()}, not {want}"

    def stored_policies(self) -> list[str]:
        """The NetworkPolicies in the lab's store, "ns/name"."""
        from netlab.cli import kubeutil
        store = kubeutil.open_target(self.name).store
        return sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in store.list("NetworkPolicy"))

    def forget_flows(self) -> None:
        """Delete the nodes' conntrack entries of TCP and UDP to 80, 81, 53 (see the module's docstring)."""
        from netlab.dataplane import lab as labmod
        if not getattr(self, "node_netns", None):
            doc = json.loads(self.netlab("get", "nodes", "-o", "json").stdout)
            self.node_netns = [names.node_netns(self.name, n["metadata"]["name"]) for n in doc["items"]]
        script = "; ".join(f"conntrack -D -p {proto} --orig-port-dst {p} >/dev/null 2>&1"
                           for proto in ("tcp", "udp") for p in (80, 81, 53))
        for ns in self.node_netns:
            subprocess.run(labmod.netns_exec_argv(ns, ["sh", "-c", script + "; true"]), check=True,
                           timeout=EXEC_TIMEOUT)

    def sweep(self, checks, dns: list[str], world: T.World) -> dict:
        """Probe the matrix for every (port, proto) (and 53 to the DNS pods): {(port, proto): {(from, to):
        (symbol, detail)}}."""
        specs, keys = [], []
        for port, proto in checks:
            for f in T.MATRIX:
                src = names.pod_netns(self.name, *f.split("/"))
                for t in T.MATRIX:
                    specs.append(ProbeSpec(src, proto.lower(), world.pods[t].ip, port, timeout=PROBE_TIMEOUT,
                                           label=f"{f}->{t}"))
                    keys.append(((port, proto), (f, t)))
        for proto in ("UDP", "TCP"):
            for f in T.MATRIX:
                src = names.pod_netns(self.name, *f.split("/"))
                for t in dns:
                    specs.append(ProbeSpec(src, proto.lower(), world.pods[t].ip, 53, timeout=PROBE_TIMEOUT,
                                           payload=DNS_QUERY))
                    keys.append(((53, proto), (f, t)))
        self.forget_flows()
        t0 = time.monotonic()
        results = run_probes(specs, concurrency=64)
        self.timing.probe_s += time.monotonic() - t0
        self.timing.sweeps += 1
        self.timing.probes += len(specs)
        out: dict = {}
        for (check, cell), r in zip(keys, results):
            out.setdefault(check, {})[cell] = (symbol(r), f"{r.outcome}: {r.detail}")
        return out

    def expected(self, world: T.World, checks, dns: list[str]) -> dict:
        exp = {c: T.truth(world, *c) for c in checks}
        for proto in ("UDP", "TCP"):
            if dns:
                exp[(53, proto)] = {(f, t): T.allowed(world, f, t, 53, proto) for f in T.MATRIX for t in dns}
        return exp

    def run_step(self, case: Case, i: int) -> list[str]:
        """Apply step i of `case`, wait for the wire to agree with the oracle; the failures as text."""
        step = case.steps[i]
        pods = self.pods()
        world, ips = self.world(step.manifests, pods)
        dns = sorted(k for k in world.pods if k.startswith("kube-system/")) if case.dns else []
        if case.dns:
            assert dns, "the lab has no cluster DNS pod (k8s-app=kube-dns in kube-system)"
        expected = self.expected(world, case.checks, dns)
        same = expected == self.last_expected
        t0 = time.monotonic()
        self.apply(step.manifests, ips)
        self.timing.steps += 1
        if same:
            time.sleep(QUIET)
        matched_once = False
        self.history = []
        while True:
            if i and any(m["kind"] == "Pod" for m in step.manifests):
                world, _ = self.world(step.manifests, self.pods())   # re-read: a pod made anew has a new address
            observed = self.sweep(case.checks, dns, world)
            wrong = {c: T.diff(expected[c], {k: s for k, (s, _) in observed[c].items()}) for c in expected}
            self.history.append((round(time.monotonic() - t0, 1), sum(len(v) for v in wrong.values()),
                                 [f"{c[0]}/{c[1]} {line}" for c, v in wrong.items() for line in v][:3]))
            if not any(wrong.values()):
                if matched_once:
                    self.last_expected = expected
                    return []
                matched_once = True
                self.timing.sync_s.append(time.monotonic() - t0)
                self.timing.slowest.append((round(time.monotonic() - t0, 2), f"{case.name}#{i + 1}"))
                time.sleep(0.5)
                continue
            if matched_once:
                self.timing.sync_s.pop()
                self.timing.slowest.pop()
            matched_once = False
            if time.monotonic() - t0 > SYNC_TIMEOUT:
                return self.report(case, i, expected, observed, wrong)
            time.sleep(0.3)

    def report(self, case, i, expected, observed, wrong) -> list[str]:
        step = case.steps[i]
        out = [f"case {case.name}, step {i + 1}/{len(case.steps)}" + (f" ({step.note})" if step.note else "")
               + f": the wire disagrees with the model after {SYNC_TIMEOUT:.0f}s"]
        for (port, proto), cells in wrong.items():
            if not cells:
                continue
            if port == 53:
                out.append(f"-- 53/{proto} to the cluster DNS pods:")
            else:
                obs = {k: s for k, (s, _) in observed[(port, proto)].items()}
                out.append(T.format_table(expected[(port, proto)], f"-- expected {port}/{proto}:"))
                out.append(T.format_table(obs, f"-- observed {port}/{proto} ('?': neither answered nor denied):"))
            for line in cells:
                f, t = line.split(":")[0].split(" -> ")
                out.append(f"   {line}  [{observed[(port, proto)][(f, t)][1]}]")
                out.extend("      " + e for e in self.conntrack_of(f, t, port, proto))
        out.append("-- sweeps (seconds after apply, wrong cells, the first of them):")
        out.extend(f"   {t:5.1f}s {n:3d}  {'; '.join(first)}" for t, n, first in self.history[-20:])
        return out

    def conntrack_of(self, f: str, t: str, port: int, proto: str) -> list[str]:
        """The nodes' conntrack entries from pod f to pod t's port (for a failure's report)."""
        from netlab.dataplane import lab as labmod
        pods = self.pods()
        src, dst = (pods[k].get("status", {}).get("podIP", "") for k in (f, t))
        if not (src and dst):
            return []
        out = []
        for node in NODES:
            ns = names.node_netns(self.name, node)
            r = subprocess.run(labmod.netns_exec_argv(ns, ["conntrack", "-L", "-p", proto.lower(), "-s", src,
                                                            "-d", dst, "--dport", str(port)]),
                               capture_output=True, text=True, timeout=EXEC_TIMEOUT)
            out += [f"{node} conntrack: {line}" for line in r.stdout.splitlines()[:6]]
        return out
