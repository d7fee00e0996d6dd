"""A pod's volumes on the host (the kernel side of netlab/workload/volumes.py): a directory per pod and
volume under the lab's state directory, the files of configMap, secret, downwardAPI and projected
volumes written as the kubelet's atomic writer writes them, hostPath checked by its type; removed when
the pod goes. An emptyDir of `medium: Memory` gets no tmpfs of its own (a mount on the host would have
to be undone by `down` too): it is in memory where /run is a tmpfs, as on most systems."""
from __future__ import annotations

import os
import shutil
import stat
import time

from ..errors import KernelError
from ..workload.volumes import VolumeDir, VolumePlan

DATA = "..data"


def base_dir(lab: str) -> str:
    from . import layout
    return layout.volumes_dir(lab)


def check_host_path(d: VolumeDir) -> None:
    """hostPath `type` as the kubelet checks it; DirectoryOrCreate / FileOrCreate make what is missing."""
    path, kind = d.path, d.host_type or ""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if kind == "DirectoryOrCreate" and st is None:
        os.makedirs(path, 0o755, exist_ok=True)
        return
    if kind == "FileOrCreate" and st is None:
        if not os.path.isdir(os.path.dirname(path) or "/"):
            raise KernelError(f"hostPath type check failed: {path}: its directory does not exist")
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        return
    want = {"DirectoryOrCreate": stat.S_ISDIR, "Directory": stat.S_ISDIR, "FileOrCreate": stat.S_ISREG,
            "File": stat.S_ISREG, "Socket": stat.S_ISSOCK, "CharDevice": stat.S_ISCHR, "BlockDevice": stat.S_ISBLK}
    if kind in want and (st is None or not want[kind](st.st_mode)):
        raise KernelError(f"hostPath type check failed: {path} is not a {kind}" if st is not None
                          else f"hostPath type check failed: {path} does not exist")


def _current(path: str) -> dict[str, tuple[bytes, int]] | None:
    """The files an earlier write left in an atomic-writer volume (None: none yet)."""
    data = os.path.join(path, DATA)
    if not os.path.islink(data):
        return None
    out = {}
    for root, _, files in os.walk(data + "/", followlinks=False):
        for f in files:
            full = os.path.join(root, f)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, data + "/")] = (fh.read(), stat.S_IMODE(os.stat(full).st_mode))
    return out


def write_atomic(path: str, files: dict[str, tuple[bytes, int]]) -> bool:
    """Make `path` hold `files` the way the kubelet's atomic writer does: a new timestamped directory, the
    `..data` link switched to it by one rename, each top-level name a link through `..data`, the old
    directory removed. Nothing is written when the files are already these. True if written."""
    os.makedirs(path, 0o755, exist_ok=True)
    if _current(path) == files:
        return False
    stamp = "..%s.%d" % (time.strftime("%Y_%m_%d_%H_%M_%S"), time.monotonic_ns() % 10**9)
    new = os.path.join(path, stamp)
    os.mkdir(new, 0o755)
    for rel, (content, mode) in files.items():
        full = os.path.join(new, rel)
        os.makedirs(os.path.dirname(full), 0o755, exist_ok=True)
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.write(fd, content)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    old = os.readlink(os.path.join(path, DATA)) if os.path.islink(os.path.join(path, DATA)) else None
    tmp = os.path.join(path, "..data_tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(stamp, tmp)
    os.rename(tmp, os.path.join(path, DATA))
    tops = {rel.split("/", 1)[0] for rel in files}
    for name in os.listdir(path):
        if name.startswith(".."):
            continue
        if name not in tops:
            full = os.path.join(path, name)
            if os.path.islink(full):
                os.unlink(full)
    for top in tops:
        link = os.path.join(path, top)
        if not os.path.islink(link):
            os.symlink(os.path.join(DATA, top), link)
    if old and old != stamp:
        shutil.rmtree(os.path.join(path, old), ignore_errors=True)
    return True


def materialise(vp: VolumePlan) -> None:
    """Make a pod's volumes exist on the host as planned (idempotent)."""
    for d in vp.dirs:
        if d.kind == "hostPath":
            check_host_path(d)
        elif d.files is not None:
            write_atomic(d.path, d.files)
        else:
            os.makedirs(d.path, 0o777, exist_ok=True)
            os.chmod(d.path, 0o777)   # an emptyDir is world-writable, as the kubelet makes it


def prune(lab: str, uids: set[str]) -> list[str]:
    """Remove the volume directories of pods that are no longer in the lab (by uid); returns those."""
    base = base_dir(lab)
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return []
    gone = [n for n in names if n not in uids]
    for n in gone:
        shutil.rmtree(os.path.join(base, n), ignore_errors=True)
    return gone
