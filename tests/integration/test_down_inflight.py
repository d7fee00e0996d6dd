"""`down` ends a process the lab's control loop was starting when it was stopped: nsenter, tagged with the
lab's owner, still in the host's namespace before it joins its pod's or node's (seen as netexec servers
left behind under load, in a namespace with no name, after `down`)."""
from __future__ import annotations

import os
import subprocess

from netlab import names
from netlab.dataplane import procs

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: inflight
nodes: [{role: worker, name: n1}]
"""


def test_down_ends_a_tagged_process_still_in_the_hosts_namespace(lab):
    lab.up(SCENARIO)
    env = dict(os.environ, **{procs.OWNER_VAR: names.lab_owner_prefix(lab.name) + "node/n1/netexec"})
    p = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    other = subprocess.Popen(["sleep", "300"], env=dict(os.environ, **{procs.OWNER_VAR: "someone-else/x"}),
                             start_new_session=True)
    try:
        lab.down()
        assert p.wait(timeout=10) is not None          # ended by down
        assert other.poll() is None                   # not the lab's: untouched
    finally:
        for q in (p, other):
            if q.poll() is None:
                q.kill()
                q.wait()
