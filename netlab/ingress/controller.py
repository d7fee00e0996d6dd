"""The ingress-nginx controller pod's program: netlab's supervisor of a real nginx.

    python -m netlab.ingress.controller --conf-dir /etc/ingress-controller --run-dir /tmp/nginx \
        --healthz-port 10254

Runs in the controller pod's sandbox (its own mount and PID namespaces, the pod's network namespace):

- waits for `<conf-dir>/nginx.conf` (published by the lab's control loop, netlab/live/ingresspub.py);
  copies it to `<run-dir>/nginx.conf.new`, checks it with `nginx -t`, renames it to
  `<run-dir>/nginx.conf` and starts /usr/sbin/nginx on it in the foreground (`daemon off`): the nginx
  master process is this program's child, in the pod's sandbox; its pid and temporary files are in the
  run directory (the pod's emptyDir), its log on stderr (the container's log);
- every 0.2 s looks at the published file; a new content is checked with `nginx -t` first: a
  configuration nginx refuses is not loaded (the message goes to the log, nginx keeps serving the old
  one); a good one replaces the running configuration and nginx gets SIGHUP, its graceful reload: new
  workers start on the new configuration while the old ones finish the requests they have, so no
  connection is dropped;
- answers GET /healthz on the healthz port (200 once nginx runs a configuration, 503 before), as
  ingress-nginx's controller does for the kubelet's probes;
- on SIGTERM sends nginx SIGQUIT (graceful shutdown: in-flight requests finish) and exits with it;
  when nginx ends by itself, exits with its status so the kubelet restarts the container.
"""
from __future__ import annotations

import argparse
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

NGINX = "/usr/sbin/nginx"
POLL = 0.2


def log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} ingress-controller: {msg}\n")
    sys.stderr.flush()


class Supervisor:
    def __init__(self, conf_dir: str, run_dir: str, nginx: str = NGINX):
        self.published = os.path.join(conf_dir, "nginx.conf")
        self.run_dir = run_dir
        self.active = os.path.join(run_dir, "nginx.conf")
        self.nginx = nginx
        self.proc: subprocess.Popen | None = None
        self.loaded: bytes | None = None
        self.stopping = False
        self.reloads = 0

    def _args(self, conf: str) -> list[str]:
        return [self.nginx, "-c", conf, "-p", self.run_dir + "/", "-e", "stderr"]

    def test(self, text: bytes) -> bool:
        """Write `text` as the candidate configuration and ask nginx whether it is valid."""
        cand = self.active + ".new"
        with open(cand, "wb") as f:
            f.write(text)
        r = subprocess.run(self._args(cand) + ["-t", "-q"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        if r.returncode != 0:
            log("configuration refused by nginx -t, still serving the previous one: "
                + r.stdout.decode(errors="replace").strip().replace("\n", " | "))
            return False
        os.replace(cand, self.active)
        return True

    def read(self) -> bytes | None:
        try:
            with open(self.published, "rb") as f:
                return f.read()
        except OSError:
            return None

    def step(self) -> None:
        text = self.read()
        if text is None or text == self.loaded:
            return
        if not self.test(text):
            self.loaded = text   # not tried again until it changes
            return
        self.loaded = text
        if self.proc is None:
            self.proc = subprocess.Popen(self._args(self.active))
            log(f"nginx started (pid {self.proc.pid})")
        else:
            self.proc.send_signal(signal.SIGHUP)
            self.reloads += 1
            log(f"configuration changed: nginx reloaded (reload {self.reloads})")

    def healthy(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, *_):
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)

    def run(self) -> int:
        os.makedirs(self.run_dir, exist_ok=True)
        while True:
            if self.stopping:
                if self.proc is None:
                    return 0
                try:
                    return abs(self.proc.wait(timeout=25) or 0)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    return 1
            if self.proc is not None and self.proc.poll() is not None:
                log(f"nginx exited ({self.proc.returncode})")
                return self.proc.returncode or 1
            try:
                self.step()
            except (OSError, subprocess.SubprocessError) as e:
                log(f"reload failed: {e}")
            time.sleep(POLL)


def serve_health(sup: Supervisor, port: int) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            ok = self.path.split("?")[0] == "/healthz" and sup.healthy()
            body = b"ok" if ok else b"nginx is not running"
            self.send_response(200 if ok else (503 if self.path.startswith("/healthz") else 404))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="netlab.ingress.controller", description=__doc__.split("\n\n")[0])
    ap.add_argument("--conf-dir", required=True)
    ap.add_argument("--run-dir", default="/tmp/nginx")
    ap.add_argument("--healthz-port", type=int, default=10254)
    a = ap.parse_args(argv)
    if not shutil.which(NGINX) and not os.access(NGINX, os.X_OK):
        log(f"{NGINX} is not installed (scripts/setup installs the Debian package nginx)")
        return 1
    sup = Supervisor(a.conf_dir, a.run_dir)
    signal.signal(signal.SIGTERM, sup.stop)
    signal.signal(signal.SIGINT, sup.stop)
    serve_health(sup, a.healthz_port)
    return sup.run()


if __name__ == "__main__":
    sys.exit(main())
