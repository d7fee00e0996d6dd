"""The `rollout_under_load` criterion: parsed strictly (one line naming the field), judged from what the load
saw (every request counted, a failed one named by why), and its load client (netlab/exercise/traffic.py) on
real loopback sockets (no root)."""
from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from netlab.errors import SpecError
from netlab.exercise import find, grade
from netlab.exercise.traffic import one
from netlab.exercise.spec import parse_criterion
from .test_netexec import free_port  # never the same port twice

BASE = {"from": "pod/client", "deployment": "web", "service": "web", "port": 80}


def crit(**kw) -> dict:
    return parse_criterion("f", {"name": "n", "rollout_under_load": {**BASE, **kw}}).args


def test_defaults_are_filled_in():
    a = crit()
    assert a == {**BASE, "path": "/", "rate": 20, "expect_status": 200, "expect_failed": 0, "min_requests": 50,
                 "timeout": 180}
    assert crit(deployment="shop/web", service="shop/web", rate=2.5, timeout=60)["rate"] == 2.5


@pytest.mark.parametrize("kw, message", [
    ({"from": "node/n1"}, "f: criteria[0].rollout_under_load.from: must be a pod"),
    ({"from": "external"}, ".from: must be a pod"),
    ({"deployment": "Web"}, ".deployment: 'Web' is not a name"),
    ({"service": "a/b/c"}, ".service: 'a/b/c' is not a name"),
    ({"port": 0}, ".port: 0 is not a port"),
    ({"port": "80"}, ".port: must be int"),
    ({"port": True}, ".port: must be int"),
    ({"path": "x"}, ".path: 'x' is not an HTTP path"),
    ({"path": "/a b"}, ".path: '/a b' is not an HTTP path"),
    ({"rate": 0}, ".rate: must be 1-100"),
    ({"rate": 500}, ".rate: must be 1-100"),
    ({"expect_failed": -1}, ".expect_failed: must be 0 or more"),
    ({"min_requests": 0}, ".min_requests: must be at least 1"),
    ({"expect_failed": 5, "min_requests": 5}, ".min_requests: must be at least 1 and more than expect_failed"),
    ({"timeout": 5}, ".timeout: must be 10-600 seconds"),
    ({"expect_status": 42}, ".expect_status: is not an HTTP status"),
    ({"seconds": 30}, ".seconds: unknown field"),
])
def test_bad_fields_are_one_line_naming_the_field(kw, message):
    with pytest.raises(SpecError) as e:
        parse_criterion("f: criteria[0]", {"name": "n", "rollout_under_load": {**BASE, **kw}})
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("missing", ["from", "deployment", "service", "port"])
def test_required_fields(missing):
    body = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(SpecError) as e:
        parse_criterion("f", {"name": "n", "rollout_under_load": body})
    assert f".{missing}: is missing" in str(e.value)


def test_a_lossless_rollout_passes_and_says_how_many_requests():
    ok, seen = grade.judge_rollout(crit(), [(i / 20, 200, "") for i in range(400)], None, 17.04)
    assert ok
    assert seen == "400 requests, 0 failed; the rollout completed in 17.0 s"


def test_every_failure_counts_with_why_and_when():
    answers = [(i / 20, 200, "") for i in range(300)]
    answers += [(1.5, 503, ""), (2.0, 503, ""), (3.25, None, "connection refused"), (-0.5, None, "timeout")]
    ok, seen = grade.judge_rollout(crit(), answers, None, 6.0)
    assert not ok
    assert seen.startswith("0 failed wanted; seen: 304 requests, 4 failed (2 HTTP 503, 1 connection refused, "
                           "1 timeout; started -0.5 s to +3.2 s from the rollout's start)"), seen
    # what the criterion expects is what passes: here 4 failed requests
    assert grade.judge_rollout(crit(expect_failed=4), answers, None, 6.0)[0]
    # another status may be the one expected: then a 200 is a failure
    assert not grade.judge_rollout(crit(expect_status=503), answers, None, 6.0)[0]


def test_an_incomplete_rollout_or_too_few_requests_fail_even_without_a_failed_request():
    answers = [(i / 20, 200, "") for i in range(100)]
    ok, seen = grade.judge_rollout(crit(), answers, "did not complete within 180 s (1 of 3 updated)", 180.0)
    assert not ok and seen.startswith("the rollout did not complete; seen: 100 requests, 0 failed")
    assert seen.endswith("the rollout did not complete within 180 s (1 of 3 updated)")
    ok, seen = grade.judge_rollout(crit(), answers[:10], None, 1.0)
    assert not ok and seen.startswith("fewer than 50 requests were sent; seen: 10 requests, 0 failed")


def test_exercise_08_grades_a_rollout_under_load():
    ex = find("08-rolling-update")
    kinds = [c.kind for c in ex.criteria]
    assert "rollout_under_load" in kinds
    a = next(c for c in ex.criteria if c.kind == "rollout_under_load").args
    assert a["expect_failed"] == 0 and a["deployment"] == "web" and a["from"] == "pod/client"
    assert "check rolls the Deployment itself" in ex.task


# ------------------------------------------------------------------ the load client, on loopback

@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1: 503 to /warm, 200 with a body elsewhere."""
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = (503, b"warming up\n") if self.path == "/warm" else (200, b"Version: 1\n")
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()



def test_one_request_status_body_or_why_not(server):
    assert one("127.0.0.1", server, "/", 3) == (200, "Version: 1")
    assert one("127.0.0.1", server, "/warm", 3) == (503, "warming up")
    assert one("127.0.0.1", free_port(), "/", 3) == (None, "connection refused")


def test_one_times_out_on_a_server_that_never_answers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        t = time.monotonic()
        status, why = one("127.0.0.1", s.getsockname()[1], "/", 0.5)
        assert status is None and "timeout" in why and time.monotonic() - t < 2


def test_the_load_runs_open_loop_until_its_stdin_ends(server):
    p = subprocess.Popen([sys.executable, "-m", "netlab.exercise.traffic", "127.0.0.1", str(server), "--rate", "40"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    p.stdin.close()
    out = p.stdout.read()
    assert p.wait(10) == 0
    recs = [json.loads(x) for x in out.splitlines()]
    assert 25 <= len(recs) <= 60, len(recs)
    assert all(r["status"] == 200 for r in recs)
    starts = sorted(r["t"] for r in recs)
    assert starts[-1] - starts[0] < 1.5 and abs(starts[0] - time.time()) < 10   # unix times
