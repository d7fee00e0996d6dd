"""Every exercise, as a learner does it with the real CLI: `netlab exercise start` builds its lab, `check`
fails there (exit 1, a FAIL line), the reference solution below (netlab's own verbs: apply, label, scale,
set image, up ...) is applied, and `check` passes (exit 0). The solutions live here, not in exercises/.

Each lab has a unique name and is removed whatever happens."""
from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from netlab.exercise import directory, names

NETLAB = str(Path(sys.executable).with_name("netlab"))


CLI_TIMEOUT = 240.0   # a netlab command (tests/vm raises it for the emulated VM)


def netlab(*args: str, stdin: str | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([NETLAB, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout or CLI_TIMEOUT)


def ok(*args: str, stdin: str | None = None) -> str:
    r = netlab(*args, stdin=stdin)
    assert r.returncode == 0, f"netlab {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def apply(lab: str, text: str) -> None:
    ok("apply", "-f", "-", "--lab", lab, stdin=text)


def start_file(name: str) -> Path:
    return directory() / name / "start.yaml"


# ------------------------------------------------------------------ the reference solutions

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


def solve_three_links(lab: str, tmp: Path) -> None:
    apply(lab, f"""
apiVersion: v1
kind: Pod
metadata: {{name: c}}
spec:
  nodeName: n1
  containers:
  - name: server
    image: {AGNHOST}
    args: ["netexec", "--http-port=8080"]
    ports: [{{containerPort: 8080}}]
""")


def solve_host_gw(lab: str, tmp: Path) -> None:
    mine = tmp / "mine.yaml"
    mine.write_text(start_file("02-vxlan-vs-host-gw").read_text().replace("backend: vxlan", "backend: host-gw"))
    ok("up", str(mine), "--lab", lab)


def solve_service_vip(lab: str, tmp: Path) -> None:
    apply(lab, """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
""")
    ok("scale", "deploy/web", "--replicas", "3", "--lab", lab)
    ok("rollout", "status", "deploy/web", "--lab", lab, "--timeout", "60s")


def solve_source_ip(lab: str, tmp: Path) -> None:
    apply(lab, """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
""")


def solve_nftables(lab: str, tmp: Path) -> None:
    ok("up", "--lab", lab, "--proxy-mode", "nftables")


def solve_affinity(lab: str, tmp: Path) -> None:
    apply(lab, """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  ports: [{name: http, port: 80, targetPort: http}]
""")


def solve_dns(lab: str, tmp: Path) -> None:
    ok("delete", "pod", "client", "--now", "--lab", lab)
    apply(lab, """
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n2
  containers:
  - {name: client, image: busybox}
""")


def lossless_deployment(version: str = "2.0.0", probe: bool = True, strategy: bool = True) -> str:
    """Exercise 08's Deployment (from its start.yaml) with VERSION `version`, and with the two fixes: a
    readinessProbe and a strategy that keeps every old pod until a new one is ready."""
    docs = start_file("08-rolling-update").read_text().split("\n---\n")
    doc = next(d for d in docs if "kind: Deployment" in d) + "\n"
    doc = doc.replace('value: "1.0.0"', f'value: "{version}"')
    if strategy:
        old = '{maxSurge: 0, maxUnavailable: "100%"}'
        assert old in doc
        doc = doc.replace(old, "{maxSurge: 1, maxUnavailable: 0}")
    if probe:
        ports = "        ports: [{name: http, containerPort: 8080}]\n"
        assert ports in doc
        doc = doc.replace(ports, ports + "        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}\n")
    return doc


def solve_rollout(lab: str, tmp: Path) -> None:
    apply(lab, lossless_deployment())
    ok("rollout", "status", "deploy/web", "--lab", lab, "--timeout", "120s")


def solve_node_failure(lab: str, tmp: Path) -> None:
    ok("label", "node", "n3", "disk=ssd", "--lab", lab)


def solve_loadbalancer(lab: str, tmp: Path) -> None:
    apply(lab, """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  loadBalancerIP: 172.18.255.200
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
""")


def solve_ingress(lab: str, tmp: Path) -> None:
    apply(lab, """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: api
            port: {number: 80}
""")


def solve_network_policy(lab: str, tmp: Path) -> None:
    apply(lab, """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {tier: api}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {tier: web}}
    ports:
    - {protocol: TCP, port: 8080}
""")


SOLUTIONS = {
    "01-three-links": solve_three_links,
    "02-vxlan-vs-host-gw": solve_host_gw,
    "03-service-vip": solve_service_vip,
    "04-nodeport-source-ip": solve_source_ip,
    "05-iptables-vs-nftables": solve_nftables,
    "06-session-affinity": solve_affinity,
    "07-dns-search-path": solve_dns,
    "08-rolling-update": solve_rollout,
    "09-node-failure": solve_node_failure,
    "10-loadbalancer": solve_loadbalancer,
    "11-ingress": solve_ingress,
    "12-network-policy": solve_network_policy,
}


@pytest.fixture
def lab_name():
    name = f"exercise-{secrets.token_hex(3)}"
    try:
        yield name
    finally:
        netlab("down", name)


# exercises that need a kernel feature this machine may lack: their start and solution are proved in the VM
# (tests/vm/test_exercise_ipvs.py); here, that start refuses them clearly on a kernel without it
IN_VM = {"13-ipvs-scheduler"}


def test_every_exercise_has_a_reference_solution():
    assert sorted(set(SOLUTIONS) | IN_VM) == names()
    assert len(SOLUTIONS) >= 12


def test_start_refuses_the_ipvs_exercise_on_a_kernel_without_ip_vs(lab_name):
    from netlab.dataplane import kernelcheck
    if kernelcheck.ipvs_refusal() is None:
        pytest.skip("this kernel has IPVS: tests/vm/test_exercise_ipvs.py covers the exercise")
    r = netlab("exercise", "start", "13-ipvs-scheduler", "--lab", lab_name)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "exercise 13-ipvs-scheduler cannot start here" in lines[0], r.stderr
    assert "no IPVS (ip_vs module" in lines[0] and "scripts/vm-setup" in lines[0]
    assert lab_name not in ok("exercise", "list")
    from netlab.dataplane import lab as labmod
    assert lab_name not in labmod.labs()   # refused before anything was made


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_exercise_fails_on_its_start_and_passes_on_its_solution(name, lab_name, tmp_path):
    ok("exercise", "start", name, "--lab", lab_name)
    r = netlab("exercise", "check", name, "--lab", lab_name)
    assert r.returncode == 1, f"{name}: check on the starting lab: exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert any(line.startswith("FAIL ") for line in r.stdout.splitlines()), r.stdout
    SOLUTIONS[name](lab_name, tmp_path)
    # the control loop carries the change out within seconds (a node failure's eviction: ~20 s)
    deadline = time.monotonic() + 120
    while True:
        r = netlab("exercise", "check", name, "--lab", lab_name)
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert r.returncode == 0, f"{name}: check after the solution: exit {r.returncode}\n{r.stdout}{r.stderr}"
    lines = r.stdout.splitlines()
    assert sum(line.startswith("PASS ") for line in lines) == len(lines) - 2, r.stdout   # header and summary
    assert "solved" in lines[-1]


def test_start_refuses_a_lab_that_is_up_and_reset_starts_over(lab_name, tmp_path):
    ok("exercise", "start", "01-three-links", "--lab", lab_name)
    r = netlab("exercise", "start", "06-session-affinity", "--lab", lab_name)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "exercise 01-three-links" in r.stderr and "reset" in r.stderr and f"netlab down {lab_name}" in r.stderr
    r = netlab("exercise", "check", "06-session-affinity", "--lab", lab_name)   # not graded in another's lab
    assert r.returncode == 2 and "runs exercise 01-three-links, not 06-session-affinity" in r.stderr
    solve_three_links(lab_name, tmp_path)
    time.sleep(2)
    assert netlab("exercise", "check", "01-three-links", "--lab", lab_name).returncode == 0
    # list shows it running; check finds the lab by its marker without --lab
    assert f"running (lab {lab_name})" in ok("exercise", "list")
    assert netlab("exercise", "check", "three-links").returncode == 0
    # -o junit: a testcase per criterion, none failed
    xml = ET.fromstring(ok("exercise", "check", "1", "--lab", lab_name, "-o", "junit"))
    suite = xml.find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) == 6
    # hints: one more each time, in the lab (a reset starts over)
    assert ok("exercise", "hint", "1", "--lab", lab_name).startswith("hint 1/3:")
    assert ok("exercise", "hint", "1", "--lab", lab_name).startswith("hint 2/3:")
    ok("exercise", "reset", "01-three-links", "--lab", lab_name)
    r = netlab("exercise", "check", "01-three-links", "--lab", lab_name)
    assert r.returncode == 1 and "FAIL  pod a reaches pod c" in r.stdout
    assert ok("exercise", "hint", "1", "--lab", lab_name).startswith("hint 1/3:")
    xml = ET.fromstring(netlab("exercise", "check", "1", "--lab", lab_name, "-o", "junit").stdout)
    assert int(xml.find("testsuite").get("failures")) >= 1


ROLLOUT_LINE = re.compile(r"^(PASS|FAIL)  a rollout of web under traffic fails no request: "
                          r".* (\d+) requests, (\d+) failed", re.M)


def rollout_graded(lab: str) -> tuple[str, int, int, str]:
    """Exercise 08's check: (PASS|FAIL of the rollout criterion, requests, failed, the whole report)."""
    r = netlab("exercise", "check", "08", "--lab", lab)
    m = ROLLOUT_LINE.search(r.stdout)
    assert m, f"no rollout line: exit {r.returncode}\n{r.stdout}{r.stderr}"
    return m.group(1), int(m.group(2)), int(m.group(3)), r.stdout


def test_rolling_update_is_graded_on_a_rollout_under_traffic(lab_name):
    """Exercise 08's own criterion, alone: the check rolls web under load and counts every request. The
    naive Deployment (no readinessProbe, every pod at once) fails requests even once it runs 2.0.0; the
    lossless one fails none, and the rollout the check started is complete."""
    ok("exercise", "start", "08", "--lab", lab_name)
    ok("rollout", "status", "deploy/web", "--lab", lab_name, "--timeout", "60s")
    verdict, sent, failed, report = rollout_graded(lab_name)
    assert verdict == "FAIL" and failed > 0 and sent >= 50, report
    # the version alone does not solve it: the same Deployment at 2.0.0 still loses requests
    ok("set", "env", "deploy/web", "VERSION=2.0.0", "--lab", lab_name)
    ok("rollout", "status", "deploy/web", "--lab", lab_name, "--timeout", "60s")
    time.sleep(6)   # the new pods warm up
    verdict, sent, failed, report = rollout_graded(lab_name)
    assert verdict == "FAIL" and failed > 0 and sent >= 50, report
    assert "PASS  every answer from web says version 2.0.0" in report, report
    before = ok("get", "rs", "--lab", lab_name).count("web-")
    solve_rollout(lab_name, Path())
    verdict, sent, failed, report = rollout_graded(lab_name)
    assert verdict == "PASS" and failed == 0 and sent >= 200, report   # 20 a second through three warm-ups
    assert report.rstrip().endswith("3/3 criteria pass: solved"), report
    # the check rolled web itself: one more ReplicaSet, its rollout complete
    assert ok("get", "rs", "--lab", lab_name).count("web-") == before + 2   # the solution's and the check's
    assert "successfully rolled out" in ok("rollout", "status", "deploy/web", "--lab", lab_name, "--watch=false")
