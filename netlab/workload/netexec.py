"""Multi-pod test server that answers as Kubernetes' agnhost ``netexec``.

One process serves many pods (netlab runs one per node).  Each pod is a Linux
network namespace; a socket belongs to the namespace that was current when it
was *created*, so the server switches into a pod's netns, creates that pod's
sockets and switches straight back.  Everything afterwards (accept, recv, send)
works on the sockets from the original namespace.  The loop is single-threaded
(one ``selectors`` loop), which is what makes the namespace switching safe:
``setns`` acts on the calling thread and nothing else runs on it while it is
switched.  The one exception is /dial (dial.py): each runs on a thread of its
own that enters the dialling pod's netns, makes its requests with blocking
sockets, hands the answer back through a queue and the wakeup pipe, and ends;
the loop keeps serving every pod meanwhile.

Modules: the loop, the pods' lifecycle (reload diff, /exit) and the
pidfile/status protocol are here (a little under 600 lines with this
docstring); the sockets and HTTP connections in conns.py, the config, netns
switching and pod logs in podconf.py, what the server answers in agnhost.py,
/dial in dial.py and agnhost's command-line flags in goflags.py.

Usage::

    python -m netlab.workload.netexec --config PATH [--pidfile PATH]

Config (JSON)::

    {"pods": [{"key": "default/web-1", "name": "web-1",
               "netns": "/run/netns/nl.lab.pod.default.web-1",
               "ports": [{"port": 8080, "protocol": "TCP"},
                         {"port": 8081, "protocol": "UDP"}],
               "log": "/run/netlab/lab/logs/default_web-1.log"}]}

``key`` identifies a pod across reloads, ``name`` is what ``/hostname``
answers, ``protocol`` defaults to TCP (SCTP is logged and skipped) and ``log``
is optional (without it the pod's lines go to stderr).

Readiness/reload protocol: the pidfile is written (atomically, via rename)
only once every pod's sockets are listening; it holds ``"<pid> <generation>"``
with generation 0 at start.  SIGHUP re-reads the config and applies the diff;
afterwards the pidfile is rewritten with the generation incremented.  A config
that cannot be read or parsed is not applied and leaves the pidfile untouched.
SIGTERM/SIGINT close everything, remove the pidfile and exit 0.

A pod's ``"sigterm": true`` (with ``"delayShutdown": N``) in the config is the
kubelet's SIGTERM to that pod's container (a live lab deleting the pod): as
agnhost netexec with ``--delay-shutdown=N``, the pod keeps serving N seconds and
then exits 0; with N = 0 it exits at once (143).  Such a pod is never restarted
by a reload.  A pod's ``"kill": true`` is the kubelet killing its container (a
failed liveness probe): the pod's instance running when the flag first appears
exits 137, once (the flag stays until netlab has counted the restart; the
instance a later reload starts is not killed again).

Status file: next to the pidfile (``X.pid`` -> ``X.status.json``), rewritten
atomically whenever a pod starts, exits or is restarted::

    {"pid": 123, "generation": 2, "config": "<digest>", "pods": {"default/web-1":
        {"state": "exited", "exitCode": 3, "finishedAt": "2026-...Z", "restarts": 0}}}

``config`` is the digest (podconf.config_digest) of the config text applied
last: the lab reloads a server whose digest is not that of the file's text.

/exit and /shutdown: agnhost's process exits; here one process serves many
pods, so the pod's *container* exits instead: that pod's listening and UDP
sockets close (its ports refuse connections, as when a container's process
is gone), its connections close (at once, or after ``timeout`` for a graceful
exit), and the other pods of the node are untouched.  The pod stays exited
(the status file says ``exited`` with the code, the pod's log says so) until
the server is next reloaded, which starts it again and counts a restart, as a
kubelet restarts a container; the lab reads the status file to tell that the
pod is not Ready.

Protocols on every pod port:

* TCP, HTTP/1.x: agnhost netexec's endpoints (agnhost.py): ``/``,
  ``/hostname``, ``/hostName``, ``/clientip``, ``/echo``, ``/header``,
  ``/healthz``, ``/readyz``, ``/redirect``, ``/dial``, ``/exit``,
  ``/shutdown``; ``/shell`` and ``/upload`` answer 501 (they would act as root
  on the host).  Keep-alive and pipelining are supported.
* TCP, line protocol (netlab's own; first bytes are not an HTTP method): one
  answer line per request line, the UDP commands or ``unknown command``.
* UDP datagrams, as agnhost: ``hostname``, ``clientip``, ``echo X``, read
  case-insensitively; anything else gets no answer.

Only the standard library is imported so that start-up stays fast.
"""

import argparse
import heapq
import json
import os
import queue
import selectors
import signal
import socket
import sys
import time
import traceback

from .conns import IP_PKTINFO, Connection, TcpListener, UdpSocket
from .podconf import (ConfigError, FatalNamespaceError, NamespaceError, Netns, PodLog, load_config,
                      stderr as _stderr, summary as _summary)

IDLE_TIMEOUT = 30.0  # seconds without traffic before a connection is closed
SWEEP_INTERVAL = 1.0  # how often idle connections are looked for
TCP_BACKLOG = 1024

# --------------------------------------------------------------------------
# Pods and the server


class Pod:
    """A running pod: its sockets, open connections and log."""

    def __init__(self, spec):
        self.key, self.name, self.netns, self.ports = spec.key, spec.name, spec.netns, spec.ports
        self.apps = spec.apps  # (port, proto) -> a well-known image's behaviour (apps.py); else netexec
        self.log = PodLog(spec.key, spec.log)
        self.ns_id = None  # identity of the netns the sockets were created in
        self.sockets = []  # TcpListener / UdpSocket
        self.conns = set()
        self.broken = False  # some socket could not be opened
        self.started = time.monotonic()
        self.exiting = False  # a graceful /exit is under way
        self.exit_code = None  # set once the pod's "container" has exited (/exit, /shutdown)
        self.finished_at = None
        self.restarts = 0
        self.sigterm_at = None  # the kubelet's SIGTERM (pod deletion) arrived

    @property
    def healthy(self):
        # agnhost: /healthz stays 200 during a graceful shutdown (only /readyz says 503)
        return not self.broken and self.exit_code is None

    def error(self, msg):
        self.broken = True
        self.log.write(f"ERROR {msg}")
        _stderr(f"pod {self.key}: {msg}")


def _open_sockets(ports):
    """Create and bind sockets for ``ports``; runs inside the pod's netns.

    Returns [(port, proto, socket or None, error or None)].
    """
    result = []
    for port, proto in ports:
        sock = None
        try:
            if proto == "TCP":
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("0.0.0.0", port))
                sock.listen(TCP_BACKLOG)
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                sock.bind(("0.0.0.0", port))
            sock.setblocking(False)
            result.append((port, proto, sock, None))
        except OSError as e:
            if sock is not None:
                sock.close()
            result.append((port, proto, None, e.strerror or str(e)))
    return result


class Server:
    def __init__(self, config_path, pidfile):
        self.config_path = config_path
        self.pidfile = pidfile
        self.netns = Netns()
        self.sel = selectors.DefaultSelector()
        self.pods = {}
        self.generation = 0
        self._stop = False
        self._reload = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel.register(self._wake_r, selectors.EVENT_READ, None)
        self.dials = set()  # connections waiting for a /dial thread
        self._done = queue.SimpleQueue()  # (callback, argument) from /dial threads
        self._timers = []  # heap of (when, seq, callback)
        self._seq = 0
        self.restarts = {}  # pod key -> restarts after an exit, kept across the pod's restarts
        self.killed = set()  # pod keys whose "kill" flag was acted on (until the flag goes)
        self.status_path = None
        self.config_digest = None  # of the config applied last (podconf.config_digest), in the status file
        if pidfile:
            base = pidfile[:-4] if pidfile.endswith(".pid") else pidfile
            self.status_path = base + ".status.json"

    # -- selector helpers -----------------------------------------------------

    def set_events(self, sock, events, handler, old_events):
        if not events:
            self.sel.unregister(sock)
        elif not old_events:
            self.sel.register(sock, events, handler)
        else:
            self.sel.modify(sock, events, handler)

    def unregister(self, sock):
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    # -- signals ----------------------------------------------------------------

    def install_signals(self):
        # The handlers only set flags; the loop does the work.  The wakeup fd
        # makes select() return when a signal arrives.
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGHUP, self._on_sighup)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)

    def _on_sighup(self, signum, frame):
        self._reload = True

    def _on_stop(self, signum, frame):
        self._stop = True

    def _drain_wakeup(self):
        try:
            while os.read(self._wake_r, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    # -- pods -------------------------------------------------------------------

    def start_pod(self, spec):
        pod = Pod(spec)
        self.pods[spec.key] = pod
        for err in spec.port_errors:
            pod.log.write(f"WARNING {err}")
            _stderr(f"pod {spec.key}: {err}")
        if not spec.ports:
            return
        try:
            pod.ns_id, opened = self.netns.run_in(spec.netns, lambda: _open_sockets(spec.ports))
        except NamespaceError as e:
            pod.error(str(e))
            return
        for port, proto, sock, err in opened:
            if sock is None:
                pod.error(f"cannot listen on {proto} 0.0.0.0:{port}: {err}")
                continue
            cls = TcpListener if proto == "TCP" else UdpSocket
            handler = cls(self, pod, sock, port)
            self.sel.register(sock, selectors.EVENT_READ, handler)
            pod.sockets.append(handler)
            pod.log.write(f"listening on {proto} 0.0.0.0:{port} "
                          f"(pod {pod.name}, netns {pod.netns})")

    def stop_pod(self, pod, reason):
        del self.pods[pod.key]
        nconns = len(pod.conns)
        for conn in list(pod.conns):
            conn.close()
        for handler in pod.sockets:
            handler.close()
        pod.sockets = []
        pod.log.write(f"stopped ({reason}; closed {nconns} connections)")
        pod.log.close()

    # -- /dial, /exit ---------------------------------------------------------------

    def add_timer(self, delay, callback):
        self._seq += 1
        heapq.heappush(self._timers, (time.monotonic() + delay, self._seq, callback))

    def _run_timers(self):
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, callback = heapq.heappop(self._timers)
            callback()

    def _next_timeout(self):
        if not self._timers:
            return SWEEP_INTERVAL
        return min(SWEEP_INTERVAL, max(0.0, self._timers[0][0] - time.monotonic()))

    def start_dial(self, pod, conn, action, done):
        """Run /dial on a thread of its own in the pod's netns; `done(body)` then runs on this loop."""
        self.dials.add(conn)

        def finished(body):  # on the dial thread: hand over to the loop
            self._done.put((conn, done, body))
            try:
                os.write(self._wake_w, b"d")
            except OSError:
                pass  # the pipe is full: the loop is awake anyway

        pod.log.write(f"dial {action.protocol} {action.host}:{action.port} request "
                      f"{_summary(action.request)} tries {action.tries}")
        from . import dial  # threads and http parsing: only paid for by pods that dial

        dial.start(pod.netns, action, finished)

    def _finish_dials(self):
        while True:
            try:
                conn, done, body = self._done.get_nowait()
            except queue.Empty:
                return
            self.dials.discard(conn)
            if conn.closed:
                continue
            done(body)
            conn.last_activity = time.monotonic()
            conn.on_event(0)  # send the answer, go on with pipelined requests

    def request_exit(self, pod, conn, action, head=False):
        """/exit or /shutdown from `conn`: after action.wait s, the pod's container exits."""
        def go():
            if self.pods.get(pod.key) is not pod or pod.exit_code is not None:
                return  # restarted, removed or exited meanwhile
            conn.waiting = False
            if action.timeout > 0 and not conn.closed:  # the client may have left: exit all the same
                conn._http_respond(200, "", "exit", close=True, head=head)
                conn.on_event(0)
            self.exit_pod(pod, action.code, action.timeout)

        if action.wait > 0:
            conn.waiting = True
            self.add_timer(action.wait, go)
        else:
            go()

    def exit_pod(self, pod, code, timeout=0.0):
        """The pod's container exits: its sockets close, as a process's do when it ends.

        With `timeout`, the listening sockets close now and open connections may finish their
        request for up to `timeout` s (agnhost's graceful shutdown); without, everything closes now
        (requests being answered get no answer). The pod stays exited until the server is reloaded
        (SIGHUP), which restarts it as a kubelet restarts a container; the status file says so.
        """
        for handler in pod.sockets:
            handler.close()
        pod.sockets = []
        if timeout > 0:
            pod.exiting = True
            for conn in list(pod.conns):
                if conn.outbuf or conn.waiting or conn.inbuf:
                    conn.close_after_flush = conn.close_after_flush or not conn.waiting
                else:
                    conn.close()
            self.add_timer(timeout, lambda: self._close_conns(pod))
        else:
            self._close_conns(pod)
        pod.exit_code = code
        pod.finished_at = time.time()
        pod.log.write(f"exited with code {code}: its ports are closed until the next reload")
        self.write_status()

    def _close_conns(self, pod):
        pod.exiting = False
        for conn in list(pod.conns):
            conn.close()

    def write_status(self):
        """Write each pod's container state to the status file (atomically), for the lab to read."""
        if not self.status_path:
            return
        pods = {}
        for key, pod in sorted(self.pods.items()):
            st = {"restarts": self.restarts.get(key, 0)}
            if pod.exit_code is None:
                st["state"] = "running"
                # what it listens on (TCP) and has bound (UDP) in the pod, and in which namespace: the lab
                # reads a pod's readiness from here instead of entering each pod's namespace
                st["listening"] = sorted(f"{'TCP' if isinstance(h, TcpListener) else 'UDP'}/{h.port}"
                                         for h in pod.sockets)
                if pod.ns_id is not None:
                    st["netns"] = list(pod.ns_id)
            else:
                st.update(state="exited", exitCode=pod.exit_code,
                          finishedAt=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pod.finished_at)))
            pods[key] = st
        tmp = f"{self.status_path}.tmp.{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with open(fd, "w") as f:
                json.dump({"pid": os.getpid(), "generation": self.generation, "config": self.config_digest,
                           "pods": pods}, f)
            os.replace(tmp, self.status_path)
        except OSError as e:
            _stderr(f"cannot write status file {self.status_path}: {e}")
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def _needs_restart(self, pod, spec):
        if spec.sigterm:
            return None  # being deleted: what ended stays ended
        if spec.netns != pod.netns:
            return "netns changed"
        if spec.ports != pod.ports or spec.apps != pod.apps:
            return "ports changed"
        if pod.broken:
            return "retrying after errors"
        if pod.exit_code is not None:
            return f"restarted after its exit with code {pod.exit_code}"
        if pod.ns_id is not None and Netns.identity(spec.netns) != pod.ns_id:
            return "netns was recreated"
        return None

    def apply(self, specs):
        # Stop first so that a port moving between pods can be re-bound.
        for key, pod in list(self.pods.items()):
            spec = specs.get(key)
            reason = "removed from config" if spec is None else self._needs_restart(pod, spec)
            if spec is None:
                self.restarts.pop(key, None)
            elif pod.exit_code is not None and not spec.sigterm:
                self.restarts[key] = self.restarts.get(key, 0) + 1
            if reason:
                self.stop_pod(pod, reason)
        for key, spec in specs.items():
            pod = self.pods.get(key)
            if pod is None:
                try:
                    self.start_pod(spec)
                except FatalNamespaceError:
                    raise
                except Exception as e:  # a bug must only affect this pod
                    _stderr(f"pod {key}: unexpected error: {e!r}\n{traceback.format_exc()}")
                continue
            # Unchanged sockets; the name and log path may still be updated.
            pod.name = spec.name
            for err in spec.port_errors:
                pod.log.write(f"WARNING {err}")
            if spec.log != pod.log.path:
                pod.log.write(f"log moved to {spec.log}")
                pod.log.close()
                pod.log = PodLog(key, spec.log)
        for key, spec in specs.items():
            pod = self.pods.get(key)
            if spec.sigterm and pod is not None and pod.sigterm_at is None and pod.exit_code is None:
                self.sigterm_pod(pod, spec.delay_shutdown)
            elif spec.kill and key not in self.killed and pod is not None and pod.exit_code is None:
                self.killed.add(key)
                pod.log.write("killed by the kubelet (liveness probe failed)")
                self.exit_pod(pod, 137)
        self.killed &= {k for k, spec in specs.items() if spec.kill}
        self.write_status()

    def sigterm_pod(self, pod, delay):
        """The kubelet's SIGTERM to the pod's container (it is being deleted), as agnhost netexec takes it:
        with --delay-shutdown it keeps serving `delay` s, then exits 0; without, it ends at once (a Go
        program killed by SIGTERM: exit code 143)."""
        pod.sigterm_at = time.monotonic()
        if delay <= 0:
            pod.log.write("received SIGTERM: exiting")
            self.exit_pod(pod, 143)
            return
        pod.log.write(f"received SIGTERM: sleeping {delay} seconds before terminating")

        def go():
            if self.pods.get(pod.key) is pod and pod.exit_code is None:
                self.exit_pod(pod, 0)
        self.add_timer(delay, go)

    def reload(self):
        digest = []
        try:
            specs = load_config(self.config_path, digest)
        except ConfigError as e:
            _stderr(f"reload not applied: {e}")
            return
        self.generation += 1
        self.config_digest = digest[0]
        self.apply(specs)
        try:
            self.write_pidfile()
        except OSError:
            pass  # already reported; keep serving

    def write_pidfile(self):
        """Atomically write "<pid> <generation>"; raises OSError on failure."""
        if not self.pidfile:
            return
        tmp = f"{self.pidfile}.tmp.{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with open(fd, "w") as f:
                f.write(f"{os.getpid()} {self.generation}\n")
            os.replace(tmp, self.pidfile)
        except OSError as e:
            _stderr(f"cannot write pidfile {self.pidfile}: {e}")
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _remove_pidfile(self):
        if not self.pidfile:
            return
        try:
            with open(self.pidfile) as f:
                mine = f.read().split()[:1] == [str(os.getpid())]
            if mine:
                os.unlink(self.pidfile)
        except OSError:
            pass

    # -- main loop ----------------------------------------------------------------

    def _sweep_idle(self, now):
        for pod in list(self.pods.values()):
            for conn in list(pod.conns):
                if now - conn.last_activity > IDLE_TIMEOUT and not conn.waiting:
                    conn.close()

    def start(self, specs):
        self.apply(specs)
        self.write_pidfile()  # readiness: every socket is listening now

    def run(self):
        last_sweep = time.monotonic()
        while not self._stop:
            for key, mask in self.sel.select(timeout=self._next_timeout()):
                handler = key.data
                if handler is None:
                    self._drain_wakeup()
                    self._finish_dials()
                    continue
                if handler.closed:  # closed earlier in this batch
                    continue
                try:
                    handler.on_event(mask)
                except Exception as e:
                    _stderr(f"pod {handler.pod.key}: unexpected error: {e!r}\n"
                            f"{traceback.format_exc()}")
                    if isinstance(handler, Connection):
                        handler.close()
            self._run_timers()
            if self._reload and not self._stop:
                self._reload = False
                self.reload()
            now = time.monotonic()
            if now - last_sweep >= SWEEP_INTERVAL:
                last_sweep = now
                self._sweep_idle(now)

    def shutdown(self):
        for pod in list(self.pods.values()):
            self.stop_pod(pod, "server shutting down")
        self._remove_pidfile()
        if self.status_path:
            try:
                os.unlink(self.status_path)
            except OSError:
                pass
        self.sel.close()


def _raise_fd_limit():
    # Each pod costs a socket per port plus one per connection.
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m netlab.workload.netexec",
        description="agnhost-netexec-like test server for many pods (netns) in one process")
    parser.add_argument("--config", required=True, help="JSON config with the pods to serve")
    parser.add_argument("--pidfile", help='written as "<pid> <generation>" once listening '
                        "and after each applied SIGHUP reload")
    args = parser.parse_args(argv)

    try:
        server = Server(args.config, args.pidfile)
        server.install_signals()
        digest = []
        specs = load_config(args.config, digest)
        server.config_digest = digest[0]
    except (ConfigError, OSError) as e:
        _stderr(str(e))
        return 1
    _raise_fd_limit()
    try:
        try:
            server.start(specs)
        except OSError:  # the pidfile could not be written (already reported)
            return 1
        server.run()
    except FatalNamespaceError as e:
        # Sockets created from here on could land in a pod's netns: give up.
        _stderr(f"fatal: {e}")
        return 1
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
