"""`netlab trace` output: the hop-by-hop table and the JUnit report (pure)."""
from __future__ import annotations


def table(result) -> str:
    p = result.packet
    port = f":{p['dport']}" if p.get("dport") else ""
    lines = [f"trace {result.source} -> {result.target}: {p['proto']} {p.get('src') or '-'}:{p.get('sport')} -> "
             f"{p['dst']}{port} (IP ID {p['ip_id']}), proxy mode {result.mode}"]
    width = max([len(h.kind) for h in result.hops] + [4])
    for i, h in enumerate(result.hops, 1):
        mark = "" if h.observed else "  [predicted: the kernel cannot show this step]"
        lines.append(f"{i:3}  {h.kind.ljust(width)}  {h.text}{mark}")
    lines.append(f"outcome: {result.outcome}" + (f" ({result.detail})" if result.detail else "") +
                 (f", answered by {result.answered_by}" if result.answered_by else ""))
    if result.differences:
        lines.append(f"{len(result.differences)} difference(s) between the kernel and the model:")
        lines += [f"  - {d}" for d in result.differences]
    elif any(h.kind == "netfilter" and h.observed for h in result.hops):
        lines.append("the kernel's path matches the model's prediction")
    else:
        lines.append("no node's netfilter saw the packet: nothing to compare with the model")
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines) + "\n"


def junit(result) -> str:
    """One testcase per trace: failed when the kernel and the model differ (the differences, one a line)."""
    from ..junit import Case, Suite, to_xml
    suite = Suite(f"netlab trace {result.lab}")
    suite.add(Case(name=f"{result.source} -> {result.target}", classname="netlab.trace",
                   failure="; ".join(result.differences) or None, output=table(result)))
    return to_xml([suite])
