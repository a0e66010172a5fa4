// Command junit turns `go test -json` (test2json) events read from standard
// input into a JUnit XML report, echoing the tests' output to standard output
// as it goes so a person can follow the run.
//
//	go test -json ... | junit -o RESULTS_DIR/go.xml [-suite NAME]
//
// Each top-level test (and subtest) becomes a <testcase classname=PACKAGE
// name=TEST>; failed tests get a <failure> with their output, skipped ones a
// <skipped>, and a test that was still running when the package ended (panic,
// timeout, killed) gets an <error>. A package that failed without a failing
// test (build error, TestMain failure) adds one <testcase name="(package)">
// with an <error>. Exits 1 if anything failed, 0 otherwise.
package main

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type testState struct {
	pkg, name string
	order     int
	result    string // pass, fail, skip, or "" if it never ended
	elapsed   float64
	output    strings.Builder
}

type xmlSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Skipped  int        `xml:"skipped,attr"`
	Time     string     `xml:"time,attr"`
	Suites   []xmlSuite `xml:"testsuite"`
}

type xmlSuite struct {
	Name      string    `xml:"name,attr"`
	Tests     int       `xml:"tests,attr"`
	Failures  int       `xml:"failures,attr"`
	Errors    int       `xml:"errors,attr"`
	Skipped   int       `xml:"skipped,attr"`
	Time      string    `xml:"time,attr"`
	Timestamp string    `xml:"timestamp,attr"`
	Cases     []xmlCase `xml:"testcase"`
}

type xmlCase struct {
	Classname string      `xml:"classname,attr"`
	Name      string      `xml:"name,attr"`
	Time      string      `xml:"time,attr"`
	Failure   *xmlMessage `xml:"failure,omitempty"`
	Error     *xmlMessage `xml:"error,omitempty"`
	Skipped   *xmlMessage `xml:"skipped,omitempty"`
	SystemOut string      `xml:"system-out,omitempty"`
}

type xmlMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

func main() {
	out := flag.String("o", "", "JUnit XML file to write (required)")
	suite := flag.String("suite", "", "classname prefix (default: the Go package path)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: junit -o FILE [-suite NAME] < test2json-events")
		os.Exit(2)
	}

	started := time.Now()
	tests := map[string]*testState{}
	pkgResult := map[string]string{}
	pkgOutput := map[string]*strings.Builder{}
	pkgElapsed := map[string]float64{}
	var pkgs []string
	order := 0

	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Action == "" {
			// Not an event (e.g. a build error printed by go test): echo it and
			// keep it as package output.
			fmt.Println(string(line))
			b := pkgOutput[""]
			if b == nil {
				b = &strings.Builder{}
				pkgOutput[""] = b
				pkgs = append(pkgs, "")
			}
			b.WriteString(string(line) + "\n")
			continue
		}
		if ev.Output != "" {
			fmt.Print(ev.Output)
		}
		if _, ok := pkgOutput[ev.Package]; !ok {
			pkgOutput[ev.Package] = &strings.Builder{}
			pkgs = append(pkgs, ev.Package)
		}
		if ev.Test == "" {
			switch ev.Action {
			case "output":
				pkgOutput[ev.Package].WriteString(ev.Output)
			case "pass", "fail", "skip":
				pkgResult[ev.Package] = ev.Action
				pkgElapsed[ev.Package] = ev.Elapsed
			}
			continue
		}
		key := ev.Package + "\x00" + ev.Test
		ts := tests[key]
		if ts == nil {
			ts = &testState{pkg: ev.Package, name: ev.Test, order: order}
			order++
			tests[key] = ts
		}
		switch ev.Action {
		case "output":
			ts.output.WriteString(ev.Output)
		case "pass", "fail", "skip":
			ts.result = ev.Action
			ts.elapsed = ev.Elapsed
		}
	}

	var list []*testState
	for _, ts := range tests {
		list = append(list, ts)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].order < list[j].order })

	doc := xmlSuites{Time: secs(time.Since(started).Seconds())}
	bad := false
	for _, pkg := range pkgs {
		name := pkg
		if *suite != "" {
			name = *suite
		}
		s := xmlSuite{Name: name, Timestamp: started.UTC().Format("2006-01-02T15:04:05"), Time: secs(pkgElapsed[pkg])}
		anyFailed := false
		for _, ts := range list {
			if ts.pkg != pkg {
				continue
			}
			c := xmlCase{Classname: name, Name: ts.name, Time: secs(ts.elapsed)}
			body := ts.output.String()
			switch ts.result {
			case "pass":
				c.SystemOut = body
			case "skip":
				c.Skipped = &xmlMessage{Message: "skipped", Body: body}
				s.Skipped++
			case "fail":
				c.Failure = &xmlMessage{Message: firstFailureLine(body), Type: "failure", Body: body}
				s.Failures++
				anyFailed = true
			default:
				c.Error = &xmlMessage{Message: "test did not finish (panic, timeout or the test binary died)", Type: "error",
					Body: body + "\n--- package output ---\n" + pkgOutput[pkg].String()}
				s.Errors++
				anyFailed = true
			}
			s.Cases = append(s.Cases, c)
			s.Tests++
		}
		if (pkgResult[pkg] == "fail" || pkgResult[pkg] == "") && !anyFailed {
			s.Cases = append(s.Cases, xmlCase{Classname: name, Name: "(package)", Time: secs(pkgElapsed[pkg]), Error: &xmlMessage{
				Message: "package failed without a failing test (build error, crash, or no result)", Type: "error",
				Body: pkgOutput[pkg].String()}})
			s.Tests++
			s.Errors++
		}
		if s.Tests == 0 {
			continue
		}
		if s.Failures+s.Errors > 0 {
			bad = true
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
		doc.Suites = append(doc.Suites, s)
	}
	if doc.Tests == 0 {
		doc.Suites = append(doc.Suites, xmlSuite{Name: *suite, Tests: 1, Errors: 1, Cases: []xmlCase{{
			Classname: *suite, Name: "(no tests)", Time: "0.000", Error: &xmlMessage{Message: "no test ran", Type: "error"}}}})
		doc.Tests, doc.Errors = 1, 1
		bad = true
	}

	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "junit:", err)
		os.Exit(2)
	}
	f.WriteString(xml.Header)
	enc := xml.NewEncoder(f)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		fmt.Fprintln(os.Stderr, "junit:", err)
		os.Exit(2)
	}
	f.WriteString("\n")
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "junit:", err)
		os.Exit(2)
	}
	passed := doc.Tests - doc.Failures - doc.Errors - doc.Skipped
	summary := fmt.Sprintf("%d passed, %d failed", passed, doc.Failures+doc.Errors)
	if doc.Skipped > 0 {
		summary += fmt.Sprintf(", %d skipped", doc.Skipped)
	}
	fmt.Println()
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			st := "PASS"
			switch {
			case c.Failure != nil:
				st = "FAIL"
			case c.Error != nil:
				st = "ERROR"
			case c.Skipped != nil:
				st = "SKIP"
			}
			fmt.Printf("  %-5s %s (%ss)\n", st, c.Name, c.Time)
		}
	}
	fmt.Println(summary)
	if bad {
		os.Exit(1)
	}
}

func secs(s float64) string { return fmt.Sprintf("%.3f", s) }

// firstFailureLine picks the first line that looks like a t.Fatal/t.Error
// message ("    file_test.go:NN: ...") as the failure's message.
func firstFailureLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		tl := strings.TrimSpace(l)
		if i := strings.Index(tl, "_test.go:"); i > 0 && !strings.HasPrefix(tl, "---") {
			if len(tl) > 300 {
				tl = tl[:300] + "..."
			}
			return tl
		}
	}
	return "failed"
}
