"""The built-in server's pods as configured: reading the JSON config, entering network namespaces, and
each pod's log file (netexec.py says how they are used). Standard library only.
"""

import json
import os
import sys
import time

CLONE_NEWNET = 0x40000000

# Control characters are replaced in log lines so that one request = one line.
_LOG_SANITIZE = {c: "?" for c in list(range(32)) + [127]}


def stderr(msg):
    try:
        sys.stderr.write(f"netexec: {msg}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def summary(text, limit=200):
    """A request made safe (single line, bounded length) for a log line."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return text.translate(_LOG_SANITIZE)


# --------------------------------------------------------------------------
# Network namespaces


class NamespaceError(Exception):
    """Could not enter a pod's netns (the pod is skipped)."""


class FatalNamespaceError(Exception):
    """Could not return to the original netns: continuing would be unsafe."""


class Netns:
    """Switches the (single) thread into a netns and back."""

    def __init__(self):
        self._orig_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(self._orig_fd)
        self.orig_id = (st.st_dev, st.st_ino)
        self._setns_impl = getattr(os, "setns", None)  # Python >= 3.12

    def _setns(self, fd):
        if self._setns_impl is None:
            import ctypes  # only paid for when a real switch is needed

            libc = ctypes.CDLL(None, use_errno=True)

            def setns(fd, nstype):
                if libc.setns(fd, nstype) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))

            self._setns_impl = setns
        self._setns_impl(fd, CLONE_NEWNET)

    @staticmethod
    def identity(path):
        """(st_dev, st_ino) of a netns file, or None if it does not exist."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def run_in(self, path, func):
        """Call ``func()`` with ``path``'s netns current; return (ns_id, result).

        If ``path`` is the namespace we are already in, no switch happens (so
        this works unprivileged for the current netns, e.g. in tests).
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise NamespaceError(f"cannot open netns {path}: {e.strerror}") from None
        try:
            st = os.fstat(fd)
            ns_id = (st.st_dev, st.st_ino)
            if ns_id == self.orig_id:
                return ns_id, func()
            try:
                self._setns(fd)
            except OSError as e:
                raise NamespaceError(f"cannot enter netns {path}: {e.strerror}") from None
            try:
                return ns_id, func()
            finally:
                try:
                    self._setns(self._orig_fd)
                except OSError as e:
                    raise FatalNamespaceError(
                        f"cannot return to the original netns: {e.strerror}") from None
        finally:
            os.close(fd)


# --------------------------------------------------------------------------
# Configuration


class ConfigError(Exception):
    pass


class PodSpec:
    """One pod of the config.  ``ports`` is a sorted tuple of (port, proto)."""

    __slots__ = ("key", "name", "netns", "ports", "log", "port_errors", "sigterm", "delay_shutdown", "kill", "apps")

    def __init__(self, key, name, netns, ports, log, port_errors, sigterm=False, delay_shutdown=0, kill=False,
                 apps=None):
        self.key, self.name, self.netns = key, name, netns
        self.ports, self.log, self.port_errors = ports, log, port_errors
        # the kubelet sent the pod's container SIGTERM: it exits, after delay_shutdown s of serving
        self.sigterm, self.delay_shutdown = sigterm, delay_shutdown
        # the kubelet killed the container (liveness): end this instance once (exit 137)
        self.kill = kill
        # (port, proto) -> a well-known image's behaviour there (apps.py); absent: agnhost netexec
        self.apps = apps or {}


def _parse_pod(entry):
    if not isinstance(entry, dict):
        raise ConfigError("pod entry is not an object")
    key, name, netns = entry.get("key"), entry.get("name"), entry.get("netns")
    for field, value in (("key", key), ("name", name), ("netns", netns)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"pod {key!r}: missing or invalid {field!r}")
    log = entry.get("log")
    if log is not None and (not isinstance(log, str) or not log):
        raise ConfigError(f"pod {key!r}: invalid 'log'")
    raw_ports = entry.get("ports", [])
    if not isinstance(raw_ports, list):
        raise ConfigError(f"pod {key!r}: 'ports' is not a list")
    ports, errors, apps = set(), [], {}
    for p in raw_ports:
        port = p.get("port") if isinstance(p, dict) else None
        proto = p.get("protocol", "TCP") if isinstance(p, dict) else None
        if (not isinstance(port, int) or isinstance(port, bool)
                or not 0 < port < 65536 or not isinstance(proto, str)):
            errors.append(f"invalid port entry {p!r}, skipped")
            continue
        proto = proto.upper()
        if proto not in ("TCP", "UDP"):
            errors.append(f"protocol {proto} on port {port} is not supported, skipped")
            continue
        ports.add((port, proto))
        if isinstance(p.get("app"), dict):
            apps[(port, proto)] = p["app"]
    delay = entry.get("delayShutdown", 0)
    if not isinstance(delay, int) or isinstance(delay, bool):
        raise ConfigError(f"pod {key!r}: invalid 'delayShutdown'")
    return PodSpec(key, name, netns, tuple(sorted(ports)), log, tuple(errors), entry.get("sigterm") is True,
                   max(0, delay), entry.get("kill") is True, apps)


def config_digest(text):
    """The digest of a config's text (str or bytes) the server reports in its status file: the lab
    tells from it whether the server applied the config now in the file (a lab process killed between
    writing the file and its SIGHUP leaves a server on the old one)."""
    import hashlib
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()[:16]


def load_config(path, digest=None):
    """Parse the config file into {key: PodSpec}; `digest` (a list): config_digest of the bytes
    parsed is appended to it.

    A bad file raises ConfigError; a bad pod entry is reported on stderr and
    skipped so it cannot take the other pods down.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
        data = json.loads(raw)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read config {path}: {e}") from None
    if digest is not None:
        digest.append(config_digest(raw))
    if not isinstance(data, dict) or not isinstance(data.get("pods"), list):
        raise ConfigError(f"config {path}: expected an object with a 'pods' list")
    specs = {}
    for entry in data["pods"]:
        try:
            spec = _parse_pod(entry)
        except ConfigError as e:
            stderr(f"config: {e}")
            continue
        if spec.key in specs:
            stderr(f"config: duplicate pod key {spec.key!r}, later entry ignored")
            continue
        specs[spec.key] = spec
    return specs


# --------------------------------------------------------------------------
# Per-pod log


class PodLog:
    """Append-only, line-buffered log file of one pod (stderr without a path)."""

    def __init__(self, key, path):
        self.key, self.path, self._f = key, path, None
        if path is None:
            return
        try:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(fd, 0o600)  # also when the umask or an old file said otherwise
            except OSError:
                pass
            self._f = open(fd, "a", buffering=1, encoding="utf-8", errors="replace")
        except OSError as e:
            stderr(f"pod {key}: cannot open log {path}: {e}; logging to stderr")

    def write(self, msg):
        t = time.time()
        line = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
                + f".{int(t % 1 * 1000):03d}Z {msg}\n")
        try:
            if self._f is not None:
                self._f.write(line)
            else:
                sys.stderr.write(f"[{self.key}] {line}")
        except (OSError, ValueError):
            pass  # a full disk must not stop the server

    def close(self):
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
            self._f = None


