"""The `netlab` command: kubectl- and containerlab-like verbs over an emulated cluster.

This package holds the click group and main(); the commands are in one module per verb group
(lifecycle: up, down; get; exec: exec, debug, logs; portforward: port-forward; probe; graph; trace; render: render,
validate; kubectl: apply, diff, replace, delete, scale, set, patch, edit, wait, describe; create; expose; run; label,
annotate; nodes: cordon, uncordon, drain, taint; rollout; exercise) and the helpers they share in common and kubeutil
(common is re-exported here). No module of this package imports the kernel layer (netlab.dataplane) or the
renderers when it is imported, so `netlab --help` stays fast: a command imports them when it runs.
"""
from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import NetlabError, SpecProblems
from . import (agent, create, exec, exercise, expose, get, graph, kubectl, label, lifecycle, node, nodes, portforward,
               probe, render, rollout, run, trace)
from .common import Progress, default_scenario_text, load_scenario, scenario_paths, warn_ignored

__all__ = ["cli", "main", "Progress", "default_scenario_text", "load_scenario", "scenario_paths", "warn_ignored"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netlab")
def cli() -> None:
    """netlab: a Kubernetes network dataplane (nodes, pods, VXLAN/host-gw/IP-in-IP/BGP, kube-proxy rules) built
    from real Linux network namespaces. Run as root."""


for _command in (lifecycle.up, lifecycle.down, get.get, exec.exec, exec.debug, probe.probe, exec.logs, render.render,
                 render.validate, *kubectl.COMMANDS, *expose.COMMANDS, *run.COMMANDS, *label.COMMANDS, *nodes.COMMANDS,
                 *portforward.COMMANDS,
                 rollout.rollout, node.node, create.create, graph.graph, trace.trace, exercise.exercise, agent.agent):
    cli.add_command(_command)


def main() -> None:
    import faulthandler
    from ..gcpause import ends_with_command
    try:
        faulthandler.enable()   # a crash of the interpreter itself prints every thread's Python stack
    except (OSError, ValueError, AttributeError):
        pass   # a stderr without a file descriptor (the CLI called in-process, its output captured)
    ends_with_command()   # (netlab/gcpause.py)
    try:
        rv = cli.main(standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except NetlabError as e:
        for line in str(e).split("\n") if isinstance(e, SpecProblems) else [str(e)]:  # one line a problem
            click.echo(f"error: {line}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
