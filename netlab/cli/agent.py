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
def agent(lab: str, host: str, detach: bool) -> None:
    """Run the agent of HOST in lab LAB: it builds, reconciles and heartbeats the nodes placed on HOST
    and their pods; the controllers run in the one agent of the lab that holds their Lease."""
    from ..dataplane import lab as labmod
    from ..errors import UsageError
    from ..live import agent as agentmod
    labmod.require_root("run a lab's agent")
    lab = labmod.resolve_lab(lab)
    placed = agentmod.hosts(lab)
    if host not in placed:
        known = ", ".join(placed) if placed else "none: its nodes carry no netlab.dev/host label"
        raise UsageError(f"lab {lab} has no host {host!r} (its hosts: {known}); place nodes on it with the "
                         f"label netlab.dev/host={host} in the Cluster document's nodes[].labels")
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
