"""`netlab agent LAB --host HOST`: run one host's agent of a lab (its nodes' control loop; netlab/live/agent.py).

`netlab up` starts the agents of a lab whose nodes are placed on hosts (label netlab.dev/host) and any
netlab command starts one that is gone; this command runs one by hand, in the foreground (as a host's
service manager would), or in the background with --detach.
"""
from __future__ import annotations

import os

import click


@click.command()
@click.argument("lab")
@click.option("--host", "host", required=True, metavar="HOST",
              help="The host whose nodes this agent builds (their label netlab.dev/host).")
@click.option("--detach", is_flag=True, help="Start it in the background (as `netlab up` does) and return.")
@click.option("--etcd", "etcd", metavar="URL[,URL...]",
              help="The lab's etcd endpoints (as given to `netlab up --etcd`): how the agent of a real host, "
                   "on a machine of its own, finds the lab's store.")
@click.option("--etcd-netns", "etcd_netns", metavar="NETNS",
              help="Reach the --etcd endpoints from this network namespace (default: this machine's).")
def agent(lab: str, host: str, detach: bool, etcd: str | None, etcd_netns: str | None) -> None:
    """Run the agent of HOST in lab LAB: it builds, reconciles and heartbeats the nodes placed on HOST
    and their pods; the controllers run in the one agent of the lab that holds their Lease.

    A lab on real hosts (hostNetwork.mode real): run it on each host's own machine with --etcd; it builds
    that host's namespace, its nodes and the VXLAN to the other hosts over the host's interface."""
    from ..dataplane import lab as labmod
    from ..errors import UsageError
    from ..gcpause import runs_on
    from ..live import agent as agentmod
    runs_on()   # a daemon: its passes' garbage is collected after each (netlab/gcpause.py)
    labmod.require_root("run a lab's agent")
    if etcd is not None or etcd_netns is not None:
        _join_store(lab, etcd, etcd_netns)
    lab = labmod.resolve_lab(lab)
    placed = agentmod.hosts(lab)
    if host not in placed:
        known = ", ".join(placed) if placed else "none: its nodes carry no netlab.dev/host label"
        raise UsageError(f"lab {lab} has no host {host!r} (its hosts: {known}); place nodes on it with the "
                         f"label netlab.dev/host={host} in the Cluster document's nodes[].labels")
    _check_real_host(lab, host)
    rec = agentmod.running(lab, host)
    if rec:
        click.echo(f"the agent of host {host} of lab {lab} is already running (pid {rec['pid']})")
        return
    if detach:
        click.echo(f"agent of host {host} of lab {lab} started (pid {agentmod.start(lab, host)})")
        return
    how = agentmod.launch(lab, host)
    os.chdir(how.cwd)
    os.execve(how.argv[0], how.argv, how.env)   # tagged from its start (netlab down finds it by its tag)


def _join_store(lab: str, etcd: str | None, netns: str | None) -> None:
    """This machine reaches the lab's store in etcd (`<lab dir>/store.json`), as `up --etcd` left it on the
    machine that ran it: endpoints that do not answer are refused (one line, exit 2, nothing written)."""
    from ..dataplane.state import LAB_NAME
    from ..errors import UsageError
    from ..live import use_etcd
    endpoints = [e.strip() for e in (etcd or "").split(",") if e.strip()]
    if not endpoints:
        raise UsageError("--etcd-netns needs --etcd URL[,URL...] (the lab's etcd endpoints, http://HOST:2379)")
    if not LAB_NAME.match(lab):
        raise UsageError(f"{lab!r} is not a lab name (letters, digits and '-')")
    use_etcd(lab, endpoints, netns)


def _check_real_host(lab: str, host: str) -> None:
    """A lab on real hosts (its scenario, as `up` published it in the store): this machine must have the
    host's interface; it is recorded as such (no netlab command here starts agents for it)."""
    from ..dataplane.fabric import real_host_problem
    from ..errors import NetlabError, UsageError
    from ..live import agent as agentmod
    from ..live import store_for
    from ..live.hostscope import CONFIG_NAME, CONFIG_NAMESPACE, config_of
    from ..spec.parse import load_text
    conf = config_of(store_for(lab).try_get("ConfigMap", CONFIG_NAMESPACE, CONFIG_NAME)) or {}
    try:
        hc = load_text(conf.get("scenario") or "", f"lab {lab}").networking.hosts if conf.get("scenario") else None
    except NetlabError:
        return   # the agent's passes say what is wrong with it
    if hc is None or hc.mode != "real" or host not in [h.name for h in hc.hosts]:
        return
    agentmod.set_real(lab, True)
    problem = real_host_problem(f"lab {lab}", hc, host)
    if problem:
        raise UsageError(problem)
