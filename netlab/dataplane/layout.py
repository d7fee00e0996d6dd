"""A lab's directory, /run/netlab/<lab>/ (root only: 0700 directories, 0600 files): every path in it is
made here, and state.json's schema is written down here.

    /run/netlab/<lab>/
      state.json                        what `up` decided (state_doc below); read back by state.load
      last-up                           when `up` last finished (resolve_lab's "last brought up")
      logs/<ns>_<pod>_<container>.log   a container's output (containers without a command: `netexec`,
                                        the built-in server's log of the requests it answers for the pod)
      logs/netexec-<node>.log           a node's built-in server (its own messages)
      run/netexec-<node>.json           the built-in server's config: the pods it serves
      run/netexec-<node>.pid            its pidfile: "PID GENERATION", rewritten on every reload
      run/netexec-<node>.status.json    its pods' container states (running | exited, exitCode), by it
      run/<ns>_<pod>_<container>.exit   a container's exit status, written by its supervisor
      run/iptables-<node>.json          the iptables-nft sync record (the node's tables as last synced)
      run/nft-<node>.json               the nftables-mode sync record
      run/userspace-<node>.json         userspace mode: the node's proxy config (its listeners, endpoints)
      run/userspace-<node>.pid          its pidfile: "PID GENERATION", rewritten on every reload
      run/userspace-<node>.status.json  the ports it listens on, the listeners it could not open
      logs/userspace-<node>.log         the proxy's messages (failed connects, reloads)
      uts/<ns>.<pod>                    a pod's UTS namespace (a bind mount)
      dns/zone.json                     the cluster DNS's zone (live/dnszone.py)
      lb/announce.json                  MetalLB's layer-2 announcements (live/lbannounce.py)
      hosts/<host>/state.json           a lab run by agents (one control loop per host, live/agent.py): what
                                        the agent of <host> built (its nodes and their pods, state_doc's schema)
      hosts/<host>/lock                 the lock of its passes (live.locked)
      hosts/<host>/terminating          its pods' graceful terminations (live/terminate.py)
      hosts/<host>/conntrack-udp.txt    its nodes' last UDP conntrack cleanup (dataplane/conntrack.py)
      run/agent-<host>.pid, .lock       the agent's process record and its one-per-host lock
      fabric.lock                       the agent reconciling the lab's shared namespaces (dataplane/fabric.py)
      logs/agent-<host>.log             the agent's messages

An agent's process is scoped to its host (`set_host`, from the environment variable NETLAB_AGENT_HOST that
starts it): state.json, the terminations and the conntrack record are then its host's; everything else
is named by node or pod, which one host owns, so agents of one lab sharing a filesystem never collide.
"""
from __future__ import annotations

import os
import time
from typing import Any

RUN_DIR = os.environ.get("NETLAB_RUN_DIR", "/run/netlab")
HOST_VAR = "NETLAB_AGENT_HOST"          # set in an agent's environment: the host whose state it keeps
_HOST: list[str | None] = [os.environ.get(HOST_VAR) or None]
STATE_VERSION = 1
BUILTIN = "netexec"   # the log name of a container served by the built-in server


def lab_dir(lab: str) -> str:
    return os.path.join(RUN_DIR, lab)


def set_host(host: str | None) -> None:
    """Scope this process to one host of a lab run by agents (None: the whole lab, as every command)."""
    _HOST[0] = host or None


def host() -> str | None:
    """The host this process is scoped to (an agent's), or None."""
    return _HOST[0]


def dirs(lab: str) -> list[str]:
    """The directories a lab needs, parents first."""
    base = lab_dir(lab)
    out = [RUN_DIR, base, logs_dir(lab), uts_dir(lab), run_dir(lab)]
    if _HOST[0]:
        out += [hosts_dir(lab), host_dir(lab, _HOST[0])]
    return out


def hosts_dir(lab: str) -> str:
    return os.path.join(lab_dir(lab), "hosts")


def host_dir(lab: str, host: str) -> str:
    """What the agent of `host` keeps of its own (its state.json, terminations, conntrack record)."""
    return os.path.join(hosts_dir(lab), host)


def lab_state_file(lab: str) -> str:
    """The lab's state.json as `up` writes it (whatever this process is scoped to)."""
    return os.path.join(lab_dir(lab), "state.json")


def state_file(lab: str) -> str:
    """This process's state.json: an agent's host's, else the lab's."""
    if _HOST[0]:
        return os.path.join(host_dir(lab, _HOST[0]), "state.json")
    return lab_state_file(lab)


def terminating_file(lab: str) -> str:
    """The kubelets' graceful terminations in progress (live/terminate.py): an agent's host's own."""
    if _HOST[0]:
        return os.path.join(host_dir(lab, _HOST[0]), "terminating")
    return os.path.join(run_dir(lab), "terminating")


def host_terminating_dirs(lab: str) -> list[str]:
    """Every host's terminations directory of a lab run by agents (none for a lab run by one loop)."""
    try:
        hosts = sorted(os.listdir(hosts_dir(lab)))
    except OSError:
        return []
    return [os.path.join(host_dir(lab, h), "terminating") for h in hosts]


def conntrack_record(lab: str) -> str:
    """The UDP frontends of the last conntrack cleanup (dataplane/conntrack.py): an agent's host's own."""
    if _HOST[0]:
        return os.path.join(host_dir(lab, _HOST[0]), "conntrack-udp.txt")
    return os.path.join(run_dir(lab), "conntrack-udp.txt")


def agent_pidfile(lab: str, host: str) -> str:
    """The record (PID, start time) of the agent of `host` (netlab/live/agent.py)."""
    return os.path.join(run_dir(lab), f"agent-{host}.pid")


def agent_lockfile(lab: str, host: str) -> str:
    return os.path.join(run_dir(lab), f"agent-{host}.lock")


def agent_log(lab: str, host: str) -> str:
    return os.path.join(logs_dir(lab), f"agent-{host}.log")


def logs_dir(lab: str) -> str:
    return os.path.join(lab_dir(lab), "logs")


def last_up_file(lab: str) -> str:
    """When `netlab up` last finished for the lab (a POSIX time): which lab a verb without --lab acts on."""
    return os.path.join(lab_dir(lab), "last-up")


def loop_pidfile(lab: str) -> str:
    """The record (PID, start time) of the lab's control loop process (netlab/live/loop.py)."""
    return os.path.join(run_dir(lab), "control-loop.pid")


def dns_dir(lab: str) -> str:
    """The cluster DNS's directory: zone.json, written by the control loop (netlab/live/dnszone.py), read
    by the coredns pods (mounted at /etc/coredns: netlab/dns/addon.py)."""
    return os.path.join(lab_dir(lab), "dns")


def lb_dir(lab: str) -> str:
    """MetalLB's layer-2 announcements: announce.json, written by the control loop (netlab/live/
    lbannounce.py), read by the speaker pods (mounted at /etc/metallb-netlab: netlab/lb/addon.py)."""
    return os.path.join(lab_dir(lab), "lb")


def ingress_dir(lab: str) -> str:
    """The ingress-nginx add-on's directory: nginx.conf and ssl/*.pem, written by the control loop
    (netlab/live/ingresspub.py), read by the controller pods (mounted at /etc/ingress-controller)."""
    return os.path.join(lab_dir(lab), "ingress")


def volumes_dir(lab: str) -> str:
    """The pods' volume directories (emptyDir, configMap, secret...): volumes/<pod uid>/<volume>."""
    return os.path.join(lab_dir(lab), "volumes")


def run_dir(lab: str) -> str:
    return os.path.join(lab_dir(lab), "run")


def uts_dir(lab: str) -> str:
    return os.path.join(lab_dir(lab), "uts")


# ------------------------------------------------------------------ pods and containers

def uts_file(lab: str, namespace: str, pod: str) -> str:
    return os.path.join(uts_dir(lab), f"{namespace}.{pod}")


def container_log(lab: str, namespace: str, pod: str, container: str) -> str:
    """A container's log; for a container without a command pass container=BUILTIN."""
    return os.path.join(logs_dir(lab), f"{namespace}_{pod}_{container}.log")


def container_exit(lab: str, namespace: str, pod: str, container: str) -> str:
    return os.path.join(run_dir(lab), f"{namespace}_{pod}_{container}.exit")


# ------------------------------------------------------------------ built-in servers

def server_config(lab: str, node: str) -> str:
    return os.path.join(run_dir(lab), f"netexec-{node}.json")


def server_pidfile(lab: str, node: str) -> str:
    return os.path.join(run_dir(lab), f"netexec-{node}.pid")


def server_status(lab: str, node: str) -> str:
    """The status file the built-in server writes next to its pidfile (netlab.workload.netexec)."""
    return os.path.join(run_dir(lab), f"netexec-{node}.status.json")


def server_log(lab: str, node: str) -> str:
    return os.path.join(logs_dir(lab), f"netexec-{node}.log")


def server_log_of(pidfile: str) -> str:
    """A built-in server's log from its pidfile's path (<lab dir>/run/netexec-NODE.pid)."""
    base = os.path.dirname(os.path.dirname(pidfile))
    return os.path.join(base, "logs", os.path.basename(pidfile)[:-len(".pid")] + ".log")


# ------------------------------------------------------------------ proxy sync records

def iptables_record(lab: str, node: str) -> str:
    return os.path.join(run_dir(lab), f"iptables-{node}.json")


def nft_record(lab: str, node: str) -> str:
    return os.path.join(run_dir(lab), f"nft-{node}.json")


# ------------------------------------------------------------------ userspace mode's proxy processes

def userspace_config(lab: str, node: str) -> str:
    return os.path.join(run_dir(lab), f"userspace-{node}.json")


def userspace_pidfile(lab: str, node: str) -> str:
    return os.path.join(run_dir(lab), f"userspace-{node}.pid")


def userspace_status(lab: str, node: str) -> str:
    return os.path.join(run_dir(lab), f"userspace-{node}.status.json")


def userspace_log(lab: str, node: str) -> str:
    return os.path.join(logs_dir(lab), f"userspace-{node}.log")


# ------------------------------------------------------------------ state.json

# The tables of state.json (each maps a name to a record) that state.load checks the shape of.
TABLES = ("nodes", "pods", "services", "servers", "ipam", "iptables")
# The scalars of state.json that must be strings.
STRINGS = ("scenario", "source", "sourcePath", "phase")


def state_doc(cluster, scenario_text: str, source_path: str | None, prev: dict[str, Any], phase: str,
              pods_extra: dict[str, dict], servers: dict[str, Any], flavour: str) -> dict[str, Any]:
    """state.json as `up` writes it (state.save adds `version`):

    lab, scenario (the text it was built from), source (where that text came from), sourcePath (the
    source's identity: a file's real path), phase (applying | ready), created (time of the first up),
    nodes (name -> ip, podCIDR, netns), pods (key -> node, ip, uid, fingerprint, netns, and from the
    kernel layer: procs {container -> {pid, start}}, restarts, created, ready), ipam (node -> last pod
    IP handed out), services (key -> clusterIP, nodePorts {"name/protocol" -> port}, healthCheckNodePort), servers (node ->
    {pid, start} of its built-in server), iptables {flavour}, proxyMode."""
    from ..model import svcalloc
    return {
        "lab": cluster.name, "scenario": scenario_text, "source": cluster.source, "phase": phase,
        "sourcePath": source_path,
        "created": prev.get("created") or time.time(),
        "nodes": {n.name: {"ip": str(n.ip), "podCIDR": str(n.pod_cidr), "netns": n.netns} for n in cluster.nodes},
        "pods": {p.key: dict({"node": p.node, "ip": str(p.ip), "uid": p.uid, "fingerprint": p.fingerprint(),
                              "netns": p.netns}, **pods_extra.get(p.key, {})) for p in cluster.pods},
        "ipam": cluster.ipam_last,
        "services": svcalloc.service_table(cluster.services),
        "servers": servers,
        "iptables": {"flavour": flavour},
        "proxyMode": cluster.networking.proxy_mode,
    }
