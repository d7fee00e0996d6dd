"""netlab.junit: the JUnit XML every grading command writes with -o junit parses and counts right."""
import xml.etree.ElementTree as ET

from netlab import junit


def test_counts_and_escaping():
    s = junit.Suite("probe")
    s.add(junit.Case("a -> b:80/tcp", "probe.default", 0.01, output="reachable"))
    s.add(junit.Case("a -> c <&>", "probe.default", 0.5, failure='expected reachable, got "timeout" <x>'))
    s.add(junit.Case("skipped one", "probe.default", skipped="no route"))
    s.add(junit.Case("broken", "probe.default", error="no such pod"))
    root = ET.fromstring(junit.to_xml([s]))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("4", "1", "1", "1")
    suite = root.find("testsuite")
    assert suite.get("name") == "probe" and suite.get("tests") == "4"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases][1] == "a -> c <&>"
    assert cases[1].find("failure").get("message") == 'expected reachable, got "timeout" <x>'
    assert cases[0].find("system-out").text == "reachable"
    assert cases[0].find("failure") is None


def test_empty():
    root = ET.fromstring(junit.to_xml([]))
    assert root.get("tests") == "0"
