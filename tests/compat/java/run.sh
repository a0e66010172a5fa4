#!/usr/bin/env bash
# Runs the Java (kafka-clients) compatibility suite against a broker, once per
# client version (4.4.0, the newest, and 3.8.0, the tutorial's version).
#
#   tests/compat/java/run.sh BOOTSTRAP RESULTS_DIR
#
# Writes RESULTS_DIR/java-v<version>-<TestClass>.xml (JUnit/surefire XML) with
# each testcase classname prefixed "v<version>." so both runs stay apart in one
# table. Prints one PASS/FAIL/SKIP line per test and a closing
# "N passed, M failed" line; exits non-zero if any test failed or a run crashed.
#
# Environment:
#   KASKADE_JAVA_CLIENT_VERSIONS  client versions to run (default "4.4.0 3.8.0")
#   KASKADE_COMPAT_TIMEOUT        per-operation wait in the tests, seconds (30)
#   KASKADE_JAVA_TEST             optional surefire -Dtest filter (e.g. AdminTest)
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
    echo "usage: $0 BOOTSTRAP RESULTS_DIR" >&2
    exit 2
fi
BOOTSTRAP="$1"
RESULTS="$2"
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"
rm -f "$RESULTS"/java-v*.xml   # only this suite's own reports from an earlier run
VERSIONS="${KASKADE_JAVA_CLIENT_VERSIONS:-4.4.0 3.8.0}"
export KASKADE_BOOTSTRAP="$BOOTSTRAP"

"$HERE/install.sh" || exit 1

rc=0
for v in $VERSIONS; do
    reports="$HERE/target/kafka-$v/surefire-reports"
    rm -rf "$reports"
    echo "=== java suite: kafka-clients $v against $BOOTSTRAP ==="
    extra=()
    if [ -n "${KASKADE_JAVA_TEST:-}" ]; then
        extra+=("-Dtest=$KASKADE_JAVA_TEST" "-Dsurefire.failIfNoSpecifiedTests=false")
    fi
    (cd "$HERE" && mvn -o -q -B -Dstyle.color=never -Dkafka.version="$v" -Dmaven.test.failure.ignore=true "${extra[@]}" test)
    mvn_rc=$?
    shopt -s nullglob
    xmls=("$reports"/TEST-*.xml)
    shopt -u nullglob
    if [ "$mvn_rc" -ne 0 ] || [ "${#xmls[@]}" -eq 0 ]; then
        echo "java suite: mvn exited $mvn_rc for kafka-clients $v with ${#xmls[@]} report(s)" >&2
        rc=1
    fi
    # Copy the reports with the version in the file name and the classnames.
    python3 - "$v" "$RESULTS" "${xmls[@]}" <<'PY' || rc=1
import os, sys, xml.etree.ElementTree as ET
version, outdir, files = sys.argv[1], sys.argv[2], sys.argv[3:]
prefix = "v" + version + "."
for f in files:
    tree = ET.parse(f)
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for s in suites:
        s.set("name", prefix + s.get("name", ""))
        for tc in s.iter("testcase"):
            tc.set("classname", prefix + tc.get("classname", ""))
    base = os.path.basename(f)[len("TEST-"):-len(".xml")].split(".")[-1]
    tree.write(os.path.join(outdir, "java-v%s-%s.xml" % (version, base)), encoding="utf-8", xml_declaration=True)
PY
done

# Per-test lines and totals from the copied reports.
printf '\n=== java suite: results against %s ===\n' "$BOOTSTRAP"
python3 - "$RESULTS" <<'PY'
import glob, os, sys, xml.etree.ElementTree as ET
p = f = s = 0
for path in sorted(glob.glob(os.path.join(sys.argv[1], "java-v*.xml"))):
    for tc in ET.parse(path).getroot().iter("testcase"):
        tags = {c.tag: c for c in tc}
        name = "%s.%s (%.1fs)" % (tc.get("classname"), tc.get("name"), float(tc.get("time") or 0))
        if "skipped" in tags:
            s += 1; print("SKIP", name)
        elif "failure" in tags or "error" in tags:
            f += 1
            el = tags.get("failure") if "failure" in tags else tags.get("error")
            msg = (el.get("message") or el.get("type") or "").strip().splitlines()
            print("FAIL", name, "--", (msg[0] if msg else "")[:300])
        else:
            p += 1; print("PASS", name)
line = "%d passed, %d failed" % (p, f)
if s:
    line += ", %d skipped" % s
print(line)
sys.exit(1 if f else 0)
PY
[ $? -eq 0 ] || rc=1
exit $rc
