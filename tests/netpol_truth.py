"""An independent model of NetworkPolicy semantics (networking.k8s.io/v1), the oracle of the truth-table
tests: it reads the policy MANIFESTS (plain dicts, as written in YAML) and the pods' and namespaces'
labels, and says which connection is allowed. It is written from the Kubernetes API's documented
semantics and deliberately shares no code with netlab (not netlab.netpol.evaluate, not its parser, not
its renderers), so that the two can check each other (tests/unit/test_netpol_truth_model.py) and the
dataplane (tests/integration/test_netpol_truth.py).

The world is the upstream e2e suite's model: namespaces x, y, z (label ns=<name>), pods a, b, c in each
(label pod=<name>), each serving TCP and UDP on 80 and 81 with the named container ports serve-80-tcp,
serve-81-tcp, serve-80-udp, serve-81-udp. Other pods (the cluster DNS in kube-system) may be added.

Semantics, as the API documents them:
- policyTypes absent: Ingress, plus Egress when the policy has at least one egress rule.
- a pod is isolated in a direction when a policy of its own namespace selects it (podSelector; {} = all
  of the namespace's pods) with that direction in its policyTypes; a pod not isolated allows everything
  in that direction; an isolated one allows what at least one rule of one selecting policy allows.
- a connection needs the source's egress and the destination's ingress; a pod's traffic to itself passes.
- a rule with no `from`/`to` (absent or empty) matches every peer; no `ports`, every port and protocol.
- a peer: ipBlock (cidr minus except, applied to pod addresses too); podSelector alone = pods of the
  policy's namespace; namespaceSelector alone = every pod of the matching namespaces; both = the matching
  pods of the matching namespaces. Namespaces carry kubernetes.io/metadata.name=<name>.
- a port: protocol (default TCP), port absent = every port of the protocol, a number (with endPort: the
  range), or a name = the destination pod's container port of that name and protocol.
"""
from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass, field

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP")
NAMED_PORTS = {f"serve-{p}-{proto.lower()}": (p, proto) for p in PORTS for proto in PROTOCOLS}
MATRIX = tuple(f"{ns}/{p}" for ns in NAMESPACES for p in PODS)       # row and column order


@dataclass
class Pod:
    namespace: str
    name: str
    labels: dict
    ip: str = ""
    ports: dict = field(default_factory=lambda: dict(NAMED_PORTS))   # name -> (number, protocol)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class World:
    """Pods (by "ns/name"), namespaces' labels and the policies in force (manifests)."""
    pods: dict
    namespaces: dict
    policies: list = field(default_factory=list)

    def pod_at(self, ip: str) -> Pod | None:
        return next((p for p in self.pods.values() if p.ip and p.ip == ip), None)


def base_world(ips: dict | None = None) -> World:
    """The e2e model: x, y, z with pods a, b, c, their default labels; `ips` ("ns/pod" -> address) when
    known (ipBlock cases need them)."""
    ips = ips or {}
    pods = {f"{ns}/{p}": Pod(ns, p, {"pod": p}, ips.get(f"{ns}/{p}", "")) for ns in NAMESPACES for p in PODS}
    return World(pods, {ns: {"ns": ns} for ns in NAMESPACES})


def with_manifests(world: World, manifests: list[dict]) -> World:
    """A copy of `world` with the step's documents in force: NetworkPolicies replace the set, Pod and
    Namespace documents replace those objects' labels."""
    w = World({k: copy.deepcopy(p) for k, p in world.pods.items()}, copy.deepcopy(world.namespaces), [])
    for m in manifests:
        kind, meta = m["kind"], m.get("metadata") or {}
        if kind == "NetworkPolicy":
            w.policies.append(m)
        elif kind == "Namespace":
            w.namespaces[meta["name"]] = dict(meta.get("labels") or {})
        elif kind == "Pod":
            key = f"{meta.get('namespace', 'default')}/{meta['name']}"
            if key in w.pods:
                w.pods[key].labels = dict(meta.get("labels") or {})
            else:
                w.pods[key] = Pod(meta.get("namespace", "default"), meta["name"], dict(meta.get("labels") or {}))
        else:
            raise ValueError(f"the truth model does not know kind {kind}")
    return w


# ------------------------------------------------------------------ the semantics

def selector_matches(sel: dict | None, labels: dict) -> bool:
    """metav1.LabelSelector: every matchLabels pair and every expression; {} (or absent) matches all."""
    sel = sel or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        has = key in labels
        ok = {"In": has and labels.get(key) in values,
              "NotIn": not has or labels.get(key) not in values,
              "Exists": has,
              "DoesNotExist": not has}[op]
        if not ok:
            return False
    return True


def policy_types(policy: dict) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def ns_labels(world: World, ns: str) -> dict:
    labels = dict(world.namespaces.get(ns) or {})
    labels["kubernetes.io/metadata.name"] = ns
    return labels


def policies_isolating(world: World, pod: Pod, direction: str) -> list[dict]:
    return [p for p in world.policies
            if (p.get("metadata") or {}).get("namespace", "default") == pod.namespace
            and direction in policy_types(p)
            and selector_matches((p.get("spec") or {}).get("podSelector"), pod.labels)]


def _in_block(block: dict, ip: str) -> bool:
    if not ip:
        return False
    a = ipaddress.ip_address(ip)
    if a not in ipaddress.ip_network(block["cidr"], strict=False):
        return False
    return not any(a in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])


def _peer_matches(world: World, policy_ns: str, peer: dict, other: Pod | None, other_ip: str) -> bool:
    if "ipBlock" in peer:
        return _in_block(peer["ipBlock"], other_ip)
    if other is None:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], ns_labels(world, other.namespace)):
            return False
    elif other.namespace != policy_ns:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)


def _port_matches(entry: dict, dst: Pod | None, port: int, proto: str) -> bool:
    if entry.get("protocol", "TCP") != proto:
        return False
    want = entry.get("port")
    if want is None:
        return True
    if isinstance(want, str):
        return dst is not None and dst.ports.get(want) == (port, proto)
    end = entry.get("endPort")
    return want <= port <= end if end is not None else want == port


def _direction_allows(world: World, pod: Pod, direction: str, other: Pod | None, other_ip: str,
                      dst: Pod | None, port: int, proto: str) -> bool:
    isolating = policies_isolating(world, pod, direction)
    if not isolating:
        return True
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for pol in isolating:
        ns = (pol.get("metadata") or {}).get("namespace", "default")
        for rule in (pol.get("spec") or {}).get(rules_key) or []:
            ports = rule.get("ports") or []
            if ports and not any(_port_matches(e, dst, port, proto) for e in ports):
                continue
            peers = rule.get(peers_key) or []
            if not peers or any(_peer_matches(world, ns, pe, other, other_ip) for pe in peers):
                return True
    return False


def allowed(world: World, src: str, dst: str, port: int, proto: str) -> bool:
    """Whether pod `src` ("ns/name") may open a connection to pod `dst` on port/proto."""
    s, d = world.pods[src], world.pods[dst]
    if s is d:
        return True
    return _direction_allows(world, s, "Egress", d, d.ip, d, port, proto) and \
        _direction_allows(world, d, "Ingress", s, s.ip, d, port, proto)


def truth(world: World, port: int, proto: str, pods=MATRIX) -> dict:
    """The truth table: (from, to) -> allowed, over `pods` x `pods`."""
    return {(f, t): allowed(world, f, t, port, proto) for f in pods for t in pods}


# ------------------------------------------------------------------ tables

ALLOWED, DENIED = ".", "X"


def cells(table: dict) -> dict:
    """Booleans -> '.' / 'X'; strings (observed outcomes already mapped to symbols) are kept."""
    return {k: (ALLOWED if v else DENIED) if isinstance(v, bool) else v for k, v in table.items()}


def format_table(table: dict, title: str = "", pods=MATRIX) -> str:
    """As the upstream suite prints its reachability: a row per source ("from"), a column per
    destination ("to"), '.' allowed, 'X' denied (observed tables may hold other symbols)."""
    c = cells(table)
    width = max(len(p) for p in pods)
    lines = [title] if title else []
    lines.append(" " * width + "  " + " ".join(p.rjust(width) for p in pods) + "   (row: from, column: to)")
    for f in pods:
        lines.append(f.ljust(width) + "  " + " ".join(c[(f, t)].rjust(width) for t in pods))
    return "\n".join(lines)


def diff(expected: dict, observed: dict) -> list[str]:
    """The wrong cells: 'x/a -> y/b: expected ., observed X (detail)'."""
    e, o = cells(expected), cells(observed)
    return [f"{f} -> {t}: expected {e[(f, t)]}, observed {o[(f, t)]}" for (f, t) in expected
            if e[(f, t)] != o[(f, t)]]


# ------------------------------------------------------------------ addresses in cases

PLACEHOLDER = re.compile(r"\{(ip|net24):([a-z0-9-]+/[a-z0-9-]+)\}")


def fill(obj, ips: dict):
    """Replace {ip:ns/pod} and {net24:ns/pod} (the /24 holding that pod's address, i.e. its node's pod
    range here) in every string of a manifest, from the pods' addresses read from the lab."""
    if isinstance(obj, dict):
        return {k: fill(v, ips) for k, v in obj.items()}
    if isinstance(obj, list):
        return [fill(v, ips) for v in obj]
    if isinstance(obj, str):
        def sub(m):
            ip = ips[m.group(2)]
            if m.group(1) == "ip":
                return ip
            return str(ipaddress.ip_network(f"{ip}/24", strict=False))
        return PLACEHOLDER.sub(sub, obj)
    return obj
