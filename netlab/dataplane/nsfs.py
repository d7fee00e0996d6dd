"""Named namespaces without forking: unshare(2), setns(2) and bind mounts, as `ip netns add` does them.

A namespace is created by a *dedicated* thread that calls unshare(CLONE_NEWNET) (namespaces are per
task, so only that thread moves) and bind-mounts /proc/self/task/<tid>/ns/net onto /run/netns/<name>,
which keeps the namespace alive after the thread leaves it. That costs well under a millisecond,
where pyroute2's netns.create forks a process (~8 ms). The thread never returns to the root
namespace: it simply ends, so no other code can ever run in a namespace it did not expect.
"""
from __future__ import annotations

import ctypes
import errno
import os
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2
NETNS_RUN_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

T = TypeVar("T")


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    b = name.encode()
    _check(_libc.sethostname(b, len(b)), f"sethostname {name}")


def bind_mount(src: str, dst: str) -> None:
    _check(_libc.mount(src.encode(), dst.encode(), None, MS_BIND, None), f"mount --bind {src} {dst}")


def umount(path: str) -> None:
    """Detach a bind mount; a path that is not mounted (or gone) is fine."""
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        if e not in (errno.EINVAL, errno.ENOENT):
            raise OSError(e, f"umount {path}: {os.strerror(e)}")


def netns_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, name)


_run_dir_ready = False


def ensure_run_dir() -> None:
    """Make /run/netns a shared mount point, as iproute2 does, so namespaces show in `ip netns` everywhere."""
    global _run_dir_ready
    if _run_dir_ready:
        return
    os.makedirs(NETNS_RUN_DIR, mode=0o755, exist_ok=True)
    if _libc.mount(b"", NETNS_RUN_DIR.encode(), None, MS_SHARED | MS_REC, None) != 0:
        e = ctypes.get_errno()
        if e != errno.EINVAL:
            raise OSError(e, f"mount --make-rshared {NETNS_RUN_DIR}: {os.strerror(e)}")
        # not a mount point yet: bind it onto itself first (what `ip netns add` does)
        bind_mount(NETNS_RUN_DIR, NETNS_RUN_DIR)
        _check(_libc.mount(b"", NETNS_RUN_DIR.encode(), None, MS_SHARED | MS_REC, None), "make /run/netns shared")
    _run_dir_ready = True


def _mount_own_ns(kind: str, path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    os.close(fd)
    try:
        bind_mount(f"/proc/self/task/{threading.get_native_id()}/ns/{kind}", path)
    except OSError:
        os.unlink(path)
        raise


def new_netns_here(name: str, uts_path: str | None = None, hostname: str | None = None) -> str:
    """Called from a dedicated thread: move it into a new net (and UTS) namespace and name them.

    Fails with FileExistsError if the name is taken, so a namespace is never created twice.
    """
    path = netns_path(name)
    flags = CLONE_NEWNET | (CLONE_NEWUTS if uts_path else 0)
    if os.path.exists(path):
        raise FileExistsError(errno.EEXIST, f"network namespace {name} already exists")
    unshare(flags)
    _mount_own_ns("net", path)
    if uts_path:
        try:
            if os.path.exists(uts_path):
                umount(uts_path)
                os.unlink(uts_path)
            _mount_own_ns("uts", uts_path)
            if hostname:
                sethostname(hostname)
        except OSError:
            delete_ns_file(path)
            raise
    return path


def enter_netns_here(name_or_path: str) -> None:
    """Called from a dedicated thread: move it into an existing namespace."""
    path = name_or_path if name_or_path.startswith("/") else netns_path(name_or_path)
    fd = os.open(path, os.O_RDONLY)
    try:
        setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


def delete_ns_file(path: str) -> bool:
    """Unmount and remove a namespace file; returns whether it existed. The namespace dies with its
    last user (process, socket or mount)."""
    existed = os.path.lexists(path)
    umount(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        os.rmdir(path)
    return existed


def is_ns_file(path: str) -> bool:
    """Whether `path` is a mounted namespace (not the empty placeholder file a process killed between
    creating it and bind-mounting onto it leaves behind)."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev  # both live on nsfs
    except OSError:
        return False


def ns_inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def run_in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a fresh thread (which may switch namespaces freely) and return its result or raise."""
    work = Background(fn, "netlab-ns")
    work.start()
    return work.result()  # type: ignore[return-value]


class Background:
    """fn on a thread of its own, started by `start` (any thread may call it) and joined by `result`,
    which returns fn's value or raises its exception; `result` of one never started runs nothing."""

    def __init__(self, fn: Callable[[], T], name: str = "netlab-bg"):
        self.fn, self.name = fn, name
        self.box: dict[str, object] = {}
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        def target() -> None:
            try:
                self.box["value"] = self.fn()
            except BaseException as e:  # noqa: BLE001 - re-raised by result()
                self.box["error"] = e
        self.thread = threading.Thread(target=target, name=self.name, daemon=True)
        self.thread.start()

    def join(self) -> None:
        """Wait for fn to end (if it was started), raising nothing: `result` says how it ended."""
        if self.thread is not None:
            self.thread.join()

    def result(self):
        if self.thread is None:
            return None
        self.thread.join()
        if "error" in self.box:
            raise self.box["error"]  # type: ignore[misc]
        return self.box.get("value")


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run fn inside namespace `name`, on a throwaway thread; the caller's namespace never changes."""
    def target() -> T:
        enter_netns_here(name)
        return fn()
    return run_in_thread(target)


@contextmanager
def opened(path: str) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []
