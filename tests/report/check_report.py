#!/usr/bin/env python3
"""Checks a written report folder with Python's own parsers: report.html parses as HTML (every
opened element closed, in order) and as XML, every inline <svg> and every charts/*.svg is
well-formed XML, and the page names no external resource. Exit 0 when all hold; else prints why."""
import glob
import html.parser
import os
import re
import sys
import xml.etree.ElementTree as ET

VOID = {"meta", "br", "img", "hr", "input", "link"}


class Balance(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.errors.append(f"external reference {name}={value}")
        if tag == "script":
            self.errors.append("a <script> element")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()


def main(folder):
    errors = []
    page = open(os.path.join(folder, "report.html"), encoding="utf-8").read()
    parser = Balance()
    parser.feed(page)
    parser.close()
    errors += parser.errors
    if parser.stack:
        errors.append(f"unclosed elements: {parser.stack}")
    try:
        ET.fromstring(re.sub(r"^<!DOCTYPE html>", "", page))
    except ET.ParseError as e:
        errors.append(f"report.html is not well-formed XML: {e}")
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    if not svgs:
        errors.append("report.html holds no inline <svg>")
    for i, svg in enumerate(svgs):
        try:
            root = ET.fromstring(svg)
            if root.tag != "{http://www.w3.org/2000/svg}svg":
                errors.append(f"inline svg {i}: root is {root.tag}")
        except ET.ParseError as e:
            errors.append(f"inline svg {i} is not well-formed: {e}")
    for path in glob.glob(os.path.join(folder, "charts", "*.svg")):
        try:
            ET.parse(path)
        except ET.ParseError as e:
            errors.append(f"{path} is not well-formed: {e}")
    for e in errors:
        print("check_report:", e)
    print(f"check_report: {len(svgs)} inline SVGs, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
