"""Prints the side-by-side table of tests/compat/compare.sh.

Reads two result directories written by run.sh (KASKADE_COMPAT_RESULTS): JUnit
XML reports (one file per suite, or a directory of them per suite) and kcat's
TAP output. Exits 1 if any test passed on Kafka and did not pass on Kaskade.
"""

import pathlib
import re
import sys
import xml.etree.ElementTree as ET


def junit(path: pathlib.Path, suite: str, out: dict) -> None:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        out[(suite, f"{path.name}: unreadable report")] = "error"
        return
    for tc in root.iter("testcase"):
        tags = {child.tag for child in tc}
        if "skipped" in tags:
            result = "skip"
        elif tags & {"failure", "error"}:
            result = "FAIL"
        else:
            result = "pass"
        name = tc.get("name", "?")
        cls = tc.get("classname", "")
        out[(suite, f"{cls}::{name}" if cls else name)] = result


def tap(path: pathlib.Path, suite: str, out: dict) -> None:
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"^(not ok|ok) \d+ - (.*?)(\s+# (SKIP|skip).*)?$", line)
        if m:
            result = "skip" if m.group(3) else ("pass" if m.group(1) == "ok" else "FAIL")
            out[(suite, m.group(2))] = result


def collect(base: pathlib.Path) -> dict:
    out: dict = {}
    if not base.is_dir():
        return out
    for entry in sorted(base.iterdir()):
        if entry.is_dir():
            for x in sorted(entry.glob("*.xml")):
                junit(x, entry.name, out)
        elif entry.suffix == ".xml":
            junit(entry, entry.stem, out)
        elif entry.suffix == ".tap":
            tap(entry, entry.stem, out)
    return out


def main() -> int:
    kafka = collect(pathlib.Path(sys.argv[1]))
    kaskade = collect(pathlib.Path(sys.argv[2]))
    keys = sorted(set(kafka) | set(kaskade))
    rows = [("suite", "test", "kafka", "kaskade")]
    regressions = 0
    for key in keys:
        a, b = kafka.get(key, "-"), kaskade.get(key, "-")
        if a == "pass" and b != "pass":
            regressions += 1
        rows.append((key[0], key[1], a, b))
    widths = [min(90, max(len(r[i]) for r in rows)) for i in range(4)]
    for r in rows:
        print("  ".join(c[: widths[i]].ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    same = sum(1 for k in keys if kafka.get(k) == kaskade.get(k))
    print(f"\n{len(keys)} tests; {same} with the same result on both; "
          f"{regressions} pass on Kafka and not on Kaskade")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
