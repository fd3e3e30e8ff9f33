#!/usr/bin/env python3
"""Summary of a ctest run from its JUnit file (ctest --output-junit): passed, failed and skipped
counted apart, and every skip reason with the tests it applies to. The reason of a GoogleTest
skip is the message after its "<file>:<line>: Skipped" line (GTEST_SKIP() << "reason")."""
import re
import sys
import xml.etree.ElementTree as ET
from collections import OrderedDict

SKIP_LINE = re.compile(r"^\S+:\d+: Skipped$")


def skip_reason(case):
    """The GTEST_SKIP message of a skipped test case, else ctest's own note."""
    out = case.findtext("system-out") or ""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if SKIP_LINE.match(line.strip()):
            message = []
            for text in lines[i + 1:]:
                if text.startswith("[  SKIPPED ]") or not text.strip():
                    break
                message.append(text.strip())
            if message:
                return " ".join(message)
            return "(GTEST_SKIP without a reason)"
    skipped = case.find("skipped")
    note = skipped.get("message", "") if skipped is not None else ""
    if note == "SKIP_REGULAR_EXPRESSION_MATCHED":
        return "(skipped without a reason in its output)"
    return note or "(not run, no reason given)"


def main(path):
    try:
        suite = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"test summary: cannot read {path}: {e}", file=sys.stderr)
        return 2
    passed, failed, skipped = [], [], OrderedDict()
    for case in suite.iter("testcase"):
        name = case.get("name", "?")
        if case.find("failure") is not None or case.get("status") == "fail":
            failed.append(name)
        elif case.get("status") == "notrun" or case.find("skipped") is not None:
            skipped.setdefault(skip_reason(case), []).append(name)
        else:
            passed.append(name)
    n_skipped = sum(len(v) for v in skipped.values())
    total = len(passed) + len(failed) + n_skipped
    print()
    print(f"test summary: {len(passed)} passed, {len(failed)} failed, {n_skipped} skipped "
          f"(of {total})")
    for name in failed:
        print(f"  failed: {name}")
    if skipped:
        print("skipped, by reason:")
        for reason, names in sorted(skipped.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(names[:3])
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            print(f"  {len(names):4d}  {reason}")
            print(f"        {shown}{more}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: ctest_summary.py JUNIT_XML", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
