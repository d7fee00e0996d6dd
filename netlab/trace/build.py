"""Turn what the kernel printed into the hops of a TraceResult: per node namespace the packet crossed,
its entry, the netfilter rules that gave a verdict, the route lookup, the VXLAN / host-gw hop and the
conntrack entry; then the model's prediction per node and the differences (path.py)."""
from __future__ import annotations

from . import kernel, path
from .monitor import Event, parse_nft, parse_xtables


def _pod_by_ip(cluster, ip: str):
    return next((p for p in cluster.pods if str(p.ip) == ip and not p.host_network), None)


def _node_by_ip(cluster, ip: str):
    return next((n for n in cluster.nodes if ip in (str(n.ip), str(n.gateway), str(getattr(n, "vtep_ip", "")))),
                None)


def _source_id(source) -> str:
    if source.kind == "pod":
        return f"pod:{source.name}"
    return "external" if source.kind == "external" else f"node:{source.name}"


def _svc_id(target: str, cluster) -> str | None:
    kind, _, rest = target.partition("/")
    if kind not in ("svc", "nodeport", "lb", "extip") or not rest:
        return None
    name = rest.split(":")[0].split("@")[0]
    ns, _, name = name.rpartition("/")
    return f"svc:{ns or 'default'}/{name}"


def _via(route: str) -> str | None:
    tok = route.split()
    return tok[tok.index("via") + 1] if "via" in tok else None


def _dev(route: str) -> str | None:
    tok = route.split()
    return tok[tok.index("dev") + 1] if "dev" in tok else None


def events_of(text: str, mode: str, ipid: int) -> list[Event]:
    events = parse_nft(text) if mode == "nft" else parse_xtables(text)
    ids = {e.trace_id for e in events if e.packet.get("id") == ipid}
    return [e for e in events if e.trace_id in ids]


def _is_trace_table(e: Event) -> bool:
    return e.table == "raw" or e.table.startswith("netlab-trace-")


def assemble(result, cluster, source, check, packet, sent: dict, texts: dict[str, str], mode: str) -> None:
    from . import Hop
    result.packet["src"] = sent.get("src")
    result.outcome, result.detail = sent.get("outcome", ""), sent.get("detail", "")
    add = result.hops.append
    src_id = _source_id(source)
    ok, route = kernel.route_get(source.netns, packet.dst)
    if not ok:
        add(Hop(source.netns, src_id, "route", f"{source.label}: route lookup for {packet.dst}: {route}", True,
                source.node))
        add(Hop(source.netns, src_id, "stop", f"stopped in {source.label}: no route to {packet.dst} ({route})",
                True, source.node))
        result.outcome = "no-route"
        return
    add(Hop(source.netns, src_id, "route", f"{source.label} sends {packet.proto} {sent.get('src')} -> {packet.dst}"
            f"{':' + str(packet.dport) if packet.dport else ''}: route {route}", True, source.node))
    if source.kind == "external":
        add(Hop(cluster.underlay_netns, "underlay", "route", f"underlay: bridged to {_via(route) or packet.dst}"))
    by_node = {n.name: events_of(texts.get(n.netns, ""), mode, packet.ipid) for n in cluster.nodes}
    entry = source.node if source.kind != "external" else None
    if entry is None:
        owner = _node_by_ip(cluster, _via(route) or packet.dst)
        entry = owner.name if owner else None
    order = [n.name for n in cluster.nodes if by_node[n.name]]
    order.sort(key=lambda n: n != entry)
    svc_id = _svc_id(result.target, cluster)
    delivered_to = None
    last_route = route
    for name in order:
        node = cluster.node(name)
        events = by_node[name]
        pin, pout = path.packet_in(events), path.packet_out(events)
        iif = pin.get("iif")
        where = {"cni0": (f"bridge:{name}", "in from a pod through cni0 (the pod bridge)"),
                 "flannel.1": (f"vtep:{name}", "in through flannel.1: VXLAN decapsulated"),
                 "tunl0": (f"tunl:{name}", "in through tunl0: IP-in-IP decapsulated")}.get(
            iif or "", (f"node:{name}", f"in through {iif} from the underlay" if iif else "sent by the node itself"))
        add(Hop(node.netns, where[0], "route", f"node {name}: {where[1]} ({pin.get('src')} -> {pin.get('dst')}"
                f"{':' + str(pin['dport']) if pin.get('dport') else ''})", True, name))
        seen = path.observed_fate(events)
        dst, src = pout.get("dst", packet.dst), pout.get("src")
        ok, route = kernel.route_get(node.netns, dst, src, iif)
        last_route = route
        route_hop = Hop(node.netns, f"node:{name}", "route", f"node {name}: route {route}" if ok else
                        f"node {name}: no route to {dst} ({route})", True, name)
        for e in events:
            if "oif" in e.packet and route_hop is not None:      # routed: the lookup came before this hook
                add(route_hop)
                route_hop = None
            if _is_trace_table(e):
                continue
            verdict = e.verdict.upper() + (f" {e.target}" if e.target else "")
            gid = f"node:{name}"
            text = f"{e.where}: {e.rule or 'policy'} -> {verdict}"
            if e.dnat:
                pod = _pod_by_ip(cluster, e.dnat.split(":")[0])
                text += f" (DNAT to {e.dnat}{f', pod/{pod.name}' if pod else ''})"
                gid = svc_id or gid
            add(Hop(node.netns, gid, "netfilter", text, True, name))
        if mode != "nft" and cluster.networking.proxy_mode == "ipvs" and name == order[0] and svc_id:
            add(Hop(node.netns, svc_id, "netfilter", "IPVS: the virtual server's choice of a real server is not a "
                    "netfilter rule, the kernel's trace cannot show it; predicted: DNAT to one of "
                    f"{', '.join(sorted(check.backends or [])) or 'no endpoint'}", False, name))
        # the model, for the packet as it entered this node
        _compare(result, cluster, node, events, pin, seen, check, mode)
        if seen.verdict in ("DROP", "REJECT"):
            add(Hop(node.netns, f"node:{name}", "stop", f"stopped in node {name}: {seen.verdict} by {seen.by}",
                    True, name))
            _conntrack(result, node, packet, pin)
            return
        if route_hop is not None:
            add(route_hop)
        if not ok:
            add(Hop(node.netns, f"node:{name}", "stop", f"stopped in node {name}: no route to {dst} ({route})",
                    True, name))
            result.outcome = "no-route"
            return
        _conntrack(result, node, packet, pin)     # the node's own entry, before the packet leaves it
        via, dev = _via(route), _dev(route)
        if dev == "flannel.1" and via:
            peer = kernel.vxlan_peer(node.netns, via)
            other = _node_by_ip(cluster, peer) if peer else None
            add(Hop(node.netns, f"vtep:{name}", "encap", f"node {name}: flannel.1 encapsulates it in VXLAN (UDP 8472) "
                    f"to VTEP {peer or '?'}{f' (node {other.name})' if other else ''}", True, name))
            add(Hop(cluster.underlay_netns, "underlay", "encap", f"underlay: {node.ip} -> {peer or '?'} (VXLAN)",
                    True))
        elif dev == "tunl0" and via:   # backend ipip: the route's gateway is the outer destination
            other = _node_by_ip(cluster, via)
            add(Hop(node.netns, f"tunl:{name}", "encap", f"node {name}: tunl0 encapsulates it in IP-in-IP "
                    f"(IP protocol 4) to {via}{f' (node {other.name})' if other else ''}", True, name))
            add(Hop(cluster.underlay_netns, "underlay", "encap", f"underlay: {node.ip} -> {via} (IP-in-IP)", True))
        elif dev == "eth0" and via and _node_by_ip(cluster, via):
            add(Hop(cluster.underlay_netns, "underlay", "encap", f"underlay: host-gw route via node "
                    f"{_node_by_ip(cluster, via).name} ({via})", True))
        elif dev == "cni0":
            delivered_to = _pod_by_ip(cluster, dst)
    if not order:
        add(Hop(source.netns, src_id, "stop", f"no node saw the packet ({result.detail})", True, source.node))
    # beyond the lab's nodes: the underlay, where a route lookup may end the packet's way
    via = _via(last_route)
    if delivered_to is None and via == str(cluster.gateway_ip) or (not order and via is None and
                                                                    _dev(last_route) == "eth0"):
        dst = path.packet_out(by_node[order[-1]]).get("dst", packet.dst) if order else packet.dst
        ok, route = kernel.route_get(cluster.underlay_netns, dst)
        add(Hop(cluster.underlay_netns, "underlay", "route", f"underlay: route {route}" if ok else
                f"underlay: no route to {dst} ({route})"))
        if not ok:
            add(Hop(cluster.underlay_netns, "underlay", "stop",
                    f"stopped in the underlay: no route to {dst} ({route})"))
            result.outcome = "no-route"
            return
    final_dst = path.packet_out(by_node[order[-1]]).get("dst") if order else packet.dst
    pod = delivered_to or _pod_by_ip(cluster, final_dst or "")
    if pod is not None and result.outcome in ("reachable", "refused"):
        result.answered_by = f"pod/{pod.name}" if pod.namespace == "default" else f"pod/{pod.key}"
        add(Hop(pod.netns, f"pod:{pod.key}", "deliver", f"delivered to {result.answered_by} ({final_dst}); "
                f"{result.detail}", True, pod.node))
    elif result.outcome in ("reachable", "refused"):
        add(Hop("", None, "deliver", f"answered: {result.detail}", True))
    else:
        add(Hop("", None, "stop", f"{result.outcome}: {result.detail}", True))
    if pod is not None and check.backends is not None and svc_id and pod.name not in check.backends:
        result.differences.append(f"the kernel delivered it to pod/{pod.name}, which the model says cannot be "
                                  f"chosen (endpoints: {', '.join(sorted(check.backends)) or 'none'})")


def _conntrack(result, node, packet, pin: dict) -> None:
    from . import Hop
    if not pin.get("src") or not pin.get("dst"):
        return
    lines = kernel.conntrack(node.netns, packet.proto, pin["src"], pin["dst"], pin.get("sport"), pin.get("dport"))
    for line in lines[:2]:
        result.hops.append(Hop(node.netns, f"node:{node.name}", "conntrack", f"node {node.name}: conntrack {line}",
                               True, node.name))


def _compare(result, cluster, node, events: list[Event], pin: dict, seen: path.Fate, check, mode: str) -> None:
    from ..proxymodes import get as proxymode
    from ..render.fabric import node_local_ips
    from ..render.iptables import node_rules
    from ..render.trace import Tracer
    if not pin.get("src") or not pin.get("dst"):
        return
    try:
        if mode == "nft":      # the model's rules for the same Services: kube-proxy's iptables mode
            desired = node_rules(cluster, node, proxy=proxymode("iptables").iptables(cluster, node))
        else:
            desired = node_rules(cluster, node)
        paths = Tracer(desired, node_local_ips(cluster, node)).trace(
            pin["src"], pin["dst"], result.packet["proto"], int(pin.get("dport") or 0), path.from_host(events))
    except (ValueError, KeyError) as e:
        result.warnings.append(f"node {node.name}: the model cannot predict this packet ({e})")
        return
    unknown = path.unknown_rules(events, path.rendered_rules(desired)) if mode != "nft" else []
    result.differences += path.differences(f"node {node.name}", seen, path.model_fates(paths), mode != "nft",
                                           unknown)
