"""netlab port-forward on a real lab: a local port of this machine answered by a pod (curl to localhost),
through a Service's port translated to its targetPort; the pod reached from inside its own namespace."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from .conftest import kubectl, until  # noqa: F401
from .test_kubectl_verbs import web_up

FORWARDING = re.compile(r"^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$")


def forward(lab, *args: str) -> tuple[subprocess.Popen, int, int]:
    """`netlab port-forward` running, and the local and remote port its first line says."""
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    p = subprocess.Popen([exe, "port-forward", "--lab", lab.name, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    m = FORWARDING.match(line)
    if not m:
        p.kill()
        raise AssertionError(f"port-forward said {line!r}: {p.communicate(timeout=10)}")
    return p, int(m.group(1)), int(m.group(2))


def curl(port: int, path: str = "/hostname") -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{port}{path}"],
                          capture_output=True, text=True)


def test_port_forward_to_a_service_and_to_a_pod(lab, tmp_path):
    pods = web_up(lab, tmp_path)
    # svc/web's port 80 is the pods' 8080: one of them answers curl on this machine's loopback
    p, local, remote = forward(lab, "svc/web", ":80")
    try:
        assert remote == 8080
        first = curl(local)
        assert first.returncode == 0 and first.stdout in pods, first
        # every connection goes to the same pod (kubectl forwards to one pod, not through the Service)
        assert {curl(local).stdout for _ in range(4)} == {first.stdout}
    finally:
        p.terminate()
        out, err = p.communicate(timeout=10)
    assert out.count("Handling connection for") == 5, out
    assert curl(local).returncode != 0   # the listener ended with the command
    # a pod by name, a port nothing listens on: the connection is refused in the pod and closed here
    name = sorted(pods)[1]
    p, local, remote = forward(lab, f"pod/{name}", "0:9")
    try:
        r = curl(local)
        assert r.returncode != 0 and remote == 9
    finally:
        p.terminate()
        out, err = p.communicate(timeout=10)
    assert "an error occurred forwarding" in err and "onnection refused" in err, err


def test_port_forward_refusals_are_one_line(lab, tmp_path):
    web_up(lab, tmp_path)
    for args, says in ((("svc/web", "8080"), "does not have a service port 8080"),
                       (("svc/nope", "80"), 'services "nope" not found'),
                       (("cm/web", "80"), "cannot forward to 'cm/web'"),
                       (("svc/web", "x:80"), "invalid port format")):
        r = kubectl(lab, "port-forward", *args, check=False)
        assert r.returncode == 1 and says in r.stderr and len(r.stderr.splitlines()) == 1, (args, r)
