"""backend ipip on this machine's kernel, which has no ipip module: `up` refuses it before any change, with
one line naming what is missing and what to do (exit 2), and `validate` (no root) says the same line. The
backend itself is tested where the kernel has the module: tests/vm/test_ipip.py, in the VM of scripts/vm-run."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from .conftest import netlab_cli, nobody_uid

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: control-plane}, {role: worker, subnet: 172.19.0.0/24}]
networking: {backend: ipip, ipipMode: CrossSubnet}
"""


def test_up_refuses_ipip_without_the_module_and_builds_nothing():
    from netlab.dataplane import kernelcheck
    if kernelcheck.has_ipip():
        pytest.skip("this kernel has the ipip module; the refusal is for kernels without it")
    where = tempfile.mkdtemp(prefix="netlab-test-")   # readable by nobody (pytest's tmp_path is not)
    try:
        os.chmod(where, 0o755)
        path = os.path.join(where, "ipip.yaml")
        with open(path, "w") as f:
            f.write(SCENARIO)
        os.chmod(path, 0o644)
        links = sorted(os.listdir("/sys/class/net"))
        u = netlab_cli("up", path, "--lab", "ipip-refused")
        v = netlab_cli("validate", path, user=nobody_uid())
    finally:
        shutil.rmtree(where)
    assert u.returncode == 2, u
    line = u.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "backend ipip cannot run on this kernel" in line and "ipip module" in line and "tunl0" in line
    assert "scripts/vm-run" in line and "networking.backend vxlan" in line
    assert not [n for n in os.listdir("/run/netns") if n.startswith("nl.ipip-refused.")]
    assert not os.path.exists("/run/netlab/ipip-refused")
    assert sorted(os.listdir("/sys/class/net")) == links          # no tunl0, nothing else, in the host's namespace
    if nobody_uid() is not None:
        assert v.returncode == 2 and v.stderr == u.stderr, (v, u)
