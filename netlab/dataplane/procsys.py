"""/proc/sys of the calling thread's network namespace, opened through netlab's own procfs instance.

Why not /proc/sys: the kernel caches one dentry per network namespace for every name under /proc/sys
(the per-namespace sysctl tables share one parent directory, /proc/sys itself), all of them in the same
dcache hash bucket. The first lookup in a new namespace walks that whole chain, comparing each entry under
the sysctl lock, so at 10,000 namespaces writing a pod's three sysctls costs milliseconds and the total
grows with the square of the pods (benchmarks/floor.c builds 10,000 pods in 76 s through /proc/sys and in
19 s through a private instance; `netlab up` of them went from 140 s to 88 s). A procfs instance of
netlab's own (the new mount API: fsopen("proc"), fsmount(); a detached mount, attached to no mount
namespace, so nothing on the host changes) has its own /proc/sys dentries; it is replaced after
`ROTATE` opens, so its chains stay short, and closing it frees them. What a file says is the same:
/proc/sys resolves in the namespace of the thread that opens it, whichever procfs instance it is opened
through.

Where the new mount API is missing (a kernel before 5.2) or refused (no CAP_SYS_ADMIN), /proc/sys is
used, as before; the answer is the same, only slower at thousands of namespaces.
"""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import threading

# the syscall numbers are the same on every architecture from 424 up (the unified table), alpha aside
SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 430, 431, 432
FSOPEN_CLOEXEC, FSCONFIG_CMD_CREATE, FSMOUNT_CLOEXEC = 0x1, 6, 0x1
ROTATE = 192   # opens through one instance before the next: 64 pods of three sysctls


class ProcSys:
    """Opens /proc/sys/<key> for the calling thread's namespace. Thread-safe; one per process is enough."""

    def __init__(self, rotate: int = ROTATE) -> None:
        self.rotate = rotate
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._uses = 0
        self._private = platform.system() == "Linux" and platform.machine() != "alpha"
        self.mounts = 0   # instances made so far (tests and benchmarks read it)

    def _instance(self) -> int | None:
        if not self._private:
            return None
        if self._fd is not None and self._uses < self.rotate:
            self._uses += 1
            return self._fd
        fd = _mount_proc()
        if fd is None:
            self._private = False   # refused once: refused always (same kernel, same capabilities)
            self._close()
            return None
        self._close()
        self._fd, self._uses = fd, 1
        self.mounts += 1
        return fd

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def open(self, key: str, flags: int) -> int:
        """An fd for /proc/sys/<key> (key like "net/ipv4/ip_forward") in the calling thread's namespace."""
        with self._lock:
            fd = self._instance()
            if fd is None:
                return os.open(f"/proc/sys/{key}", flags | os.O_CLOEXEC)
            return os.open(f"sys/{key}", flags | os.O_CLOEXEC, dir_fd=fd)

    def read(self, key: str) -> str:
        fd = self.open(key, os.O_RDONLY)
        try:
            return os.read(fd, 4096).decode()
        finally:
            os.close(fd)

    def write(self, key: str, value: str) -> None:
        fd = self.open(key, os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._close()


@functools.lru_cache(maxsize=1)
def _syscall():
    fn = ctypes.CDLL(None, use_errno=True).syscall
    fn.restype = ctypes.c_long
    return fn


def _mount_proc() -> int | None:
    """A new procfs instance as a detached mount (an fd to its root), or None where the kernel refuses."""
    syscall = _syscall()
    fs = syscall(SYS_FSOPEN, b"proc", FSOPEN_CLOEXEC)
    if fs < 0:
        return None
    try:
        if syscall(SYS_FSCONFIG, ctypes.c_int(fs), FSCONFIG_CMD_CREATE, None, None, 0) < 0:
            return None
        mnt = syscall(SYS_FSMOUNT, ctypes.c_int(fs), FSMOUNT_CLOEXEC, 0)
        return int(mnt) if mnt >= 0 else None
    finally:
        os.close(int(fs))


PROC_SYS = ProcSys()
