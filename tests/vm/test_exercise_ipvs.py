"""Exercise 13-ipvs-scheduler inside the VM of scripts/vm-run (IPVS needs ip_vs and dummy, which this
repository's CI kernel lacks; tests/integration/test_exercises.py checks that `start` refuses it there):
`netlab exercise start` builds the lab in IPVS mode with the sh scheduler, `check` fails (one pod answers
every connection of the client), the reference solution (the scheduler set to rr with `netlab up` of an
edited copy) is applied, and `check` passes (the three pods in turn, ipvsadm shows rr)."""
from __future__ import annotations

import os
import secrets
import time

import pytest

if os.environ.get("NETLAB_IN_VM") != "1":
    pytest.skip("runs inside the IPVS test VM only (tests/integration/test_vm.py starts it)", allow_module_level=True)

from tests.integration import test_exercises  # noqa: E402
from tests.integration.test_exercises import netlab, ok, start_file  # noqa: E402

# Python is ~15x slower in the emulated VM, and CI shares the host's 2 cores with the other tests: the
# whole test took ~10 min in an idle VM (2026-12-05)
test_exercises.CLI_TIMEOUT = 900.0

NAME = "13-ipvs-scheduler"


def test_ipvs_exercise_fails_on_its_start_and_passes_with_round_robin(tmp_path):
    lab = f"exercise-{secrets.token_hex(3)}"
    try:
        ok("exercise", "start", NAME, "--lab", lab)
        r = netlab("exercise", "check", NAME, "--lab", lab)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "FAIL  six new connections from client take the three web pods in turn" in r.stdout, r.stdout
        assert "PASS  web's ClusterIP is a local address of node n2" in r.stdout, r.stdout
        mine = tmp_path / "mine.yaml"
        mine.write_text(start_file(NAME).read_text().replace("ipvsScheduler: sh", "ipvsScheduler: rr"))
        ok("up", str(mine), "--lab", lab)
        deadline = time.monotonic() + 600
        while True:
            r = netlab("exercise", "check", NAME, "--lab", lab)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.splitlines()[-1] == "3/3 criteria pass: solved"
    finally:
        netlab("down", lab)
