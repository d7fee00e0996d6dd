"""JUnit XML, the report format CI systems display (GitLab, Jenkins, GitHub's test reporters).

One writer for every command that grades something (`probe`, `trace`, `exercise check` with
`-o junit`): a <testsuites> with one <testsuite> per group and one <testcase> per check; a failed
check has a <failure> whose message is the one-line reason, a check that could not run has an
<error>, one not run a <skipped>. Built with xml.etree (the standard library's serializer escapes
what XML needs), never by string concatenation. Pure: no root.
"""
from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    classname: str
    seconds: float = 0.0
    failure: str | None = None        # the check ran and its outcome is wrong: one line
    error: str | None = None          # the check could not run
    skipped: str | None = None
    output: str = ""                  # <system-out>: detail a reader wants (the observed outcome)


@dataclass
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)
    timestamp: float = field(default_factory=time.time)

    def add(self, case: Case) -> Case:
        self.cases.append(case)
        return case


def to_xml(suites: list[Suite], name: str = "netlab") -> str:
    """The whole document, UTF-8 XML with a declaration."""
    root = ET.Element("testsuites", name=name)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    host = socket.gethostname()
    for suite in suites:
        counts = {"tests": len(suite.cases),
                  "failures": sum(c.failure is not None for c in suite.cases),
                  "errors": sum(c.error is not None for c in suite.cases),
                  "skipped": sum(c.skipped is not None for c in suite.cases),
                  "time": sum(c.seconds for c in suite.cases)}
        for k, v in counts.items():
            totals[k] += v
        el = ET.SubElement(root, "testsuite", name=suite.name, hostname=host,
                           timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(suite.timestamp)),
                           **{k: (f"{v:.3f}" if k == "time" else str(v)) for k, v in counts.items()})
        for c in suite.cases:
            tc = ET.SubElement(el, "testcase", name=c.name, classname=c.classname, time=f"{c.seconds:.3f}")
            if c.failure is not None:
                ET.SubElement(tc, "failure", message=c.failure, type="failure").text = c.failure
            if c.error is not None:
                ET.SubElement(tc, "error", message=c.error, type="error").text = c.error
            if c.skipped is not None:
                ET.SubElement(tc, "skipped", message=c.skipped)
            if c.output:
                ET.SubElement(tc, "system-out").text = c.output
    for k, v in totals.items():
        root.set(k, f"{v:.3f}" if k == "time" else str(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
