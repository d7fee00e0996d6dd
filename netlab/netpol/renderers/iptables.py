"""NetworkPolicy in a node's iptables filter table, in kube-router's layout, without ipsets. Pure.

Chains (names at most 28 characters; all start with KUBE-, so `dataplane.iptables.OWNED_CHAIN` owns them):
- `KUBE-ROUTER-FORWARD`, jumped to first from FORWARD (before kube-proxy's and flannel's jumps), always
  present. When a policy isolates a pod of this node it holds: replies of allowed connections
  (ctstate RELATED,ESTABLISHED) RETURN; then, per isolated local pod, `-s POD -j KUBE-POD-FW-<hash>`
  (egress: the pod is the source) and `-d POD -j KUBE-POD-FW-<hash>` (ingress: the pod is the destination).
- `KUBE-POD-FW-<hash>`, one per (local pod, direction): what is always allowed RETURNs (the pod to itself;
  for ingress, the node's own traffic `--src-type LOCAL`; for egress, to a node address `--dst-type
  LOCAL`), then a jump to the chain of each policy that isolates the pod in that direction, then
  everything no policy marked is rejected with `REJECT --reject-with icmp-admin-prohibited` (ICMP 3/13:
  what `netlab probe` reports as denied), then the mark is cleared.
- `KUBE-NWPLCY-<hash>`, one per (policy, direction): one rule per (peer address, port) of each of its
  rules, setting mark bit 0x10000 ("a policy allows this") on a match. Peers are per-address rules
  (`-s`/`-d POD/32` for pod and namespace selectors, `-s`/`-d CIDR` for an ipBlock). An ipBlock with
  `except` gets its own `KUBE-NWPLCY-<hash>` chain: the excepted ranges RETURN first, then the CIDR
  marks, so an exception leaves the policy's other rules to decide.
- Named ports resolve per destination pod: ingress, `-d POD/32 --dport N` for each local pod the policy
  selects (the chain is entered only for those); egress, `-d PEER/32 --dport N` for each peer pod that
  has the port (an address that is no pod matches no named port). endPort ranges are `--dport a:b`.

Allowed traffic is never ACCEPTed here: it goes on to the rest of FORWARD (kube-proxy's firewall and
KUBE-FORWARD, then FLANNEL-FWD), so a policy cannot open what kube-proxy closes (loadBalancerSourceRanges).
Only bit 0x10000 is used (kube-proxy owns 0x4000 and 0x8000, CNI portmap 0x2000); it is cleared at the
end of each pod chain, so a packet between two isolated pods of one node is judged afresh by the second.

Semantics are those of `netpol.evaluate` (tests/unit/test_netpol_render.py walks the rendered rules with
`render.trace` and compares every verdict with it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import evaluate
from . import PolicyRenderer

if TYPE_CHECKING:
    from ...render.tables import Desired

ROUTER_CHAIN = "KUBE-ROUTER-FORWARD"
POD_CHAIN_PREFIX = "KUBE-POD-FW-"
POLICY_CHAIN_PREFIX = "KUBE-NWPLCY-"
MARK = "0x10000/0x10000"            # set by a policy rule that allows the packet
CLEAR = "0x0/0x10000"
REJECT = "REJECT --reject-with icmp-admin-prohibited"
FORWARD_JUMP = ("FORWARD", f'-m comment --comment "kube-router netpol - network policies" -j {ROUTER_CHAIN}')
# IPVS mode: a connection to a Service's virtual IP is delivered locally (the VIP is on kube-ipvs0), and
# ip_vs sends it on to the endpoint through LOCAL_OUT: the filter table's OUTPUT, never FORWARD, sees it
# with the pod's source and the endpoint's destination, so the same dispatch is jumped to from OUTPUT too
OUTPUT_JUMP = ("OUTPUT", f'-m comment --comment "kube-router netpol - network policies (IPVS sends from LOCAL_OUT)" '
               f'-j {ROUTER_CHAIN}')
DIRECTIONS = ("egress", "ingress")


def _chain(prefix: str, *parts: str) -> str:
    from ...render.tables import hash16   # not at load time: the CLI reads the registry (its names)
    return prefix + hash16("/".join(parts))


def pod_chain(pod, direction: str) -> str:
    """The KUBE-POD-FW-<hash> chain of a pod's ingress or egress."""
    return _chain(POD_CHAIN_PREFIX, pod.namespace, pod.name, direction)


def policy_chain(policy, direction: str, *more: str) -> str:
    """The KUBE-NWPLCY-<hash> chain of a policy's ingress or egress rules (`more`: an ipBlock's own chain)."""
    return _chain(POLICY_CHAIN_PREFIX, policy.namespace, policy.name, direction, *more)


def _line(chain: str, *parts: str) -> str:
    return " ".join(["-A", chain, *(p for p in parts if p)])


COMMENT_MAX = 255     # xt_comment keeps 255 bytes: a longer comment is cut, and would differ from iptables-save's


def _comment(text: str) -> str:
    return f'-m comment --comment "{text[:COMMENT_MAX]}"'


class _Pods(list):
    """Pods in address order, indexed by label (key, value): a selector with matchLabels or an `In`
    expression looks only at the pods that have its rarest pair or values (1,000 policies over 1,000 pods:
    no million selector matches)."""

    def __init__(self, pods):
        super().__init__(pods)
        self.by_label: dict[tuple[str, str], list] = {}
        self.by_namespace: dict[str, list] = {}
        self.position: dict[int, int] = {}
        for i, p in enumerate(self):
            self.position[id(p)] = i
            self.by_namespace.setdefault(p.namespace, []).append(p)
            for kv in p.labels.items():
                self.by_label.setdefault(kv, []).append(p)

    def select(self, selector, namespaces=None) -> list:
        """The pods `selector` matches (None: all), in address order; `namespaces`: only theirs."""
        # candidates: the pods of its rarest matchLabels pair, of its narrowest `In` requirement (the
        # union of its values' pods) or of the namespaces, whichever is smallest; every pod with none
        options = []
        if namespaces is not None:
            options.append(self._union(self.by_namespace.get(ns, ()) for ns in namespaces))
        if selector is not None:
            options += [self.by_label.get(kv, []) for kv in selector.match_labels]
            options += [self._union(self.by_label.get((r.key, v), ()) for v in r.values)
                        for r in selector.match_expressions if r.operator == "In"]
        cands = min(options, key=len) if options else self
        ns = set(namespaces) if namespaces is not None else None
        return [p for p in cands if (ns is None or p.namespace in ns)
                and (selector is None or selector.matches(p.labels))]

    def _union(self, lists) -> list:
        lists = [x for x in lists if x]
        if len(lists) == 1:
            return lists[0]
        return sorted({id(p): p for x in lists for p in x}.values(), key=lambda p: self.position[id(p)])


def _pods(cluster) -> _Pods:
    """The pods policies can select or name as peers (not hostNetwork), by address."""
    return _Pods(sorted((p for p in cluster.pods if not getattr(p, "host_network", False)),
                        key=lambda p: (int(p.ip), p.key)))


def _peer_pods(cluster, policy, peer, pods: _Pods) -> list:
    """The pods a pod/namespace-selector peer names (evaluate.peer_matches' meaning)."""
    if peer.namespace_selector is None:
        namespaces = [policy.namespace]
    else:
        namespaces = [ns for ns in pods.by_namespace
                      if peer.namespace_selector.matches(evaluate.namespace_labels(cluster, ns))]
    return pods.select(peer.pod_selector, namespaces)


def _port(pp) -> str:
    proto = pp.protocol.lower()
    if pp.port is None:
        return f"-p {proto}"
    dport = str(pp.port) if pp.end_port is None or pp.end_port == pp.port else f"{pp.port}:{pp.end_port}"
    return f"-p {proto} -m {proto} --dport {dport}"


def _named(pp, pod) -> str | None:
    n = pod.port_named(pp.port, pp.protocol)
    if n is None:
        return None
    proto = pp.protocol.lower()
    return f"-d {pod.ip}/32 -p {proto} -m {proto} --dport {n}"


def _matches(direction: str, addr: str, candidates, targets, ports) -> list[str]:
    """The match parts ('-s X -p tcp -m tcp --dport 80' ...) of one peer term over a rule's ports.
    `addr`: the peer's address match ('' for any); `candidates`: the pods the term covers (egress named
    ports); `targets`: the local pods the policy isolates (ingress named ports)."""
    out = []
    for pp in ports or (None,):
        if pp is None:
            out.append(addr)
        elif not isinstance(pp.port, str):
            out.append(f"{addr} {_port(pp)}".strip())
        elif direction == "ingress":
            out.extend(f"{addr} {m}".strip() for t in targets if (m := _named(pp, t)))
        else:   # egress: the peer is the destination; its -d is the pod's own
            out.extend(m for c in candidates if (m := _named(pp, c)))
    return out


def _policy_chains(cluster, policy, direction: str, targets, pods) -> dict[str, list[str]]:
    """The policy's chain for `direction` (and its ipBlock-with-except chains) on a node where it isolates
    `targets`."""
    name = policy_chain(policy, direction)
    flag = "-s" if direction == "ingress" else "-d"
    chains: dict[str, list[str]] = {name: []}
    rules = policy.ingress if direction == "ingress" else policy.egress
    for i, rule in enumerate(rules):
        comment = _comment(f"{policy.key} {direction} rule {i}")
        mark = f"{comment} -j MARK --set-xmark {MARK}"
        if not rule.peers:
            chains[name] += [_line(name, m, mark) for m in _matches(direction, "", pods, targets, rule.ports)]
            continue
        for j, peer in enumerate(rule.peers):
            block = peer.ip_block
            if block is None:
                for p in _peer_pods(cluster, policy, peer, pods):
                    chains[name] += [f"-A {name} {m} {mark}" for m in
                                     _matches(direction, f"{flag} {p.ip}/32", [p], targets, rule.ports)]
                continue
            inside = [p for p in pods if block.contains(p.ip)]
            cidr = f"{flag} {block.cidr}"
            if not block.except_:
                chains[name] += [f"-A {name} {m} {mark}" for m in
                                 _matches(direction, cidr, inside, targets, rule.ports)]
                continue
            sub = policy_chain(policy, direction, str(i), str(j))
            chains[name].append(f"-A {name} {cidr} {comment} -j {sub}")
            chains[sub] = [f"-A {sub} {flag} {e} {_comment(f'{policy.key} {direction} rule {i} except')} -j RETURN"
                           for e in block.except_]
            chains[sub] += [f"-A {sub} {m} {mark}" for m in _matches(direction, cidr, inside, targets, rule.ports)]
    return {c: list(dict.fromkeys(r)) for c, r in chains.items()}


def _isolated(cluster, node, pods: _Pods) -> list[tuple[object, str, list]]:
    """(local pod, direction, the policies isolating it there: evaluate.selecting's, in the cluster's
    order), egress first, pods by address."""
    local = _Pods(p for p in pods if p.node == node.name)
    out = []
    for direction in DIRECTIONS:
        want = direction.capitalize()
        by_pod: dict[int, list] = {}
        for pol in getattr(cluster, "policies", None) or ():
            if want in pol.policy_types:
                for p in local.select(pol.pod_selector):
                    if p.namespace == pol.namespace:
                        by_pod.setdefault(id(p), []).append(pol)
        out += [(p, direction, by_pod[id(p)]) for p in local if id(p) in by_pod]
    return out


def policy_tables(cluster, node) -> Desired:
    """table -> TableState of the NetworkPolicies on `node`: the filter table's KUBE-ROUTER-FORWARD (always),
    its per-pod and per-policy chains, and FORWARD's jump (the caller puts it before every other; in IPVS mode
    OUTPUT's too, see OUTPUT_JUMP)."""
    from ...render.tables import TableState     # not at load time: the CLI reads the registry (its names)
    ts = TableState(chains={ROUTER_CHAIN: []},
                    jumps=[FORWARD_JUMP] + ([OUTPUT_JUMP] if cluster.networking.proxy_mode == "ipvs" else []))
    if not getattr(cluster, "policies", None):
        return {"filter": ts}
    pods = _pods(cluster)
    isolated = _isolated(cluster, node, pods)
    if not isolated:
        return {"filter": ts}
    router = ts.chains[ROUTER_CHAIN]
    router.append(f"-A {ROUTER_CHAIN} {_comment('replies of allowed connections')} "
                  "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN")
    targets: dict[tuple[str, str], list] = {}       # (policy key, direction) -> local pods it isolates
    policies: dict[tuple[str, str], object] = {}
    for pod, direction, pols in isolated:
        for p in pols:
            targets.setdefault((p.key, direction), []).append(pod)
            policies[(p.key, direction)] = p
    for pod, direction, pols in isolated:
        chain = pod_chain(pod, direction)
        who = f"{pod.namespace}/{pod.name}"
        flag, other = ("-s", "-d") if direction == "egress" else ("-d", "-s")
        router.append(f"-A {ROUTER_CHAIN} {flag} {pod.ip}/32 {_comment(f'{direction} of pod {who}')} -j {chain}")
        rules = [f"-A {chain} {other} {pod.ip}/32 {_comment(f'{who} to itself')} -j RETURN"]
        if direction == "ingress":
            rules.append(f"-A {chain} {_comment(f'node to {who}')} -m addrtype --src-type LOCAL -j RETURN")
        else:
            rules.append(f"-A {chain} {_comment(f'{who} to its node')} -m addrtype --dst-type LOCAL -j RETURN")
        rules += [f"-A {chain} {_comment(f'policy {p.key}')} -j {policy_chain(p, direction)}" for p in pols]
        rules.append(f"-A {chain} {_comment(f'{direction} of {who} not allowed by any policy')} "
                     f"-m mark ! --mark {MARK} -j {REJECT}")
        rules.append(f"-A {chain} -j MARK --set-xmark {CLEAR}")
        ts.chains[chain] = rules
    for (key, direction), pol in sorted(policies.items(), key=lambda kv: kv[0]):
        ts.chains.update(_policy_chains(cluster, pol, direction, targets[(key, direction)], pods))
    return {"filter": ts}


def basis(cluster, node) -> tuple:
    """What policy_tables reads: the policies, the namespaces' labels, and the pods' names, addresses,
    nodes, labels and named ports (nothing when there is no policy)."""
    pols = tuple(getattr(cluster, "policies", None) or ())
    if not pols:
        return ()
    ns = tuple(sorted((k, tuple(sorted(v.items()))) for k, v in (cluster.namespace_labels or {}).items()))
    pods = tuple((p.key, str(p.ip), p.node, p.host_network, tuple(sorted(p.labels.items())),
                  tuple((q.name, q.port, q.protocol) for c in p.containers for q in c.ports if q.name))
                 for p in cluster.pods)
    return (pols, ns, pods)


RENDERER = PolicyRenderer("iptables", order=0, tables=policy_tables, basis=basis)
