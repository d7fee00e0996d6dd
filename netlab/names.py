"""Every name netlab gives a kernel object or a process, formatted and parsed in this one place.

A lab's network namespaces are `nl.<lab>.underlay`, `nl.<lab>.external`, `nl.<lab>.node.<node>` and
`nl.<lab>.pod.<namespace>.<pod>`; a lab spread over emulated hosts (the Cluster document's `hosts`) has
`nl.<lab>.segment` (the hosts' shared L2 segment) and `nl.<lab>.host.<host>` (one host, its NIC `eth0` on
the segment) instead of the underlay. Lab names and Kubernetes namespaces are DNS labels (no dots), so the
prefix `nl.<lab>.` and the first dot after `pod.` are unambiguous; a pod name may hold dots, which is
why `parse_netns` splits a pod namespace name at the first dot only. Processes netlab starts carry the
environment tag NETLAB_OWNER=<owner> formatted here too, so that `up` and `down` can tell netlab's own
processes from anyone else's.
"""
from __future__ import annotations

from dataclasses import dataclass

NETNS_PREFIX = "nl."
KINDS = ("underlay", "external", "node", "pod", "segment", "host")


def lab_prefix(lab: str) -> str:
    """Every namespace of lab `lab` is named `nl.<lab>` or starts with `nl.<lab>.`."""
    return f"{NETNS_PREFIX}{lab}"


def underlay_netns(lab: str) -> str:
    return f"{lab_prefix(lab)}.underlay"


def external_netns(lab: str) -> str:
    return f"{lab_prefix(lab)}.external"


def segment_netns(lab: str) -> str:
    """The emulated hosts' shared L2 segment (a bridge: the switch between the hosts' NICs)."""
    return f"{lab_prefix(lab)}.segment"


def host_netns(lab: str, host: str) -> str:
    """An emulated host: its NIC `eth0` on the segment, its underlay bridge for the nodes placed on it."""
    return f"{lab_prefix(lab)}.host.{host}"


def node_netns(lab: str, node: str) -> str:
    return f"{lab_prefix(lab)}.node.{node}"


def pod_netns(lab: str, namespace: str, name: str) -> str:
    return f"{lab_prefix(lab)}.pod.{namespace}.{name}"


@dataclass(frozen=True)
class NetnsName:
    """A parsed namespace name: the lab, the kind (underlay, external, node, pod, segment, host) and, for a
    node, its name; for a pod, its Kubernetes namespace and name; for a host, its name."""
    lab: str
    kind: str
    node: str = ""
    host: str = ""
    namespace: str = ""
    pod: str = ""

    @property
    def pod_key(self) -> str:
        return f"{self.namespace}/{self.pod}"


def parse_netns(name: str, lab: str | None = None) -> NetnsName | None:
    """The parts of a namespace name netlab makes (of lab `lab`, if given); None for any other name,
    including `nl.<lab>` itself and `nl.<lab>.mine` (someone else's, which netlab leaves alone)."""
    if not name.startswith(NETNS_PREFIX):
        return None
    rest = name[len(NETNS_PREFIX):]
    if lab is not None:
        if not rest.startswith(lab + "."):
            return None
        found_lab, rest = lab, rest[len(lab) + 1:]
    else:
        found_lab, dot, rest = rest.partition(".")
        if not dot or not found_lab:
            return None
    kind, _, tail = rest.partition(".")
    if kind in ("underlay", "external", "segment"):
        return NetnsName(found_lab, kind) if not tail and rest == kind else None
    if kind == "host" and tail and "." not in tail:
        return NetnsName(found_lab, "host", host=tail)
    if kind == "node" and tail:
        return NetnsName(found_lab, "node", node=tail)
    if kind == "pod":
        ns, dot, pod = tail.partition(".")
        if ns and dot and pod:
            return NetnsName(found_lab, "pod", namespace=ns, pod=pod)
    return None


def is_lab_netns(name: str, lab: str) -> bool:
    """Whether `name` is one of the namespaces netlab makes for `lab`."""
    return parse_netns(name, lab) is not None


def repair_command(lab: str) -> str:
    """The command that reconciles lab `lab` from the scenario it was built from (what hints print)."""
    return f"sudo netlab up --lab {lab}"


# ------------------------------------------------------------------ process owner tags

def server_owner(lab: str, node: str) -> str:
    """The owner tag of a node's built-in server."""
    return f"{lab}/node/{node}/netexec"


def server_forks_owner(lab: str) -> str:
    """The owner tag of the process the built-in servers of a pass are forked from (while it starts them)."""
    return f"{lab}/netexec-forks"


def userspace_proxy_owner(lab: str, node: str) -> str:
    """The owner tag of a node's proxy process in kube-proxy's userspace mode."""
    return f"{lab}/node/{node}/userspace-proxy"


def bgp_owner(lab: str, node: str | None) -> str:
    """The owner tag of a node's BGP speaker (node None: the external router's)."""
    return f"{lab}/external/bird" if node is None else f"{lab}/node/{node}/bird"


def container_owner(lab: str, namespace: str, pod: str, container: str) -> str:
    """The owner tag of a container's process."""
    return f"{lab}/pod/{namespace}/{pod}/{container}"


def pod_owner_prefix(lab: str, namespace: str, pod: str) -> str:
    """What the owner tag of every container (and container supervisor) of a pod starts with."""
    return f"{lab}/pod/{namespace}/{pod}/"


def agent_owner(lab: str, host: str) -> str:
    """The owner tag of a host's agent (one control loop per host: netlab/live/agent.py)."""
    return f"{lab}/host/{host}/agent"


def is_agent_owner(lab: str, tag: str) -> bool:
    """Whether `tag` is the owner tag of one of lab `lab`'s agents."""
    head = f"{lab}/host/"
    return tag.startswith(head) and tag.endswith("/agent") and "/" not in tag[len(head):-len("/agent")]


def lab_owner_prefix(lab: str) -> str:
    """What every owner tag of lab `lab` starts with."""
    return f"{lab}/"
