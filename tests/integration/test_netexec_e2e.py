"""The built-in server as Kubernetes' network e2e tests use agnhost netexec, on a real lab.

Real clients only: curl for HTTP, a UDP socket client for the UDP commands, run inside the pods.
"""
from __future__ import annotations

import json
import os

from .conftest import netlab_cli

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes:
- {role: worker, name: n1}
- {role: worker, name: n2}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n1
  containers: [{name: agnhost, image: registry.k8s.io/e2e-test-images/agnhost:2.53,
                args: [netexec, --http-port, "80", --udp-port, "90"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: victim}
spec:
  nodeName: n1
  containers: [{name: agnhost, image: registry.k8s.io/e2e-test-images/agnhost:2.53, args: [netexec]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: n2
  containers: [{name: agnhost, image: registry.k8s.io/e2e-test-images/agnhost:2.53,
                command: [/agnhost, netexec, --http-port=8080, --udp-port=8081]}]
"""


def curl(lab, pod: str, url: str, *extra: str):
    """(curl's exit status, body, HTTP status) of GET url from inside `pod`."""
    r = lab.pod_exec(pod, ["curl", "-sS", "--max-time", "8", "-w", "\n%{http_code}", *extra, url], timeout=30)
    body, _, code = r.stdout.rpartition("\n")
    return r.returncode, body, code


def test_hostName_over_http_and_udp(lab):
    lab.up(SCENARIO)
    web = lab.pod("web").ip
    assert curl(lab, "client", f"http://{web}:8080/hostName") == (0, "web", "200")
    assert curl(lab, "client", f"http://{web}:8080/hostname") == (0, "web", "200")
    r = lab.udp(("pod", "client"), web, 8081, "hostName")
    assert (r.returncode, r.stdout.strip()) == (0, "web"), r
    r = lab.udp(("pod", "client"), web, 8081, "clientIP")
    assert r.stdout.strip().rsplit(":", 1)[0] == str(lab.pod("client").ip), r


def test_http_port_flag_as_two_words(lab):
    lab.up(SCENARIO)
    client = lab.pod("client").ip
    # args: [netexec, --http-port, "80", --udp-port, "90"]: HTTP on 80, UDP on 90, nothing on 8080/8081
    assert curl(lab, "web", f"http://{client}/hostname") == (0, "client", "200")
    r = lab.udp(("pod", "web"), client, 90, "hostname")
    assert r.stdout.strip() == "client", r
    assert curl(lab, "web", f"http://{client}:8080/hostname")[0] == 7  # refused
    assert sorted((p.port, p.protocol) for p in lab.pod("client").containers[0].ports) == [(80, "TCP"),
                                                                                          (90, "UDP")]


def test_dial_from_the_pods_own_namespace(lab):
    lab.up(SCENARIO)
    web, victim = lab.pod("web").ip, lab.pod("victim").ip
    # web (node n2) dials victim (node n1), asked by client
    code, body, status = curl(lab, "client", f"http://{web}:8080/dial?request=hostName&protocol=http"
                                             f"&host={victim}&port=8080&tries=3")
    assert (code, status) == (0, "200") and json.loads(body) == {"responses": ["victim"] * 3}, body
    _, body, _ = curl(lab, "client", f"http://{web}:8080/dial?request=hostname&protocol=udp&host={victim}"
                                     "&port=8081")
    assert json.loads(body) == {"responses": ["victim"]}, body
    # the target saw the dialling pod's address: the socket was made in web's namespace, not its node's
    _, body, _ = curl(lab, "client", f"http://{web}:8080/dial?request=clientip&host={victim}&port=8080")
    (seen,) = json.loads(body)["responses"]
    assert seen.rsplit(":", 1)[0] == str(web), body
    _, body, _ = curl(lab, "client", f"http://{web}:8080/dial?request=clientip&protocol=udp&host={victim}"
                                     "&port=8081")
    assert json.loads(body)["responses"][0].rsplit(":", 1)[0] == str(web), body
    # a port nothing listens on: agnhost's errors, no responses
    _, body, status = curl(lab, "client", f"http://{web}:8080/dial?request=hostname&host={victim}&port=9999")
    got = json.loads(body)
    assert status == "200" and list(got) == ["errors"] and "connection refused" in got["errors"][0], got


def test_exit_closes_only_that_pods_ports(lab):
    lab.control_loop = False  # the still picture: nothing changes between two `up`s
    lab.up(SCENARIO)
    victim, client = lab.pod("victim").ip, lab.pod("client").ip
    assert curl(lab, "web", f"http://{victim}:8080/hostname") == (0, "victim", "200")
    code, body, _ = curl(lab, "web", f"http://{victim}:8080/exit?code=3")
    assert code == 52 and body == "", (code, body)  # the container is gone before it answers, as agnhost's
    assert curl(lab, "web", f"http://{victim}:8080/hostname")[0] == 7  # refused
    r = lab.udp(("pod", "web"), victim, 8081, "hostname", timeout=1.0)
    assert r.returncode != 0, r
    # the other pod of the same node (same server process) still answers
    assert curl(lab, "web", f"http://{client}/hostname") == (0, "client", "200")
    status_file = f"/run/netlab/{lab.name}/run/netexec-n1.status.json"
    pods = json.load(open(status_file))["pods"]
    assert pods["default/victim"]["state"] == "exited" and pods["default/victim"]["exitCode"] == 3, pods
    assert pods["default/client"]["state"] == "running", pods


def test_a_server_left_on_the_config_before_is_reloaded(lab):
    """A lab process killed between writing a node's server config and its SIGHUP (a control loop killed
    in the middle of a pass) leaves the server on the config before, the file already new. The next pass
    tells from the digest in the server's status file, reloads it, and the pod it did not serve answers."""
    import signal
    import time
    from netlab.dataplane import layout, procs
    lab.control_loop = False  # the still picture: only the passes of this test's `up`s
    lab.up(SCENARIO)
    victim = lab.pod("victim").ip
    assert curl(lab, "web", f"http://{victim}:8080/hostname") == (0, "victim", "200")
    path, pidfile = layout.server_config(lab.name, "n1"), layout.server_pidfile(lab.name, "n1")
    text = open(path).read()
    before = dict(json.loads(text))
    before["pods"] = [p for p in before["pods"] if p["key"] != "default/victim"]
    with open(path, "w") as f:   # the server on a config without victim ...
        json.dump(before, f)
    pid, gen = procs.read_pidfile(pidfile)
    os.kill(pid, signal.SIGHUP)
    procs.wait_pidfiles([(pidfile, pid, gen)], timeout=10)
    assert curl(lab, "web", f"http://{victim}:8080/hostname")[0] == 7   # refused: not served
    with open(path, "w") as f:   # ... and the file as the lab wrote it, never applied
        f.write(text)
    lab.up(SCENARIO)
    assert procs.read_pidfile(pidfile) == (pid, gen + 2)   # the same server, reloaded once more
    deadline = time.monotonic() + 10
    while curl(lab, "web", f"http://{victim}:8080/hostname") != (0, "victim", "200") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert curl(lab, "web", f"http://{victim}:8080/hostname") == (0, "victim", "200")


def test_shell_is_refused(lab):
    lab.up(SCENARIO)
    marker = f"/tmp/netlab-shell-{lab.name}"
    code, body, status = curl(lab, "client", f"http://{lab.pod('web').ip}:8080/shell?cmd=touch%20{marker}")
    assert (code, status) == (0, "501") and "root on the host" in body, body
    assert not os.path.exists(marker)


def test_unknown_netexec_flag_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace('--udp-port, "90"', '--udp-prot, "90"'))
    r = netlab_cli("validate", str(path))
    assert r.returncode == 2, r
    line = r.stderr.strip()
    assert "\n" not in line and "container agnhost" in line and "-udp-prot" in line, line
