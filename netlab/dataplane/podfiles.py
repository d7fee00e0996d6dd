"""The kubelet's /etc/resolv.conf and /etc/hosts of each pod (rendered by netlab/workload/resolvconf.py),
written under the lab's state directory (volumes/<pod uid>/..etc/, removed with the pod's volumes) and
bound at /etc/resolv.conf and /etc/hosts in the sandbox of every container of the pod, of `netlab exec`
and of `netlab debug` (netlab/dataplane/sandbox.py, podexec.py). The host's own files are only read
(the node's resolv.conf for dnsPolicy Default and the host's search domains; the node's hosts file for a
hostNetwork pod), never written. A file is rewritten in place when what it should hold changes, so the
containers that have it bound see the new content."""
from __future__ import annotations

import os

from ..dns import cluster_dns_ip
from ..model.objects import Cluster, Pod
from ..workload.resolvconf import pod_files
from . import layout
from .sandbox import Mount

HOST_RESOLV = "/etc/resolv.conf"
HOST_HOSTS = "/etc/hosts"
TARGETS = {"resolv.conf": "/etc/resolv.conf", "hosts": "/etc/hosts"}


def etc_dir(lab: str, pod: Pod) -> str:
    # '..etc' is no volume name (volumes are DNS labels): no clash with the pod's volume directories
    return os.path.join(layout.volumes_dir(lab), pod.uid, "..etc")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def render(cluster: Cluster, pod: Pod, host_resolv: str, host_hosts: str) -> dict[str, str]:
    net = cluster.networking
    return pod_files(pod.dns, pod.namespace, pod.uts_hostname, str(pod.ip), pod.host_network, net.dns_domain,
                     str(cluster_dns_ip(net.service_subnet)), host_resolv, host_hosts)


def _private_dirs(top: str, where: str, made: set[str] | None = None) -> None:
    """Make `where` (under `top`, the lab's volumes directory) and the directories between, root's only
    (0700, whatever the umask): a container reads its files through the bind mounts, not these paths.
    `made`: directories known to exist (this call adds those it made or found), so that writing many pods'
    files does not try each parent again for each pod."""
    made = set() if made is None else made
    path = os.path.abspath(where)
    chain = [path]
    while path != os.path.abspath(top) and os.path.dirname(path) != path and path not in made:
        path = os.path.dirname(path)
        chain.append(path)
    for d in reversed(chain):
        if d in made:
            continue
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            made.add(d)
            continue
        os.chmod(d, 0o700)
        made.add(d)


def _write(path: str, text: str) -> None:
    # in place (a bind mount of the file shows the new content), 0644 whatever the umask
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fchmod(fd, 0o644)
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def write_all(cluster: Cluster) -> list[str]:
    """Write every pod's files where they are missing or differ; returns the pods' keys written."""
    host_resolv, host_hosts = _read(HOST_RESOLV), _read(HOST_HOSTS)
    top = layout.volumes_dir(cluster.name)
    made: set[str] = set()
    written = []
    for pod in cluster.pods:
        where = etc_dir(cluster.name, pod)
        files = render(cluster, pod, host_resolv, host_hosts)
        fresh = not os.path.isdir(where)   # a new pod's (most of a bring-up's): nothing to read back
        changed = False
        for name, text in files.items():
            path = os.path.join(where, name)
            if not fresh and _read(path) == text and os.path.exists(path):
                continue
            _private_dirs(top, where, made)
            _write(path, text)
            changed = True
        if changed:
            written.append(pod.key)
    return written


def mounts(lab: str, pod: Pod, read_only: bool = False) -> list[Mount]:
    """The binds of the pod's files (those written) at /etc/resolv.conf and /etc/hosts."""
    where = etc_dir(lab, pod)
    return [Mount(os.path.join(where, name), target, read_only) for name, target in TARGETS.items()
            if os.path.isfile(os.path.join(where, name))]
