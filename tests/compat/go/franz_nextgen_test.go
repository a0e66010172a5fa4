package compat

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzNextGenConsumerGroup: a KIP-848 ("consumer" protocol) group with
// kgo.ServerSideBalancer(): the broker assigns the partitions
// (ConsumerGroupHeartbeat), the member reads and commits everything;
// ListGroups reports group type "consumer"; ConsumerGroupDescribe shows the
// member with all partitions assigned; FetchOffsets shows the commits.
// Apache Kafka 4.x serves this protocol by default.
//
// Kaskade does not offer this protocol yet (DIFFERENCES.md): the test is
// skipped, visibly, where the broker does not advertise
// ConsumerGroupHeartbeat, so tests/compat/compare.sh shows the gap.
func TestFranzNextGenConsumerGroup(t *testing.T) {
	probe := newFranz(t)
	versions, err := kmsg.NewPtrApiVersionsRequest().RequestWith(opCtx(t), probe)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	offered := false
	for _, k := range versions.ApiKeys {
		offered = offered || k.ApiKey == kmsg.ConsumerGroupHeartbeat.Int16()
	}
	if !offered {
		t.Skip("the broker does not offer the KIP-848 consumer group protocol (ConsumerGroupHeartbeat)")
	}
	topic := uniq("franz-848")
	group := uniq("franz-848-g")
	createTopic(t, topic, 3)
	prod := newFranz(t, kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := 0; i < 9; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := prod.ProduceSync(opCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}

	c := newFranz(t,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.ServerSideBalancer(),
		kgo.DisableAutoCommit(),
	)
	got := pollN(t, c, 9)
	if len(got) != 9 {
		t.Fatalf("read %d records, want 9", len(got))
	}
	if err := c.CommitUncommittedOffsets(opCtx(t)); err != nil {
		t.Fatalf("CommitUncommittedOffsets: %v", err)
	}

	adm := newAdm(t)
	lg, err := adm.ListGroups(opCtx(t))
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if g, ok := lg[group]; !ok || g.GroupType != "consumer" || g.ProtocolType != "consumer" {
		t.Fatalf("ListGroups: %s found %v as %+v, want group type consumer (KIP-848)", group, ok, g)
	}
	// The assignment is reconciled asynchronously: poll until the describe
	// shows one member owning all 3 partitions.
	deadline := time.Now().Add(opTimeout())
	for {
		dg, err := adm.DescribeConsumerGroups(opCtx(t), group)
		if err != nil {
			t.Fatalf("DescribeConsumerGroups: %v", err)
		}
		d := dg[group]
		if d.Err != nil {
			t.Fatalf("DescribeConsumerGroups %s: %v", group, d.Err)
		}
		if d.State == "Stable" && len(d.Members) == 1 && len(d.Members[0].Assignment[topic]) == 3 && d.Members[0].MemberEpoch > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConsumerGroupDescribe: state %q members %+v", d.State, d.Members)
		}
		time.Sleep(200 * time.Millisecond)
	}
	offs, err := adm.FetchOffsets(opCtx(t), group)
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	for p, e := range endOffsets(t, topic) {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != e {
			t.Fatalf("committed offset of %d: %+v (found %v), want %d", p, o, ok, e)
		}
	}
}
