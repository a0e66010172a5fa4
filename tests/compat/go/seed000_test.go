package compat

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// buildExample compiles one of the module's example main packages into dir.
func buildExample(t *testing.T, pkg, dir string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// lineCollector keeps a process's output lines and lets a test wait for a
// condition on them.
type lineCollector struct {
	mu    sync.Mutex
	lines []string
	ch    chan struct{}
}

func newLineCollector(r io.Reader, tag string, t *testing.T) *lineCollector {
	c := &lineCollector{ch: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(os.Stderr, "    [%s] %s\n", tag, line)
			c.mu.Lock()
			c.lines = append(c.lines, line)
			c.mu.Unlock()
			select {
			case c.ch <- struct{}{}:
			default:
			}
		}
	}()
	return c
}

func (c *lineCollector) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// removeGroupMembers makes the members of a classic group leave it (LeaveGroup
// v3+ by member id), best effort: the seed's consumer is killed, not closed,
// and would otherwise stay a member until its session times out, delaying the
// next run's join.
func removeGroupMembers(t *testing.T, group string) {
	adm := newAdm(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout())
	defer cancel()
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Logf("cleanup: DescribeGroups %s: %v", group, err)
		return
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	for _, m := range dg[group].Members {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.MemberID
		req.Members = append(req.Members, lm)
	}
	if len(req.Members) == 0 {
		return
	}
	resp, err := req.RequestWith(ctx, newFranz(t))
	if err != nil {
		t.Logf("cleanup: LeaveGroup %s: %v", group, err)
	} else if e := kerr.ErrorForCode(resp.ErrorCode); e != nil {
		t.Logf("cleanup: LeaveGroup %s: %v", group, e)
	}
}

var receivedRe = regexp.MustCompile(`^received key=(\S*) value=(.*) partition=(\d+) offset=(\d+)$`)

// TestSeed000SegmentioProducerConsumer runs seed 000's segmentio/kafka-go
// consumer (GroupID "example-consumer", Topic "orders") and producer (Hash
// balancer, RequireAll) as separate processes, exactly as the seed wrote them
// but for the address, and checks that the consumer prints the three records
// this run produced. "orders" and "example-consumer" are the seed's fixed
// names, so older records may be there: this run's records are the ones at or
// after the end offsets taken just before the producer ran.
func TestSeed000SegmentioProducerConsumer(t *testing.T) {
	ensureTopic(t, "orders", 3)

	// run.sh points KASKADE_COMPAT_GO_BIN at the programs install.sh built;
	// without it (plain `go test`) they are built here.
	var producer, consumer string
	if bin := os.Getenv("KASKADE_COMPAT_GO_BIN"); bin != "" {
		producer = filepath.Join(bin, "seed000-producer")
		consumer = filepath.Join(bin, "seed000-consumer")
	} else {
		dir := t.TempDir()
		producer = buildExample(t, "./examples/seed000/producer", dir)
		consumer = buildExample(t, "./examples/seed000/consumer", dir)
	}
	env := append(os.Environ(), "KASKADE_BOOTSTRAP="+bootstrap())

	// Consumer first, as in the seed's walkthrough.
	ccmd := exec.Command(consumer)
	ccmd.Env = env
	cout, err := ccmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cerr, err := ccmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ccmd.Start(); err != nil {
		t.Fatalf("start consumer: %v", err)
	}
	cproc := ccmd.Process
	waitDone := make(chan error, 1)
	go func() { waitDone <- ccmd.Wait() }()
	t.Cleanup(func() {
		_ = cproc.Kill()
		<-waitDone
		removeGroupMembers(t, "example-consumer")
	})
	lines := newLineCollector(cout, "consumer", t)
	errLines := newLineCollector(cerr, "consumer stderr", t)

	before := endOffsets(t, "orders")

	pctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout())
	defer cancel()
	pcmd := exec.CommandContext(pctx, producer)
	pcmd.Env = env
	pout, err := pcmd.CombinedOutput()
	t.Logf("producer output: %s", strings.TrimSpace(string(pout)))
	if err != nil {
		t.Fatalf("producer failed: %v\n%s", err, pout)
	}
	if !strings.Contains(string(pout), "sent 3 messages") {
		t.Fatalf("producer did not print 'sent 3 messages': %q", pout)
	}

	after := endOffsets(t, "orders")
	type po struct {
		p int32
		o int64
	}
	produced := 0
	for p, hi := range after {
		produced += int(hi - before[p])
	}
	if produced != 3 {
		t.Fatalf("end offsets moved by %d records, want 3 (before %v, after %v)", produced, before, after)
	}

	want := map[string]string{
		"customer-1": `{"orderId":1,"amount":10}`,
		"customer-2": `{"orderId":2,"amount":20}`,
		"customer-3": `{"orderId":3,"amount":30}`,
	}
	// A consumer joining a group whose previous member (an earlier run's
	// consumer, killed without leaving) is still registered may wait for that
	// member's session timeout (30 s in kafka-go) before it is assigned
	// partitions: allow for that on top of the usual wait.
	deadline := time.Now().Add(opTimeout() + 45*time.Second)
	for {
		got := map[string]po{}
		var bad []string
		for _, l := range lines.snapshot() {
			m := receivedRe.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			p, _ := strconv.Atoi(m[3])
			o, _ := strconv.ParseInt(m[4], 10, 64)
			if o < before[int32(p)] {
				continue // an earlier run's record
			}
			if o >= after[int32(p)] {
				bad = append(bad, "record past this run's end offset: "+l)
				continue
			}
			if w, ok := want[m[1]]; !ok || w != m[2] {
				bad = append(bad, "unexpected record: "+l)
				continue
			}
			if prev, dup := got[m[1]]; dup && prev != (po{int32(p), o}) {
				bad = append(bad, "key seen twice at different offsets: "+l)
			}
			got[m[1]] = po{int32(p), o}
		}
		if len(bad) > 0 {
			t.Fatalf("consumer printed unexpected lines:\n%s", strings.Join(bad, "\n"))
		}
		if len(got) == 3 {
			// Same key, same partition: the three records sit at distinct
			// offsets inside [before, after).
			seen := map[po]bool{}
			for _, v := range got {
				seen[v] = true
			}
			if len(seen) != 3 {
				t.Fatalf("records share offsets: %v", got)
			}
			t.Logf("consumer printed this run's records: %v", got)
			return
		}
		select {
		case err := <-waitDone:
			waitDone <- err
			t.Fatalf("consumer exited early (%v); got %v; stderr:\n%s", err, got, strings.Join(errLines.snapshot(), "\n"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer printed %d of this run's 3 records within the deadline: %v (offsets before %v, after %v)", len(got), got, before, after)
		}
		select {
		case <-lines.ch:
		case <-time.After(200 * time.Millisecond):
		}
	}
}
