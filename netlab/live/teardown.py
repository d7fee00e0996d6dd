"""`netlab down` of a lab on real hosts (hostNetwork.mode real): run on any machine, it removes every
machine's part, as `up` on any machine brings the whole lab up.

Each machine's part is built by the agent of its host, and only that agent reaches it (another machine has
its own namespaces, processes and files). So `down` asks them, through the lab's store, which every agent
watches, as a cluster's nodes learn everything from the API server:

1. it writes the ConfigMap `kube-system/netlab-down` (who asked, when);
2. each host's agent that sees it removes its host's part of the machine it runs on: the whole lab there
   when no other host's agent runs on that machine (one host per machine: its namespaces, processes and
   the lab's directory, as a local `down` would, its keys in etcd left), else only its host's namespace,
   its nodes' and their pods' (hosts standing in for machines on one machine: the tests'); it writes
   `kube-system/netlab-down-<host>` (what it removed) and ends;
3. `down` waits for every host's answer (`--timeout`), then removes the lab's keys in etcd and what is
   left on its own machine. A host whose agent did not answer is named, with what to run on its machine.

A second `down` on a machine that kept its part (its agent was not running) finds the lab's store empty and
removes what is on that machine only.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from .. import names
from .asking import await_answers, hosts_text
from .hostscope import CONFIG_NAME, CONFIG_NAMESPACE, hosts_of, own_nodes

REQUEST = "netlab-down"
TIMEOUT = 30.0   # how long `down` waits for the agents' answers (as the CLI's --timeout default, kept there
                 # as a literal: importing this module for it would slow every command's start)


def answer_name(host: str) -> str:
    return f"{REQUEST}-{host}"


def request_object(by: str, at: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": REQUEST, "namespace": CONFIG_NAMESPACE},
            "data": {"requestedBy": by, "requestedAt": at}}


def answer_object(host: str, machine: str, namespaces: int, processes: int, whole: bool) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": answer_name(host), "namespace": CONFIG_NAMESPACE},
            "data": {"host": host, "machine": machine, "namespaces": str(namespaces), "processes": str(processes),
                     "scope": "machine" if whole else "host"}}


def requested(store) -> dict | None:
    """The removal request, if `down` wrote one."""
    return store.try_get("ConfigMap", CONFIG_NAMESPACE, REQUEST)


def clear(store) -> None:
    """`up` of a lab on real hosts: a request (and answers) left by a `down` that did not finish (interrupted
    before it removed the lab's keys) must not make the new lab's agents remove it."""
    for cm in store.list("ConfigMap", CONFIG_NAMESPACE):
        name = cm["metadata"]["name"]
        if name == REQUEST or name.startswith(REQUEST + "-"):
            store.delete("ConfigMap", CONFIG_NAMESPACE, name)


def host_part(lab: str, host: str, nodes: list[dict], pods: list[dict]) -> tuple[list[str], list[str]]:
    """(namespaces, owner tag prefixes) of `host`'s part of lab `lab`: its host namespace, its nodes' and the
    pods bound to them, as the store places them (pure)."""
    mine = sorted(own_nodes(nodes, host))
    bound = sorted(((p["metadata"].get("namespace") or "default"), p["metadata"]["name"]) for p in pods
                   if (p.get("spec") or {}).get("nodeName") in mine)
    netns = ([names.pod_netns(lab, ns, name) for ns, name in bound] + [names.node_netns(lab, n) for n in mine]
             + [names.host_netns(lab, host)])
    owners = [names.pod_owner_prefix(lab, ns, name) for ns, name in bound] + [f"{lab}/node/{n}/" for n in mine]
    return netns, owners


def alone(lab: str, host: str) -> bool:
    """Whether no other host's agent of the lab runs on this machine (a real machine: one host each)."""
    from ..dataplane import procs
    found = procs.tagged([names.lab_owner_prefix(lab)], host=True).values()
    return not any(names.is_agent_owner(lab, tag) and tag != names.agent_owner(lab, host) for tag in found)


def remove_host(lab: str, host: str, store) -> dict:
    """What an agent does on seeing the request: its part removed, its answer written. Returns the answer."""
    from ..dataplane import lab as labmod
    whole = alone(lab, host)
    if whole:
        r = labmod.down(lab, keep_store=True)
    else:
        netns, owners = host_part(lab, host, store.list("Node"), store.list("Pod"))
        r = labmod.down_part(lab, netns, owners)
    answer = answer_object(host, socket.gethostname(), r.namespaces, r.processes, whole)
    if store.try_get("ConfigMap", CONFIG_NAMESPACE, answer_name(host)) is None:
        store.create(answer)
    return answer


@dataclass
class Outcome:
    answered: dict[str, dict] = field(default_factory=dict)   # host -> its answer's data
    missing: list[str] = field(default_factory=list)          # hosts whose agent did not answer in time


def whole_lab(lab: str, conf: dict | None, timeout: float = TIMEOUT, progress=None) -> Outcome | None:
    """Ask every host's agent of a lab on real hosts to remove its part (see the module's docstring) and wait
    for their answers; None when the lab is not on real hosts, its store is not in etcd (`conf`, its
    store.json) or holds no lab any more (a second `down` on another machine: its own part only)."""
    from ..store.meta import fmt_time
    from . import agent as agentmod
    from . import store_for
    if conf is None or not agentmod.is_real(lab):
        return None
    try:
        store = store_for(lab)
        if store.try_get("ConfigMap", CONFIG_NAMESPACE, CONFIG_NAME) is None:
            return None
        placed = hosts_of(store.list("Node"))
        if requested(store) is None:
            store.create(request_object(socket.gethostname(), fmt_time(time.time())))
    except Exception as e:  # noqa: BLE001 - etcd gone: nothing to ask; this machine's part still goes
        if progress:
            progress(f"the lab's store did not answer ({e}): removing this machine's part only")
        return None
    out = Outcome()
    end = time.monotonic() + timeout

    def settled(h: str) -> bool:
        got = store.try_get("ConfigMap", CONFIG_NAMESPACE, answer_name(h))
        if got is not None:
            out.answered[h] = dict(got.get("data") or {})
        return got is not None
    try:
        await_answers(placed, settled, end, progress, lambda waiting: f"waiting for the agents of {hosts_text(waiting)}"
                      f" to remove their part ({end - time.monotonic():.0f} s left)", first=2)
    except Exception as e:  # noqa: BLE001 - etcd gone meanwhile: those not heard from are named
        if progress:
            progress(f"the lab's store stopped answering ({e})")
    out.missing = sorted(h for h in placed if h not in out.answered)
    return out


def down(lab: str, timeout: float = TIMEOUT, progress=None):
    """`netlab down LAB` (the CLI's and the API's): on real hosts every machine's part first (whole_lab),
    then the lab's keys in etcd and what is on this machine. Returns (DownResult, Outcome or None)."""
    from ..dataplane import lab as labmod
    from ..errors import UsageError
    from ..store.etcd import drop_keys
    from . import store_config
    try:
        conf = store_config(lab)
    except UsageError:   # not readable: nothing to ask or drop; this machine's part still goes
        return labmod.down(lab), None
    outcome = whole_lab(lab, conf, timeout, progress)
    if outcome is None:
        return labmod.down(lab), None
    # the keys go from the store.json read before asking: this machine's agent may have removed the lab's
    # directory, store.json with it, by now; so the local down below leaves them to this
    drop_keys(conf)
    return labmod.down(lab, keep_store=True), outcome
