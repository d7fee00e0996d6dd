"""What the kernel's netfilter trace says, parsed: `xtables-monitor --trace` (iptables-nft's TRACE target)
and `nft monitor trace` (`meta nftrace set 1`) output -> Events. Pure: text in, data out.

Both monitors print, per traced packet (a trace id), a "packet" line each time the packet enters a base
chain (with its interfaces and addresses at that point: after a DNAT the next packet line shows the new
destination), then one line per rule that gave a verdict (jump, goto, return, accept, drop, continue)
and a "policy" line when a base chain ends without one. A chain the packet entered but left without a
matching rule shows only as the jump into it.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    trace_id: str
    table: str
    chain: str
    kind: str                 # rule | policy
    verdict: str              # accept | drop | jump | goto | return | continue | ...
    target: str = ""          # the chain of a jump / goto
    rule: str = ""            # the rule as the monitor prints it (iptables or nft syntax)
    packet: dict = field(default_factory=dict, compare=False)   # the last packet line before it

    @property
    def where(self) -> str:
        return f"{self.table}/{self.chain}"

    @property
    def dnat(self) -> str | None:
        """'ip:port' a DNAT rule rewrote the destination to."""
        m = re.search(r"(?:-j DNAT --to-destination|dnat (?:ip )?to) (\S+)", self.rule)
        return m.group(1) if m else None

    @property
    def masquerade(self) -> bool:
        return bool(re.search(r"(?:-j MASQUERADE|\bmasquerade\b)", self.rule))

    @property
    def reject(self) -> bool:
        return bool(re.search(r"(?:-j REJECT|\breject\b)", self.rule))

    @property
    def final(self) -> str | None:
        """The packet's fate in this hook if this event ends it: ACCEPT, DROP or REJECT."""
        if self.verdict == "drop":
            return "REJECT" if self.reject else "DROP"
        if self.verdict == "accept":
            return "ACCEPT"
        return None


# ------------------------------------------------------------------ xtables-monitor --trace

_XT_PACKET = re.compile(r"^PACKET: (\d+) ([0-9a-f]+) (.*)$")
_XT_TRACE = re.compile(r"^TRACE: (\d+) ([0-9a-f]+) ([^:\s]+):(\S+?):"
                       r"(?:(rule):0x[0-9a-f]+|(policy|return)):(\S+)\s*(.*)$")
_NF_RETURN = {"0xfffffffb": "return", "0xffffffff": "continue"}   # NFT_RETURN (-5), NFT_CONTINUE (-1) as hex


def _xt_packet(text: str) -> dict:
    out: dict = {}
    for tok in text.split():
        key, eq, value = tok.partition("=")
        if eq:
            out[key] = value
    pkt = {"iif": out.get("IN"), "oif": out.get("OUT"), "src": out.get("SRC"), "dst": out.get("DST"),
           "id": int(out["ID"]) if out.get("ID", "").isdigit() else None,
           "sport": int(out["SPORT"]) if out.get("SPORT", "").isdigit() else None,
           "dport": int(out["DPORT"]) if out.get("DPORT", "").isdigit() else None}
    return {k: v for k, v in pkt.items() if v is not None}


def _xt_rule(text: str) -> str:
    """'-4 -t nat -A CHAIN ...' -> '-A CHAIN ...' (as iptables-save and netlab's renderer write it)."""
    try:
        tok = shlex.split(text)
    except ValueError:
        return text.strip()
    if tok[:1] == ["-4"]:
        tok = tok[1:]
    if tok[:1] == ["-t"] and len(tok) > 1:
        tok = tok[2:]
    return " ".join(shlex.quote(t) if (" " in t or not t) else t for t in tok)


def parse_xtables(text: str) -> list[Event]:
    events: list[Event] = []
    packets: dict[str, dict] = {}
    for raw in text.splitlines():
        line = raw.strip()
        m = _XT_PACKET.match(line)
        if m:
            packets[m.group(2)] = _xt_packet(m.group(3))
            continue
        m = _XT_TRACE.match(line)
        if not m:
            continue
        tid, table, chain, verdict, rest = m.group(2), m.group(3), m.group(4), m.group(7), m.group(8)
        kind = m.group(5) or m.group(6)
        target = ""
        if verdict.startswith(("JUMP:", "GOTO:")):
            verdict, _, target = verdict.partition(":")
        verdict = _NF_RETURN.get(verdict.lower(), verdict.lower())
        events.append(Event(tid, table, chain, "rule" if kind == "rule" else kind, verdict, target,
                            _xt_rule(rest) if rest.strip() else "", dict(packets.get(tid, {}))))
    return events


# ------------------------------------------------------------------ nft monitor trace

_NFT = re.compile(r"^trace id ([0-9a-f]+) (ip|inet|ip6|bridge|netdev|arp) (\S+) (\S+) (packet: |rule |policy |"
                  r"unknown rule handle \d+ )(.*)$")
_NFT_VERDICT = re.compile(r"\(verdict (\w+)(?: (\S+))?\)\s*$")


def _nft_packet(text: str) -> dict:
    tok = text.split()
    pkt: dict = {}
    pairs = {("iif",): "iif", ("oif",): "oif", ("ip", "saddr"): "src", ("ip", "daddr"): "dst", ("ip", "id"): "id",
             ("tcp", "sport"): "sport", ("tcp", "dport"): "dport", ("udp", "sport"): "sport",
             ("udp", "dport"): "dport"}
    i = 0
    while i < len(tok):
        for key, name in pairs.items():
            n = len(key)
            if tuple(tok[i:i + n]) == key and i + n < len(tok):
                value = tok[i + n].strip('"')
                pkt[name] = int(value) if name in ("id", "sport", "dport") and value.isdigit() else value
                i += n
                break
        i += 1
    return pkt


def parse_nft(text: str) -> list[Event]:
    events: list[Event] = []
    packets: dict[str, dict] = {}
    for raw in text.splitlines():
        m = _NFT.match(raw.strip())
        if not m:
            continue
        tid, _family, table, chain, kind, rest = m.groups()
        kind = kind.strip().split()[0].rstrip(":")
        if kind == "packet":
            packets[tid] = _nft_packet(rest)
            continue
        if kind == "policy":
            events.append(Event(tid, table, chain, "policy", rest.strip().split()[0] if rest.strip() else "",
                                "", "", dict(packets.get(tid, {}))))
            continue
        v = _NFT_VERDICT.search(rest)
        verdict, target = (v.group(1), v.group(2) or "") if v else ("", "")
        rule = rest[:v.start()].strip() if v else rest.strip()
        events.append(Event(tid, table, chain, "rule", verdict, target, " ".join(rule.split()),
                            dict(packets.get(tid, {}))))
    return events
