"""The kubelet's part in starting a pod's containers: their environment (valueFrom, envFrom, $(VAR),
the service environment variables) and their volumes, decided once a pass from the store and the model
(netlab/workload/podenv.py, volumes.py) for the pods with containers that run a command; the dataplane
makes the files and starts the containers with them (netlab/dataplane/volumes.py,
supervise.ensure_containers). The service variables are those of the Services the model holds at this
pass (with their allocated ClusterIPs): a container started after a Service exists sees it."""
from __future__ import annotations

import os
import shutil

from ..model.objects import Cluster
from ..workload.podenv import Runtime
from ..workload.volumes import launches

_ALLOCATABLE: dict[str, str] = {}


def allocatable() -> dict[str, str]:
    """The node's allocatable resources, as a kind node reports them: the host's CPUs, memory and the
    root filesystem's size (netlab's nodes share the host)."""
    if not _ALLOCATABLE:
        mem = 0
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        mem = int(line.split()[1]) * 1024
        except OSError:
            pass
        _ALLOCATABLE.update({"cpu": str(os.cpu_count() or 1), "memory": str(mem),
                             "ephemeral-storage": str(shutil.disk_usage("/").total)})
    return _ALLOCATABLE


def needs_kubelet(pod) -> bool:
    """Whether the pod has a container that runs a command (it gets the kubelet's environment: at the
    least the service variables)."""
    return any(c.command or c.args for c in pod.containers)


def service_objects(cluster: Cluster) -> list[dict]:
    """The model's Services in the store's shape, with the ClusterIP the model allocated."""
    return [{"metadata": {"name": s.name, "namespace": s.namespace},
             "spec": {"type": s.spec.type, "clusterIP": str(s.cluster_ip) if s.cluster_ip else "None",
                      "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in s.ports]}}
            for s in cluster.services]


def prepare(cluster: Cluster, by_key: dict[str, dict], store, base: str) -> None:
    """Set `launch` and `volumes` of the model's pods that need them (see the module's docstring)."""
    wanted = [p for p in cluster.pods if needs_kubelet(p)]
    if not wanted:
        return
    snap, _ = store.snapshot(("ConfigMap", "Secret"))
    objs = {(kind, o["metadata"].get("namespace", "default"), o["metadata"]["name"]): o
            for kind in ("ConfigMap", "Secret") for o in snap[kind]}
    nodes = {n.name: n for n in cluster.nodes}
    services = service_objects(cluster)
    for pod in wanted:
        obj = by_key[pod.key]
        runtime = Runtime(str(pod.ip), str(nodes[pod.node].ip), allocatable())
        pod.volumes, pod.launch = launches(obj, base, objs, runtime, services)
        for c in pod.containers:   # a command netlab rewrote (a recognised image's client) stays the model's
            got = pod.launch.get(c.name)
            if got is not None and not got.error and not (c.kubelet_env or c.mounts):
                got.argv = c.command + c.args
