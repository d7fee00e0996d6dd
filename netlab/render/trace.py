"""Walk a packet through rendered iptables state, the way the kernel would. Pure: no root, no kernel.

It reads the same data the apply layer writes (`Desired`: table -> chains and built-in jumps) and
follows one packet: nat PREROUTING (or OUTPUT for a packet the node sends), the routing decision,
filter INPUT / FORWARD / OUTPUT, then nat POSTROUTING. Probabilistic matches (`-m statistic`) and
session-affinity checks (`-m recent --rcheck`) may or may not match, so the walk takes both branches
and returns every outcome that is possible; a test can then say "all endpoints are reachable" or "only
these". Only the matches and targets that netlab renders are understood; anything else raises
`ValueError`, so an unexpected rule shape is noticed instead of silently ignored.

Connection tracking is reduced to "this is the first packet of a new connection" (ctstate NEW, plus
DNAT when the nat table rewrote the destination).
"""
from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field, replace
from typing import Iterable

from .tables import Desired

BUILTIN_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
TERMINAL = ("ACCEPT", "DROP", "REJECT")
MAYBE = None          # a match result meaning "either way"
MAX_DEPTH = 64


@dataclass(frozen=True)
class State:
    src: ipaddress.IPv4Address
    dst: ipaddress.IPv4Address
    proto: str
    dport: int
    mark: int = 0
    dnat: str | None = None
    trail: tuple[str, ...] = ()


@dataclass(frozen=True)
class Path:
    """One possible fate of the packet."""
    verdict: str                  # ACCEPT, DROP or REJECT
    dnat: str | None              # "ip:port" the destination was rewritten to, if it was
    marked: bool                  # the masquerade mark (0x4000) was set on the way
    masquerade: bool              # nat POSTROUTING masqueraded it
    trail: tuple[str, ...]        # "table/CHAIN" in the order visited


@dataclass
class _Match:
    kind: str
    negate: bool
    args: dict[str, str] = field(default_factory=dict)


@dataclass
class Rule:
    chain: str
    matches: list[_Match]
    target: str
    target_args: dict[str, str]
    text: str


# ---------------------------------------------------------------- parsing

_FLAG_ARGS = {"--rcheck", "--set", "--update", "--remove", "--reap", "--rsource", "--rdest", "--random-fully",
              "--random", "--persistent"}


def parse_rule(line: str) -> Rule:
    """'-A CHAIN [matches] -j TARGET [target options]' -> Rule."""
    tok = shlex.split(line)
    if len(tok) < 2 or tok[0] != "-A":
        raise ValueError(f"not an '-A CHAIN ...' rule: {line!r}")
    chain = tok[1]
    i = 2
    matches: list[_Match] = []
    module: _Match | None = None
    negate = False
    target, targs = None, {}
    while i < len(tok):
        t = tok[i]
        if t == "!":
            negate = True
            i += 1
            continue
        if t in ("-s", "-d", "-p"):
            matches.append(_Match(t, negate, {"value": tok[i + 1]}))
            negate, i = False, i + 2
            continue
        if t == "-m":
            module = _Match(tok[i + 1], False)
            matches.append(module)
            i += 2
            continue
        if t in ("-j", "-g"):
            if t == "-g":
                raise ValueError(f"goto is not understood: {line!r}")
            target = tok[i + 1]
            i += 2
            while i < len(tok):
                opt = tok[i]
                if opt in _FLAG_ARGS:
                    targs[opt] = ""
                    i += 1
                else:
                    targs[opt] = tok[i + 1]
                    i += 2
            break
        if t.startswith("--"):
            if module is None:
                raise ValueError(f"option {t} outside a match module: {line!r}")
            if t in _FLAG_ARGS:
                module.args[t] = ""
                i += 1
            else:
                module.args[t] = tok[i + 1]
                i += 2
            if negate:
                module.args[f"!{t}"] = "1"
                negate = False
            continue
        raise ValueError(f"cannot parse {t!r} in {line!r}")
    if target is None:
        target = ""          # no -j: the rule only counts (kube-proxy's last KUBE-FW-* rule); packets go on
    return Rule(chain, matches, target, targs, line)


def _tables(desired: Desired) -> dict[str, dict[str, list[Rule]]]:
    out: dict[str, dict[str, list[Rule]]] = {}
    for table, ts in desired.items():
        chains: dict[str, list[Rule]] = {b: [] for b in BUILTIN_CHAINS}
        for builtin, spec in ts.jumps:
            chains[builtin].append(parse_rule(f"-A {builtin} {spec}"))
        for chain, rules in ts.chains.items():
            chains[chain] = [parse_rule(r) for r in rules]
        out[table] = chains
    return out


# ---------------------------------------------------------------- matching

def _mark(mark: int, args: dict[str, str]) -> int:
    if "--set-xmark" in args:
        value, _, mask = args["--set-xmark"].partition("/")
        v, mk = int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF
    elif "--or-mark" in args:
        v = mk = int(args["--or-mark"], 0)
    elif "--xor-mark" in args:
        v, mk = int(args["--xor-mark"], 0), 0
    else:
        raise ValueError(f"MARK options {sorted(args)} are not understood")
    return (mark & ~mk & 0xFFFFFFFF) ^ v


def _in(addr: ipaddress.IPv4Address, value: str) -> bool:
    return addr in ipaddress.ip_network(value, strict=False)


def _ports(spec: str, port: int) -> bool:
    lo, _, hi = spec.partition(":")
    return int(lo or 0) <= port <= int(hi or lo or 65535)


class Tracer:
    def __init__(self, desired: Desired, local_ips: Iterable[str | ipaddress.IPv4Address]):
        self.tables = _tables(desired)
        self.local = {ipaddress.IPv4Address(str(a)) for a in local_ips}

    def is_local(self, ip: ipaddress.IPv4Address) -> bool:
        return ip in self.local or ip in ipaddress.IPv4Network("127.0.0.0/8")

    def _match(self, m: _Match, st: State, ctstates: set[str]) -> bool | None:
        a = m.args
        if m.kind == "-s":
            return _in(st.src, a["value"]) != m.negate
        if m.kind == "-d":
            return _in(st.dst, a["value"]) != m.negate
        if m.kind == "-p":
            return (st.proto == a["value"]) != m.negate
        if m.kind == "comment":
            return True
        if m.kind in ("tcp", "udp", "sctp"):
            if st.proto != m.kind:
                return False
            if "--dport" in a and _ports(a["--dport"], st.dport) == ("!--dport" not in a):
                return True
            return "--dport" not in a
        if m.kind == "addrtype":
            ok = True
            for opt, ip in (("--dst-type", st.dst), ("--src-type", st.src)):
                if opt in a:
                    if a[opt] != "LOCAL":
                        raise ValueError(f"addrtype {a[opt]} is not understood")
                    ok = ok and (self.is_local(ip) != (f"!{opt}" in a))
            return ok
        if m.kind == "multiport":     # CNI portmap's CNI-HOSTPORT-DNAT (render/hostport.py)
            spec = a.get("--dports") or a.get("--destination-ports")
            if spec is None:
                raise ValueError(f"multiport options {sorted(a)} are not understood")
            return any(_ports(p, st.dport) for p in spec.split(",")) != ("!--dports" in a)
        if m.kind == "statistic":
            if a.get("--mode") != "random":
                raise ValueError(f"statistic mode {a.get('--mode')} is not understood")
            p = float(a["--probability"])
            return True if p >= 1 else False if p <= 0 else MAYBE
        if m.kind == "mark":
            value, _, mask = a["--mark"].partition("/")
            mask_i = int(mask, 0) if mask else 0xFFFFFFFF
            return ((st.mark & mask_i) == int(value, 0)) != ("!--mark" in a)
        if m.kind == "conntrack":
            wanted = set(a["--ctstate"].split(","))
            return bool(wanted & ctstates) != ("!--ctstate" in a)
        if m.kind == "recent":
            if "--set" in a:
                return True               # records the source; always matches
            if "--rcheck" in a or "--update" in a:
                return MAYBE              # seen this client before, or not
            raise ValueError(f"recent options {sorted(a)} are not understood")
        raise ValueError(f"match -m {m.kind} is not understood")

    def _rule_matches(self, rule: Rule, st: State, ctstates: set[str]) -> bool | None:
        result: bool | None = True
        for m in rule.matches:
            r = self._match(m, st, ctstates)
            if r is False:
                return False
            if r is MAYBE:
                result = MAYBE
        return result

    def run(self, table: str, chain: str, st: State, ctstates: set[str],
            depth: int = 0) -> tuple[list[tuple[State, str]], list[State]]:
        """Walk one chain: (states that met a final verdict, states that came back to the caller)."""
        if depth > MAX_DEPTH:
            raise ValueError(f"jump depth over {MAX_DEPTH} at {table}/{chain}: a loop?")
        rules = self.tables[table].get(chain)
        if rules is None:
            raise ValueError(f"jump to {table}/{chain}, which is not rendered")
        st = replace(st, trail=st.trail + (f"{table}/{chain}",))
        live: list[State] = [st]
        done: list[tuple[State, str]] = []
        returned: list[State] = []
        for rule in rules:
            nxt: list[State] = []
            for s in live:
                m = self._rule_matches(rule, s, ctstates)
                if m is not True:
                    nxt.append(s)         # did not match, or the "no" branch of a maybe
                if m is False:
                    continue
                t = rule.target
                if t == "":
                    nxt.append(s)
                elif t in self.tables[table] and t not in BUILTIN_CHAINS:
                    sub_done, sub_back = self.run(table, t, s, ctstates, depth + 1)
                    done.extend(sub_done)
                    nxt.extend(sub_back)
                elif t == "RETURN":
                    returned.append(s)
                elif t in TERMINAL:
                    done.append((s, t))
                elif t == "MARK":
                    nxt.append(replace(s, mark=_mark(s.mark, rule.target_args)))
                elif t == "DNAT":
                    to = rule.target_args["--to-destination"]
                    ip, _, port = to.partition(":")
                    done.append((replace(s, dst=ipaddress.IPv4Address(ip), dport=int(port) if port else s.dport,
                                         dnat=to), "ACCEPT"))
                elif t == "MASQUERADE":
                    done.append((s, "MASQUERADE"))
                else:
                    raise ValueError(f"target {t} is not understood ({rule.text!r})")
            live = nxt
        return done, returned + live

    def _builtin(self, table: str, chain: str, st: State, ctstates: set[str]) -> list[tuple[State, str]]:
        done, back = self.run(table, chain, st, ctstates)
        return done + [(s, "ACCEPT") for s in back]         # built-in chains: policy ACCEPT

    def trace(self, src: str, dst: str, proto: str, dport: int, from_host: bool = False) -> list[Path]:
        st0 = State(ipaddress.IPv4Address(src), ipaddress.IPv4Address(dst), proto.lower(), dport)
        paths: list[Path] = []
        new = {"NEW"}
        for st, verdict in self._builtin("nat", "OUTPUT" if from_host else "PREROUTING", st0, new):
            ct = new | ({"DNAT"} if st.dnat else set())
            if verdict in ("DROP", "REJECT"):
                paths.append(Path(verdict, st.dnat, bool(st.mark & 0x4000), False, st.trail))
                continue
            local = self.is_local(st.dst)
            hooks = (["OUTPUT"] if from_host else []) + (["INPUT"] if local else [] if from_host else ["FORWARD"])
            outcomes = [(st, "ACCEPT")]
            for hook in hooks:
                nxt = []
                for s, v in outcomes:
                    if v != "ACCEPT":
                        nxt.append((s, v))
                        continue
                    nxt.extend(self._builtin("filter", hook, s, ct))
                outcomes = nxt
            for s, v in outcomes:
                masq = False
                if v == "ACCEPT" and not (local and not from_host):
                    post = self._builtin("nat", "POSTROUTING", s, ct)
                    masq = any(pv == "MASQUERADE" for _, pv in post)
                    if len({pv for _, pv in post}) > 1:
                        raise ValueError(f"POSTROUTING outcome is not deterministic: {post}")
                    s = replace(s, trail=post[0][0].trail) if post else s
                paths.append(Path(v, s.dnat, bool(s.mark & 0x4000), masq, s.trail))
        return paths


def trace(desired: Desired, local_ips: Iterable[str], src: str, dst: str, proto: str, dport: int,
          from_host: bool = False) -> list[Path]:
    return Tracer(desired, local_ips).trace(src, dst, proto, dport, from_host)
