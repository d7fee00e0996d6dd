"""hostNetwork pods, the kernel side: a pod with no network namespace of its own.

The model gives such a pod its node's namespace and address (`Pod.netns`, `Pod.ip`: netlab/model/
build.py), so its containers (a command, or the node's built-in server for its ports) start, are
observed and are stopped in the node's namespace by the same code as any pod's. What differs:
- nothing is built for it by the fabric (`plan.plan_namespaces` leaves it out): no namespace, veth,
  address or route;
- it is fresh (its containers start) when it is new or its spec changed (`plan.host_pods_fresh`);
- it gets a UTS namespace of its own whose hostname is its node's name (the kubelet gives a
  hostNetwork pod the node's hostname; netlab's nodes share the host's UTS namespace, so the node's
  name stands for its hostname), at the pod's usual UTS file, so `exec` and its containers see it;
- when it goes (removed, changed, or no longer hostNetwork: `plan.host_pods_gone`), its processes are
  stopped by record and owner tag and its UTS file removed; the node's namespace is left as it was.
"""
from __future__ import annotations

import os

from ..model.objects import Cluster
from . import layout, nsfs
from .changes import Change, Changes


def ensure_uts(cluster: Cluster, changes: Changes) -> None:
    """Every hostNetwork pod has its UTS namespace file, hostname = its node's name."""
    for pod in cluster.pods:
        if not pod.host_network:
            continue
        path = layout.uts_file(cluster.name, pod.namespace, pod.name)
        if nsfs.is_ns_file(path):
            continue
        nsfs.run_in_thread(lambda: _new_uts(path, pod.uts_hostname))
        changes.add(Change("pod", pod.key, "create", f"hostNetwork pod {pod.key} in node {pod.node}'s "
                           "network namespace", pod.netns, f"pod {pod.key}"))


def _new_uts(path: str, hostname: str) -> None:
    """Called on a throwaway thread: a new UTS namespace with `hostname`, bound at `path`."""
    if os.path.lexists(path):
        nsfs.delete_ns_file(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nsfs.unshare(nsfs.CLONE_NEWUTS)
    nsfs.sethostname(hostname)
    nsfs._mount_own_ns("uts", path)


def stop_pods(lab: str, keys: list[str], prev_pods: dict[str, dict], changes: Changes) -> None:
    """Stop what runs of hostNetwork pods that go (`plan.host_pods_gone`), in their node's namespace,
    by record and owner tag (as for a pod whose namespace was deleted), and remove their UTS files."""
    from .supervise import stop_orphans
    stop_orphans(lab, keys, prev_pods, Changes())
    for key in keys:
        namespace, _, name = key.partition("/")
        nsfs.delete_ns_file(layout.uts_file(lab, namespace, name))
        changes.add(Change("pod", key, "remove", f"stopped hostNetwork pod {key} (its node's namespace stays)",
                           (prev_pods.get(key) or {}).get("netns") or "", f"pod {key}"))
