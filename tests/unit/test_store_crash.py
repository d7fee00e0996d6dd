"""Crash safety of the SQLite store: a writer SIGKILLed between any two SQL statements (or at a
random moment) loses no committed transaction and never leaves half of one. No root needed."""

import os
import random
import signal
import subprocess
import sys
import textwrap

from netlab.store import SQLiteStore

WRITER = textwrap.dedent("""
    import os, signal, sys
    from netlab.store import SQLiteStore
    directory, kill_at = sys.argv[1], int(sys.argv[2])
    s = SQLiteStore(directory)
    count = [0]
    def trace(stmt):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    s._db.set_trace_callback(trace)
    cur = s.try_get("ConfigMap", "default", "counter")
    if cur is None:
        cur = s.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "counter"}, "data": {"n": "0"}})
    i = int(cur["data"]["n"])
    while True:
        with s.transaction():
            for part in "abc":
                s.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"g{i}-{part}"},
                          "data": {"i": str(i)}})
            cur = s.get("ConfigMap", "default", "counter")
            cur["data"] = {"n": str(i + 1)}
            s.update(cur)
        print(i, flush=True)
        i += 1
""")


def check(directory, committed):
    s = SQLiteStore(directory)
    try:
        objs = {o["metadata"]["name"]: o for o in s.list("ConfigMap")}
        n = int(objs["counter"]["data"]["n"]) if "counter" in objs else 0
        groups = {}
        for name in objs:
            if name != "counter":
                g, part = name.rsplit("-", 1)
                groups.setdefault(int(g[1:]), set()).add(part)
        # every group is whole, groups are exactly 0..n-1 and agree with the counter
        assert all(parts == {"a", "b", "c"} for parts in groups.values()), groups
        assert sorted(groups) == list(range(n))
        # nothing the writer reported as committed is lost
        assert all(i < n for i in committed), (committed, n)
        # the revision, the objects' resourceVersions and the history agree
        rev = s.revision()
        assert max((int(o["metadata"]["resourceVersion"]) for o in objs.values()), default=0) <= rev
        start = s.compacted()  # long runs outgrow the bounded history
        hist = s.watch(start)
        assert [e.revision for e in hist] == list(range(start + 1, rev + 1))
        return n
    finally:
        s.close()


def run_writer(directory, kill_at, timeout=None):
    p = subprocess.Popen([sys.executable, "-c", WRITER, directory, str(kill_at)], stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    if timeout is not None:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
    out, _ = p.communicate()
    assert p.returncode == -signal.SIGKILL
    return [int(x) for x in out.split()]


def test_kill_between_every_statement(tmp_path):
    # Each run of the writer dies right before its k-th SQL statement; k walks through the
    # statements of the first transactions (open, schema, BEGIN, reads, inserts, COMMIT...).
    directory = str(tmp_path)
    done = 0
    for k in range(1, 41):
        committed = run_writer(directory, k)
        n = check(directory, committed)
        assert n >= done  # never goes back
        done = n
    assert done > 0


def test_kill_at_random_moments(tmp_path):
    directory = str(tmp_path)
    rng = random.Random(11)
    total = 0
    for _ in range(4):
        committed = run_writer(directory, 10**9, timeout=rng.uniform(0.3, 0.8))
        n = check(directory, committed)
        assert n >= total
        total = n
    assert total > 0
