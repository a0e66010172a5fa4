// Shared helpers for the Go real-client compatibility suite.
//
// Every test talks to the broker at $KASKADE_BOOTSTRAP (default
// localhost:9092) and makes its own uniquely named topics and groups
// (compat-go-<what>-<random>), so the suite can run repeatedly against one
// broker. Nothing here knows which broker it is talking to, nor whether it is
// one node or a cluster: waits that matter ask every broker.
package compat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// bootstrap is the broker address under test.
func bootstrap() string {
	if b := os.Getenv("KASKADE_BOOTSTRAP"); b != "" {
		return b
	}
	return "localhost:9092"
}

// opTimeout is how long a test waits for any one thing (delivery, metadata,
// a record to arrive): KASKADE_COMPAT_TIMEOUT seconds, 30 by default.
func opTimeout() time.Duration {
	if s := os.Getenv("KASKADE_COMPAT_TIMEOUT"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 30 * time.Second
}

// uniq returns compat-go-<what>-<8 hex chars>.
func uniq(what string) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "compat-go-" + what + "-" + hex.EncodeToString(b)
}

// opCtx is a context bounded by opTimeout.
func opCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout())
	t.Cleanup(cancel)
	return ctx
}

// franzLogLevel is KASKADE_COMPAT_GO_LOG (debug, info, warn, error, none),
// warn by default: franz-go's log lines go to stderr, which `go test -v`
// shows under the running test. debug shows every request and response.
func franzLogLevel() kgo.LogLevel {
	switch strings.ToLower(os.Getenv("KASKADE_COMPAT_GO_LOG")) {
	case "debug":
		return kgo.LogLevelDebug
	case "info":
		return kgo.LogLevelInfo
	case "error":
		return kgo.LogLevelError
	case "none":
		return kgo.LogLevelNone
	default:
		return kgo.LogLevelWarn
	}
}

// newFranz makes a franz-go client for bootstrap() with the given options,
// logging to stderr, closed when the test ends.
func newFranz(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(bootstrap()),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, franzLogLevel(), func() string {
			return time.Now().Format("15:04:05.000 ") + "[franz " + t.Name() + "] "
		})),
		kgo.RetryTimeout(opTimeout()),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newAdm makes a kadm client over its own franz-go client.
func newAdm(t *testing.T) *kadm.Client {
	t.Helper()
	adm := kadm.NewClient(newFranz(t))
	adm.SetTimeoutMillis(int32(opTimeout() / time.Millisecond))
	return adm
}

// createTopic creates a topic with the given partition count (replication
// factor 1) and waits until its metadata shows a leader for every partition.
func createTopic(t *testing.T, topic string, partitions int32) {
	t.Helper()
	adm := newAdm(t)
	resp, err := adm.CreateTopic(opCtx(t), partitions, 1, nil, topic)
	if err != nil {
		t.Fatalf("CreateTopic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("CreateTopic %s: %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
	waitTopicReady(t, adm, topic, int(partitions))
}

// ensureTopic creates the topic unless it already exists.
func ensureTopic(t *testing.T, topic string, partitions int32) {
	t.Helper()
	adm := newAdm(t)
	resp, err := adm.CreateTopic(opCtx(t), partitions, 1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("CreateTopic %s: %v", topic, err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("CreateTopic %s: %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
	waitTopicReady(t, adm, topic, 0)
}

// waitTopicReady polls metadata until the topic has (at least one, or exactly
// want) partitions, each with a leader.
func waitTopicReady(t *testing.T, adm *kadm.Client, topic string, want int) {
	t.Helper()
	deadline := time.Now().Add(opTimeout())
	var last string
	for time.Now().Before(deadline) {
		md, err := adm.Metadata(opCtx(t), topic)
		if err != nil {
			last = err.Error()
		} else if td, ok := md.Topics[topic]; !ok {
			last = "topic not in metadata"
		} else if td.Err != nil {
			last = td.Err.Error()
		} else if len(td.Partitions) == 0 || (want > 0 && len(td.Partitions) != want) {
			last = fmt.Sprintf("%d partitions", len(td.Partitions))
		} else {
			ready := true
			for _, p := range td.Partitions {
				if p.Err != nil || p.Leader < 0 {
					ready = false
					last = fmt.Sprintf("partition %d: leader %d err %v", p.Partition, p.Leader, p.Err)
				}
			}
			if ready {
				waitMetadataEverywhere(t, topic, want)
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("topic %s not ready within %v: %s", topic, opTimeout(), last)
}

// waitMetadataEverywhere polls every broker of the cluster (as the bootstrap
// broker lists them) until each answers Metadata for topic with (at least one,
// or exactly want) partitions, each with a leader. In a cluster the brokers
// learn of CreateTopics and CreatePartitions at slightly different moments,
// and a client's next Metadata request may go to any of them; on a single
// node this is the same check once more.
func waitMetadataEverywhere(t *testing.T, topic string, want int) {
	t.Helper()
	cl := newFranz(t)
	deadline := time.Now().Add(opTimeout())
	last := "not asked yet"
	for time.Now().Before(deadline) {
		if last = metadataEverywhere(t, cl, topic, want); last == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("topic %s not in every broker's metadata within %v: %s", topic, opTimeout(), last)
}

// metadataEverywhere is "" when every broker shows the topic ready, else
// what is missing.
func metadataEverywhere(t *testing.T, cl *kgo.Client, topic string, want int) string {
	brokers, err := kadm.NewClient(cl).BrokerMetadata(opCtx(t))
	if err != nil {
		return "listing brokers: " + err.Error()
	}
	if len(brokers.Brokers) == 0 {
		return "no broker listed"
	}
	for _, b := range brokers.Brokers {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(opCtx(t), cl.Broker(int(b.NodeID)))
		switch {
		case err != nil:
			return fmt.Sprintf("broker %d: %v", b.NodeID, err)
		case len(resp.Topics) != 1:
			return fmt.Sprintf("broker %d: %d topics", b.NodeID, len(resp.Topics))
		case resp.Topics[0].ErrorCode != 0:
			return fmt.Sprintf("broker %d: %v", b.NodeID, kerr.ErrorForCode(resp.Topics[0].ErrorCode))
		}
		parts := resp.Topics[0].Partitions
		if len(parts) == 0 || (want > 0 && len(parts) != want) {
			return fmt.Sprintf("broker %d: %d partitions", b.NodeID, len(parts))
		}
		for _, p := range parts {
			if p.ErrorCode != 0 || p.Leader < 0 {
				return fmt.Sprintf("broker %d: partition %d leader %d err %v",
					b.NodeID, p.Partition, p.Leader, kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
	return ""
}

// endOffsets returns the high watermark of each partition of topic.
func endOffsets(t *testing.T, topic string) map[int32]int64 {
	t.Helper()
	adm := newAdm(t)
	lo, err := adm.ListEndOffsets(opCtx(t), topic)
	if err != nil {
		t.Fatalf("ListEndOffsets %s: %v", topic, err)
	}
	out := map[int32]int64{}
	for _, parts := range lo {
		for p, o := range parts {
			if o.Err != nil {
				t.Fatalf("ListEndOffsets %s/%d: %v", topic, p, o.Err)
			}
			out[p] = o.Offset
		}
	}
	return out
}

// poll fetches from cl until want records arrived or the deadline passes;
// fetch errors fail the test.
func pollN(t *testing.T, cl *kgo.Client, want int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout())
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records within %v", len(recs), want, opTimeout())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		recs = append(recs, fs.Records()...)
	}
	return recs
}

var osStderr = os.Stderr
