"""The exercises' definitions and the pure parts of grading (no root): every exercises/*/exercise.yaml loads
and validates, its start.yaml is a valid scenario, criteria are parsed strictly (one line naming the
field), placeholders resolve against a model, and observations are judged as the criteria say."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from netlab import exercise
from netlab.cli import cli
from netlab.errors import NotFound, SpecError
from netlab.exercise import grade
from netlab.exercise.spec import PLACEHOLDER, parse_criterion
from netlab.model.build import build
from netlab.spec.parse import load_file, load_text

ALL = exercise.load_all()


def test_there_are_at_least_twelve_exercises_each_with_hints_and_criteria():
    assert len(ALL) >= 12
    for ex in ALL:
        assert ex.title and ex.task.strip() and ex.hints and ex.criteria, ex.name


@pytest.mark.parametrize("ex", ALL, ids=[e.name for e in ALL])
def test_every_start_yaml_is_a_valid_scenario_named_after_its_exercise(ex):
    sc = load_file(ex.start_file)
    assert sc.name == "ex" + ex.name[:2]
    cluster = build(sc)
    # every node a criterion or a placeholder names exists in the starting scenario (pods may be the task)
    nodes = {n.name for n in cluster.nodes}
    for c in ex.criteria:
        text = repr(c.args)
        for m in PLACEHOLDER.finditer(text):
            if m.group(1) == "node":
                assert m.group(2) in nodes, (ex.name, c.name)
        for m in re.finditer(r"node/([a-z0-9-]+)", text):
            assert m.group(1) in nodes, (ex.name, c.name)


def test_lab_names_are_unique():
    labs = [load_file(ex.start_file).name for ex in ALL]
    assert len(set(labs)) == len(labs)


# criteria whose balancer is deterministic by design (IPVS round-robin takes the pods in turn)
IN_TURN = {("13-ipvs-scheduler", "six new connections from client take the three web pods in turn")}


@pytest.mark.parametrize("ex", ALL, ids=[e.name for e in ALL])
def test_a_min_distinct_over_a_random_balancer_is_not_a_coin_toss(ex):
    """kube-proxy's iptables and nftables rules pick an endpoint at random: `count` requests miss one of
    `min_distinct` pods with probability about k(1-1/k)^count. A grade must not fail a solved lab by luck
    (15 requests over 3 pods: 0.7%, which once failed CI); keep it below one in ten thousand."""
    for c in ex.criteria:
        k = c.args.get("min_distinct") if c.kind == "http" else None
        if k and k > 1 and (ex.name, c.name) not in IN_TURN:
            assert k * (1 - 1 / k) ** c.args["count"] < 1e-4, (ex.name, c.name, c.args["count"])

def test_find_by_name_short_name_or_number():
    assert exercise.find("01-three-links").name == "01-three-links"
    assert exercise.find("three-links").name == "01-three-links"
    assert exercise.find("1").name == exercise.find("01").name == "01-three-links"


def test_an_unknown_exercise_is_one_line_listing_the_valid_names():
    with pytest.raises(NotFound) as e:
        exercise.find("nope")
    msg = str(e.value)
    assert "\n" not in msg and e.value.exit_code == 2
    assert all(ex.name in msg for ex in ALL)


def test_cli_unknown_exercise_exits_2_with_one_line(monkeypatch):
    from netlab.cli import main
    monkeypatch.setattr("sys.argv", ["netlab", "exercise", "check", "nope"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2


def test_cli_list_names_every_exercise():
    r = CliRunner().invoke(cli, ["exercise", "list"])
    assert r.exit_code == 0
    for ex in ALL:
        assert ex.name in r.output and ex.title in r.output


def test_hint_reveals_one_more_each_time_then_says_it_was_the_last(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    ex = exercise.find("01-three-links")
    outs = [CliRunner().invoke(cli, ["exercise", "hint", "1", "--lab", "no-such-lab-x"]).output
            for _ in range(len(ex.hints) + 1)]
    for i, out in enumerate(outs[:len(ex.hints)]):
        assert out.startswith(f"hint {i + 1}/{len(ex.hints)}: {ex.hints[i]}")
    assert outs[-1].startswith(f"hint {len(ex.hints)}/") and "last hint" in outs[-1]
    every = CliRunner().invoke(cli, ["exercise", "hint", "1", "--all", "--lab", "no-such-lab-x"]).output
    assert every.count("hint ") == len(ex.hints)


# ------------------------------------------------------------------ criteria parsing

GOOD = {"name": "n", "probe": {"from": "pod/client", "to": "svc/web:80"}}


def test_defaults_are_filled_in():
    c = parse_criterion("f", GOOD)
    assert c.kind == "probe" and c.args["expect"] == "reachable"
    h = parse_criterion("f", {"name": "h", "http": {"from": "external", "url": "http://{node:n1}:30080/"}})
    assert h.args["count"] == 1 and h.args["expect_status"] == 200
    e = parse_criterion("f", {"name": "e", "exec": {"from": "node/n1", "argv": ["true"]}})
    assert e.args["expect_rc"] == 0 and e.args["timeout"] == 15
    d = parse_criterion("f", {"name": "d", "dns": {"from": "pod/ns/x", "name": "web.shop"}})
    assert d.args["expect"] == "answer"


BAD = [
    ({"probe": GOOD["probe"]}, "f: criteria[0].name: is missing"),
    ({"name": "n"}, "has no kind"),
    ({"name": "n", "probe": GOOD["probe"], "exec": {"from": "external", "argv": ["x"]}}, "several kinds: probe, exec"),
    ({"name": "n", "ping": {}}, "criteria[0].ping: unknown field"),
    ({"name": "n", "probe": {"from": "pod/client"}}, "criteria[0].probe.to: is missing"),
    ({"name": "n", "probe": {"from": "pods/client", "to": "x"}},
     "criteria[0].probe.from: 'pods/client' is not a source"),
    ({"name": "n", "probe": {"from": "external", "to": "x", "expect": "ok"}}, "probe.expect: 'ok' is not an outcome"),
    ({"name": "n", "probe": {"from": "external", "to": "x", "backends": 0}}, "probe.backends: 0 is not all"),
    ({"name": "n", "probe": {"from": "external", "to": "x", "expect": "refused", "backends": "all"}},
     "probe.backends: only means something"),
    ({"name": "n", "probe": {"from": "external", "to": "x", "colour": 1}}, "probe.colour: unknown field"),
    ({"name": "n", "probe": {"from": "external", "to": "{pods:a}"}}, "probe.to: unknown placeholder '{pods:a}'"),
    ({"name": "n", "http": {"from": "external", "url": "ftp://x/"}}, "http.url: 'ftp://x/' is not an http:// URL"),
    ({"name": "n", "http": {"from": "external", "url": "http://x/", "count": "3"}}, "http.count: must be int"),
    ({"name": "n", "http": {"from": "external", "url": "http://x/", "count": True}}, "http.count: must be int"),
    ({"name": "n", "http": {"from": "external", "url": "http://x/", "min_distinct": 2}}, "http.min_distinct: must be"),
    ({"name": "n", "http": {"from": "external", "url": "http://x/", "expect_body_regex": "("}},
     "http.expect_body_regex: is not a regular expression"),
    ({"name": "n", "dns": {"from": "node/n1", "name": "web"}}, "dns.from: must be a pod"),
    ({"name": "n", "dns": {"from": "pod/c", "name": "web", "expect": "nxdomain", "address": "1.2.3.4"}},
     "nxdomain has no answer"),
    ({"name": "n", "exec": {"from": "pod/c", "argv": []}}, "exec.argv: must be a non-empty list"),
    ({"name": "n", "exec": {"from": "pod/c", "argv": ["ip", -4]}}, "exec.argv: must be a non-empty list of strings"),
    ({"name": "n", "exec": {"from": "pod/c", "argv": ["x"], "timeout": 0}}, "exec.timeout: must be more than 0"),
    ("probe", "criteria[0]: must be a mapping"),
]


@pytest.mark.parametrize("raw,message", BAD, ids=[m for _, m in BAD])
def test_bad_criteria_are_one_line_naming_the_field(raw, message):
    with pytest.raises(SpecError) as e:
        parse_criterion("f: criteria[0]", raw)
    text = str(e.value)
    assert message in text and "\n" not in text and e.value.exit_code == 2


def _write(tmp_path: Path, body: str, name: str = "01-x") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "exercise.yaml").write_text(body)
    (d / "start.yaml").write_text("kind: Cluster\napiVersion: netlab.dev/v1alpha1\n")
    return d


OK_BODY = "title: T\ntask: do it\nhints: [h]\ncriteria:\n- {name: a, probe: {from: external, to: node/n1}}\n"


def test_a_definition_loads(tmp_path):
    ex = exercise.load(_write(tmp_path, OK_BODY))
    assert ex.name == "01-x" and ex.short == "x" and ex.hints == ["h"] and ex.setup == []


@pytest.mark.parametrize("body,message", [
    (OK_BODY + "colour: red\n", "01-x/exercise.yaml: colour: unknown field"),
    (OK_BODY.replace("title: T\n", ""), "01-x/exercise.yaml: title: is missing"),
    (OK_BODY.replace("hints: [h]", "hints: []"), "hints: is empty"),
    (OK_BODY.replace("title: T", "title: T\ntitle: U"), "01-x/exercise.yaml: title: is given twice"),
    (OK_BODY + "- {name: a, probe: {from: external, to: node/n2}}\n", "criteria[1].name: 'a' is given twice"),
    (OK_BODY + "setup: [[down]]\n", "setup[0]: 'down' cannot be a setup step"),
    (OK_BODY + "setup: [node stop n2]\n", "setup[0]: must be a netlab command as a list"),
    ("title: [\n", "01-x/exercise.yaml: is not valid YAML"),
])
def test_bad_definitions_are_one_line_naming_file_and_field(tmp_path, body, message):
    with pytest.raises(SpecError) as e:
        exercise.load(_write(tmp_path, body))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_missing_start_yaml_is_named(tmp_path):
    d = _write(tmp_path, OK_BODY)
    (d / "start.yaml").unlink()
    with pytest.raises(SpecError, match="01-x/start.yaml: is missing"):
        exercise.load(d)


# ------------------------------------------------------------------ placeholders

@pytest.fixture(scope="module")
def cluster():
    ex = exercise.find("12-network-policy")
    return build(load_file(ex.start_file))


def test_placeholders_resolve_to_the_models_addresses(cluster):
    api = cluster.pod("shop", "api")
    assert grade.expand("http://{pod:shop/api}:8080/", cluster) == f"http://{api.ip}:8080/"
    assert grade.expand("{node:n2} {external}", cluster) == f"{cluster.node('n2').ip} {cluster.external_ip}"
    assert grade.expand("^{external}:", cluster, regex=True) == "^" + re.escape(str(cluster.external_ip)) + ":"


def test_a_placeholder_naming_nothing_is_not_found(cluster):
    for text, what in [("{pod:c}", "no pod 'c' in namespace default"), ("{node:n9}", "no node 'n9'"),
                       ("{svc:web}", "no Service 'web' in namespace default")]:
        with pytest.raises(NotFound, match=re.escape(what)):
            grade.expand(text, cluster)


def test_svc_and_lb_placeholders():
    sc = load_file(exercise.find("10-loadbalancer").start_file)
    c = build(sc)
    web = next(s for s in c.services if s.name == "web")
    assert grade.expand("{svc:web}", c) == str(web.cluster_ip)
    with pytest.raises(NotFound, match="no LoadBalancer IP"):
        grade.expand("{lb:web}", c)


# ------------------------------------------------------------------ judging observations

def _args(kind: str, **kw) -> dict:
    base = {"http": {"from": "external", "url": "http://x/"}, "exec": {"from": "external", "argv": ["x"]},
            "dns": {"from": "pod/c", "name": "web.shop"}}[kind]
    return parse_criterion("f", {"name": "n", kind: dict(base, **kw)}).args


def test_http_distinct_answers():
    a = _args("http", count=4, min_distinct=2, expect_body_regex="^web-")
    ok, seen = grade.judge_http(a, [(200, "web-1\n", "")] * 4, "^web-")
    assert not ok and "1 distinct answers, at least 2 wanted" in seen
    ok, seen = grade.judge_http(a, [(200, "web-1", ""), (200, "web-2", "")] * 2, "^web-")
    assert ok and "2 distinct" in seen
    sticky = _args("http", count=3, max_distinct=1)
    assert grade.judge_http(sticky, [(200, "a", "")] * 3)[0]
    assert not grade.judge_http(sticky, [(200, "a", ""), (200, "b", ""), (200, "a", "")])[0]


def test_http_status_body_and_failed_connections():
    a = _args("http", count=2, expect_body_regex="^api-")
    ok, seen = grade.judge_http(a, [(503, "<html>503</html>", ""), (None, "", "curl: (7) Failed to connect")], "^api-")
    assert not ok and "2/2 requests did not get HTTP 200 (first: HTTP 503)" in seen
    ok, seen = grade.judge_http(a, [(200, "other", ""), (200, "api-1", "")], "^api-")
    assert not ok and "1 bodies do not match" in seen


def test_exec_rc_and_output():
    a = _args("exec", expect_rc=1, expect_stdout_regex="^0$")
    assert grade.judge_exec(a, 1, "0\n", "", "^0$")[0]
    ok, seen = grade.judge_exec(a, 0, "9\n", "", "^0$")
    assert not ok and "exit status 0, 1 wanted" in seen and "does not match" in seen
    assert grade.judge_exec(a, None, "", "")[1].startswith("did not finish")


def test_dns_answer_name_and_address():
    a = _args("dns", answered_name="web.shop.svc.cluster.local", address="10.96.0.20")
    got = {"name": "web.shop.svc.cluster.local.", "rcode": "NOERROR", "answers": ["10.96.0.20"]}
    assert grade.judge_dns(a, got, "10.96.0.20")[0]
    ok, seen = grade.judge_dns(a, dict(got, name="web.shop."), "10.96.0.20")
    assert not ok and "answered as web.shop." in seen
    ok, seen = grade.judge_dns(a, {"name": "web.shop.", "rcode": "TIMEOUT", "answers": []}, "10.96.0.20")
    assert not ok and "did not resolve" in seen
    nx = _args("dns", expect="nxdomain")
    assert grade.judge_dns(nx, {"name": "x.", "rcode": "NXDOMAIN", "answers": []})[0]


def test_report_and_junit():
    a = parse_criterion("f", GOOD)
    b = parse_criterion("f", dict(GOOD, name="m"))
    verdicts = [grade.Verdict(a, True, "reachable"), grade.Verdict(b, False, "refused <&>")]
    text = grade.report("01-x", "lab1", verdicts)
    assert text.splitlines() == ["exercise 01-x (lab lab1):", "PASS  n: reachable", "FAIL  m: refused <&>",
                                 "1/2 criteria pass"]
    root = ET.fromstring(grade.junit("01-x", verdicts))
    suite = root.find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failed = [tc for tc in suite.findall("testcase") if tc.find("failure") is not None]
    assert [tc.get("name") for tc in failed] == ["m"] and failed[0].find("failure").get("message") == "refused <&>"
    assert grade.report("01-x", "lab1", verdicts[:1]).splitlines()[-1] == "1/1 criteria pass: solved"


def test_load_text_of_every_start_is_what_start_uses():
    # start() reads the file's text and parses it with the same parser as `netlab up -f`
    for ex in ALL:
        assert load_text(ex.start_file.read_text(), str(ex.start_file)).name == load_file(ex.start_file).name
