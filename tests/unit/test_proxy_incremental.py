"""Incremental proxy syncs (render.service_memo, kube_proxy_tables' memo, update_objects, the scoped
iptables plan): random sequences of Service and endpoint changes, each step rendered and planned the
incremental way and compared with a full render and a full diff."""
from __future__ import annotations

import copy
import ipaddress
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.dataplane import iptables as ipt
from netlab.model.objects import Endpoint
from netlab.render import kubeproxy_iptables as kp
from netlab.render import kubeproxy_nftables as kn
from netlab.render.iptables import node_rules, to_restore
from netlab.render.nft_diff import without_cache
from netlab.render.service_memo import ServiceMemo

from .test_iptables_plan import apply_restore, view
from .test_kubeproxy_iptables import SCENARIOS, cluster_of
from .test_kubeproxy_nftables import in_netns, needs_nft

# ---------------------------------------------------------------- changes


def _svc(c, i):
    return c.services[i % len(c.services)] if c.services else None


def move_endpoint(c, i, j):
    svc = _svc(c, i)
    for name, eps in svc.endpoints.items():
        if eps:
            k = j % len(eps)
            ep = eps[k]
            eps[k] = Endpoint(ep.ip + 1 + j % 7, ep.port, ep.node, ep.pod + "x", ep.namespace, ep.ready)
            return {svc.key}
    return set()


def toggle_ready(c, i, j):
    """In place: the Endpoint object itself changes (as a control loop may do)."""
    svc = _svc(c, i)
    eps = [e for v in svc.endpoints.values() for e in v]
    if not eps:
        return set()
    eps[j % len(eps)].ready = not eps[j % len(eps)].ready
    return {svc.key}


def move_to_other_node(c, i, j):
    svc = _svc(c, i)
    eps = [e for v in svc.endpoints.values() for e in v]
    if not eps:
        return set()
    ep = eps[j % len(eps)]
    ep.node = c.nodes[(j + 1) % len(c.nodes)].name
    return {svc.key}


def drop_endpoints(c, i, j):
    svc = _svc(c, i)
    svc.endpoints = {}
    return {svc.key}


def affinity(c, i, j):
    svc = _svc(c, i)
    on = svc.spec.session_affinity != "ClientIP"
    svc.spec = replace(svc.spec, session_affinity="ClientIP" if on else "None", affinity_timeout=30 + j % 5)
    return {svc.key}


def policies(c, i, j):
    svc = _svc(c, i)
    flip = {"Local": "Cluster", "Cluster": "Local"}
    if j % 2:
        svc.spec = replace(svc.spec, external_traffic_policy=flip[svc.spec.external_traffic_policy])
    else:
        svc.spec = replace(svc.spec, internal_traffic_policy=flip[svc.spec.internal_traffic_policy])
    return {svc.key}


def delete(c, i, j):
    svc = _svc(c, i)
    c.services.remove(svc)
    return {svc.key}


def add(c, i, j):
    src = _svc(c, i)
    svc = copy.deepcopy(src)
    # a Service of its own: no ClusterIP, NodePort, external or LB IP shared with another one
    svc.spec = replace(svc.spec, name=f"{src.name}-c{j}", external_ips=[], load_balancer_ip=None, lb_ingress=[])
    ips = {s.cluster_ip for s in c.services}
    svc.cluster_ip = next(ip for ip in ipaddress.ip_network("10.96.100.0/24") if ip not in ips)
    used = {p.node_port for s in c.services for p in s.ports}
    free = (n for n in range(31000, 32000) if n not in used)
    svc.ports = [replace(p, node_port=p.node_port and next(free)) for p in svc.ports]
    if all(s.key != svc.key for s in c.services):
        c.services.insert(j % (len(c.services) + 1), svc)
        return {svc.key}
    return set()


def nothing(c, i, j):
    return set()


CHANGES = [move_endpoint, toggle_ready, move_to_other_node, drop_endpoints, affinity, policies, delete, add,
           nothing]
steps = st.lists(st.tuples(st.sampled_from(CHANGES), st.integers(0, 50), st.integers(0, 1000)),
                 min_size=1, max_size=8)


def _apply(c, step):
    change, i, j = step
    if not c.services and change not in (nothing,):
        return set()
    return change(c, i, j)


# ---------------------------------------------------------------- iptables mode

def iptables_incremental(c, node, memo, tables, hint):
    """One incremental iptables sync as sync_iptables does it on a trusted in-memory record: render with
    the memo, plan only the changed Services' chains (and every other chain) against `tables`."""
    before = dict(memo.entries)
    desired = node_rules(c, node, kp.kube_proxy_tables(c, node, memo=memo, changed=hint))
    scope = kp.changed_chains(before, memo.entries)
    want, have = ipt.scoped(desired, scope), ipt.scoped(tables, scope)
    payload, _ = ipt.plan_restore(want, have)
    return desired, payload, ipt.tables_after(want, have, tables), memo.rendered


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SCENARIOS)), seq=steps, hinted=st.booleans())
def test_iptables_incremental_equals_full(name, seq, hinted):
    """After every change: the memoised render is byte-identical to a full one, only the changed Services
    are rendered again, and the scoped payload takes the node's tables to exactly the full render (checked
    with the restore simulator), with nothing left for a full diff to do."""
    c = cluster_of(name)
    for node in c.nodes:
        memo: ServiceMemo = ServiceMemo()
        desired = node_rules(c, node, kp.kube_proxy_tables(c, node, memo=memo))
        assert to_restore(desired) == to_restore(node_rules(c, node))
        kernel = apply_restore({}, ipt.plan_restore(desired, {})[0])
        tables = ipt.after_restore(desired, {})
        cc = copy.deepcopy(c)
        for step in seq:
            keys = _apply(cc, step)
            desired, payload, tables, rendered = iptables_incremental(cc, node, memo, tables,
                                                                        keys if hinted else None)
            assert to_restore(desired) == to_restore(node_rules(cc, node)), step
            assert rendered <= len(keys), step
            kernel = apply_restore(kernel, payload)
            assert view(kernel) == view(tables), step
            assert ipt.plan_restore(node_rules(cc, node), kernel) == ("", []), step


def test_one_changed_service_is_the_only_one_rendered_and_sent():
    c = cluster_of("basic")
    node = c.nodes[0]
    memo: ServiceMemo = ServiceMemo()
    desired = node_rules(c, node, kp.kube_proxy_tables(c, node, memo=memo))
    tables = ipt.after_restore(desired, {})
    assert memo.rendered == len([s for s in c.services if kp.is_proxied(s)])
    _, payload, tables, rendered = iptables_incremental(c, node, memo, tables, None)
    assert (payload, rendered) == ("", 0)                    # no-op: nothing rendered, nothing sent
    keys = move_endpoint(c, next(i for i, s in enumerate(c.services) if s.key == "default/web"), 0)
    _, payload, tables, rendered = iptables_incremental(c, node, memo, tables, None)
    assert rendered == 1
    chains = {line.split()[0][1:] for line in payload.splitlines() if line.startswith(":")}
    assert chains and all(ch == "KUBE-SERVICES" or ch.startswith(("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-"))
                          for ch in chains), payload
    assert keys == {"default/web"}


# ---------------------------------------------------------------- nftables mode

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SCENARIOS)), seq=steps, hinted=st.booleans())
def test_nftables_incremental_equals_full(name, seq, hinted):
    """After every change: the Services the memo reports are exactly the changed ones, update_objects with
    them equals a full render, and the scoped diff sends what a full diff sends."""
    c = cluster_of(name)
    for node in c.nodes:
        memo: ServiceMemo = ServiceMemo()
        assert memo.changed(c.services) == {s.key for s in c.services}
        table = kn.desired_objects(c, node)
        own = kn.desired_objects(c, node)       # the same, updated in place as a sync state's table is
        cc = copy.deepcopy(c)
        for step in seq:
            keys = _apply(cc, step)
            found = memo.changed(cc.services, keys if hinted else None)
            assert found <= keys, step
            full = kn.desired_objects(cc, node)
            updated = kn.update_objects(table, cc, node, found)
            assert updated.content() == full.content(), step
            scoped = kn.diff_script(updated, table, only=found) if found else ""
            assert sorted(scoped.splitlines()) == sorted(kn.diff_script(full, table).splitlines()), step
            before = kn.owned_part(own, found)
            own = kn.update_objects(own, cc, node, found, in_place=True)
            assert own.content() == full.content(), step
            assert (kn.diff_script(own, before, only=found) if found else "") == scoped, step
            table = updated


def test_memo_notices_in_place_changes_and_forgets_removed_services():
    c = cluster_of("basic")
    memo: ServiceMemo = ServiceMemo()
    memo.changed(c.services)
    assert memo.changed(c.services) == set()
    web = next(s for s in c.services if s.key == "default/web")
    web.endpoints["http"][0].ready = False
    assert memo.changed(c.services) == {"default/web"}
    assert memo.changed(c.services, hint=()) == set()
    c.services.remove(web)
    assert memo.changed(c.services, hint=()) == {"default/web"}
    assert "default/web" not in memo.entries


# ---------------------------------------------------------------- the cache-free nft script, on a kernel

@pytest.mark.root
@needs_nft
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SCENARIOS)), seq=steps)
def test_cache_free_scripts_give_the_same_table(name, seq):
    """The partial sync's transactions, rewritten by without_cache (rules in chain blocks, elements in map
    blocks) and with stale chains only flushed, applied to a real table after the full load: the table
    reads back as the full render plus the flushed chains, and one more full diff only deletes those."""
    c = cluster_of(name)
    node = c.nodes[-1]
    table = kn.desired_objects(c, node)
    scripts = [without_cache(kn.nft_script(c, node), table)]
    cc = copy.deepcopy(c)
    memo: ServiceMemo = ServiceMemo()
    memo.changed(cc.services)
    stale: set[str] = set()
    for step in seq:
        _apply(cc, step)
        keys = memo.changed(cc.services)
        if not keys:
            continue
        updated = kn.update_objects(table, cc, node, keys)
        delta = kn.diff_script(updated, table, only=keys, delete_stale=False)
        stale |= {x.split()[-1] for x in delta.splitlines() if x.startswith("flush chain")} - set(updated.chains)
        scripts.append(without_cache(delta, updated))
        table = updated
    live = kn.parse_nft_json(in_netns(*scripts))
    full = kn.desired_objects(cc, node)
    rest = kn.diff_script(full, live)
    assert {x for x in rest.splitlines()} == {f"delete chain ip kube-proxy {n}" for n in stale - set(full.chains)}


def test_memo_hint_with_the_same_count_looks_only_at_the_hinted_services():
    c = cluster_of("basic")
    memo: ServiceMemo = ServiceMemo()
    memo.changed(c.services)
    web = next(s for s in c.services if s.key == "default/web")
    web.endpoints["http"][0].ready = False
    assert memo.changed(c.services, hint={"default/web"}) == {"default/web"}
    assert memo.changed(c.services, hint={"default/web"}) == set()
    assert memo.changed(c.services) == set()
    # one Service replaced by another (the same count), both named in the hint: both reported
    gone = web
    new = copy.deepcopy(web)
    new.spec = replace(web.spec, name="web2")
    c.services[c.services.index(gone)] = new
    assert memo.changed(c.services, hint={"default/web", "default/web2"}) == {"default/web", "default/web2"}
    assert set(memo.entries) == {s.key for s in c.services}
    assert memo.changed(c.services) == set()
