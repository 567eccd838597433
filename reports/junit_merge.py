"""Merge the JUnit XML of ``certify --rerun-failed`` into the run folder's junit.xml.

A re-run executes only the checks that failed or errored; CI systems read junit.xml, so it must keep describing
the whole run like results.json does: every test case of the first run, with the re-run ones replaced by their new
outcome, and the suite's counters recomputed from the cases.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from haicap.errors import HaicapError

__all__ = ["mark_interrupted", "merge_junit"]


def _suite(path: Path) -> tuple[ET.ElementTree, ET.Element]:
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError) as exc:
        raise HaicapError(f"{path}: cannot read the JUnit XML to merge the re-run into: {exc}") from None
    root = tree.getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        raise HaicapError(f"{path}: no <testsuite> element: not a pytest JUnit XML file")
    return tree, suite


def _key(case: ET.Element) -> tuple[str, str]:
    return case.get("classname", ""), case.get("name", "")


def merge_junit(previous: Path, rerun: Path, out: Path) -> None:
    """Write to ``out`` the cases of ``previous`` with those of ``rerun`` replacing the ones of the same name."""
    tree, suite = _suite(previous)
    _, rerun_suite = _suite(rerun)
    fresh = {_key(case): case for case in rerun_suite.iter("testcase")}
    for i, case in enumerate(list(suite)):
        if case.tag == "testcase" and _key(case) in fresh:
            suite[i] = fresh.pop(_key(case))
    for case in fresh.values():  # re-run cases the first run did not have
        suite.append(case)
    cases = list(suite.iter("testcase"))
    suite.set("tests", str(len(cases)))
    for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        suite.set(attr, str(sum(case.find(tag) is not None for case in cases)))
    suite.set("time", f"{sum(float(case.get('time') or 0) for case in cases):.3f}")
    tree.write(out, encoding="utf-8", xml_declaration=True)


def mark_interrupted(path: Path, message: str) -> None:
    """An interrupted run's junit.xml: the cases it judged, and one ``<error>`` case saying the run stopped, so a
    CI dashboard reading it never takes the partial run for a whole one. Without a junit.xml, one is written."""
    if path.is_file():
        tree, suite = _suite(path)
    else:
        suite = ET.Element("testsuite", name="pytest", errors="0", failures="0", skipped="0", tests="0")
        tree = ET.ElementTree(ET.Element("testsuites", name="pytest tests"))
        tree.getroot().append(suite)
    case = ET.SubElement(suite, "testcase", classname="haicap", name="certify run interrupted", time="0")
    ET.SubElement(case, "error", message=message).text = message
    suite.set("tests", str(int(suite.get("tests") or 0) + 1))
    suite.set("errors", str(int(suite.get("errors") or 0) + 1))
    tree.write(path, encoding="utf-8", xml_declaration=True)
