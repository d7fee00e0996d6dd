"""The runner serving a SQLite store in a thread: another connection (a CLI verb, another process)
writes a Deployment and the loop reacts within a fraction of a second; idle, it sleeps."""

import threading
import time

from netlab.controllers.runner import Runner
from netlab.store import SQLiteStore

from .ctrl_sim import deployment, node


def test_serve_reacts_to_another_connections_write(tmp_path):
    loop_store = SQLiteStore(str(tmp_path))
    cli = SQLiteStore(str(tmp_path))
    cli.create(node("n1"))
    runner = Runner(loop_store)
    stop = threading.Event()
    t = threading.Thread(target=runner.serve, args=(stop,), kwargs={"max_wait": 2.0})
    t.start()
    try:
        time.sleep(0.2)
        rev = cli.revision()
        t0 = time.monotonic()
        cli.create(deployment(replicas=3))
        def bound():
            return [p for p in cli.list("Pod") if p["spec"].get("nodeName") == "n1"]
        while len(bound()) < 3 and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        assert len(bound()) == 3 and len(cli.list("Pod")) == 3
        assert time.monotonic() - t0 < 2
        # idle: nothing more is written
        time.sleep(0.3)
        settled = cli.revision()
        time.sleep(0.5)
        assert cli.revision() == settled > rev
    finally:
        stop.set()
        t0 = time.monotonic()
        t.join(5)
        assert time.monotonic() - t0 < 1
        loop_store.close()
        cli.close()
    assert not t.is_alive()
