"""The step of a container's start that builds its root (see sandbox.py): run by `unshare` as the new
PID namespace's PID 1, inside the new (private) mount namespace, as root; it then execs the rest of its
command line (setpriv ... -- the container's command), so the container's PID is this one.

Usage: python3 -S sandbox_init.py CONFIG_JSON -- ARGV...   (CONFIG: sandbox.init_config)

Standard library only (it runs with -S, before anything else of netlab is importable). The root:
a tmpfs mounted over /tmp (in this mount namespace only) holding a read-only recursive bind of each of
the host's top-level entries (not /tmp, /proc, /sys), the mount points of the volumes, a fresh /proc and
a read-only sysfs; the volumes are cloned (open_tree) before /tmp is covered, so a host path under /tmp
can be a volume; the private tmpfs of /tmp goes on before the mount points are made (a volume may be
mounted under /tmp); then the whole tree is made read-only (mount_setattr, recursive) but that /tmp, a
private tmpfs goes on /dev/shm, the volumes are moved in, and the root is pivoted to. A mount point missing under a
read-only host directory is made in an overlay of that directory (upper layer in a private tmpfs): the
host's directory is never written. netlab's state directory (/run/netlab) is hidden under an empty tmpfs.
A privileged container keeps the host's tree; only the pod's files (`files`: its /etc/resolv.conf and
/etc/hosts) are bound over the host's, in its own mount namespace.
Needs Linux 5.12 or later (mount_setattr).
"""
import contextlib
import ctypes
import json
import os
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC = 4096, 16384
MNT_DETACH = 2
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 4
MOUNT_ATTR_RDONLY = 1
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442   # the same number on every architecture
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}.get(os.uname().machine, 155)

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


HIDDEN = ("/run/netlab",)


class Failed(Exception):
    pass


def _check(r: int, what: str) -> int:
    if r < 0:
        e = ctypes.get_errno()
        raise Failed(f"{what}: {os.strerror(e)}")
    return r


def mount(src, target, fstype, flags, data=None):
    _check(libc.mount(src and src.encode(), target.encode(), fstype and fstype.encode(), ctypes.c_ulong(flags),
                      data and data.encode()), f"mount {fstype or src} on {target}")


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def read_only(path):
    attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    _check(libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE, ctypes.byref(attr),
                        ctypes.sizeof(attr)), f"make {path} read-only")


def writable(path):
    """The one mount at `path` writable again (not its submounts)."""
    attr = MountAttr(0, MOUNT_ATTR_RDONLY, 0, 0)
    _check(libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), 0, ctypes.byref(attr), ctypes.sizeof(attr)),
           f"make {path} writable")


def clone_tree(path):
    return _check(libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(),
                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE), f"clone {path}")


def attach(fd, target):
    _check(libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
           f"mount on {target}")


def make_point(root, target, is_dir, scratch, own=()):
    """Make `target` (a path inside the container) exist under `root`, without writing the host (`own`:
    the devices of the sandbox's own writable tmpfs, the root's and the private /tmp's)."""
    path = os.path.normpath(root + "/" + target)
    link = os.path.islink(path)   # a symbolic link (/etc/resolv.conf on a systemd-resolved host): replaced
    if os.path.lexists(path) and not link:
        return path
    ancestor = os.path.dirname(path)
    while not os.path.isdir(ancestor):
        ancestor = os.path.dirname(ancestor)
    if os.stat(ancestor).st_dev not in (os.stat(root).st_dev, *own):
        # a read-only host directory: an overlay of it, its upper layer in the private scratch tmpfs
        n = len(os.listdir(scratch))
        up, work = f"{scratch}/{n}/u", f"{scratch}/{n}/w"
        os.makedirs(up)
        os.makedirs(work)
        mount("overlay", ancestor, "overlay", 0, f"lowerdir={ancestor},upperdir={up},workdir={work}")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    if link:
        os.unlink(path)   # in the overlay (or the sandbox's own tmpfs): the host's link stays
    if is_dir:
        os.mkdir(path)
    else:
        open(path, "w").close()
    return path


def build(cfg):
    if cfg["host_fs"]:  # privileged: the host's tree as it is, with this PID namespace's /proc
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        # the pod's /etc/resolv.conf and /etc/hosts over the host's, in this (private) mount namespace only
        for src, dst, ro in cfg.get("files") or []:
            mount(src, dst, None, MS_BIND)
            if ro:
                read_only(dst)
        return
    trees = [(clone_tree(src), dst, ro, os.path.isdir(src)) for src, dst, ro in cfg["mounts"]]
    root = "/tmp"
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    for name in sorted(os.listdir("/")):
        if name in ("tmp", "proc", "sys"):
            continue
        src, dst = "/" + name, f"{root}/{name}"
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isdir(src):
            os.mkdir(dst)
            mount(src, dst, None, MS_BIND | MS_REC)
            read_only(dst)
        else:
            open(dst, "w").close()
            mount(src, dst, None, MS_BIND)
            read_only(dst)
    for hidden in HIDDEN:   # netlab's own state and logs (root only on the host): an empty directory here
        if os.path.isdir(root + hidden):
            mount("tmpfs", root + hidden, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=4k")
    os.mkdir(f"{root}/tmp", 0o1777)
    os.chmod(f"{root}/tmp", 0o1777)
    if cfg["tmp"]:   # before the mount points: a volume (or netlab's own python) under /tmp goes on it
        mount("tmpfs", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    own = (os.stat(f"{root}/tmp").st_dev,)
    os.mkdir(f"{root}/proc", 0o555)
    os.mkdir(f"{root}/sys", 0o555)
    scratch = None

    def need_scratch():
        nonlocal scratch
        if scratch is None:
            scratch = "/run/netlab-sandbox-scratch"
            # in this mount namespace only: /run is covered by a tmpfs that holds the overlays' upper layers
            mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=700")
            os.mkdir(scratch)
        return scratch
    points = []
    for fd, dst, ro, is_dir in trees:
        where = os.path.normpath(root + "/" + dst)
        missing = not os.path.lexists(where) or os.path.islink(where)
        points.append((fd, make_point(root, dst, is_dir, need_scratch() if missing else None, own), ro))
    # the working directory is made if it does not exist, as runtimes make it (under /tmp: after its tmpfs)
    workdir = os.path.normpath("/" + (cfg.get("workdir") or "/"))
    if workdir.split("/")[1] != "tmp" and not os.path.isdir(root + workdir):
        with contextlib.suppress(OSError, Failed):
            make_point(root, workdir, True, need_scratch(), own)
    read_only(root)
    if cfg["tmp"]:
        writable(f"{root}/tmp")   # the recursive read-only above took the private /tmp too
    if os.path.isdir(f"{root}/dev/shm"):
        mount("tmpfs", f"{root}/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("sysfs", f"{root}/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if cfg["sys_rw"] else MS_RDONLY))
    for fd, path, ro in points:
        attach(fd, path)
        os.close(fd)
        if ro:
            read_only(path)
    os.chdir(root)
    _check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detach the host's root")
    os.chdir("/")


def main(argv):
    cfg = json.loads(argv[1])
    cmd = argv[3:]
    try:
        build(cfg)
    except (Failed, OSError) as e:
        print(f"netlab sandbox: cannot set up the container's filesystem: {e}", file=sys.stderr)
        return 127
    workdir = cfg.get("workdir") or "/"
    if not os.path.isdir(workdir) and not cfg["host_fs"]:
        with contextlib.suppress(OSError):
            os.makedirs(workdir)   # under the private /tmp
    os.chdir(workdir if os.path.isdir(workdir) else "/")
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        print(f"netlab sandbox: cannot run {cmd[0]}: {e.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
